package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/souk-dev/souk/internal/catalog"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/postgres"
	"github.com/souk-dev/souk/internal/testenv"
)

// paid stores an order paid by an authorized, uncaptured card payment.
func paid(t *testing.T, db *postgres.DB, p catalog.Product, at time.Time) *order.Order {
	t.Helper()
	o := mustOrder(t, db, p, "alice", at)
	got, err := db.Update(context.Background(), o.ID(), func(o *order.Order) error {
		a := order.Attempt{ID: uuid.NewString(), IdempotencyKey: "k-" + o.ID(), Fingerprint: "hmac:x", Method: order.MethodCard}
		if err := o.BeginPayment(at, o.Total(), a); err != nil {
			return err
		}
		return o.ApplyResult(at, a.ID, order.Result{Kind: order.ResultSucceeded, ProviderRef: "auth-" + o.ID()}, order.DefaultPolicy)
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// Scenario 2: captures that keep failing back off one by one, so they
// never starve the others (the queue used to hand out the same 50 forever).
func TestFailingCapturesDoNotStarveOthers(t *testing.T) {
	db := testenv.DB(t)
	ctx := context.Background()
	p := mustProduct(t, db, "store-x", 100)
	var all []*order.Order
	for i := range 60 {
		all = append(all, paid(t, db, p, t0.Add(time.Duration(i)*time.Millisecond)))
	}
	now := t0.Add(time.Hour)
	first, err := db.UncapturedAttempts(ctx, now, 50)
	if err != nil || len(first) != 50 {
		t.Fatalf("first round: %d, %v", len(first), err)
	}
	// Every one of them fails: each backs off.
	for _, ref := range first {
		if _, err := db.Update(ctx, ref.OrderID, func(o *order.Order) error {
			return o.CaptureRetryLater(now, ref.AttemptID, now.Add(time.Minute))
		}); err != nil {
			t.Fatal(err)
		}
	}
	second, err := db.UncapturedAttempts(ctx, now, 50)
	if err != nil || len(second) != 10 {
		t.Fatalf("second round: %d, %v; want the 10 others", len(second), err)
	}
	seen := map[string]bool{}
	for _, ref := range append(first, second...) {
		seen[ref.AttemptID] = true
	}
	if len(seen) != len(all) {
		t.Fatalf("%d attempts reached in two rounds, want all %d", len(seen), len(all))
	}
	if again, _ := db.UncapturedAttempts(ctx, now.Add(2*time.Minute), 100); len(again) != 60 {
		t.Fatalf("after the back-off: %d due, want 60", len(again))
	}
}

// Scenario 5: a lost deadlock or serialization check is run again inside
// the store; if it keeps losing it is a conflict (ABORTED), never an
// internal error.
func TestLostRacesAreRetriedThenConflicts(t *testing.T) {
	db := testenv.DB(t)
	p := mustProduct(t, db, "store-x", 10)
	o := mustOrder(t, db, p, "alice", t0)
	tries := 0
	// A trigger aborts the order's writes as Postgres aborts a deadlock
	// victim, while the sequence (which no rollback undoes) is within budget.
	if _, err := db.Pool().Exec(context.Background(), `CREATE TABLE fault_budget (n int); INSERT INTO fault_budget VALUES (1);
		CREATE SEQUENCE fault_seq;
		CREATE FUNCTION lose() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF nextval('fault_seq') <= (SELECT n FROM fault_budget) THEN
				RAISE EXCEPTION 'deadlock detected (injected)' USING ERRCODE = 'deadlock_detected';
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER lose BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION lose()`); err != nil {
		t.Fatal(err)
	}
	got, err := db.Update(context.Background(), o.ID(), func(o *order.Order) error {
		tries++
		return o.Cancel(t0, "alice", "changed my mind")
	})
	if err != nil || got.Status() != order.StatusCancelled || tries != 2 {
		t.Fatalf("after one lost deadlock: %v, %d tries", err, tries)
	}
	o2 := mustOrder(t, db, p, "alice", t0)
	if _, err := db.Pool().Exec(context.Background(), `UPDATE fault_budget SET n = 1000`); err != nil {
		t.Fatal(err)
	}
	_, err = db.Update(context.Background(), o2.ID(), func(o *order.Order) error { return o.Cancel(t0, "alice", "x") })
	if !errors.Is(err, order.ErrConflict) {
		t.Fatalf("always losing: %v, want ErrConflict", err)
	}
}

// Scenario 5: the sweeper cancelling orders (stock back, products locked)
// and checkouts reserving the same products never deadlock: both lock
// products in id order, and the sweeper takes one order per transaction
// (it used to lock the products of a whole batch in due order: B, A, B…,
// while a checkout of A and B locks A, then B).
func TestSweeperAndCheckoutsDoNotDeadlock(t *testing.T) {
	db := testenv.DB(t)
	ctx := context.Background()
	a, b := mustProduct(t, db, "store-x", 10000), mustProduct(t, db, "store-x", 10000)
	if a.ID > b.ID {
		a, b = b, a
	}
	var orders []*order.Order
	for i := range 200 {
		p := b // due first: B, then A, then B…
		if i%2 == 1 {
			p = a
		}
		checkout := uuid.NewString()
		if _, err := db.Reserve(ctx, checkout, []postgres.StockItem{{ProductID: p.ID, Quantity: 1}}, t0); err != nil {
			t.Fatal(err)
		}
		o, err := order.New(order.NewOrderParams{ID: uuid.NewString(), CheckoutID: checkout, BuyerID: "alice", SellerID: "store-x",
			Currency: "USD", Items: []order.Item{{ProductID: p.ID, Quantity: 1, UnitPrice: 100}}, HandlingDays: 3,
			PaymentWindow: time.Duration(i+1) * time.Millisecond, Now: t0})
		if err != nil {
			t.Fatal(err)
		}
		orders = append(orders, o)
	}
	if err := db.CreateOrders(ctx, orders); err != nil {
		t.Fatal(err)
	}
	sweep := func() error {
		var after postgres.Deadline
		for {
			ds, err := db.DueDeadlines(ctx, t0.Add(time.Hour), after, 10)
			if err != nil {
				return err
			}
			for _, d := range ds {
				if _, _, err := db.FireDeadline(ctx, d.OrderID, d.Kind, t0.Add(time.Hour), order.DefaultPolicy, true); err != nil {
					return err
				}
			}
			if len(ds) < 10 {
				return nil
			}
			after = ds[len(ds)-1]
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for range 2 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 10 {
				if err := sweep(); err != nil {
					errs <- fmt.Errorf("sweep: %w", err)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 100 {
				if _, err := db.Reserve(ctx, uuid.NewString(), []postgres.StockItem{{ProductID: a.ID, Quantity: 1}, {ProductID: b.ID, Quantity: 1}}, t0); err != nil {
					errs <- fmt.Errorf("reserve: %w", err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := sweep(); err != nil {
		t.Fatal(err)
	}
	ps, _, _ := db.ListProducts(ctx, "store-x", 10, "")
	for _, p := range ps {
		if p.Stock != 10000-200 { // 200 held by the checkouts; the orders' units all came back
			t.Errorf("product %s stock %d, want %d", p.ID, p.Stock, 10000-200)
		}
	}
}

// Scenario 9: a stored checkout leaves no reservation behind, and its
// cancellation gives the stock back from the order's items.
func TestReservationsEndWithTheirCheckout(t *testing.T) {
	db := testenv.DB(t)
	ctx := context.Background()
	p := mustProduct(t, db, "store-x", 10)
	o := mustOrder(t, db, p, "alice", t0)
	var n int
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM stock_reservations`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d reservations after the order was stored (%v)", n, err)
	}
	storeAgain(t, db, o)
	if _, err := db.Update(ctx, o.ID(), func(o *order.Order) error { return o.Cancel(t0, "alice", "x") }); err != nil {
		t.Fatal(err)
	}
	if ps, _, _ := db.ListProducts(ctx, "store-x", 10, ""); ps[0].Stock != 10 {
		t.Fatalf("stock %d after the cancellation, want 10", ps[0].Stock)
	}
}

// Scenario 9: the seller's statistics list a bounded number of open cases
// (and count them all); escalated disputes page.
func TestOpenCasesAndEscalationsAreBounded(t *testing.T) {
	db := testenv.DB(t)
	ctx := context.Background()
	p := mustProduct(t, db, "store-x", 1000)
	pol := order.DefaultPolicy
	const n = postgres.MaxOpenCases + 5
	for i := range n {
		o := paid(t, db, p, t0.Add(time.Duration(i)*time.Second))
		if _, err := db.Update(ctx, o.ID(), func(o *order.Order) error {
			return o.RequestCancellation(t0.Add(time.Hour), "no_longer_needed", "", pol)
		}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := db.SellerStats(ctx, "store-x", time.Now())
	if err != nil || len(st.OpenCancellations) != postgres.MaxOpenCases || st.OpenCancellationCount != n {
		t.Fatalf("listed %d of %d open requests (%v), want %d of %d", len(st.OpenCancellations), st.OpenCancellationCount, err, postgres.MaxOpenCases, n)
	}

	var escalated []string
	for i := range 5 {
		o := paid(t, db, p, t0)
		o, err := db.Update(ctx, o.ID(), func(o *order.Order) error {
			now := t0.Add(time.Duration(i) * time.Minute)
			if err := o.MarkCaptured(now, o.PaidAttemptID()); err != nil {
				return err
			}
			if err := o.Ship(now, order.Shipment{Carrier: "DHL", TrackingNumber: "JD01"}, pol); err != nil {
				return err
			}
			if err := o.OpenDispute(now, "damaged", order.Money{Amount: 100, Currency: "USD"}, order.Evidence{Text: "x"}, pol); err != nil {
				return err
			}
			return o.RejectDispute(now, order.Evidence{Text: "no"})
		})
		if err != nil {
			t.Fatal(err)
		}
		escalated = append(escalated, o.ID())
	}
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		os, next, err := db.EscalatedDisputes(ctx, 2, token)
		if err != nil || pages > 3 {
			t.Fatalf("page %d: %v", pages, err)
		}
		for _, o := range os {
			if o.Dispute() == nil || o.Dispute().Status != order.DisputeEscalated {
				t.Fatalf("order %s listed without an escalated dispute", o.ID())
			}
			got = append(got, o.ID())
		}
		if next == "" {
			break
		}
		token = next
	}
	if fmt.Sprint(got) != fmt.Sprint(escalated) {
		t.Fatalf("escalated disputes %v, want %v, oldest first", got, escalated)
	}
}
