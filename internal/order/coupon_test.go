package order_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/souk-dev/souk/internal/order"
)

func line(id string, price, qty int64) order.Item {
	return order.Item{ProductID: id, Title: id, UnitPrice: price, Quantity: qty}
}

func platformCoupon(mod func(*order.Coupon)) *order.Coupon {
	c := &order.Coupon{ID: "p", Code: "SALE", Source: order.CouponPlatform, Kind: order.CouponAmountOff, Currency: "USD",
		Amount: 1000, StartsAt: t0.Add(-time.Hour), EndsAt: t0.Add(time.Hour)}
	if mod != nil {
		mod(c)
	}
	return c
}

func storeCoupon(seller string, mod func(*order.Coupon)) *order.Coupon {
	c := &order.Coupon{ID: "s-" + seller, Code: "STORE", Source: order.CouponStore, SellerID: seller, Kind: order.CouponPercentOff,
		Currency: "USD", Percent: 10, StartsAt: t0.Add(-time.Hour), EndsAt: t0.Add(time.Hour)}
	if mod != nil {
		mod(c)
	}
	return c
}

// shares flattens what one coupon took off each line: "order/product=amount".
func shares(orders []order.CartOrder, a order.Applied, couponID string) []string {
	var out []string
	for i, o := range orders {
		for j, it := range o.Items {
			for _, d := range a.Lines[i][j] {
				if d.CouponID == couponID {
					out = append(out, fmt.Sprintf("%s/%s=%d", o.ID, it.ProductID, d.Amount))
				}
			}
		}
	}
	return out
}

// TestApplyCoupons: the allocation's table. Shares add up exactly to what
// the coupon takes, no line goes below zero, ties go to the lowest id, and
// value beyond the eligible subtotal is lost.
func TestApplyCoupons(t *testing.T) {
	three := []order.CartOrder{
		{ID: "o-a", SellerID: "a", Currency: "USD", Items: []order.Item{line("a1", 333, 1)}},
		{ID: "o-b", SellerID: "b", Currency: "USD", Items: []order.Item{line("b1", 333, 1)}},
		{ID: "o-c", SellerID: "c", Currency: "USD", Items: []order.Item{line("c1", 333, 1)}},
	}
	for _, tc := range []struct {
		name     string
		orders   []order.CartOrder
		stores   map[string]*order.Coupon
		platform *order.Coupon
		coupon   string // whose shares are checked
		want     []string
		taken    int64
		err      error
	}{
		{name: "three stores, odd amounts: ties to the lowest order id", orders: three, platform: platformCoupon(nil),
			coupon: "p", want: []string{"o-a/a1=333", "o-b/b1=333", "o-c/c1=333"}, taken: 999},
		{name: "three stores, 100 off three equal orders", orders: three, platform: platformCoupon(func(c *order.Coupon) { c.Amount = 100 }),
			coupon: "p", want: []string{"o-a/a1=34", "o-b/b1=33", "o-c/c1=33"}, taken: 100},
		{name: "three stores, 7 off 1, 2 and 4", orders: []order.CartOrder{
			{ID: "o-c", SellerID: "c", Currency: "USD", Items: []order.Item{line("c1", 400, 1)}},
			{ID: "o-a", SellerID: "a", Currency: "USD", Items: []order.Item{line("a1", 100, 1)}},
			{ID: "o-b", SellerID: "b", Currency: "USD", Items: []order.Item{line("b1", 200, 1)}},
		}, platform: platformCoupon(func(c *order.Coupon) { c.Amount = 7 }),
			coupon: "p", want: []string{"o-c/c1=4", "o-a/a1=1", "o-b/b1=2"}, taken: 7},
		{name: "lines of one order: largest remainder, then the lowest product id", orders: []order.CartOrder{
			{ID: "o", SellerID: "a", Currency: "USD", Items: []order.Item{line("z", 100, 1), line("m", 100, 1), line("b", 100, 1)}},
		}, platform: platformCoupon(func(c *order.Coupon) { c.Amount = 200 }),
			coupon: "p", want: []string{"o/z=66", "o/m=67", "o/b=67"}, taken: 200},
		{name: "a 100% coupon takes everything but shipping", orders: three,
			stores: map[string]*order.Coupon{"b": storeCoupon("b", func(c *order.Coupon) { c.Percent = 100 })},
			coupon: "s-b", want: []string{"o-b/b1=333"}, taken: 333},
		{name: "a coupon larger than the eligible subtotal: the rest is lost", orders: three,
			platform: platformCoupon(func(c *order.Coupon) { c.Amount = 5000 }),
			coupon:   "p", want: []string{"o-a/a1=333", "o-b/b1=333", "o-c/c1=333"}, taken: 999},
		{name: "the platform coupon counts what the store coupon left", orders: []order.CartOrder{
			{ID: "o-a", SellerID: "a", Currency: "USD", Items: []order.Item{line("a1", 1000, 1)}},
			{ID: "o-b", SellerID: "b", Currency: "USD", Items: []order.Item{line("b1", 1000, 1)}},
		}, stores: map[string]*order.Coupon{"a": storeCoupon("a", func(c *order.Coupon) { c.Percent = 50 })},
			platform: platformCoupon(func(c *order.Coupon) { c.Amount = 300; c.MinSubtotal = 1500 }),
			coupon:   "p", want: []string{"o-a/a1=100", "o-b/b1=200"}, taken: 300},
		{name: "the threshold counts after the store coupon", orders: []order.CartOrder{
			{ID: "o-a", SellerID: "a", Currency: "USD", Items: []order.Item{line("a1", 1000, 1)}},
		}, stores: map[string]*order.Coupon{"a": storeCoupon("a", func(c *order.Coupon) { c.Percent = 50 })},
			platform: platformCoupon(func(c *order.Coupon) { c.MinSubtotal = 600 }), err: order.ErrCouponNotApplicable},
		{name: "a store coupon on some products", orders: []order.CartOrder{
			{ID: "o", SellerID: "a", Currency: "USD", Items: []order.Item{line("x", 999, 1), line("y", 1001, 1)}},
		}, stores: map[string]*order.Coupon{"a": storeCoupon("a", func(c *order.Coupon) { c.ProductIDs = []string{"y"} })},
			coupon: "s-a", want: []string{"o/y=100"}, taken: 100},
		{name: "percent rounds half up, then the cap", orders: []order.CartOrder{
			{ID: "o", SellerID: "a", Currency: "USD", Items: []order.Item{line("x", 5, 1)}},
		}, stores: map[string]*order.Coupon{"a": storeCoupon("a", nil)}, coupon: "s-a", want: []string{"o/x=1"}, taken: 1},
		{name: "the cap", orders: []order.CartOrder{
			{ID: "o", SellerID: "a", Currency: "USD", Items: []order.Item{line("x", 10000, 3)}},
		}, stores: map[string]*order.Coupon{"a": storeCoupon("a", func(c *order.Coupon) { c.Cap = 250 })}, coupon: "s-a",
			want: []string{"o/x=250"}, taken: 250},
		{name: "a platform coupon of some stores", orders: three,
			platform: platformCoupon(func(c *order.Coupon) { c.SellerIDs = []string{"c", "a"}; c.Amount = 3 }),
			coupon:   "p", want: []string{"o-a/a1=2", "o-c/c1=1"}, taken: 3},
		{name: "another currency is not eligible", orders: []order.CartOrder{
			{ID: "o-a", SellerID: "a", Currency: "EUR", Items: []order.Item{line("a1", 1000, 1)}},
			{ID: "o-b", SellerID: "b", Currency: "USD", Items: []order.Item{line("b1", 1000, 1)}},
		}, platform: platformCoupon(func(c *order.Coupon) { c.Amount = 1500 }), coupon: "p", want: []string{"o-b/b1=1000"}, taken: 1000},
		{name: "a store coupon of a store not in the checkout", orders: three,
			stores: map[string]*order.Coupon{"z": storeCoupon("z", nil)}, err: order.ErrCouponNotApplicable},
		{name: "a free line takes nothing", orders: []order.CartOrder{
			{ID: "o", SellerID: "a", Currency: "USD", Items: []order.Item{line("free", 0, 1), line("x", 10, 1)}},
		}, platform: platformCoupon(nil), coupon: "p", want: []string{"o/x=10"}, taken: 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := order.ApplyCoupons(tc.orders, tc.stores, tc.platform)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := shares(tc.orders, a, tc.coupon); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("shares %v, want %v", got, tc.want)
			}
			if a.Taken[tc.coupon] != tc.taken {
				t.Fatalf("taken %d, want %d", a.Taken[tc.coupon], tc.taken)
			}
			checkSums(t, tc.orders, a)
		})
	}
}

// checkSums: per coupon the shares add up to what it took, and no line's
// discounts exceed its subtotal.
func checkSums(t *testing.T, orders []order.CartOrder, a order.Applied) {
	t.Helper()
	sums := map[string]int64{}
	for i, o := range orders {
		for j, it := range o.Items {
			var off int64
			for _, d := range a.Lines[i][j] {
				if d.Amount <= 0 {
					t.Fatalf("line %s: a share of %d", it.ProductID, d.Amount)
				}
				off += d.Amount
				sums[d.CouponID] += d.Amount
			}
			if off > it.Subtotal() {
				t.Fatalf("line %s: %d off a subtotal of %d", it.ProductID, off, it.Subtotal())
			}
		}
	}
	for id, taken := range a.Taken {
		if sums[id] != taken {
			t.Fatalf("coupon %s: shares sum to %d, took %d", id, sums[id], taken)
		}
	}
}

// TestApplyCouponsRandom: random checkouts of up to five stores keep the
// sums exact, never negative, and the same whatever order the orders come in.
func TestApplyCouponsRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for n := range 2000 {
		var orders []order.CartOrder
		stores := map[string]*order.Coupon{}
		for s := range 1 + r.IntN(5) {
			seller := fmt.Sprintf("s%d", s)
			o := order.CartOrder{ID: fmt.Sprintf("o%d", r.IntN(1000)), SellerID: seller, Currency: "USD"}
			for l := range 1 + r.IntN(4) {
				o.Items = append(o.Items, line(fmt.Sprintf("%s-p%d", seller, l), r.Int64N(10_000), 1+r.Int64N(3)))
			}
			orders = append(orders, o)
			if r.IntN(2) == 0 {
				stores[seller] = storeCoupon(seller, func(c *order.Coupon) { c.Percent = 1 + r.Int64N(100) })
			}
		}
		p := platformCoupon(func(c *order.Coupon) { c.Amount = 1 + r.Int64N(50_000) })
		a, err := order.ApplyCoupons(orders, stores, p)
		if errors.Is(err, order.ErrCouponNotApplicable) {
			continue // everything free already
		}
		if err != nil {
			t.Fatalf("case %d: %v", n, err)
		}
		checkSums(t, orders, a)
		rev := make([]order.CartOrder, len(orders))
		for i := range orders {
			rev[len(orders)-1-i] = orders[i]
		}
		b, err := order.ApplyCoupons(rev, stores, p)
		if err != nil {
			t.Fatal(err)
		}
		for i := range orders {
			if fmt.Sprint(a.Lines[i]) != fmt.Sprint(b.Lines[len(orders)-1-i]) {
				t.Fatalf("case %d: order %s's shares depend on the order of the cart: %v and %v", n, orders[i].ID, a.Lines[i], b.Lines[len(orders)-1-i])
			}
		}
	}
}

func TestCouponValidation(t *testing.T) {
	for _, tc := range []struct {
		field string
		mod   func(*order.Coupon)
	}{
		{"code", func(c *order.Coupon) { c.Code = "" }},
		{"percent", func(c *order.Coupon) { c.Percent = 101 }},
		{"percent", func(c *order.Coupon) { c.Percent = 0 }},
		{"ends_at", func(c *order.Coupon) { c.EndsAt = c.StartsAt }},
		{"seller_ids", func(c *order.Coupon) { c.SellerIDs = []string{"x"} }},
		{"currency", func(c *order.Coupon) { c.Currency = "usd$" }},
		{"limit", func(c *order.Coupon) { c.PerBuyer = -1 }},
	} {
		err := storeCoupon("a", tc.mod).Validate()
		var fe *order.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: %v, want a refusal naming %s", tc.field, err, tc.field)
		}
	}
	if err := storeCoupon("a", nil).Validate(); err != nil {
		t.Fatal(err)
	}
	if err := platformCoupon(func(c *order.Coupon) { c.Amount = 0 }).Validate(); err == nil {
		t.Fatal("an amount-off coupon of nothing was accepted")
	}
	c := storeCoupon("a", nil)
	if c.Usable(t0) != nil || c.Usable(t0.Add(time.Hour)) == nil || c.Usable(t0.Add(-2*time.Hour)) == nil {
		t.Fatal("validity is [starts_at, ends_at)")
	}
}

// couponOrder is an order of store-x whose lines (p1: 2 × 1000, p2: 300;
// shipping 500) carry a 10% store coupon and a 500 platform coupon.
func couponOrder(t *testing.T) *order.Order {
	t.Helper()
	items := []order.Item{line("p1", 1000, 2), line("p2", 300, 1)}
	store, platform := storeCoupon("store-x", nil), platformCoupon(func(c *order.Coupon) { c.Amount = 500 })
	a, err := order.ApplyCoupons([]order.CartOrder{{ID: "o1", SellerID: "store-x", Currency: "USD", Items: items}},
		map[string]*order.Coupon{"store-x": store}, platform)
	if err != nil {
		t.Fatal(err)
	}
	for j := range items {
		items[j].Discounts = a.Lines[0][j]
	}
	o, err := order.New(order.NewOrderParams{ID: "o1", CheckoutID: "c1", BuyerID: "alice", SellerID: "store-x", Currency: "USD",
		Items: items, ShippingFee: 500, PaymentWindow: 20 * 24 * time.Hour, Now: t0, Coupons: []order.Coupon{*store, *platform}})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func kinds(o *order.Order) []string {
	var out []string
	for _, e := range o.History() {
		out = append(out, e.Kind)
	}
	return out
}

// TestCouponHolds: an order's coupons are reserved at checkout, consumed
// when it is paid (a decline does neither), released when it is cancelled
// unpaid and no other order of the checkout holds them (gone if the coupon
// ended), and a seller's price change re-runs the split without raising
// the platform's share.
func TestCouponHolds(t *testing.T) {
	o := couponOrder(t)
	// 2300 - 230 (store) - 500 (platform) + 500 shipping.
	if o.Total().Amount != 2070 || o.CouponDiscount() != 730 || o.StoreFunded() != 230 {
		t.Fatalf("total %d, coupons %d, store-funded %d; want 2070, 730, 230", o.Total().Amount, o.CouponDiscount(), o.StoreFunded())
	}
	if fmt.Sprint(kinds(o)) != "[created coupon_reserved coupon_reserved]" {
		t.Fatalf("history %v", kinds(o))
	}
	if d := o.History()[2].Detail; d == nil || d.Coupon != "SALE" || d.Amount != 500 {
		t.Fatalf("the platform coupon's reservation: %+v", d)
	}

	t.Run("a decline keeps them, a payment consumes them", func(t *testing.T) {
		o := couponOrder(t)
		must(t, o.BeginPayment(t0, o.Total(), attempt("k1")))
		must(t, o.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultDeclined, Decline: order.Decline{Code: "card_declined"}}, order.DefaultPolicy))
		for _, h := range o.Coupons() {
			if h.State != order.HoldReserved {
				t.Fatalf("after a decline: %+v", h)
			}
		}
		must(t, o.BeginPayment(t0, o.Total(), attempt("k2")))
		must(t, o.ApplyResult(t0, "a-k2", order.Result{Kind: order.ResultSucceeded, Captured: true}, order.DefaultPolicy))
		if a, _ := o.Attempt("a-k2"); a.Amount.Amount != 2070 {
			t.Fatalf("charged %d, want the total after coupons, 2070", a.Amount.Amount)
		}
		for _, h := range o.Coupons() {
			if h.State != order.HoldConsumed {
				t.Fatalf("after payment: %+v", h)
			}
		}
		// Cancelled after payment: the refund is the money paid, and the
		// coupons stay used.
		must(t, o.CancelPaid(t0, "seller:store-x", "out of stock", order.PartySeller, order.DefaultPolicy))
		if r := o.Refunds(); len(r) != 1 || r[0].Amount.Amount != 2070 {
			t.Fatalf("refunds %+v, want one of 2070", r)
		}
		for _, h := range o.Coupons() {
			if h.State != order.HoldConsumed {
				t.Fatalf("after a paid order's cancellation: %+v", h)
			}
		}
	})
	cancelled := func(mod func(*order.Stored), at time.Time) *order.Order {
		st := couponOrder(t).Stored()
		st.History = nil
		if mod != nil {
			mod(&st)
		}
		o := order.UnmarshalFromDatabase(st)
		must(t, o.Cancel(at, "alice", "changed my mind"))
		return o
	}
	t.Run("cancelled unpaid: released", func(t *testing.T) {
		o := cancelled(nil, t0)
		for _, h := range o.Coupons() {
			if h.State != order.HoldReleased {
				t.Fatalf("%+v", h)
			}
		}
		if fmt.Sprint(kinds(o)) != "[cancelled coupon_released coupon_released]" {
			t.Fatalf("events %v", kinds(o))
		}
	})
	t.Run("cancelled while another order holds it: kept", func(t *testing.T) {
		o := cancelled(func(s *order.Stored) { s.Coupons[1].SharedWith = []string{"o2"} }, t0)
		if h := o.Coupons(); h[0].State != order.HoldReleased || h[1].State != order.HoldReserved {
			t.Fatalf("%+v", h)
		}
	})
	t.Run("cancelled after the coupon ended: gone", func(t *testing.T) {
		o := cancelled(nil, t0.Add(2*time.Hour))
		for _, h := range o.Coupons() {
			if h.State != order.HoldLapsed {
				t.Fatalf("%+v", h)
			}
		}
		if fmt.Sprint(kinds(o)) != "[cancelled]" {
			t.Fatalf("events %v", kinds(o))
		}
	})
	t.Run("a price change re-runs the split; the platform's share never grows", func(t *testing.T) {
		o := couponOrder(t)
		must(t, o.AdjustPrice(t0, order.PriceChange{UnitPrices: map[string]order.Money{"p1": usdM(2000)}, Reason: "custom size"}))
		// 4300: store 10% = 430; the platform keeps its 500.
		if o.StoreFunded() != 430 || o.CouponDiscount() != 930 || o.Total().Amount != 4300-930+500 {
			t.Fatalf("after a raise: store %d, coupons %d, total %d", o.StoreFunded(), o.CouponDiscount(), o.Total().Amount)
		}
		must(t, o.AdjustPrice(t0, order.PriceChange{UnitPrices: map[string]order.Money{"p1": usdM(100), "p2": usdM(100)}, Reason: "discount"}))
		// 300: store 30, then the platform's 500 takes what is left, 270.
		if o.StoreFunded() != 30 || o.CouponDiscount() != 300 || o.Total().Amount != 500 {
			t.Fatalf("after a cut: store %d, coupons %d, total %d", o.StoreFunded(), o.CouponDiscount(), o.Total().Amount)
		}
		must(t, o.AdjustPrice(t0, order.PriceChange{UnitPrices: map[string]order.Money{"p1": usdM(5000)}, Reason: "back up"}))
		var platform int64
		for _, it := range o.Items() {
			for _, d := range it.Discounts {
				if d.Source == order.CouponPlatform {
					platform += d.Amount
				}
			}
		}
		if platform != 270 {
			t.Fatalf("the platform's share grew back to %d after the seller's change; want 270", platform)
		}
	})
}

// TestRefundItemsNeverPayOutACoupon: a line's units are refunded at their
// share of its net (after its coupons), the last unit carrying the
// rounding: the line refunded in full gives back exactly its net.
func TestRefundItemsNeverPayOutACoupon(t *testing.T) {
	o := couponOrder(t)
	// p1: 2000 - 200 (store) - 435 (platform) = 1365 for 2 units; p2: 300 - 30 - 65 = 205.
	nets := map[string]int64{}
	for _, it := range o.Items() {
		nets[it.ProductID] = it.Net()
	}
	if nets["p1"] != 1365 || nets["p2"] != 205 {
		t.Fatalf("nets %v", nets)
	}
	if _, err := o.RefundItems(t0, map[string]int64{"p1": 1}, "missing", order.DefaultPolicy); !errors.Is(err, order.ErrIllegalTransition) {
		t.Fatalf("an unpaid order's items: %v", err)
	}
	must(t, o.BeginPayment(t0, o.Total(), attempt("k1")))
	must(t, o.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultSucceeded, Captured: true}, order.DefaultPolicy))
	for _, step := range []struct {
		units map[string]int64
		want  int64
		err   error
	}{
		{map[string]int64{"p1": 1}, 682, nil},
		{map[string]int64{"p1": 1}, 683, nil}, // the last unit carries the rounding
		{map[string]int64{"p1": 1}, 0, order.ErrInvalid},
		{map[string]int64{"nope": 1}, 0, order.ErrInvalid},
		{map[string]int64{"p2": 1}, 205, nil},
	} {
		got, err := o.RefundItems(t0, step.units, "missing", order.DefaultPolicy)
		if step.err != nil {
			if !errors.Is(err, step.err) {
				t.Fatalf("%v: %v, want %v", step.units, err, step.err)
			}
			continue
		}
		if err != nil || got.Amount != step.want {
			t.Fatalf("%v: %v %v, want %d", step.units, got, err, step.want)
		}
	}
	var owed int64
	for _, r := range o.Refunds() {
		owed += r.Amount.Amount
	}
	if owed != 1365+205 || owed > o.Total().Amount {
		t.Fatalf("owed %d back; want the lines' nets, 1570, of 2070 paid", owed)
	}
}
