package protoconv

import (
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/postgres"
)

var couponSources = map[order.CouponSource]orderv1.CouponSource{
	order.CouponPlatform: orderv1.CouponSource_COUPON_SOURCE_PLATFORM,
	order.CouponStore:    orderv1.CouponSource_COUPON_SOURCE_STORE,
}

var couponKinds = map[order.CouponKind]orderv1.CouponKind{
	order.CouponAmountOff:  orderv1.CouponKind_COUPON_KIND_AMOUNT_OFF,
	order.CouponPercentOff: orderv1.CouponKind_COUPON_KIND_PERCENT_OFF,
}

var holdStates = map[order.HoldState]orderv1.CouponHoldState{
	order.HoldReserved: orderv1.CouponHoldState_COUPON_HOLD_STATE_RESERVED,
	order.HoldConsumed: orderv1.CouponHoldState_COUPON_HOLD_STATE_CONSUMED,
	order.HoldReleased: orderv1.CouponHoldState_COUPON_HOLD_STATE_RELEASED,
	order.HoldLapsed:   orderv1.CouponHoldState_COUPON_HOLD_STATE_LAPSED,
}

// LineItems translates an order's lines, with their coupon shares.
func LineItems(items []order.Item, cur string) []*orderv1.LineItem {
	out := make([]*orderv1.LineItem, len(items))
	for i, it := range items {
		l := &orderv1.LineItem{ProductId: it.ProductID, Title: it.Title, Quantity: it.Quantity,
			UnitPrice: Money(it.UnitPrice, cur), Subtotal: Money(it.Subtotal(), cur), Net: Money(it.Net(), cur)}
		if it.RefundedUnits > 0 {
			l.RefundedUnits, l.Refunded = it.RefundedUnits, Money(it.Refunded, cur)
		}
		for _, d := range it.Discounts {
			l.Discounts = append(l.Discounts, &orderv1.LineDiscount{CouponId: d.CouponID, Code: d.Code, Source: couponSources[d.Source],
				Amount: Money(d.Amount, cur)})
		}
		out[i] = l
	}
	return out
}

// OrderCoupons translates the coupons an order holds, with its share of each.
func OrderCoupons(o *order.Order, cur string) []*orderv1.OrderCoupon {
	share := map[string]int64{}
	for _, it := range o.Items() {
		for _, d := range it.Discounts {
			share[d.CouponID] += d.Amount
		}
	}
	var out []*orderv1.OrderCoupon
	for _, h := range o.Coupons() {
		out = append(out, &orderv1.OrderCoupon{CouponId: h.Coupon.ID, Code: h.Coupon.Code, Source: couponSources[h.Coupon.Source],
			State: holdStates[h.State], Amount: Money(share[h.Coupon.ID], cur)})
	}
	return out
}

// Coupon translates a coupon and how many checkouts hold or used it.
func Coupon(c order.Coupon, used int64) *orderv1.Coupon {
	p := &orderv1.Coupon{Id: c.ID, Code: c.Code, Source: couponSources[c.Source], SellerId: c.SellerID, Kind: couponKinds[c.Kind],
		Amount: Money(c.Amount, c.Currency), Percent: int32(c.Percent), StartsAt: Time(c.StartsAt), EndsAt: Time(c.EndsAt),
		RedemptionLimit: c.Limit, PerBuyerLimit: c.PerBuyer, FirstOrderOnly: c.FirstOrderOnly, GrantedOnly: c.GrantedOnly,
		ProductIds: c.ProductIDs, SellerIds: c.SellerIDs, Paused: c.Paused, Used: used}
	if c.Cap > 0 {
		p.Cap = Money(c.Cap, c.Currency)
	}
	if c.MinSubtotal > 0 {
		p.MinSubtotal = Money(c.MinSubtotal, c.Currency)
	}
	return p
}

// FromCoupon translates a coupon's terms (validated by protovalidate; the
// domain validates the rest). The issuer is the caller's, not the request's.
func FromCoupon(p *orderv1.Coupon, source order.CouponSource, sellerID string) order.Coupon {
	c := order.Coupon{ID: p.GetId(), Code: p.GetCode(), Source: source, SellerID: sellerID, Currency: p.GetAmount().GetCurrency(),
		Amount: p.GetAmount().GetAmountMinor(), Percent: int64(p.GetPercent()), Cap: p.GetCap().GetAmountMinor(),
		MinSubtotal: p.GetMinSubtotal().GetAmountMinor(), StartsAt: FromTime(p.GetStartsAt()), EndsAt: FromTime(p.GetEndsAt()),
		Limit: p.GetRedemptionLimit(), PerBuyer: p.GetPerBuyerLimit(), FirstOrderOnly: p.GetFirstOrderOnly(),
		GrantedOnly: p.GetGrantedOnly(), ProductIDs: p.GetProductIds(), SellerIDs: p.GetSellerIds(), Paused: p.GetPaused()}
	for k, v := range couponKinds {
		if v == p.GetKind() {
			c.Kind = k
		}
	}
	return c
}

// CouponUses translates a coupon report.
func CouponUses(us []postgres.CouponUse) []*orderv1.CouponUse {
	out := make([]*orderv1.CouponUse, len(us))
	for i, u := range us {
		out[i] = &orderv1.CouponUse{Coupon: Coupon(u.Coupon, u.Reserved+u.Consumed), Reserved: u.Reserved, Consumed: u.Consumed,
			Released: u.Released, Lapsed: u.Lapsed, Cost: Money(u.Cost, u.Currency)}
	}
	return out
}

// Presentment translates an order's figures in the buyer's currency, with
// its quote; nil when the buyer pays in the store's currency.
func Presentment(o *order.Order) *orderv1.Presentment {
	q := o.Quote()
	if q == nil {
		return nil
	}
	p := o.Presented()
	cur := p.Currency
	out := &orderv1.Presentment{Currency: cur, ShippingFee: Money(p.ShippingFee, cur), ItemsTotal: Money(p.ItemsTotal, cur),
		CouponDiscount: Money(p.CouponDiscount, cur), Discount: Money(p.Discount, cur), Total: Money(p.Total, cur),
		Quote: &orderv1.ExchangeQuote{Id: q.ID, Base: q.Base, Quote: q.Currency, Rate: q.Rate.String(), Source: q.Source,
			QuotedAt: Time(q.QuotedAt), ExpiresAt: Time(q.ExpiresAt)}}
	items := o.Items()
	for i, l := range p.Lines {
		it := items[i]
		li := &orderv1.LineItem{ProductId: it.ProductID, Title: it.Title, Quantity: it.Quantity, UnitPrice: Money(l.UnitPrice, cur),
			Subtotal: Money(l.Subtotal, cur), Net: Money(l.Net, cur)}
		for j, d := range it.Discounts {
			li.Discounts = append(li.Discounts, &orderv1.LineDiscount{CouponId: d.CouponID, Code: d.Code, Source: couponSources[d.Source],
				Amount: Money(l.Discounts[j], cur)})
		}
		out.Items = append(out.Items, li)
	}
	return out
}
