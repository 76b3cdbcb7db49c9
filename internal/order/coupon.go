package order

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
	"time"
)

// CouponSource says who issued a coupon, and so who funds it: a store's
// coupon reduces what the store is paid; the platform's does not.
type CouponSource string

// The sources of a coupon.
const (
	CouponPlatform CouponSource = "PLATFORM"
	CouponStore    CouponSource = "STORE"
)

// CouponKind is how a coupon takes its value.
type CouponKind string

// The kinds of coupon.
const (
	// CouponAmountOff takes a fixed amount (in its currency) off.
	CouponAmountOff CouponKind = "AMOUNT_OFF"
	// CouponPercentOff takes a percentage of the eligible subtotal off, up
	// to an optional cap.
	CouponPercentOff CouponKind = "PERCENT_OFF"
)

// Coupon is a discount as its issuer defined it.
type Coupon struct {
	ID   string
	Code string
	// Source is who issued it; SellerID is the store of a store's coupon.
	Source   CouponSource
	SellerID string
	Kind     CouponKind
	// Currency is that of Amount, Cap and MinSubtotal: a coupon applies to
	// orders in its currency only.
	Currency string
	// Amount is what an AMOUNT_OFF coupon takes off, in minor units.
	Amount int64
	// Percent (1–100) is what a PERCENT_OFF coupon takes off; Cap, if not
	// zero, is the most it takes.
	Percent int64
	Cap     int64
	// MinSubtotal is the eligible subtotal, after earlier discounts and
	// without shipping, a checkout needs for the coupon to apply.
	MinSubtotal      int64
	StartsAt, EndsAt time.Time
	// Limit is how many checkouts may redeem it, PerBuyer how many of one
	// buyer's; zero is no limit.
	Limit, PerBuyer int64
	// FirstOrderOnly: only a buyer who has never paid an order may use it.
	FirstOrderOnly bool
	// GrantedOnly: a platform coupon only the buyers it was granted to may
	// use (their "my coupons"); otherwise its code can be claimed by anyone.
	GrantedOnly bool
	// ProductIDs narrow a store's coupon to some of its products, SellerIDs
	// a platform coupon to some stores; empty is everything.
	ProductIDs []string
	SellerIDs  []string
	Paused     bool
}

// Validate refuses a coupon definition that makes no sense, naming the field.
func (c Coupon) Validate() error {
	switch {
	case c.Code == "" || len(c.Code) > 40:
		return invalid("code", "a coupon needs a code of 1 to 40 characters")
	case c.Source != CouponPlatform && c.Source != CouponStore:
		return invalid("source", "%q is not a coupon source", c.Source)
	case c.Source == CouponStore && c.SellerID == "":
		return invalid("seller_id", "a store's coupon needs its store")
	case c.Source == CouponStore && (len(c.SellerIDs) > 0 || c.GrantedOnly):
		return invalid("seller_ids", "only a platform coupon names stores or is granted to buyers")
	case c.Source == CouponPlatform && len(c.ProductIDs) > 0:
		return invalid("product_ids", "a platform coupon applies to stores, not products")
	case len(c.Currency) != 3:
		return invalid("currency", "%q is not an ISO 4217 code", c.Currency)
	case c.Kind == CouponAmountOff && (c.Amount <= 0 || c.Amount > MaxAmount):
		return invalid("amount", "an amount-off coupon takes a positive amount off")
	case c.Kind == CouponAmountOff && (c.Percent != 0 || c.Cap != 0):
		return invalid("percent", "an amount-off coupon has no percentage or cap")
	case c.Kind == CouponPercentOff && (c.Percent < 1 || c.Percent > 100):
		return invalid("percent", "a percent-off coupon takes 1 to 100 percent off")
	case c.Kind == CouponPercentOff && (c.Cap < 0 || c.Cap > MaxAmount || c.Amount != 0):
		return invalid("cap", "a percent-off coupon's cap is a positive amount, or none")
	case c.Kind != CouponAmountOff && c.Kind != CouponPercentOff:
		return invalid("kind", "%q is not a kind of coupon", c.Kind)
	case c.MinSubtotal < 0 || c.MinSubtotal > MaxAmount:
		return invalid("min_subtotal", "the minimum subtotal cannot be negative")
	case c.StartsAt.IsZero() || c.EndsAt.IsZero() || !c.EndsAt.After(c.StartsAt):
		return invalid("ends_at", "a coupon needs a start and an end after it")
	case c.Limit < 0 || c.PerBuyer < 0:
		return invalid("limit", "limits cannot be negative (zero is none)")
	}
	return nil
}

// Usable refuses a coupon that cannot be used at now: paused, not yet
// valid or no longer.
func (c Coupon) Usable(now time.Time) error {
	switch {
	case c.Paused:
		return fmt.Errorf("%w: coupon %s is paused", ErrCouponNotApplicable, c.Code)
	case now.Before(c.StartsAt):
		return fmt.Errorf("%w: coupon %s is valid from %s", ErrCouponNotApplicable, c.Code, c.StartsAt.UTC().Format(time.RFC3339))
	case !now.Before(c.EndsAt):
		return fmt.Errorf("%w: coupon %s ended at %s", ErrCouponNotApplicable, c.Code, c.EndsAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// value is what the coupon takes off an eligible subtotal: never more than
// it. A percentage is rounded half up to the minor unit, then capped.
func (c Coupon) value(eligible int64) int64 {
	v := c.Amount
	if c.Kind == CouponPercentOff {
		v = mulDiv(eligible, c.Percent, 100, true)
		if c.Cap > 0 {
			v = min(v, c.Cap)
		}
	}
	return min(v, eligible)
}

// Discount is one coupon's share of one order line.
type Discount struct {
	CouponID string       `json:"coupon_id"`
	Code     string       `json:"code"`
	Source   CouponSource `json:"source"`
	Amount   int64        `json:"amount"`
}

// CartOrder is one store's part of a checkout as the coupons see it: its
// order's id (ties go to the lowest), store, currency and lines.
type CartOrder struct {
	ID       string
	SellerID string
	Currency string
	Items    []Item
}

// Applied is what the coupons of a checkout took off: per order (as
// given), per line, the discounts in the order they were applied.
type Applied struct {
	Lines [][][]Discount
	// Taken is what each coupon (by id) took off in all.
	Taken map[string]int64
}

// ErrCouponNotApplicable is a coupon whose conditions the checkout does not meet.
var ErrCouponNotApplicable = fmt.Errorf("%w: coupon not applicable", ErrIllegalTransition)

// ApplyCoupons applies a checkout's coupons in their fixed order, whatever
// order the buyer named them in: the item prices, then each order's store
// coupon (stores maps a store to its coupon), then the platform coupon. A
// coupon's threshold counts its eligible items after the earlier
// discounts, never shipping. A coupon's value is split over the orders in
// proportion to their eligible subtotals, then over each order's lines, by
// the largest remainder method (ties to the lowest id): the shares add up
// to the value exactly and none takes a line below zero; value beyond the
// eligible subtotal is lost, never paid out. A coupon named but not
// applicable is ErrCouponNotApplicable, saying why.
func ApplyCoupons(orders []CartOrder, stores map[string]*Coupon, platform *Coupon) (Applied, error) {
	out := Applied{Lines: make([][][]Discount, len(orders)), Taken: map[string]int64{}}
	// left is each line's amount still to pay after the discounts so far.
	left := make([][]int64, len(orders))
	for i, o := range orders {
		out.Lines[i] = make([][]Discount, len(o.Items))
		left[i] = make([]int64, len(o.Items))
		for j, it := range o.Items {
			left[i][j] = it.Subtotal()
		}
	}
	used := map[string]bool{}
	for i, o := range orders {
		c := stores[o.SellerID]
		if c == nil {
			continue
		}
		used[o.SellerID] = true
		if c.Source != CouponStore || c.SellerID != o.SellerID {
			return out, fmt.Errorf("%w: %s is not a coupon of store %s", ErrCouponNotApplicable, c.Code, o.SellerID)
		}
		if c.Currency != o.Currency {
			return out, fmt.Errorf("%w: %s is in %s and the order in %s", ErrCouponNotApplicable, c.Code, c.Currency, o.Currency)
		}
		var lines []int
		for j, it := range o.Items {
			if len(c.ProductIDs) == 0 || slices.Contains(c.ProductIDs, it.ProductID) {
				lines = append(lines, j)
			}
		}
		if err := out.take(c, []int{i}, lines, orders, left); err != nil {
			return out, err
		}
	}
	for s, c := range stores {
		if c != nil && !used[s] {
			return out, fmt.Errorf("%w: %s is a coupon of store %s, which this checkout buys nothing from", ErrCouponNotApplicable, c.Code, s)
		}
	}
	if platform == nil {
		return out, nil
	}
	if platform.Source != CouponPlatform {
		return out, fmt.Errorf("%w: %s is not a platform coupon", ErrCouponNotApplicable, platform.Code)
	}
	var in []int
	for i, o := range orders {
		if o.Currency == platform.Currency && (len(platform.SellerIDs) == 0 || slices.Contains(platform.SellerIDs, o.SellerID)) {
			in = append(in, i)
		}
	}
	if len(in) == 0 {
		return out, fmt.Errorf("%w: %s applies to none of this checkout's stores in %s", ErrCouponNotApplicable, platform.Code, platform.Currency)
	}
	return out, out.take(platform, in, nil, orders, left)
}

// take applies c to the orders in (and, for a single order, its lines;
// nil is every line): its value over the orders by their eligible
// subtotals, then over each order's lines by what is left of them.
func (a *Applied) take(c *Coupon, in, lines []int, orders []CartOrder, left [][]int64) error {
	eligible := func(i int) []int {
		if lines != nil {
			return lines
		}
		all := make([]int, len(orders[i].Items))
		for j := range all {
			all[j] = j
		}
		return all
	}
	subs := make([]int64, len(in))
	var total int64
	for k, i := range in {
		for _, j := range eligible(i) {
			subs[k] += left[i][j]
		}
		total += subs[k]
	}
	if total == 0 || total < c.MinSubtotal {
		return fmt.Errorf("%w: %s needs an eligible subtotal of at least %d (minor units of %s); this checkout's is %d",
			ErrCouponNotApplicable, c.Code, max(c.MinSubtotal, 1), c.Currency, total)
	}
	value := c.value(total)
	ids := make([]string, len(in))
	for k, i := range in {
		ids[k] = orders[i].ID
	}
	for k, share := range split(value, subs, ids) {
		i := in[k]
		js := eligible(i)
		weights := make([]int64, len(js))
		lineIDs := make([]string, len(js))
		for n, j := range js {
			weights[n], lineIDs[n] = left[i][j], orders[i].Items[j].ProductID
		}
		for n, part := range split(share, weights, lineIDs) {
			if part == 0 {
				continue
			}
			j := js[n]
			left[i][j] -= part
			a.Lines[i][j] = append(a.Lines[i][j], Discount{CouponID: c.ID, Code: c.Code, Source: c.Source, Amount: part})
		}
	}
	a.Taken[c.ID] += value
	return nil
}

// split divides value (at most the sum of weights) in proportion to the
// weights by the largest remainder method: each gets the floor of its
// exact share, and the units left over go to the largest remainders, ties
// to the lowest id. The parts sum to value and none exceeds its weight.
func split(value int64, weights []int64, ids []string) []int64 {
	var sum int64
	for _, w := range weights {
		sum += w
	}
	parts := make([]int64, len(weights))
	if sum == 0 || value == 0 {
		return parts
	}
	rems := make([]int64, len(weights))
	given := int64(0)
	for k, w := range weights {
		hi, lo := bits.Mul64(uint64(value), uint64(w))
		q, r := bits.Div64(hi, lo, uint64(sum))
		parts[k], rems[k] = int64(q), int64(r)
		given += parts[k]
	}
	order := make([]int, len(weights))
	for k := range order {
		order[k] = k
	}
	slices.SortStableFunc(order, func(x, y int) int {
		if c := cmp.Compare(rems[y], rems[x]); c != 0 {
			return c
		}
		return cmp.Compare(ids[x], ids[y])
	})
	for n := int64(0); n < value-given; n++ {
		parts[order[n]]++
	}
	return parts
}

// mulDiv is a*b/c, rounded half up if round, else down; a*b may exceed
// int64 (c does not divide by zero here).
func mulDiv(a, b, c int64, round bool) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	q, r := bits.Div64(hi, lo, uint64(c))
	if round && 2*r >= uint64(c) {
		q++
	}
	return int64(q)
}

// HoldState is where a checkout's use of a coupon stands.
type HoldState string

// The states of a coupon's use.
const (
	// HoldReserved: the checkout's orders hold the coupon, unpaid; it
	// counts against its limits.
	HoldReserved HoldState = "RESERVED"
	// HoldConsumed: one of the orders was paid; the coupon is used for good.
	HoldConsumed HoldState = "CONSUMED"
	// HoldReleased: every order that held it was cancelled before payment
	// while the coupon was still valid; it can be redeemed again.
	HoldReleased HoldState = "RELEASED"
	// HoldLapsed: every order that held it was cancelled before payment,
	// after the coupon ended: it is gone.
	HoldLapsed HoldState = "LAPSED"
)

// CouponHold is one coupon an order's lines use: its terms at checkout and
// where the checkout's use of it stands.
type CouponHold struct {
	Coupon Coupon
	State  HoldState
	// SharedWith are the other orders of the checkout that hold the coupon
	// and are not cancelled: while there are any, cancelling this one
	// releases nothing.
	SharedWith []string
}

// Coupons returns the coupons the order holds.
func (o *Order) Coupons() []CouponHold { return slices.Clone(o.coupons) }

// StoreFunded is what the store's own coupons take off the order: it is
// paid that much less. The platform pays for its coupons.
func (o *Order) StoreFunded() int64 {
	var off int64
	for _, it := range o.items {
		for _, d := range it.Discounts {
			if d.Source == CouponStore {
				off += d.Amount
			}
		}
	}
	return off
}

// share is what the order's lines take off with coupon id.
func (o *Order) share(items []Item, id string) int64 {
	var off int64
	for _, it := range items {
		for _, d := range it.Discounts {
			if d.CouponID == id {
				off += d.Amount
			}
		}
	}
	return off
}

// recordCoupon records a coupon_* event of c with the order's share.
func (o *Order) recordCoupon(now time.Time, kind, actor string, c Coupon, note string) {
	o.record(now, kind, actor, note, nil)
	o.detail(Detail{Coupon: c.Code, CouponID: c.ID, Amount: o.share(o.items, c.ID)})
}

// consumeCoupons makes the coupons the order holds used for good: it was
// paid (the first of its checkout's orders to be).
func (o *Order) consumeCoupons(now time.Time) {
	for i := range o.coupons {
		if h := &o.coupons[i]; h.State == HoldReserved {
			h.State = HoldConsumed
			o.recordCoupon(now, "coupon_consumed", "system", h.Coupon, "")
		}
	}
}

// releaseCoupons gives back the coupons of an order cancelled before
// payment that no other order of its checkout still holds: redeemable
// again if still valid, else gone.
func (o *Order) releaseCoupons(now time.Time) {
	for i := range o.coupons {
		h := &o.coupons[i]
		if h.State != HoldReserved || len(h.SharedWith) > 0 {
			continue
		}
		if now.Before(h.Coupon.EndsAt) {
			h.State = HoldReleased
			o.recordCoupon(now, "coupon_released", "system", h.Coupon, "the coupon can be used again")
		} else {
			h.State = HoldLapsed
		}
	}
}

// OthersCancelled tells an order cancelled unpaid which orders of its
// checkout were cancelled in the same transaction (a batch of expired
// payment windows): each saw the others still waiting when it was read.
// Of the orders that held a coupon together, the one with the lowest id
// releases it, once.
func (o *Order) OthersCancelled(now time.Time, cancelled map[string]bool) {
	if o.status != StatusCancelled || len(o.payments()) > 0 {
		return
	}
	for i := range o.coupons {
		h := &o.coupons[i]
		if h.State != HoldReserved || len(h.SharedWith) == 0 {
			continue
		}
		if slices.ContainsFunc(h.SharedWith, func(id string) bool { return !cancelled[id] }) ||
			slices.ContainsFunc(h.SharedWith, func(id string) bool { return id < o.id }) {
			continue
		}
		h.SharedWith = nil
	}
	o.releaseCoupons(now)
}

// resplit re-runs the coupons' split of the order after its prices
// changed: the store's coupon on the new prices (by its terms at
// checkout; nothing if the order no longer meets them), then the
// platform's share of the order, never more than it was, over what is
// left of the lines.
func (o *Order) resplit(items []Item) []Item {
	items = slices.Clone(items)
	for i := range items {
		items[i].Discounts = nil
	}
	cart := []CartOrder{{ID: o.id, SellerID: o.sellerID, Currency: o.currency, Items: items}}
	for _, h := range o.coupons {
		c := h.Coupon
		if c.Source != CouponStore {
			continue
		}
		if a, err := ApplyCoupons(cart, map[string]*Coupon{o.sellerID: &c}, nil); err == nil {
			for j := range items {
				items[j].Discounts = append(items[j].Discounts, a.Lines[0][j]...)
			}
		}
	}
	for _, h := range o.coupons {
		c := h.Coupon
		if c.Source != CouponPlatform {
			continue
		}
		weights, ids := make([]int64, len(items)), make([]string, len(items))
		var left int64
		for j, it := range items {
			weights[j], ids[j] = it.Net(), it.ProductID
			left += weights[j]
		}
		for j, part := range split(min(o.share(o.items, c.ID), left), weights, ids) {
			if part > 0 {
				items[j].Discounts = append(items[j].Discounts, Discount{CouponID: c.ID, Code: c.Code, Source: c.Source, Amount: part})
			}
		}
	}
	return items
}
