package payment_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
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
	if err := sim.Capture(ctx, res.ProviderRef); err != nil {
		t.Fatalf("second capture: %v", err)
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
// bank transfers and slow cards, retried until acknowledged.
func TestSimulatedReportsAsynchronousOutcomes(t *testing.T) {
	var mu sync.Mutex
	got := map[string]payment.Event{}
	fails := 2
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev payment.Event
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil || ev.Verify(secret, time.Now()) != nil {
			t.Errorf("bad event: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 { // the first deliveries fail: the provider must retry
			fails--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		got[ev.AttemptID] = ev
	}))
	defer srv.Close()
	sim := newSim(t, srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go sim.Run(ctx)

	want := map[string]string{}
	for _, r := range []payment.PaymentRequest{
		cardReq("4000000000000077"), cardReq("4000000000000341"),
		{Key: uuid.NewString(), OrderID: uuid.NewString(), Amount: order.Money{Amount: 5, Currency: "EUR"}, Method: order.MethodBankTransfer, Account: "DE0012345678"},
		{Key: uuid.NewString(), OrderID: uuid.NewString(), Amount: order.Money{Amount: 5, Currency: "EUR"}, Method: order.MethodBankTransfer, Account: "TESTFAIL0001"},
	} {
		if res, err := sim.Pay(ctx, r); err != nil || res.Kind != order.ResultProcessing {
			t.Fatalf("pay: %+v %v", res, err)
		}
		want[r.Key] = map[bool]string{true: "succeeded", false: ""}[r.Method == order.MethodBankTransfer && r.Account != "TESTFAIL0001" || r.Card.Number == "4000000000000077"]
	}
	testenv.Eventually(t, 5*time.Second, "all four events delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 4
	})
	mu.Lock()
	defer mu.Unlock()
	for key, outcome := range want {
		ev := got[key]
		if outcome == "succeeded" && ev.Outcome != "succeeded" || outcome == "" && ev.Outcome == "succeeded" {
			t.Errorf("attempt %s: outcome %q (code %q)", key, ev.Outcome, ev.DeclineCode)
		}
	}
}

func TestEventSignature(t *testing.T) {
	now := time.Now()
	ev := payment.Event{OrderID: "o", AttemptID: "a", ProviderRef: "p", Outcome: "succeeded"}
	ev.Sign(secret, now)
	if err := ev.Verify(secret, now); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]func(e *payment.Event){
		"other outcome": func(e *payment.Event) { e.Outcome = "failed" },
		"other order":   func(e *payment.Event) { e.OrderID = "x" },
		"old":           func(e *payment.Event) { e.Timestamp -= 3600 },
		"garbage":       func(e *payment.Event) { e.Signature = "zz" },
	} {
		e := ev
		bad(&e)
		if e.Verify(secret, now) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if ev.Verify([]byte("other"), now) == nil {
		t.Error("accepted under another secret")
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
