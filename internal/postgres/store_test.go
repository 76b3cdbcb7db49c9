package postgres_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/souk-dev/souk/internal/catalog"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/postgres"
	"github.com/souk-dev/souk/internal/testenv"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func mustProduct(t *testing.T, db *postgres.DB, seller string, stock int64) catalog.Product {
	t.Helper()
	p := catalog.Product{ID: order.NewID(seller), SellerID: seller, Title: "Lamp", Currency: "USD", Price: 1000, ShippingFee: 100,
		Stock: stock, HandlingDays: 3, ProtectionDays: 60, CreatedAt: t0, UpdatedAt: t0}
	if err := db.CreateProduct(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustOrder(t *testing.T, db *postgres.DB, p catalog.Product, buyer string, at time.Time) *order.Order {
	t.Helper()
	checkout := uuid.NewString()
	if _, err := db.Reserve(context.Background(), checkout, []postgres.StockItem{{ProductID: p.ID, Quantity: 1}}, at); err != nil {
		t.Fatal(err)
	}
	o, err := order.New(order.NewOrderParams{ID: order.NewID(p.SellerID), CheckoutID: checkout, BuyerID: buyer, SellerID: p.SellerID,
		Currency: "USD", Items: []order.Item{{ProductID: p.ID, Title: p.Title, Quantity: 1, UnitPrice: p.Price}},
		ShippingFee: p.ShippingFee, HandlingDays: 3, PaymentWindow: time.Hour, Now: at})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateOrders(context.Background(), []*order.Order{o}); err != nil {
		t.Fatal(err)
	}
	return o
}

// TestUpdateExactlyOneWins cancels one order from 20 goroutines: one
// succeeds, the others see the cancelled order and are refused, and the
// stock comes back once.
func TestUpdateExactlyOneWins(t *testing.T) {
	db := testenv.DB(t)
	p := mustProduct(t, db, "store-x", 5)
	o := mustOrder(t, db, p, "alice", t0)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := db.Update(context.Background(), o.ID(), func(o *order.Order) error { return o.Cancel(t0, "alice", "race") })
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, order.ErrIllegalTransition):
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d cancellations succeeded, want 1", ok)
	}
	got, err := db.Get(context.Background(), o.ID())
	if err != nil {
		t.Fatal(err)
	}
	if got.Status() != order.StatusCancelled || got.Version() != 2 || len(got.History()) != 2 {
		t.Fatalf("order %s v%d with %d events", got.Status(), got.Version(), len(got.History()))
	}
	ps, _, _ := db.ListProducts(context.Background(), "store-x", 10, "")
	if ps[0].Stock != 5 {
		t.Fatalf("stock = %d, want 5 (released once)", ps[0].Stock)
	}
}

// TestUpdateLosesNoUpdate raises the shipping fee by one from 20 goroutines.
func TestUpdateLosesNoUpdate(t *testing.T) {
	db := testenv.DB(t)
	raiseFeeAtOnce(t, db, func(id string) error {
		_, err := db.Update(context.Background(), id, raiseFee)
		return err
	})
}

// raiseFeeAtOnce raises a new order's shipping fee by one from 20
// goroutines, each through raise, and expects every raise stored once.
func raiseFeeAtOnce(t *testing.T, db *postgres.DB, raise func(id string) error) {
	t.Helper()
	o := mustOrder(t, db, mustProduct(t, db, "store-x", 5), "alice", t0)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := raise(o.ID()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, _ := db.Get(context.Background(), o.ID())
	if got.ShippingFee() != 120 || got.Version() != 21 || len(got.History()) != 21 {
		t.Fatalf("fee %d, version %d, %d events; want 120, 21, 21", got.ShippingFee(), got.Version(), len(got.History()))
	}
}

// TestReserveNeverOversells reserves one unit of a product with 10 in stock
// from 30 goroutines.
func TestReserveNeverOversells(t *testing.T) {
	db := testenv.DB(t)
	p := mustProduct(t, db, "store-x", 10)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, out := 0, 0
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := db.Reserve(context.Background(), uuid.NewString(), []postgres.StockItem{{ProductID: p.ID, Quantity: 1}}, t0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, catalog.ErrOutOfStock):
				out++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok != 10 || out != 20 {
		t.Fatalf("%d reserved, %d out of stock; want 10 and 20", ok, out)
	}
}

func TestReserveIsIdempotentAndReleaseOnce(t *testing.T) {
	db := testenv.DB(t)
	ctx := context.Background()
	p := mustProduct(t, db, "store-x", 10)
	checkout := uuid.NewString()
	for range 2 {
		if _, err := db.Reserve(ctx, checkout, []postgres.StockItem{{ProductID: p.ID, Quantity: 4}}, t0); err != nil {
			t.Fatal(err)
		}
	}
	stock := func() int64 { ps, _, _ := db.ListProducts(ctx, "store-x", 10, ""); return ps[0].Stock }
	if got := stock(); got != 6 {
		t.Fatalf("stock after reserving twice = %d, want 6", got)
	}
	if _, err := db.Reserve(ctx, uuid.NewString(), []postgres.StockItem{{ProductID: uuid.NewString(), Quantity: 1}}, t0); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("unknown product: %v", err)
	}
	for want := range []int64{4, 0} {
		n, err := db.Release(ctx, checkout, nil)
		if err != nil || n != []int64{4, 0}[want] {
			t.Fatalf("release %d: %d, %v", want, n, err)
		}
	}
	if got := stock(); got != 10 {
		t.Fatalf("stock after release = %d, want 10", got)
	}
	// A reservation whose checkout stored no order is released when abandoned.
	if _, err := db.Reserve(ctx, uuid.NewString(), []postgres.StockItem{{ProductID: p.ID, Quantity: 3}}, t0); err != nil {
		t.Fatal(err)
	}
	mustOrder(t, db, p, "alice", t0) // reserved with an order: kept
	if n, err := db.ReleaseAbandoned(ctx, t0.Add(time.Minute)); err != nil || n != 3 {
		t.Fatalf("release abandoned: %d, %v; want 3", n, err)
	}
	if got := stock(); got != 9 {
		t.Fatalf("stock = %d, want 9", got)
	}
}

func TestListPagesNewestFirstWithFilters(t *testing.T) {
	db := testenv.DB(t)
	ctx := context.Background()
	p := mustProduct(t, db, "store-x", 100)
	var ids []string
	for i := range 7 {
		ids = append(ids, mustOrder(t, db, p, "alice", t0.Add(time.Duration(i)*time.Minute)).ID())
	}
	mustOrder(t, db, p, "bob", t0)
	if _, err := db.Update(ctx, ids[6], func(o *order.Order) error { return o.Cancel(t0, "alice", "x") }); err != nil {
		t.Fatal(err)
	}
	var got []string
	tok := ""
	for page := 0; ; page++ {
		os, next, err := db.List(ctx, postgres.ListQuery{Party: postgres.Buyer, PartyID: "alice", PageSize: 3, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range os {
			got = append(got, o.ID())
		}
		if next == "" {
			break
		}
		tok = next
	}
	if len(got) != 7 {
		t.Fatalf("listed %d orders, want 7", len(got))
	}
	for i := range got {
		if got[i] != ids[6-i] {
			t.Fatalf("order %d is %s, want %s (newest first)", i, got[i], ids[6-i])
		}
	}
	os, _, _ := db.List(ctx, postgres.ListQuery{Party: postgres.Buyer, PartyID: "alice", PageSize: 10, Status: order.StatusCancelled})
	if len(os) != 1 || os[0].ID() != ids[6] {
		t.Fatalf("cancelled filter: %d orders", len(os))
	}
	os, _, _ = db.List(ctx, postgres.ListQuery{Party: postgres.Buyer, PartyID: "alice", PageSize: 10,
		CreatedAfter: t0.Add(2 * time.Minute), CreatedBefore: t0.Add(4 * time.Minute)})
	if len(os) != 2 || os[0].ID() != ids[3] || os[1].ID() != ids[2] {
		t.Fatalf("date range: %d orders", len(os))
	}
	if len(os[0].Deadlines()) == 0 {
		t.Fatalf("listed order has no deadlines, want the payment window")
	}
	for _, listed := range os {
		read, err := db.Get(ctx, listed.ID())
		if err != nil {
			t.Fatal(err)
		}
		if !maps.EqualFunc(listed.Deadlines(), read.Deadlines(), time.Time.Equal) {
			t.Fatalf("listed order has deadlines %v, read alone %v", listed.Deadlines(), read.Deadlines())
		}
	}
	if _, _, err := db.List(ctx, postgres.ListQuery{Party: postgres.Buyer, PartyID: "alice", PageSize: 3, PageToken: "garbage!"}); !errors.Is(err, order.ErrInvalid) {
		t.Fatalf("bad token: %v", err)
	}
}

func TestIdempotencyKeys(t *testing.T) {
	db := testenv.DB(t)
	ctx := context.Background()
	if fresh, err := db.ClaimIdempotencyKey(ctx, "buyer:alice", "k1", "fp1", t0); err != nil || !fresh {
		t.Fatalf("first use: fresh %v, %v", fresh, err)
	}
	if fresh, err := db.ClaimIdempotencyKey(ctx, "buyer:alice", "k1", "fp1", t0); err != nil || fresh {
		t.Fatalf("the same request again: fresh %v, %v", fresh, err)
	}
	if _, err := db.ClaimIdempotencyKey(ctx, "buyer:alice", "k1", "fp2", t0); !errors.Is(err, order.ErrIdempotencyKeyReused) {
		t.Fatalf("another request with the key: %v", err)
	}
	if fresh, err := db.ClaimIdempotencyKey(ctx, "buyer:bob", "k1", "fp2", t0); err != nil || !fresh {
		t.Fatalf("another buyer's key: fresh %v, %v", fresh, err)
	}
	// A payment's claim reads the order's buyer in the same statement.
	o := mustOrder(t, db, mustProduct(t, db, "store-x", 5), "alice", t0)
	if buyer, err := db.ClaimIdempotencyKeyFor(ctx, "buyer:alice", "k2", "fp1", t0, o.ID()); err != nil || buyer != o.BuyerID() {
		t.Fatalf("claim for order: buyer %q, %v", buyer, err)
	}
	if buyer, err := db.ClaimIdempotencyKeyFor(ctx, "buyer:alice", "k3", "fp1", t0, uuid.NewString()); err != nil || buyer != "" {
		t.Fatalf("claim for no order: buyer %q, %v", buyer, err)
	}
	// Kept at least 24 hours; forgotten when older than asked.
	if n, err := db.ForgetIdempotencyKeys(ctx, t0.Add(-24*time.Hour)); err != nil || n != 0 {
		t.Fatalf("forgot %d, %v", n, err)
	}
	if n, err := db.ForgetIdempotencyKeys(ctx, t0.Add(time.Second)); err != nil || n != 4 {
		t.Fatalf("forgot %d, %v; want 4", n, err)
	}
}

// TestRefusedOrdersLeaveNothing stores a checkout's orders again on a pool
// of one connection: BEGIN, the writes and COMMIT travel in one pipeline,
// so the refusal must leave none of the second order's rows and give the
// connection back rolled back, ready for the next transaction.
func TestRefusedOrdersLeaveNothing(t *testing.T) {
	ctx := context.Background()
	db := oneConnection(t)
	p := mustProduct(t, db, "store-refused", 10)
	o := mustOrder(t, db, p, "alice", t0)
	dup := storeAgain(t, db, o)
	var rows int
	if err := db.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM orders WHERE id = $1) + (SELECT count(*) FROM order_events WHERE order_id = $1)
		+ (SELECT count(*) FROM order_deadlines WHERE order_id = $1)`, dup.ID()).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("the refused order left %d rows (%v)", rows, err)
	}
	// The one connection is usable: the next checkout is stored.
	if next := mustOrder(t, db, p, "alice", t0); next == nil {
		t.Fatal("no order")
	}
}

// TestTakenOrderIDIsRefused stores a second checkout whose order has the
// id of an order of the same store (two ids of a store's day alike,
// order.NewIDAt): it is refused as ErrIDTaken, not as the checkout stored
// already, and leaves nothing: no row of it, and its stock reservation
// in place for the checkout to make its orders again with new ids.
func TestTakenOrderIDIsRefused(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	p := mustProduct(t, db, "store-taken", 10)
	first := mustOrder(t, db, p, "alice", t0)
	checkout := uuid.NewString()
	if _, err := db.Reserve(ctx, checkout, []postgres.StockItem{{ProductID: p.ID, Quantity: 2}}, t0); err != nil {
		t.Fatal(err)
	}
	params := order.NewOrderParams{ID: first.ID(), CheckoutID: checkout, BuyerID: "bob", SellerID: p.SellerID,
		Currency: "USD", Items: []order.Item{{ProductID: p.ID, Title: p.Title, Quantity: 2, UnitPrice: p.Price}},
		HandlingDays: 3, PaymentWindow: time.Hour, Now: t0}
	taken, err := order.New(params)
	if err != nil {
		t.Fatal(err)
	}
	err = db.CreateOrders(ctx, []*order.Order{taken})
	if !errors.Is(err, postgres.ErrIDTaken) || errors.Is(err, postgres.ErrCheckoutExists) {
		t.Fatalf("storing an order under a taken id: %v; want ErrIDTaken", err)
	}
	var rows, reserved int
	if err := db.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM orders WHERE checkout_id = $1),
		(SELECT coalesce(sum(quantity), 0) FROM stock_reservations WHERE checkout_id = $1)`, checkout).Scan(&rows, &reserved); err != nil {
		t.Fatal(err)
	}
	if rows != 0 || reserved != 2 {
		t.Fatalf("the refused checkout left %d orders and %d units reserved; want none and 2", rows, reserved)
	}
	if got, err := db.Get(ctx, first.ID()); err != nil || got.BuyerID() != "alice" || got.Total() != first.Total() {
		t.Fatalf("the first order after the refusal: %v, %v", got, err)
	}
	// A product under a taken id is refused the same way.
	twin := p
	twin.Title = "Twin"
	if err := db.CreateProduct(ctx, twin); !errors.Is(err, postgres.ErrIDTaken) {
		t.Fatalf("storing a product under a taken id: %v; want ErrIDTaken", err)
	}
	if got, _, err := db.ListProducts(ctx, p.SellerID, 10, ""); err != nil || len(got) != 1 || got[0].Title != p.Title {
		t.Fatalf("the store's products after the refusal: %+v, %v", got, err)
	}
	params.ID = order.NewIDAt(p.SellerID, t0)
	again, err := order.New(params)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateOrders(ctx, []*order.Order{again}); err != nil {
		t.Fatalf("the checkout with a new id: %v", err)
	}
}

// storeAgain stores another order of o's checkout and expects it refused
// as ErrCheckoutExists; it returns the refused order.
func storeAgain(t *testing.T, db *postgres.DB, o *order.Order) *order.Order {
	t.Helper()
	dup, err := order.New(order.NewOrderParams{ID: uuid.NewString(), CheckoutID: o.CheckoutID(), BuyerID: o.BuyerID(), SellerID: o.SellerID(),
		Currency: "USD", Items: o.Items(), HandlingDays: 3, PaymentWindow: time.Hour, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateOrders(context.Background(), []*order.Order{dup}); !errors.Is(err, postgres.ErrCheckoutExists) {
		t.Fatalf("storing the checkout again: %v; want ErrCheckoutExists", err)
	}
	return dup
}

// raiseFee is a change that adds one to the order's shipping fee.
func raiseFee(o *order.Order) error {
	fee := order.Money{Amount: o.ShippingFee() + 1, Currency: "USD"}
	return o.AdjustPrice(t0, order.PriceChange{ShippingFee: &fee, Reason: "+1"})
}

// TestUpdateSeenLosesNoUpdate changes one order from 20 goroutines, each
// from the order as it saw it before: the changes made from an order seen
// at an old version are made again on the order as it is, none is lost
// and none is made twice.
func TestUpdateSeenLosesNoUpdate(t *testing.T) {
	db := testenv.DB(t)
	raiseFeeAtOnce(t, db, func(id string) error {
		seen, err := db.See(context.Background(), id)
		if err != nil {
			return err
		}
		_, err = db.UpdateSeen(context.Background(), seen, raiseFee)
		return err
	})
}

// TestUpdateSeenWritesNothingAtAnOldVersion moves an order on after it was
// seen by a write that leaves no event (nothing else then stands in the
// way of the change's own event): the change made from the old version
// must write nothing, not its event without the order, and is made again
// on the order as it is.
func TestUpdateSeenWritesNothingAtAnOldVersion(t *testing.T) {
	ctx := context.Background()
	db, o, seen := seenOrder(t)
	if seen.SellerID() != "store-x" {
		t.Fatalf("seen seller %q, want store-x", seen.SellerID())
	}
	if _, err := db.Pool().Exec(ctx, `UPDATE orders SET version = version + 1, shipping_fee_minor = 150 WHERE id = $1`, o.ID()); err != nil {
		t.Fatal(err)
	}
	got, err := db.UpdateSeen(ctx, seen, raiseFee)
	if err != nil {
		t.Fatal(err)
	}
	if got.ShippingFee() != 151 || got.Version() != 3 {
		t.Fatalf("the change gave fee %d at version %d; want 151 at 3 (made on the order as it is)", got.ShippingFee(), got.Version())
	}
	stored, _ := db.Get(ctx, o.ID())
	var events int
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM order_events WHERE order_id = $1`, o.ID()).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if stored.ShippingFee() != 151 || stored.Version() != 3 || events != 2 {
		t.Fatalf("stored fee %d, version %d, %d events; want 151, 3, 2", stored.ShippingFee(), stored.Version(), events)
	}
}

// TestUpdateSeenAsksTheOrderAsItIs answers an offer that the buyer made
// after the seller's read: the order as seen has no offer and refuses the
// answer, the order as it is allows it, and the answer stands.
func TestUpdateSeenAsksTheOrderAsItIs(t *testing.T) {
	ctx := context.Background()
	db, o, seen := seenOrder(t)
	if _, err := db.Update(ctx, o.ID(), func(o *order.Order) error {
		return o.MakeOffer(t0, order.OfferTotal, order.Money{Amount: 900, Currency: "USD"}, "", order.DefaultPolicy)
	}); err != nil {
		t.Fatal(err)
	}
	got, err := db.UpdateSeen(ctx, seen, func(o *order.Order) error { return o.AnswerOffer(t0, true, "") })
	if err != nil {
		t.Fatalf("answering the offer made after the read: %v", err)
	}
	if got.Total().Amount != 900 || got.Version() != 3 {
		t.Fatalf("total %d at version %d; want 900 at 3", got.Total().Amount, got.Version())
	}
}

// seenOrder stores a new order of store-x and reads it as seen.
func seenOrder(t *testing.T) (*postgres.DB, *order.Order, *postgres.Seen) {
	t.Helper()
	db := testenv.DB(t)
	o := mustOrder(t, db, mustProduct(t, db, "store-x", 5), "alice", t0)
	seen, err := db.See(context.Background(), o.ID())
	if err != nil {
		t.Fatal(err)
	}
	return db, o, seen
}

// A batch of deadlines loads its orders without their history (only the
// last event's sequence): the event it records follows the history
// without a gap, and the history read afterwards is whole.
func TestDeadlineBatchNumbersEventsWithoutTheHistory(t *testing.T) {
	db := testenv.DB(t)
	ctx := context.Background()
	p := mustProduct(t, db, "store-x", 5)
	o := mustOrder(t, db, p, "alice", t0)
	for i := range 3 {
		if _, err := db.Update(ctx, o.ID(), func(o *order.Order) error {
			_, err := o.SendMessage(t0.Add(time.Duration(i)*time.Minute), uuid.NewString(), order.PartyBuyer, "hello", nil)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	due := o.Deadlines()[order.DeadlinePayment]
	res, err := db.FireDeadlines(ctx, []postgres.Deadline{{OrderID: o.ID(), Kind: order.DeadlinePayment, DueAt: due}}, due, order.DefaultPolicy)
	if err != nil || len(res.Fired) != 1 {
		t.Fatalf("fire: %+v %v", res, err)
	}
	got, err := db.Get(ctx, o.ID())
	if err != nil {
		t.Fatal(err)
	}
	h := got.History()
	for i, e := range h {
		if e.Sequence != int64(i+1) {
			t.Fatalf("event %d has sequence %d: %v", i, e.Sequence, h)
		}
	}
	if last := h[len(h)-1]; last.Kind != "cancelled" || len(h) != 5 {
		t.Fatalf("history %v, want created, three messages and the cancellation", h)
	}
}

// TestDeadlinesMoveOntoTheirOrders runs migration 025's backfill on orders
// whose rows do not hold their deadlines (a database of an earlier
// version, or one an earlier version's replica wrote to beside this one):
// each order then reads the deadlines the sweeper's index holds for it,
// and an order with none reads none.
func TestDeadlinesMoveOntoTheirOrders(t *testing.T) {
	db := testenv.DB(t)
	ctx := context.Background()
	p := mustProduct(t, db, "store-a", 10)
	open := mustOrder(t, db, p, "alice", t0)
	closed := mustOrder(t, db, p, "bob", t0)
	if _, err := db.Update(ctx, closed.ID(), func(o *order.Order) error { return o.Cancel(t0.Add(time.Minute), "bob", "changed my mind") }); err != nil {
		t.Fatal(err)
	}
	want, err := db.Get(ctx, open.ID())
	if err != nil || len(want.Deadlines()) == 0 {
		t.Fatalf("the open order has no deadlines (%v)", err)
	}
	// The open order's row lost its deadlines; the cancelled one's kept
	// one it no longer has (a replica of an earlier version closed it).
	if _, err := db.Pool().Exec(ctx, `UPDATE orders SET deadlines = CASE WHEN id = $1 THEN NULL
		ELSE $2::jsonb END`, open.ID(), `{"payment": "2026-01-01T00:00:00Z"}`); err != nil {
		t.Fatal(err)
	}
	if before, err := db.Get(ctx, open.ID()); err != nil || len(before.Deadlines()) != 0 {
		t.Fatalf("before the backfill the order reads %v (%v), want none", before.Deadlines(), err)
	}
	sql, err := os.ReadFile("migrations/025_deadlines_on_the_order.sql")
	if err != nil {
		t.Fatal(err)
	}
	backfill := string(sql[strings.Index(string(sql), "UPDATE orders"):])
	if _, err := db.Pool().Exec(ctx, backfill); err != nil {
		t.Fatal(err)
	}
	got, err := db.Get(ctx, open.ID())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Deadlines()) != len(want.Deadlines()) {
		t.Fatalf("after the backfill the order reads %v, want %v", got.Deadlines(), want.Deadlines())
	}
	for kind, due := range want.Deadlines() {
		if !got.Deadlines()[kind].Equal(due) {
			t.Fatalf("deadline %s: after the backfill %v, want %v", kind, got.Deadlines()[kind], due)
		}
	}
	if c, err := db.Get(ctx, closed.ID()); err != nil || len(c.Deadlines()) != 0 {
		t.Fatalf("the cancelled order reads %v (%v), want none", c.Deadlines(), err)
	}
}
