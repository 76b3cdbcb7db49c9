package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/testenv"
)

// TestPartlyPaidOrderIsStoredAndCaptured: an order paid in parts keeps its
// plan and parts through the store, and a part paid but not captured yet
// is in the capture worker's backlog (souk_capture_worker_backlog), though
// the order is not paid in full (it has no paid_attempt_id).
func TestPartlyPaidOrderIsStoredAndCaptured(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	o, err := order.New(order.NewOrderParams{ID: uuid.NewString(), CheckoutID: uuid.NewString(), BuyerID: "alice", SellerID: "store-p",
		Currency: "USD", Items: []order.Item{{ProductID: uuid.NewString(), Title: "Phone", Quantity: 1, UnitPrice: 10000}},
		HandlingDays: 2, PaymentWindow: 20 * 24 * time.Hour, Now: now,
		Plan: &order.Plan{Kind: order.PlanDeposit, DepositPercent: 25, BalanceWindow: 7 * 24 * time.Hour, Grace: time.Hour, KeepDeposit: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateOrders(ctx, []*order.Order{o}); err != nil {
		t.Fatal(err)
	}
	a := order.Attempt{ID: uuid.NewString(), IdempotencyKey: "k1", Fingerprint: "f", Method: order.MethodCard, CardBrand: "visa", CardLast4: "4242"}
	if _, err := db.Update(ctx, o.ID(), func(o *order.Order) error { return o.BeginPayment(now, o.Due(), a) }); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Update(ctx, o.ID(), func(o *order.Order) error {
		return o.ApplyResult(now, a.ID, order.Result{Kind: order.ResultSucceeded, ProviderRef: "p1"}, order.DefaultPolicy)
	}); err != nil {
		t.Fatal(err)
	}
	got, err := db.Get(ctx, o.ID())
	if err != nil {
		t.Fatal(err)
	}
	s := got.Schedule()
	if got.Status() != order.StatusPartiallyPaid || s == nil || !s.Plan.KeepDeposit || s.Plan.Grace != time.Hour || len(s.Parts) != 2 ||
		s.Parts[0].Status != order.PartPaid || s.Parts[0].AttemptID != a.ID || s.Parts[1].Amount != 7500 || got.Due().Amount != 7500 {
		t.Fatalf("stored: %s, schedule %+v, due %v", got.Status(), s, got.Due())
	}
	if d := got.Deadlines(); !d[order.DeadlinePart].Equal(s.Parts[1].DueAt) {
		t.Fatalf("deadlines %v, want the balance's", d)
	}
	st, err := db.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.CaptureBacklog != 1 {
		t.Fatalf("capture backlog %d, want the deposit's payment", st.CaptureBacklog)
	}
}
