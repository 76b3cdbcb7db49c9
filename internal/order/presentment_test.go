package order_test

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/souk-dev/souk/internal/order"
)

func eurQuote(t *testing.T, r string, at time.Time) *order.Quote {
	t.Helper()
	return &order.Quote{ID: "q-" + r, Base: "USD", Currency: "EUR", Rate: rate(t, r), Source: "test", QuotedAt: at, ExpiresAt: at.Add(24 * time.Hour)}
}

// TestPresentedInTheBuyersCurrency: a EUR buyer's USD order is shown and
// charged in EUR, converted line by line (the total is the sum of the
// converted lines, never a converted total); a payment is refused once the
// quote expired, and after Requote the old total is refused and the new
// one paid.
func TestPresentedInTheBuyersCurrency(t *testing.T) {
	o, err := order.New(order.NewOrderParams{ID: "o1", CheckoutID: "c1", BuyerID: "alice", SellerID: "store-x", Currency: "USD",
		Items:       []order.Item{line("p1", 1999, 3), line("p2", 333, 1)},
		ShippingFee: 499, PaymentWindow: 20 * 24 * time.Hour, Now: t0, Quote: eurQuote(t, "0.9215", t0)})
	if err != nil {
		t.Fatal(err)
	}
	p := o.Presented()
	// 59.97 × 0.9215 = 55.262355 → 55.26; 3.33 → 3.068595 → 3.07; 4.99 → 4.598285 → 4.60.
	if p.Currency != "EUR" || p.Lines[0].Subtotal != 5526 || p.Lines[1].Subtotal != 307 || p.ShippingFee != 460 || p.Total != 5526+307+460 {
		t.Fatalf("presented %+v", p)
	}
	if o.Total().Amount != 5997+333+499 || o.Due() != (order.Money{Amount: 6293, Currency: "EUR"}) {
		t.Fatalf("total %v, due %v", o.Total(), o.Due())
	}
	if err := o.BeginPayment(t0, order.Money{Amount: 6829, Currency: "USD"}, attempt("k0")); !errors.Is(err, order.ErrTotalMismatch) {
		t.Fatalf("paying the USD total: %v", err)
	}
	later := t0.Add(25 * time.Hour)
	if err := o.BeginPayment(later, o.Due(), attempt("k1")); !errors.Is(err, order.ErrQuoteExpired) {
		t.Fatalf("paying on an expired quote: %v", err)
	}
	old := o.Due()
	must(t, o.Requote(later, *eurQuote(t, "0.95", later)))
	if err := o.BeginPayment(later, old, attempt("k2")); !errors.Is(err, order.ErrTotalMismatch) {
		t.Fatalf("the old total after the new quote: %v", err)
	}
	var changed *order.TotalChangedError
	err = o.BeginPayment(later, old, attempt("k3"))
	if !errors.As(err, &changed) || changed.Total != o.Due() || o.Due().Amount != 5697+316+474 {
		t.Fatalf("the refusal names the new total: %v (due %v)", err, o.Due())
	}
	must(t, o.BeginPayment(later, o.Due(), attempt("k4")))
	must(t, o.ApplyResult(later, "a-k4", order.Result{Kind: order.ResultSucceeded, Captured: true}, order.DefaultPolicy))
	if a, _ := o.Attempt("a-k4"); a.Amount != (order.Money{Amount: 6487, Currency: "EUR"}) || o.Status() != order.StatusAwaitingShipment {
		t.Fatalf("charged %v, status %s", a.Amount, o.Status())
	}
	var paidDetail *order.Detail
	for _, e := range o.History() {
		if e.Kind == "paid" {
			paidDetail = e.Detail
		}
	}
	if paidDetail == nil || paidDetail.Amount != 6487 || paidDetail.Currency != "EUR" || paidDetail.Credited != 6829 {
		t.Fatalf("the paid event: %+v, want 64.87 EUR crediting 68.29 USD", paidDetail)
	}
	if err := o.Requote(later, *eurQuote(t, "0.9", later)); !errors.Is(err, order.ErrIllegalTransition) {
		t.Fatalf("quoting a paid order again: %v", err)
	}
	// A refund of a line is in the currency charged: its EUR net.
	owed, err := o.RefundItems(later, map[string]int64{"p2": 1}, "missing", order.DefaultPolicy)
	if err != nil || owed != (order.Money{Amount: 316, Currency: "EUR"}) {
		t.Fatalf("refund of the 3.33 USD line: %v %v, want 3.16 EUR", owed, err)
	}
}

// TestPresentedLinesSum: for random orders with coupons in JPY, USD and
// KWD, the presented total is the sum of the presented lines' nets and
// shipping, no figure is negative, and each line is within half a minor
// unit per converted figure of the exact conversion.
func TestPresentedLinesSum(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 1))
	for n := range 3000 {
		cur := []string{"USD", "JPY", "KWD"}[r.IntN(3)]
		to := []string{"EUR", "JPY", "KWD", "USD"}[r.IntN(4)]
		if to == cur {
			continue
		}
		var items []order.Item
		for l := range 1 + r.IntN(4) {
			items = append(items, line(string(rune('a'+l)), r.Int64N(100_000), 1+r.Int64N(5)))
		}
		c := platformCoupon(func(c *order.Coupon) { c.Currency = cur; c.Amount = 1 + r.Int64N(5000) })
		cart := []order.CartOrder{{ID: "o", SellerID: "s", Currency: cur, Items: items}}
		var coupons []order.Coupon
		if a, err := order.ApplyCoupons(cart, nil, c); err == nil {
			for j := range items {
				items[j].Discounts = a.Lines[0][j]
			}
			coupons = []order.Coupon{*c}
		}
		q := &order.Quote{Base: cur, Currency: to, Rate: rate(t, []string{"0.0064", "157.3", "0.30745", "3.2526", "0.9215"}[r.IntN(5)]),
			QuotedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		o, err := order.New(order.NewOrderParams{ID: "o", CheckoutID: "c", BuyerID: "b", SellerID: "s", Currency: cur, Items: items,
			ShippingFee: r.Int64N(2000), PaymentWindow: time.Hour, Now: t0, Quote: q, Coupons: coupons})
		if err != nil {
			t.Fatalf("case %d: %v", n, err)
		}
		p := o.Presented()
		sum := p.ShippingFee - p.Discount
		for _, l := range p.Lines {
			if l.Net < 0 || l.Subtotal < 0 {
				t.Fatalf("case %d: a negative line %+v", n, l)
			}
			sum += l.Net
		}
		if sum != p.Total || p.Total < 0 || o.Due().Amount != p.Total || o.Due().Currency != to {
			t.Fatalf("case %d: lines sum to %d, total %d, due %v", n, sum, p.Total, o.Due())
		}
	}
}
