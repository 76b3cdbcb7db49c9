package payment_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/payment"
	"github.com/souk-dev/souk/internal/testenv"
)

var secret = []byte("webhook-secret")

func newSim(t *testing.T, callback string) *payment.Simulated {
	t.Helper()
	db := testenv.DB(t)
	now := func() time.Time { return time.Now().UTC() }
	return payment.NewSimulated(db.Pool(), payment.SimulatedConfig{
		SettleAfter: 100 * time.Millisecond, CallbackURL: callback, WebhookSecret: secret, PollInterval: 50 * time.Millisecond,
	}, now, testenv.Logger(t))
}

func cardReq(number string) payment.PaymentRequest {
	return payment.PaymentRequest{Key: uuid.NewString(), OrderID: uuid.NewString(), Amount: order.Money{Amount: 1000, Currency: "USD"},
		Method: order.MethodCard, Card: payment.Card{Number: number, ExpMonth: 12, ExpYear: 2099, CVC: "123"}}
}

func TestSimulatedTestCards(t *testing.T) {
	sim := newSim(t, "")
	ctx := context.Background()
	want := map[string]order.ResultKind{
		"approve": order.ResultSucceeded, "verification_required": order.ResultRequiresVerification,
		"slow_approve": order.ResultProcessing, "slow_decline": order.ResultProcessing, "processing_error": order.ResultFailed,
		"capture_answer_lost": order.ResultSucceeded, "slow_authorize": order.ResultProcessing,
	}
	for _, tc := range payment.TestCards {
		t.Run(tc.Scenario+"/"+tc.Number, func(t *testing.T) {
			req := cardReq(tc.Number)
			res, err := sim.Pay(ctx, req)
			if tc.Scenario == "answer_lost" {
				// The payment is made; only its answer is lost. Lookup finds it.
				if !errors.Is(err, payment.ErrTransient) {
					t.Fatalf("err = %v, want ErrTransient", err)
				}
				got, found, err := sim.Lookup(ctx, req.Key)
				if err != nil || !found || got.Kind != order.ResultSucceeded || got.ProviderRef == "" {
					t.Fatalf("lookup after a lost answer: %+v %v %v", got, found, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			kind, ok := want[tc.Scenario]
			if !ok {
				kind = order.ResultDeclined
				if res.Decline.Code != tc.Scenario || res.Decline.Message == "" || res.Decline.Advice == "" {
					t.Fatalf("decline = %+v, want %s with message and advice", res.Decline, tc.Scenario)
				}
			}
			if res.Kind != kind || res.ProviderRef == "" {
				t.Fatalf("result = %+v, want %s", res, kind)
			}
			again, err := sim.Pay(ctx, req)
			if err != nil || again != res {
				t.Fatalf("the same key answered %+v, %v; first %+v", again, err, res)
			}
		})
	}
	ledger, _ := sim.Ledger(ctx)
	if len(ledger) != len(payment.TestCards) {
		t.Fatalf("ledger has %d payments, want one per test card", len(ledger))
	}
}

func TestSimulatedVerifyCaptureVoidRefund(t *testing.T) {
	sim := newSim(t, "")
	ctx := context.Background()
	req := cardReq("4000000000003220")
	res, _ := sim.Pay(ctx, req)
	if _, err := sim.Verify(ctx, req.Key, "000000"); !errors.Is(err, payment.ErrWrongCode) {
		t.Fatalf("wrong code: %v", err)
	}
	res, err := sim.Verify(ctx, req.Key, payment.VerificationCode)
	if err != nil || res.Kind != order.ResultSucceeded || res.Captured {
		t.Fatalf("verified: %+v %v", res, err)
	}
	if _, err := sim.Refund(ctx, payment.RefundRequest{Key: "r0", PaymentRef: res.ProviderRef, Amount: order.Money{Amount: 1, Currency: "USD"}}); !errors.Is(err, payment.ErrRefused) {
		t.Fatalf("refund before capture: %v", err)
	}
	if err := sim.Capture(ctx, res.ProviderRef); err != nil {
		t.Fatal(err)
	}
	// As a real provider, a second capture is refused: the money is taken.
	if err := sim.Capture(ctx, res.ProviderRef); !errors.Is(err, payment.ErrRefused) || !strings.Contains(err.Error(), "already captured") {
		t.Fatalf("second capture: %v, want refused as already captured", err)
	}
	if got, found, err := sim.Lookup(ctx, req.Key); err != nil || !found || !got.Captured {
		t.Fatalf("lookup of a captured payment: %+v %v %v", got, found, err)
	}
	if err := sim.Void(ctx, res.ProviderRef); !errors.Is(err, payment.ErrRefused) {
		t.Fatalf("void after capture: %v", err)
	}
	r1, err := sim.Refund(ctx, payment.RefundRequest{Key: "r1", PaymentRef: res.ProviderRef, Amount: order.Money{Amount: 600, Currency: "USD"}})
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := sim.Refund(ctx, payment.RefundRequest{Key: "r1", PaymentRef: res.ProviderRef, Amount: order.Money{Amount: 600, Currency: "USD"}}); again != r1 {
		t.Fatalf("the same refund key made another refund")
	}
	if _, err := sim.Refund(ctx, payment.RefundRequest{Key: "r2", PaymentRef: res.ProviderRef, Amount: order.Money{Amount: 500, Currency: "USD"}}); !errors.Is(err, payment.ErrRefused) {
		t.Fatalf("refunding more than paid: %v", err)
	}
	sim.SetOutage(true)
	if _, err := sim.Refund(ctx, payment.RefundRequest{Key: "r3", PaymentRef: res.ProviderRef, Amount: order.Money{Amount: 1, Currency: "USD"}}); !errors.Is(err, payment.ErrTransient) {
		t.Fatalf("refund during an outage: %v", err)
	}
	other := cardReq("4242424242424242")
	sim.SetOutage(false)
	auth, _ := sim.Pay(ctx, other)
	if err := sim.Void(ctx, auth.ProviderRef); err != nil {
		t.Fatal(err)
	}
	if res, found, err := sim.Lookup(ctx, other.Key); err != nil || !found || res.Kind != order.ResultFailed {
		t.Fatalf("lookup of a voided payment: %+v %v %v", res, found, err)
	}
	if _, found, _ := sim.Lookup(ctx, "never-sent"); found {
		t.Fatal("lookup found a payment never made")
	}
}

// TestSimulatedReportsAsynchronousOutcomes checks the signed events of
// bank transfers and slow cards: each says what happened (an authorization
// is not a capture), keeps its id when delivered again, and is retried
// until acknowledged.
func TestSimulatedReportsAsynchronousOutcomes(t *testing.T) {
	var mu sync.Mutex
	got := map[string]payment.Event{}
	ids := map[string]map[string]bool{}
	fails := 2
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev, err := payment.ParseEvent(secret, body, r.Header.Get(payment.SignatureHeader), time.Now())
		if err != nil {
			t.Errorf("bad event: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if ids[ev.Data.AttemptID] == nil {
			ids[ev.Data.AttemptID] = map[string]bool{}
		}
		ids[ev.Data.AttemptID][ev.ID] = true
		if fails > 0 { // the first deliveries fail: the provider must retry
			fails--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		got[ev.Data.AttemptID] = ev
	}))
	defer srv.Close()
	sim := newSim(t, srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go sim.Run(ctx)

	bank := func(account string) payment.PaymentRequest {
		return payment.PaymentRequest{Key: uuid.NewString(), OrderID: uuid.NewString(), Amount: order.Money{Amount: 5, Currency: "EUR"},
			Method: order.MethodBankTransfer, Account: account}
	}
	want := map[string]payment.EventType{}
	for r, typ := range map[payment.PaymentRequest]payment.EventType{
		cardReq("4000000000000077"): payment.EventCaptured, cardReq("4000000000000341"): payment.EventDeclined,
		cardReq("4000000000000358"): payment.EventAuthorized,
		bank("DE0012345678"):        payment.EventCaptured, bank("TESTFAIL0001"): payment.EventFailed,
	} {
		if res, err := sim.Pay(ctx, r); err != nil || res.Kind != order.ResultProcessing {
			t.Fatalf("pay: %+v %v", res, err)
		}
		want[r.Key] = typ
	}
	testenv.Eventually(t, 5*time.Second, "all events delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == len(want)
	})
	mu.Lock()
	defer mu.Unlock()
	for key, typ := range want {
		if ev := got[key]; ev.Type != typ || !strings.HasPrefix(ev.ID, "evt_") || len(ids[key]) != 1 {
			t.Errorf("attempt %s: event %+v (ids %v), want %s under one id", key, ev, ids[key], typ)
		}
	}
	if res, ok := got[firstKey(want, payment.EventAuthorized)].Result(); !ok || res.Kind != order.ResultSucceeded || res.Captured {
		t.Errorf("an authorization reads as %+v, want succeeded and not captured", res)
	}
}

func firstKey(m map[string]payment.EventType, typ payment.EventType) string {
	for k, v := range m {
		if v == typ {
			return k
		}
	}
	return ""
}

func TestEventSignature(t *testing.T) {
	now := time.Now()
	body := []byte(`{"id":"evt_1","type":"payment.captured","created":1,"data":{"order_id":"o","attempt_id":"a","provider_ref":"p"}}`)
	header := payment.Sign(secret, body, now)
	ev, err := payment.ParseEvent(secret, body, header, now)
	if err != nil || ev.ID != "evt_1" || ev.Type != payment.EventCaptured || ev.Data.ProviderRef != "p" {
		t.Fatalf("parse: %+v %v", ev, err)
	}
	rotated := header + ",v1=" + strings.Repeat("ab", 32) // an old secret's signature beside the new one
	if _, err := payment.ParseEvent(secret, body, rotated, now); err != nil {
		t.Fatalf("a header with two signatures: %v", err)
	}
	for name, tc := range map[string]struct {
		body   []byte
		header string
		now    time.Time
	}{
		"other body":      {[]byte(strings.Replace(string(body), "captured", "authorized", 1)), header, now},
		"old":             {body, header, now.Add(time.Hour)},
		"future":          {body, header, now.Add(-time.Hour)},
		"garbage":         {body, "t=1,v1=zz", now},
		"no header":       {body, "", now},
		"other secret":    {body, payment.Sign([]byte("other"), body, now), now},
		"timestamp moved": {body, strings.Replace(header, fmt.Sprintf("t=%d", now.Unix()), fmt.Sprintf("t=%d", now.Unix()-1), 1), now},
	} {
		if _, err := payment.ParseEvent(secret, tc.body, tc.header, tc.now); !errors.Is(err, payment.ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", name, err)
		}
	}
	for name, bad := range map[string]string{
		"not JSON":     `{"id":`,
		"no id":        `{"type":"payment.captured","data":{"order_id":"o","attempt_id":"a","provider_ref":"p"}}`,
		"unknown type": `{"id":"evt_2","type":"payment.maybe","data":{"order_id":"o","attempt_id":"a","provider_ref":"p"}}`,
		"no attempt":   `{"id":"evt_3","type":"payment.failed","data":{"order_id":"o","provider_ref":"p"}}`,
	} {
		if _, err := payment.ParseEvent(secret, []byte(bad), payment.Sign(secret, []byte(bad), now), now); !errors.Is(err, payment.ErrBadEvent) {
			t.Errorf("%s: %v, want ErrBadEvent", name, err)
		}
	}
}

func TestCardNeverPrintsItsNumber(t *testing.T) {
	c := payment.Card{Number: "4000000000009995", CVC: "987", ExpMonth: 1, ExpYear: 2030}
	for _, s := range []string{c.String(), c.LogValue().String()} {
		if s != "visa ending 9995" {
			t.Fatalf("card prints as %q", s)
		}
	}
	for number, brand := range map[string]string{"5555555555554444": "mastercard", "2200000000000004": "mir", "2221000000000009": "mastercard", "378282246310005": "amex", "6200000000000005": "unionpay"} {
		if got := payment.Brand(number); got != brand {
			t.Errorf("Brand(%s) = %s, want %s", number, got, brand)
		}
	}
	if got := payment.MaskAccount("alice@wallet.test"); got != "al***@wallet.test" {
		t.Errorf("masked wallet = %s", got)
	}
	if got := payment.MaskAccount("DE0012345678"); got != "****5678" {
		t.Errorf("masked account = %s", got)
	}
}

// A capture whose answer is lost has taken the money: the caller sees a
// transient error, a second capture is refused, and Lookup says captured.
func TestSimulatedCaptureAnswerLost(t *testing.T) {
	sim := newSim(t, "")
	ctx := context.Background()
	req := cardReq("4000000000000259")
	res, err := sim.Pay(ctx, req)
	if err != nil || res.Kind != order.ResultSucceeded || res.Captured {
		t.Fatalf("authorized: %+v %v", res, err)
	}
	if err := sim.Capture(ctx, res.ProviderRef); !errors.Is(err, payment.ErrTransient) {
		t.Fatalf("first capture: %v, want its answer lost", err)
	}
	if err := sim.Capture(ctx, res.ProviderRef); !errors.Is(err, payment.ErrRefused) {
		t.Fatalf("second capture: %v, want refused", err)
	}
	if got, found, err := sim.Lookup(ctx, req.Key); err != nil || !found || got.Kind != order.ResultSucceeded || !got.Captured {
		t.Fatalf("lookup: %+v %v %v, want captured", got, found, err)
	}
}
