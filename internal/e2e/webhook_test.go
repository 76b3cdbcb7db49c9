package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/souk-dev/souk/buyer-svc/buyer"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/payment"
	"github.com/souk-dev/souk/internal/testenv"
)

// capturesDown is the simulated provider with captures failing while down
// is set, as a provider whose capture endpoint is unreachable.
type capturesDown struct {
	payment.Provider
	down *atomic.Bool
}

func (p capturesDown) Capture(ctx context.Context, ref string) error {
	if p.down.Load() {
		return fmt.Errorf("%w: capture endpoint unreachable", payment.ErrTransient)
	}
	return p.Provider.Capture(ctx, ref)
}

// Money safety, round two, point 4: the provider's event says what happened.
// An asynchronous authorization (a risk review that passed) pays the order,
// but nothing is shippable until Souk has captured the money.
func TestWebhookAuthorizationIsNotACapture(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	s := startSystemWith(t, 1, options{provider: func(p *payment.Simulated) payment.Provider { return capturesDown{Provider: p, down: &down} }})
	lamp := s.product("store-x", "Lamp", 1000, 100, 10)
	sellerCtx := as(s.token(auth.RoleSeller, "store-x"))
	o := s.checkout("alice", 1, lamp)[0]
	if resp := s.pay(t, "alice", o, "4000000000000358", "async-auth-1"); resp.Order.Status != processing {
		t.Fatalf("a payment under review: %s", resp.Order.Status)
	}
	testenv.Eventually(t, 10*time.Second, "the provider reports the authorization", func() bool { return s.order("alice", o.Id).Status == paidStatus })
	ship := func() error {
		_, err := s.seller.ShipOrder(sellerCtx, &sellerv1.ShipOrderRequest{OrderId: o.Id, Carrier: "DHL", TrackingNumber: "JD0001"})
		return err
	}
	if err := ship(); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("shipping an authorized, uncaptured order: %v, want FAILED_PRECONDITION", err)
	}
	if n := s.capturedFor(t, o.Id); n != 0 {
		t.Fatalf("the provider holds %d captured payments, want none yet", n)
	}
	down.Store(false)
	captured := s.capturedRecord(t)
	testenv.Eventually(t, 20*time.Second, "the worker captures the authorization", func() bool {
		return captured(s.order("alice", o.Id).PaymentAttempts[0].Id)
	})
	if err := ship(); err != nil {
		t.Fatalf("shipping a captured order: %v", err)
	}
	s.moneyOf(t, s.order("alice", o.Id))
}

// postEvent posts body to buyer-svc's webhook with a signature header.
func (s *system) postEvent(t *testing.T, body []byte, signature string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.buyerURL("/v1/provider/events"), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set(payment.SignatureHeader, signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("webhook answer is not JSON: %s", raw)
	}
	return resp.StatusCode, out
}

// The webhook's contract: the signature covers the raw body and a recent
// timestamp; every event has an id and is handled once; what is not an
// event Souk knows is refused with a status that says why.
func TestWebhookContract(t *testing.T) {
	// The simulated bank takes an hour: the test is the provider.
	s := startSystemWith(t, 1, options{buyer: func(c *buyer.Config) { c.SettleAfter = time.Hour }})
	lamp := s.product("store-x", "Lamp", 1000, 100, 10)
	o := s.checkout("alice", 1, lamp)[0]
	transfer := s.payTransfer(t, "alice", o, "DE89370400440532013000", "webhook-contract-1")
	secret := []byte(webhookSecret)
	event := func(id, typ, decline string) []byte {
		b, _ := json.Marshal(payment.Event{ID: id, Type: payment.EventType(typ), Created: time.Now().Unix(),
			Data: payment.EventData{OrderID: o.Id, AttemptID: transfer.Attempt.Id, ProviderRef: transfer.Attempt.Id, DeclineCode: decline}})
		return b
	}
	now := time.Now()
	declined := event("evt_test_1", "payment.declined", "do_not_honor")
	for _, tc := range []struct {
		name      string
		body      []byte
		signature string
		want      int
	}{
		{"no signature", declined, "", http.StatusUnauthorized},
		{"forged", declined, payment.Sign([]byte("not-the-secret-not-the-secret"), declined, now), http.StatusUnauthorized},
		{"signed over another body", declined, payment.Sign(secret, event("evt_test_1", "payment.captured", ""), now), http.StatusUnauthorized},
		{"stale", declined, payment.Sign(secret, declined, now.Add(-time.Hour)), http.StatusUnauthorized},
		{"not JSON", []byte(`{"id":`), payment.Sign(secret, []byte(`{"id":`), now), http.StatusBadRequest},
		{"unknown type", event("evt_test_2", "payment.maybe", ""), payment.Sign(secret, event("evt_test_2", "payment.maybe", ""), now), http.StatusBadRequest},
		{"no id", event("", "payment.failed", ""), payment.Sign(secret, event("", "payment.failed", ""), now), http.StatusBadRequest},
	} {
		if code, body := s.postEvent(t, tc.body, tc.signature); code != tc.want || str(body, "message") == "" {
			t.Errorf("%s: HTTP %d %v, want %d with a message", tc.name, code, body, tc.want)
		}
	}
	if got := s.order("alice", o.Id); got.Status != processing {
		t.Fatalf("a refused event changed the order: %s", got.Status)
	}
	// A real event, then the same id again and another event after it:
	// the first decides, the repeat and the late contradiction change nothing.
	captured := event("evt_test_3", "payment.captured", "")
	if code, body := s.postEvent(t, captured, payment.Sign(secret, captured, now)); code != http.StatusOK {
		t.Fatalf("a signed capture: HTTP %d %v", code, body)
	}
	if code, _ := s.postEvent(t, captured, payment.Sign(secret, captured, now)); code != http.StatusOK {
		t.Fatalf("the same event again: HTTP %d, want 200", code)
	}
	if code, _ := s.postEvent(t, declined, payment.Sign(secret, declined, now)); code != http.StatusOK {
		t.Fatalf("a decline after the capture: HTTP %d, want 200 (acknowledged)", code)
	}
	got := s.order("alice", o.Id)
	if got.Status != paidStatus || countKinds(got)["paid"] != 1 {
		t.Fatalf("order %s, history %v", got.Status, countKinds(got))
	}
	var seen int
	if err := s.db(t).QueryRow(context.Background(), `SELECT count(*) FROM provider_events WHERE id LIKE 'evt_test_%'`).Scan(&seen); err != nil || seen != 2 {
		t.Fatalf("%d events recorded (%v), want the two handled", seen, err)
	}
	// An event for an attempt Souk never made is not acknowledged.
	stranger := bytes.Replace(event("evt_test_4", "payment.captured", ""), []byte(transfer.Attempt.Id), []byte("00000000-0000-4000-8000-000000000000"), 2)
	if code, _ := s.postEvent(t, stranger, payment.Sign(secret, stranger, now)); code != http.StatusNotFound {
		t.Fatalf("an event for an unknown attempt: HTTP %d, want 404", code)
	}
	if strings.Contains(fmt.Sprint(s.order("alice", o.Id).History), "evt_test") {
		t.Fatal("event ids leak into the order's history")
	}
}
