package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/postgres"
	"github.com/souk-dev/souk/internal/testenv"
)

// saleCoupon creates a platform coupon valid around now, 200 off orders of
// 1,000 or more.
func saleCoupon(t *testing.T, db *postgres.DB, mod func(*order.Coupon)) order.Coupon {
	t.Helper()
	now := time.Now()
	c := order.Coupon{Code: "SALE-" + uuid.NewString()[:6], Source: order.CouponPlatform, Kind: order.CouponAmountOff, Currency: "USD",
		Amount: 200, MinSubtotal: 1000, StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour)}
	if mod != nil {
		mod(&c)
	}
	id, err := db.CreateCoupon(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	c.ID = id
	return c
}

// couponCheckout builds a checkout of one order per store (a 1,500 item
// each) using c, and stores it.
func couponCheckout(db *postgres.DB, buyer string, c order.Coupon, stores ...string) ([]*order.Order, error) {
	return couponCheckoutAt(db, time.Now(), buyer, c, stores...)
}

// couponCheckoutAt is couponCheckout placed at at.
func couponCheckoutAt(db *postgres.DB, at time.Time, buyer string, c order.Coupon, stores ...string) ([]*order.Order, error) {
	checkout := uuid.NewString()
	cart := make([]order.CartOrder, len(stores))
	for i, s := range stores {
		cart[i] = order.CartOrder{ID: uuid.NewString(), SellerID: s, Currency: "USD", Items: []order.Item{{ProductID: uuid.NewSHA1(uuid.NameSpaceOID, []byte(s)).String(), Title: "Lamp", Quantity: 1, UnitPrice: 1500}}}
	}
	a, err := order.ApplyCoupons(cart, nil, &c)
	if err != nil {
		return nil, err
	}
	var orders []*order.Order
	for i, co := range cart {
		items := co.Items
		items[0].Discounts = a.Lines[i][0]
		o, err := order.New(order.NewOrderParams{ID: co.ID, CheckoutID: checkout, BuyerID: buyer, SellerID: co.SellerID, Currency: "USD",
			Items: items, ShippingFee: 100, PaymentWindow: time.Hour, Now: at, Coupons: []order.Coupon{c}})
		if err != nil {
			return nil, err
		}
		orders = append(orders, o)
	}
	return orders, db.CreateOrders(context.Background(), orders)
}

func used(t *testing.T, db *postgres.DB, c order.Coupon) postgres.CouponUse {
	t.Helper()
	uses, err := db.CouponUses(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range uses {
		if u.ID == c.ID {
			return u
		}
	}
	t.Fatalf("coupon %s not reported", c.Code)
	return postgres.CouponUse{}
}

func refusal(err error) string {
	var r *postgres.CouponRefusedError
	if errors.As(err, &r) {
		return r.Reason
	}
	return fmt.Sprint(err)
}

// TestSaleDayCouponRace: a coupon limited to 100 checkouts and 1,000
// concurrent checkouts: exactly 100 hold it, the others are refused as
// "exhausted", and nothing of theirs is stored; one buyer's 20 concurrent
// checkouts of a coupon limited to one per buyer redeem once.
func TestSaleDayCouponRace(t *testing.T) {
	db := testenv.DB(t)
	c := saleCoupon(t, db, func(c *order.Coupon) { c.Limit = 100 })
	var ok, exhausted atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			_, err := couponCheckout(db, fmt.Sprintf("buyer-%d", i), c, "store-a")
			switch {
			case err == nil:
				ok.Add(1)
			case refusal(err) == "exhausted":
				exhausted.Add(1)
			default:
				t.Errorf("checkout %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	var orders int64
	if err := db.Pool().QueryRow(context.Background(), `SELECT count(*) FROM order_coupons WHERE coupon_id = $1`, c.ID).Scan(&orders); err != nil {
		t.Fatal(err)
	}
	if u := used(t, db, c); ok.Load() != 100 || exhausted.Load() != 900 || u.Reserved != 100 || orders != 100 {
		t.Fatalf("%d checkouts held the coupon, %d refused; %d reserved, %d orders hold it; want 100, 900, 100, 100", ok.Load(), exhausted.Load(), u.Reserved, orders)
	}

	one := saleCoupon(t, db, func(c *order.Coupon) { c.PerBuyer = 1 })
	ok.Store(0)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := couponCheckout(db, "mallory", one, "store-a")
			if err == nil {
				ok.Add(1)
			} else if refusal(err) != "per_buyer" {
				t.Errorf("a second use: %v, want per_buyer", err)
			}
		}()
	}
	wg.Wait()
	if u := used(t, db, one); ok.Load() != 1 || u.Reserved != 1 {
		t.Fatalf("one buyer's 20 checkouts: %d held the coupon, %d reserved; want 1", ok.Load(), u.Reserved)
	}
}

// TestCouponReleaseAndExpiry: a coupon two orders share is kept while one
// of them waits and released when the other is cancelled too (redeemable
// again: the limit lets one more checkout in); cancelling after the coupon
// ended releases nothing (the coupon is gone); a paid order consumes it
// and a cancellation after that gives nothing back. Two orders of one
// checkout whose payment windows pass in one batch release it once.
func TestCouponReleaseAndExpiry(t *testing.T) {
	db := testenv.DB(t)
	ctx := context.Background()
	c := saleCoupon(t, db, func(c *order.Coupon) { c.Limit = 1 })
	orders, err := couponCheckout(db, "alice", c, "store-a", "store-b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := couponCheckout(db, "bob", c, "store-a"); refusal(err) != "exhausted" {
		t.Fatalf("a second checkout of a coupon limited to one: %v", err)
	}
	cancel := func(o *order.Order) *order.Order {
		t.Helper()
		got, err := db.Update(ctx, o.ID(), func(o *order.Order) error { return o.Cancel(time.Now(), "alice", "changed my mind") })
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	first := cancel(orders[0])
	if u := used(t, db, c); u.Reserved != 1 || u.Released != 0 || first.Coupons()[0].State != order.HoldReserved {
		t.Fatalf("one of two orders cancelled: %+v, hold %+v; want it still reserved", u, first.Coupons())
	}
	second := cancel(orders[1])
	if u := used(t, db, c); u.Reserved != 0 || u.Released != 1 || second.Coupons()[0].State != order.HoldReleased {
		t.Fatalf("both cancelled: %+v, hold %+v; want it released", u, second.Coupons())
	}
	if h := second.History(); h[len(h)-1].Kind != "coupon_released" {
		t.Fatalf("the last event is %s, want coupon_released", h[len(h)-1].Kind)
	}
	again, err := couponCheckout(db, "bob", c, "store-a")
	if err != nil {
		t.Fatalf("the released coupon is not redeemable again: %v", err)
	}

	// Paid: consumed; a later cancellation gives nothing back.
	paidOne := again[0]
	got, err := db.Update(ctx, paidOne.ID(), func(o *order.Order) error {
		a := order.Attempt{ID: uuid.NewString(), IdempotencyKey: "k", Fingerprint: "f", Method: "card"}
		if err := o.BeginPayment(time.Now(), o.Total(), a); err != nil {
			return err
		}
		return o.ApplyResult(time.Now(), a.ID, order.Result{Kind: order.ResultSucceeded, Captured: true, ProviderRef: "ch"}, order.DefaultPolicy)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Total().Amount != 1500-200+100 || got.Coupons()[0].State != order.HoldConsumed {
		t.Fatalf("paid: total %d, hold %+v", got.Total().Amount, got.Coupons())
	}
	if _, err := db.Update(ctx, paidOne.ID(), func(o *order.Order) error {
		return o.CancelPaid(time.Now(), "seller:store-a", "out of stock", order.PartySeller, order.DefaultPolicy)
	}); err != nil {
		t.Fatal(err)
	}
	if u := used(t, db, c); u.Consumed != 1 || u.Cost != 200 || u.Released != 1 {
		t.Fatalf("after a paid order's cancellation: %+v", u)
	}

	// Ended while held: cancelling releases nothing.
	short := saleCoupon(t, db, func(c *order.Coupon) { c.EndsAt = time.Now().Add(1500 * time.Millisecond) })
	held, err := couponCheckout(db, "carol", short, "store-a")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(short.EndsAt))
	cancel(held[0])
	if u := used(t, db, short); u.Lapsed != 1 || u.Released != 0 {
		t.Fatalf("cancelled after the coupon ended: %+v, want it lapsed", u)
	}
	if _, err := couponCheckout(db, "dave", short, "store-a"); refusal(err) != "ended" {
		t.Fatalf("a checkout of an ended coupon: %v", err)
	}

	// Two orders of a checkout expire in one batch: released once.
	both := saleCoupon(t, db, nil)
	pair, err := couponCheckoutAt(db, time.Now().Add(-2*time.Hour), "erin", both, "store-a", "store-b")
	if err != nil {
		t.Fatal(err)
	}
	var ds []postgres.Deadline
	for _, o := range pair {
		ds = append(ds, postgres.Deadline{OrderID: o.ID(), Kind: order.DeadlinePayment, DueAt: o.Deadlines()[order.DeadlinePayment]})
	}
	fired, err := db.FireDeadlines(ctx, ds, time.Now(), order.DefaultPolicy)
	if err != nil || len(fired.Fired) != 2 {
		t.Fatalf("fired %+v, %v", fired, err)
	}
	if u := used(t, db, both); u.Released != 1 || u.Reserved != 0 {
		t.Fatalf("both orders expired in one batch: %+v, want released once", u)
	}
	var events int64
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM order_events WHERE order_id = ANY($1::uuid[]) AND kind = 'coupon_released'`,
		[]string{pair[0].ID(), pair[1].ID()}).Scan(&events); err != nil || events != 1 {
		t.Fatalf("%d coupon_released events (%v), want 1", events, err)
	}
}

// TestConcurrentCancelsReleaseOnce: the two orders of a checkout that
// share a coupon, cancelled at once by two transactions, release it
// exactly once (each locks the redemption before it reads the other).
func TestConcurrentCancelsReleaseOnce(t *testing.T) {
	db := testenv.DB(t)
	ctx := context.Background()
	for range 20 {
		c := saleCoupon(t, db, nil)
		pair, err := couponCheckout(db, "alice", c, "store-a", "store-b")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, o := range pair {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := db.Update(ctx, o.ID(), func(o *order.Order) error { return o.Cancel(time.Now(), "alice", "x") }); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if u := used(t, db, c); u.Released != 1 || u.Reserved != 0 {
			t.Fatalf("two orders cancelled at once: %+v, want the coupon released once", u)
		}
	}
}
