package buyer

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/status"

	"github.com/souk-dev/souk/internal/payment"
	"github.com/souk-dev/souk/internal/server"
)

// maxEventBytes bounds a webhook event's body.
const maxEventBytes = 64 << 10

// webhook serves POST /v1/provider/events, the payment provider's webhook.
// The signature covers the raw body (payment.SignatureHeader), so the
// handler reads the body itself rather than through the gateway, which
// would decode and re-encode it. 200 acknowledges an event (also one seen
// before); any other status asks the provider to deliver it again.
func (s *buyerService) webhook(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventBytes))
	if err == nil {
		var ev payment.Event
		if ev, err = payment.ParseEvent(s.webhookSecret, body, r.Header.Get(payment.SignatureHeader), s.deps.Now()); err == nil {
			err = s.pay.RecordEvent(ctx, ev)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		st := status.Convert(server.ToStatus(ctx, s.deps.Log, err))
		w.WriteHeader(runtime.HTTPStatusFromCode(st.Code()))
		_ = json.NewEncoder(w).Encode(map[string]any{"code": st.Code(), "message": st.Message()})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"received": true})
}
