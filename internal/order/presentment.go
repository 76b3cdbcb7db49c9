package order

import (
	"fmt"
	"time"
)

// Presented is an order's figures in the buyer's currency. Each line's
// subtotal and discounts are converted on their own and rounded once; a
// line's net is its converted subtotal less its converted discounts, and
// every total is a sum of converted figures, never a converted total.
type Presented struct {
	Currency string
	Lines    []PresentedLine
	// ShippingFee and Discount (an accepted offer's) are converted on
	// their own too.
	ShippingFee, ItemsTotal, CouponDiscount, Discount, Total int64
}

// PresentedLine is a line in the buyer's currency.
type PresentedLine struct {
	UnitPrice, Subtotal, Net int64
	// Discounts are the line's coupon shares, in the order of the line's.
	Discounts []int64
}

// ErrQuoteExpired is a payment of an order whose exchange-rate quote has
// expired: it must be quoted again (Requote) and the new total confirmed.
var ErrQuoteExpired = fmt.Errorf("%w: the exchange-rate quote expired", ErrIllegalTransition)

// Quote returns the exchange-rate quote the buyer's amounts come from, or
// nil when the buyer pays in the store's currency.
func (o *Order) Quote() *Quote {
	if o.quote == nil {
		return nil
	}
	q := *o.quote
	return &q
}

// Presented returns the order's figures in the buyer's currency (the
// store's, at a rate of 1, without a quote).
func (o *Order) Presented() Presented {
	q := o.rate()
	p := Presented{Currency: q.Currency, Lines: make([]PresentedLine, len(o.items))}
	for i, it := range o.items {
		l := PresentedLine{UnitPrice: q.Convert(it.UnitPrice), Subtotal: q.Convert(it.Subtotal())}
		l.Net = l.Subtotal
		for _, d := range it.Discounts {
			c := min(q.Convert(d.Amount), l.Net)
			l.Discounts = append(l.Discounts, c)
			l.Net -= c
		}
		p.Lines[i] = l
		p.ItemsTotal += l.Subtotal
		p.CouponDiscount += l.Subtotal - l.Net
	}
	p.ShippingFee = q.Convert(o.shippingFee)
	p.Discount = min(q.Convert(o.discount), p.ItemsTotal-p.CouponDiscount+p.ShippingFee)
	p.Total = p.ItemsTotal - p.CouponDiscount + p.ShippingFee - p.Discount
	return p
}

// rate is the quote the buyer's amounts come from: the order's, or the
// store's currency at a rate of 1.
func (o *Order) rate() Quote {
	if o.quote != nil {
		return *o.quote
	}
	return Quote{Base: o.currency, Currency: o.currency}
}

// Due returns what the buyer is charged: the total in the currency they
// pay (Total without a quote). With a payment plan it is the next part's
// amount (PartsDue).
func (o *Order) Due() Money {
	if i := o.nextIndex(); i >= 0 {
		return o.PartsDue()[i]
	}
	if o.quote == nil {
		return o.Total()
	}
	return Money{Amount: o.Presented().Total, Currency: o.quote.Currency}
}

// Requote fixes a new exchange-rate quote for an unpaid order whose quote
// expired (or is about to): the buyer's amounts follow it, and a payment
// must confirm the new total. The store's amounts do not change.
func (o *Order) Requote(now time.Time, q Quote) error {
	switch {
	case o.quote == nil:
		return fmt.Errorf("%w: order %s is paid in the store's currency", ErrIllegalTransition, o.id)
	case o.status != StatusPendingPayment && o.status != StatusPartiallyPaid:
		return o.illegal("quote again")
	case o.openAttempt() != nil:
		return fmt.Errorf("%w: the rate cannot change during a payment", ErrPaymentInProgress)
	case q.Base != o.quote.Base || q.Currency != o.quote.Currency || q.Rate.IsZero():
		return invalid("quote", "a quote from %s to %s is needed", o.quote.Base, o.quote.Currency)
	}
	old := o.Due()
	o.quote = &q
	o.record(now, "quote_renewed", "system", fmt.Sprintf("rate %s %s per %s until %s: %s becomes %s", q.Rate, q.Currency, q.Base,
		q.ExpiresAt.UTC().Format(time.RFC3339), old, o.Due()), nil)
	return nil
}

// QuoteExpired reports whether the order's quote can no longer price a
// payment at now.
func (o *Order) QuoteExpired(now time.Time) bool { return o.quote != nil && o.quote.Expired(now) }
