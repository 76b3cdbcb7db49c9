package order

import (
	"fmt"
	"time"
)

// OfferKind is what a buyer's offer proposes.
type OfferKind string

// The kinds of offer.
const (
	// OfferTotal proposes a lower total; accepted, the difference becomes
	// the order's discount.
	OfferTotal OfferKind = "total"
	// OfferShippingFee proposes a lower shipping fee.
	OfferShippingFee OfferKind = "shipping_fee"
)

// OfferStatus is where an offer stands.
type OfferStatus string

// The statuses of an offer.
const (
	OfferOpen     OfferStatus = "OPEN"
	OfferAccepted OfferStatus = "ACCEPTED"
	OfferDeclined OfferStatus = "DECLINED"
	// OfferLapsed: the seller did not answer in time, or the order was paid
	// or cancelled first.
	OfferLapsed OfferStatus = "LAPSED"
)

// Offer is a buyer's proposal for an unpaid order: a lower total or
// shipping fee, which the seller accepts (it becomes a price adjustment)
// or declines. An order has one open offer at a time and keeps its latest.
type Offer struct {
	Kind        OfferKind   `json:"kind"`
	AmountMinor int64       `json:"amount_minor"`
	Currency    string      `json:"currency"`
	Note        string      `json:"note"`
	Status      OfferStatus `json:"status"`
	MadeAt      time.Time   `json:"made_at"`
	AnsweredAt  time.Time   `json:"answered_at"`
	Answer      string      `json:"answer"`
}

// Amount returns what the offer proposes.
func (f Offer) Amount() Money { return Money{Amount: f.AmountMinor, Currency: f.Currency} }

func cloneOffer(f *Offer) *Offer {
	if f == nil {
		return nil
	}
	cp := *f
	return &cp
}

// Offer returns the order's latest offer, or nil.
func (o *Order) Offer() *Offer { return cloneOffer(o.offer) }

// MakeOffer records the buyer's offer on an unpaid order with no payment
// attempt open and no other offer open. It lapses after pol.OfferTTL, or
// when the payment window ends if that is sooner.
func (o *Order) MakeOffer(now time.Time, kind OfferKind, amount Money, note string, pol Policy) error {
	if o.status != StatusPendingPayment {
		return o.illegal("make an offer on")
	}
	if o.openAttempt() != nil {
		return fmt.Errorf("%w: wait for the payment to finish before making an offer", ErrPaymentInProgress)
	}
	if o.offer != nil && o.offer.Status == OfferOpen {
		return fmt.Errorf("%w: answer or wait for it before making another", ErrOfferOpen)
	}
	if amount.Currency != o.currency {
		return invalid("amount.currency", "the order is in %s, not %s", o.currency, amount.Currency)
	}
	switch kind {
	case OfferTotal:
		if amount.Amount < 0 || amount.Amount >= o.Total().Amount {
			return invalid("amount", "an offered total must be below the order's total of %s", o.Total())
		}
	case OfferShippingFee:
		if amount.Amount < 0 || amount.Amount >= o.shippingFee {
			return invalid("amount", "an offered shipping fee must be below the fee of %d", o.shippingFee)
		}
	default:
		return invalid("kind", "unknown offer kind %q", kind)
	}
	o.offer = &Offer{Kind: kind, AmountMinor: amount.Amount, Currency: amount.Currency, Note: note, Status: OfferOpen, MadeAt: now}
	due := now.Add(pol.OfferTTL)
	if d, ok := o.deadlines[DeadlinePayment]; ok && d.Before(due) {
		due = d
	}
	o.deadlines[DeadlineOffer] = due
	o.record(now, "offer_made", "buyer:"+o.buyerID, fmt.Sprintf("%s %s%s", kind, amount, notePart(note)), nil)
	o.detail(Detail{OfferKind: string(kind), Amount: amount.Amount, Text: note})
	return nil
}

// AnswerOffer is the seller's answer to the open offer: accepting it makes
// it a price adjustment (reason "offer accepted", proposed by the buyer)
// and changes the total the buyer pays; declining needs a note. Neither
// can happen while a payment attempt is open.
func (o *Order) AnswerOffer(now time.Time, accept bool, note string) error {
	if o.status != StatusPendingPayment {
		return o.illegal("answer an offer on")
	}
	if o.offer == nil || o.offer.Status != OfferOpen {
		return fmt.Errorf("%w: no offer is open", ErrIllegalTransition)
	}
	if o.openAttempt() != nil {
		return fmt.Errorf("%w: the buyer is paying; answer once the payment is over", ErrPaymentInProgress)
	}
	if !accept {
		if note == "" {
			return invalid("note", "declining an offer needs a note")
		}
		o.closeOffer(now, OfferDeclined, note)
		return nil
	}
	f := o.offer
	change, discount := PriceChange{Reason: "offer accepted"}, o.discount
	switch f.Kind {
	case OfferShippingFee:
		fee := f.Amount()
		change.ShippingFee = &fee
	case OfferTotal:
		discount = o.ItemsTotal() - o.CouponDiscount() + o.shippingFee - f.AmountMinor
	}
	o.closeOffer(now, OfferAccepted, note)
	return o.adjustPrice(now, change, discount, "buyer:"+o.buyerID)
}

// closeOffer ends an open offer, if any, with status.
func (o *Order) closeOffer(now time.Time, status OfferStatus, why string) {
	if o.offer == nil || o.offer.Status != OfferOpen {
		return
	}
	o.offer.Status, o.offer.AnsweredAt, o.offer.Answer = status, now, why
	delete(o.deadlines, DeadlineOffer)
	actor := "seller:" + o.sellerID
	if status == OfferLapsed {
		actor = "system"
	}
	o.record(now, "offer_"+map[OfferStatus]string{OfferAccepted: "accepted", OfferDeclined: "declined", OfferLapsed: "lapsed"}[status], actor, why, nil)
}
