package deadline_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/souk-dev/souk/internal/catalog"
	"github.com/souk-dev/souk/internal/deadline"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/testenv"
)

// Scenario 5 of issue #7: one deadline that cannot be fired (a kind a newer
// version wrote during a rolling deploy) is reported and skipped; it never
// holds up the deadlines behind it, sweep after sweep.
func TestSweepSkipsADeadlineItCannotFire(t *testing.T) {
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	p := catalog.Product{ID: uuid.NewString(), SellerID: "store-x", Title: "Lamp", Currency: "USD", Price: 1000, Stock: 10, HandlingDays: 3, ProtectionDays: 60,
		CreatedAt: now, UpdatedAt: now}
	if err := db.CreateProduct(ctx, p); err != nil {
		t.Fatal(err)
	}
	var orders []*order.Order
	for i := range 4 {
		window := time.Millisecond
		if i == 0 {
			window = 24 * time.Hour // the order with the poisoned deadline stays open
		}
		o, err := order.New(order.NewOrderParams{ID: uuid.NewString(), CheckoutID: uuid.NewString(), BuyerID: "alice", SellerID: "store-x",
			Currency: "USD", Items: []order.Item{{ProductID: p.ID, Quantity: 1, UnitPrice: 1000}}, HandlingDays: 3,
			PaymentWindow: window, Now: now.Add(-time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		orders = append(orders, o)
	}
	if err := db.CreateOrders(ctx, orders); err != nil {
		t.Fatal(err)
	}
	// The poisoned deadline is due first.
	if _, err := db.Pool().Exec(ctx, `INSERT INTO order_deadlines (order_id, kind, due_at) VALUES ($1, 'from_a_newer_version', $2)`,
		orders[0].ID(), now.Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	var fired []string
	s := deadline.New(rdb, prefix, db, order.DefaultPolicy, func() time.Time { return now }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.OnFired(func(o *order.Order) { fired = append(fired, o.ID()) })
	for range 2 {
		if _, err := s.Sweep(ctx, 1); err != nil {
			t.Fatalf("sweep: %v", err)
		}
	}
	if len(fired) != 3 {
		t.Fatalf("fired %d orders, want all 3 payment windows", len(fired))
	}
	for _, o := range orders[1:] {
		got, err := db.Get(ctx, o.ID())
		if err != nil || got.Status() != order.StatusCancelled {
			t.Fatalf("order %s: %v %v", o.ID(), got.Status(), err)
		}
	}
	if s.Failures() != 2 {
		t.Fatalf("failures = %d, want the poisoned deadline reported once per sweep", s.Failures())
	}
	var n int
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM order_deadlines WHERE kind = 'from_a_newer_version'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the unknown deadline is gone (%d, %v): it belongs to the newer version", n, err)
	}
}
