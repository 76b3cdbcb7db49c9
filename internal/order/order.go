// Package order is Souk's order domain: the Order aggregate, its lifecycle
// and its rules. It is pure: no transport, no storage and no clock reads —
// every method that needs the time is given it.
package order

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Status is where an order stands in its lifecycle.
type Status string

// The statuses of an order.
const (
	StatusPendingPayment    Status = "PENDING_PAYMENT"
	StatusPaymentProcessing Status = "PAYMENT_PROCESSING"
	StatusAwaitingShipment  Status = "AWAITING_SHIPMENT"
	StatusShipped           Status = "SHIPPED"
	StatusDisputed          Status = "DISPUTED"
	StatusCompleted         Status = "COMPLETED"
	StatusCancelled         Status = "CANCELLED"
)

// Statuses lists every status, in lifecycle order.
var Statuses = []Status{
	StatusPendingPayment, StatusPaymentProcessing, StatusPartiallyPaid, StatusAwaitingShipment,
	StatusShipped, StatusDisputed, StatusCompleted, StatusCancelled,
}

// DeadlineKind names a deadline an order can have open.
type DeadlineKind string

// The deadline kinds.
const (
	// DeadlinePayment is the payment window of an unpaid order; when it passes
	// the order is cancelled with reason payment_timeout.
	DeadlinePayment DeadlineKind = "payment"
	// DeadlineVerification is how long a payment attempt may wait for its
	// one-time code; when it passes the attempt fails.
	DeadlineVerification DeadlineKind = "verification"
	// DeadlineProcessing is how long an asynchronous payment may stay
	// unconfirmed; when it passes the attempt fails and the order waits for
	// payment again.
	DeadlineProcessing DeadlineKind = "processing"
	// DeadlineCancelAnswer is the seller's window to answer a cancellation
	// request; silence accepts it.
	DeadlineCancelAnswer DeadlineKind = "cancel_answer"
	// DeadlineShipBy is when a paid order must have shipped; when it passes
	// the order is cancelled (the seller's fault) and refunded.
	DeadlineShipBy DeadlineKind = "ship_by"
	// DeadlineProtection is the end of buyer protection of a shipped order;
	// when it passes the order completes.
	DeadlineProtection DeadlineKind = "protection"
	// DeadlineDisputeAnswer is the window for the other side's answer in a
	// dispute (the seller's, or the buyer's to a counter-offer); when it
	// passes the dispute goes to the platform.
	DeadlineDisputeAnswer DeadlineKind = "dispute_answer"
	// DeadlineOffer is how long a buyer's offer waits for the seller's
	// answer (at most until the payment window ends); then it lapses.
	DeadlineOffer DeadlineKind = "offer"
)

// DeadlineKinds lists every deadline kind.
var DeadlineKinds = []DeadlineKind{DeadlinePayment, DeadlineVerification, DeadlineProcessing,
	DeadlineCancelAnswer, DeadlineShipBy, DeadlineProtection, DeadlineDisputeAnswer, DeadlineOffer,
	DeadlineRemindPayment, DeadlineRemindCancelAnswer, DeadlineRemindShipBy, DeadlineRemindDisputeAnswer,
	DeadlinePart, DeadlineRemindPart}

// Cancellation reasons set by the system.
const (
	ReasonPaymentTimeout = "payment_timeout"
	ReasonShipByMissed   = "not_shipped_in_time"
)

// Item is one product in an order.
type Item struct {
	ProductID string
	Title     string
	Quantity  int64
	// UnitPrice is in minor units of the order's currency.
	UnitPrice int64
	// Discounts are the coupons' shares of the line, in the order they
	// were applied (the store's, then the platform's).
	Discounts []Discount
	// RefundedUnits of the line were refunded (RefundItems), for Refunded
	// in all.
	RefundedUnits int64
	Refunded      int64
}

// Subtotal is UnitPrice × Quantity; New and AdjustPrice keep it in range.
func (i Item) Subtotal() int64 { return i.UnitPrice * i.Quantity }

// Off is what the line's coupons take off it.
func (i Item) Off() int64 {
	var off int64
	for _, d := range i.Discounts {
		off += d.Amount
	}
	return off
}

// Net is what the line costs after its coupons.
func (i Item) Net() int64 { return i.Subtotal() - i.Off() }

// Shipment is how and when an order was shipped.
type Shipment struct {
	Carrier        string
	TrackingNumber string
	TrackingURL    string
	ShippedAt      time.Time
}

// PriceAdjustment is the detail of a "price_adjusted" event.
// It is kept with its event as JSON.
type PriceAdjustment struct {
	OldTotal       int64  `json:"old_total"`
	NewTotal       int64  `json:"new_total"`
	OldShippingFee int64  `json:"old_shipping_fee"`
	NewShippingFee int64  `json:"new_shipping_fee"`
	Reason         string `json:"reason"`
	// ProposedBy is who proposed the change when the seller accepted it
	// ("buyer:<id>" for an offer); empty for the seller's own.
	ProposedBy string `json:"proposed_by,omitempty"`
}

// Event is one entry of an order's history. Written in the same transaction
// as the change it records, it is also the outbox the event stream publishes.
type Event struct {
	Sequence   int64
	Kind       string
	Actor      string
	OccurredAt time.Time
	Note       string
	Adjustment *PriceAdjustment
	// Detail is the rest of what the event feed tells of it, for the kinds
	// that have more than a note; nil for the others.
	Detail *Detail
}

// Detail is the kind-specific part of an event beyond its note: the amount
// of a payment, a refund or an offer, the message of a message event. It is
// kept with its event as JSON.
type Detail struct {
	Amount    int64    `json:"amount,omitempty"`
	RefundID  string   `json:"refund_id,omitempty"`
	AttemptID string   `json:"attempt_id,omitempty"`
	Method    string   `json:"method,omitempty"`
	OfferKind string   `json:"offer_kind,omitempty"`
	MessageID string   `json:"message_id,omitempty"`
	Text      string   `json:"text,omitempty"`
	Links     []string `json:"links,omitempty"`
	// Coupon is the code of a coupon_* event's coupon, CouponID its id.
	Coupon   string `json:"coupon,omitempty"`
	CouponID string `json:"coupon_id,omitempty"`
	// Currency is Amount's when it is not the order's (a payment or a
	// refund in the buyer's currency).
	Currency string `json:"currency,omitempty"`
	// Credited is what a payment credits the store, in the order's
	// currency, when the buyer paid in another.
	Credited int64 `json:"credited,omitempty"`
}

// moneyDetail is a payment's or refund's amount as an event's detail:
// its currency named when it is not the order's.
func (o *Order) moneyDetail(m Money) Detail {
	d := Detail{Amount: m.Amount}
	if m.Currency != o.currency {
		d.Currency = m.Currency
	}
	return d
}

// Order is what one buyer bought from one seller in one checkout.
type Order struct {
	id          string
	checkoutID  string
	buyerID     string
	sellerID    string
	status      Status
	currency    string
	items       []Item
	shippingFee int64
	// discount is taken off items and shipping: an accepted offer of a
	// lower total.
	discount     int64
	handlingDays int
	// protectionDays is the buyer protection the order keeps from checkout.
	protectionDays int
	version        int64
	// prior holds the deadlines the order had before its last stored
	// change, when the store says so.
	prior        map[DeadlineKind]time.Time
	createdAt    time.Time
	updatedAt    time.Time
	cancelReason string
	lastDecline  Decline
	// paymentDueAt is the end of the payment window. It outlives the
	// payment deadline: a payment that fails after the window passed (it
	// was being checked, or its capture was refused) cancels the order then.
	paymentDueAt time.Time
	// paidAttemptID is the attempt that paid the order; refunds draw on it.
	paidAttemptID string
	shipment      *Shipment
	deadlines     map[DeadlineKind]time.Time
	attempts      []Attempt
	refunds       []Refund
	// cancelledBy is who a cancellation is attributed to (it feeds the
	// seller's cancellation rate).
	cancelledBy  Party
	cancellation *CancellationRequest
	dispute      *Dispute
	offer        *Offer
	// coupons are the coupons the order's lines use, with where each
	// stands.
	coupons []CouponHold
	// quote prices the order in the buyer's currency; nil: the buyer pays
	// in the store's.
	quote *Quote
	// schedule is the order's payment plan; nil: it is paid at once.
	schedule *Schedule

	history []Event
	// lastSeq is the sequence of the last stored event (the history may
	// not have been loaded).
	lastSeq     int64
	newEvents   []Event
	newMessages []Message
	// releaseStock is set when a change gives the order's stock back; the
	// store does so in the same transaction.
	releaseStock bool
}

// NewOrderParams is what New needs to create an order.
type NewOrderParams struct {
	ID           string
	CheckoutID   string
	BuyerID      string
	SellerID     string
	Currency     string
	Items        []Item
	ShippingFee  int64
	HandlingDays int
	// ProtectionDays is the buyer protection after shipping (the longest of
	// the products'); 0 means the default, 60.
	ProtectionDays int
	PaymentWindow  time.Duration
	Now            time.Time
	// Coupons are the coupons the items' discounts come from (ApplyCoupons).
	Coupons []Coupon
	// Quote, if the buyer pays in another currency than Currency, fixes
	// the rate (its Base is Currency).
	Quote *Quote
	// Plan, if the order is paid in parts, is its products' payment plan
	// as stated at checkout.
	Plan *Plan
}

// New validates p and returns a PENDING_PAYMENT order with its payment
// deadline open.
func New(p NewOrderParams) (*Order, error) {
	switch {
	case p.ID == "" || p.CheckoutID == "" || p.BuyerID == "" || p.SellerID == "":
		return nil, fmt.Errorf("%w: order, checkout, buyer and seller ids are required", ErrInvalid)
	case len(p.Currency) != 3:
		return nil, fmt.Errorf("%w: currency %q is not an ISO 4217 code", ErrInvalid, p.Currency)
	case len(p.Items) == 0:
		return nil, fmt.Errorf("%w: an order needs at least one item", ErrInvalid)
	case p.PaymentWindow <= 0:
		return nil, fmt.Errorf("%w: the payment window must be positive", ErrInvalid)
	case p.ProtectionDays < 0:
		return nil, fmt.Errorf("%w: the protection period cannot be negative", ErrInvalid)
	}
	if p.ProtectionDays == 0 {
		p.ProtectionDays = DefaultProtectionDays
	}
	if q := p.Quote; q != nil && (q.Base != p.Currency || len(q.Currency) != 3 || q.Rate.IsZero() || !q.ExpiresAt.After(p.Now)) {
		return nil, invalid("quote", "a quote from %s, valid at checkout, is needed", p.Currency)
	}
	seen := make(map[string]bool, len(p.Items))
	for _, it := range p.Items {
		if it.ProductID == "" || it.Quantity <= 0 || it.UnitPrice < 0 {
			return nil, fmt.Errorf("%w: item %q needs a positive quantity and a price", ErrInvalid, it.ProductID)
		}
		if seen[it.ProductID] {
			return nil, invalid("items", "product %s appears twice", it.ProductID)
		}
		seen[it.ProductID] = true
		for _, d := range it.Discounts {
			if d.Amount <= 0 || !slices.ContainsFunc(p.Coupons, func(c Coupon) bool { return c.ID == d.CouponID }) {
				return nil, invalid("items", "product %s has a discount of no coupon of the order", it.ProductID)
			}
		}
		if it.Off() > it.UnitPrice*it.Quantity {
			return nil, invalid("items", "the coupons take more than product %s costs", it.ProductID)
		}
	}
	o := &Order{
		id: p.ID, checkoutID: p.CheckoutID, buyerID: p.BuyerID, sellerID: p.SellerID,
		status: StatusPendingPayment, currency: p.Currency,
		items: slices.Clone(p.Items), shippingFee: p.ShippingFee, handlingDays: p.HandlingDays, protectionDays: p.ProtectionDays,
		createdAt: p.Now, updatedAt: p.Now, paymentDueAt: p.Now.Add(p.PaymentWindow),
		deadlines: map[DeadlineKind]time.Time{DeadlinePayment: p.Now.Add(p.PaymentWindow)},
	}
	total, err := o.checkedTotal(o.items, o.shippingFee, 0)
	if err != nil {
		return nil, err
	}
	if p.Plan != nil {
		o.schedule = &Schedule{Plan: *p.Plan}
		if err := o.reschedule(o.items, total); err != nil {
			return nil, err
		}
	}
	if p.Quote != nil && p.Quote.Currency != p.Currency {
		q := *p.Quote
		o.quote = &q
	}
	o.record(p.Now, "created", "buyer:"+p.BuyerID, "", nil)
	for _, c := range p.Coupons {
		o.coupons = append(o.coupons, CouponHold{Coupon: c, State: HoldReserved})
		o.recordCoupon(p.Now, "coupon_reserved", "buyer:"+p.BuyerID, c, "")
	}
	return o, nil
}

// ID returns the order's id.
func (o *Order) ID() string { return o.id }

// CheckoutID returns the checkout that created the order.
func (o *Order) CheckoutID() string { return o.checkoutID }

// BuyerID returns the buyer's id.
func (o *Order) BuyerID() string { return o.buyerID }

// SellerID returns the seller's id.
func (o *Order) SellerID() string { return o.sellerID }

// Status returns where the order stands.
func (o *Order) Status() Status { return o.status }

// Currency returns the ISO 4217 code every amount of the order is in.
func (o *Order) Currency() string { return o.currency }

// Items returns a copy of the order's items.
func (o *Order) Items() []Item { return slices.Clone(o.items) }

// ShippingFee returns the shipping fee in minor units.
func (o *Order) ShippingFee() int64 { return o.shippingFee }

// HandlingDays returns the seller's handling time for the order.
func (o *Order) HandlingDays() int { return o.handlingDays }

// DefaultProtectionDays is the buyer protection of an order whose products set none.
const DefaultProtectionDays = 60

// ProtectionDays returns the buyer protection the order keeps from checkout.
func (o *Order) ProtectionDays() int { return o.protectionDays }

// ItemsTotal returns the sum of the items' subtotals.
func (o *Order) ItemsTotal() int64 {
	var t int64
	for _, it := range o.items {
		t += it.Subtotal()
	}
	return t
}

// Discount returns what an accepted offer took off items and shipping.
func (o *Order) Discount() int64 { return o.discount }

// CouponDiscount returns what coupons take off the items.
func (o *Order) CouponDiscount() int64 {
	var off int64
	for _, it := range o.items {
		off += it.Off()
	}
	return off
}

// Total returns what the buyer pays: the items less their coupons, plus
// shipping, less an accepted offer's discount.
func (o *Order) Total() Money {
	return Money{Amount: o.ItemsTotal() - o.CouponDiscount() + o.shippingFee - o.discount, Currency: o.currency}
}

// Version returns the order's version, which every change increases by one.
func (o *Order) Version() int64 { return o.version }

// CreatedAt returns when the order was placed.
func (o *Order) CreatedAt() time.Time { return o.createdAt }

// UpdatedAt returns when the order last changed.
func (o *Order) UpdatedAt() time.Time { return o.updatedAt }

// CancelReason returns why the order was cancelled, if it was.
func (o *Order) CancelReason() string { return o.cancelReason }

// LastDecline returns the decline of the latest declined payment attempt.
func (o *Order) LastDecline() Decline { return o.lastDecline }

// PaymentDueAt returns the end of the order's payment window.
func (o *Order) PaymentDueAt() time.Time { return o.paymentDueAt }

// PaidAttemptID returns the payment attempt that paid the order ("" while unpaid).
func (o *Order) PaidAttemptID() string { return o.paidAttemptID }

// Shipment returns the shipment, or nil if the order has not shipped.
func (o *Order) Shipment() *Shipment { return o.shipment }

// Deadlines returns a copy of the open deadlines.
func (o *Order) Deadlines() map[DeadlineKind]time.Time { return maps.Clone(o.deadlines) }

// PriorDeadlines returns the deadlines the order had before the stored
// change it was returned from (none for a new order): what the keys that
// fire them were set for, so that only what changed is re-armed.
func (o *Order) PriorDeadlines() map[DeadlineKind]time.Time { return maps.Clone(o.prior) }

// SetPriorDeadlines records the deadlines the order had before the change
// the store just wrote.
func (o *Order) SetPriorDeadlines(d map[DeadlineKind]time.Time) { o.prior = maps.Clone(d) }

// ForgetPriorDeadline leaves a deadline out of PriorDeadlines: what fired
// it already took it out of Redis.
func (o *Order) ForgetPriorDeadline(kind DeadlineKind) { delete(o.prior, kind) }

// Attempts returns a copy of the payment attempts, oldest first.
func (o *Order) Attempts() []Attempt { return slices.Clone(o.attempts) }

// History returns the stored history followed by events not yet stored.
func (o *Order) History() []Event { return append(slices.Clone(o.history), o.newEvents...) }

// NewEvents returns the events recorded since the order was loaded; the
// store appends them to the history.
func (o *Order) NewEvents() []Event { return slices.Clone(o.newEvents) }

// ReleasesStock reports whether the latest change gives the order's stock back.
func (o *Order) ReleasesStock() bool { return o.releaseStock }

// record appends an event to the order's history and stamps the change.
func (o *Order) record(now time.Time, kind, actor, note string, adj *PriceAdjustment) {
	seq := o.lastSeq + int64(len(o.newEvents)) + 1
	o.newEvents = append(o.newEvents, Event{Sequence: seq, Kind: kind, Actor: actor, OccurredAt: now, Note: note, Adjustment: adj})
	o.updatedAt = now
	o.syncReminders(now)
}

// detail attaches d to the event just recorded.
func (o *Order) detail(d Detail) { o.newEvents[len(o.newEvents)-1].Detail = &d }

// checkedTotal computes items + shipping - discount, refusing amounts out
// of range and a discount larger than what it is taken from.
func (o *Order) checkedTotal(items []Item, shipping, discount int64) (int64, error) {
	total := shipping
	if total < 0 || total > MaxAmount {
		return 0, fmt.Errorf("%w: shipping fee out of range", ErrInvalid)
	}
	for _, it := range items {
		sub, err := mulAmount(it.UnitPrice, it.Quantity)
		if err != nil {
			return 0, fmt.Errorf("item %s: %w", it.ProductID, err)
		}
		if total, err = addAmount(total, sub-it.Off()); err != nil {
			return 0, err
		}
	}
	if discount > total {
		return 0, fmt.Errorf("%w: the prices would fall below the discount of the accepted offer (%d)", ErrInvalid, discount)
	}
	return total - discount, nil
}

func (o *Order) illegal(action string) error {
	return fmt.Errorf("%w: cannot %s an order that is %s", ErrIllegalTransition, action, o.status)
}

// cancel moves the order to CANCELLED, closing every deadline and open
// payment attempt and giving its stock back; by says whose fault it is.
func (o *Order) cancel(now time.Time, actor, reason string, by Party) {
	o.cancelledBy = by
	for i := range o.attempts {
		a := &o.attempts[i]
		if a.Open() {
			a.Status, a.UpdatedAt = AttemptCanceled, now
		}
		// An authorization the order no longer needs is released by its
		// refund (a void), not captured; one it keeps stays due for its
		// capture.
		if a.AwaitsCapture() && !o.keeps(reason, a.ID) {
			a.NextCaptureAt = time.Time{}
		}
	}
	o.closeOffer(now, OfferLapsed, "the order was cancelled")
	paid := len(o.payments()) > 0
	o.status = StatusCancelled
	o.cancelReason = reason
	clear(o.deadlines)
	o.voidParts()
	o.releaseStock = true
	o.record(now, "cancelled", actor, reason, nil)
	if !paid {
		o.releaseCoupons(now)
	}
}

// Cancel cancels an unpaid order at the buyer's request. It needs no
// approval; an attempt waiting for its one-time code is abandoned, but one
// the provider is deciding refuses the cancellation.
func (o *Order) Cancel(now time.Time, buyerID, reason string) error {
	if o.status != StatusPendingPayment {
		return o.illegal("cancel")
	}
	if a := o.openAttempt(); a != nil && a.Status == AttemptProcessing {
		return fmt.Errorf("%w: wait for it to finish before cancelling", ErrPaymentInProgress)
	}
	o.cancel(now, "buyer:"+buyerID, reason, PartyBuyer)
	return nil
}

// FireDeadline carries out the action of a deadline of the given kind if it
// is open and due at now; otherwise it returns ErrNotDue and changes
// nothing, so firing a deadline twice is harmless.
func (o *Order) FireDeadline(now time.Time, kind DeadlineKind, pol Policy) error {
	due, ok := o.deadlines[kind]
	if !ok || now.Before(due) {
		return fmt.Errorf("%w: %s deadline of order %s", ErrNotDue, kind, o.id)
	}
	switch kind {
	case DeadlinePayment:
		// While the provider checks a payment, its own deadline governs;
		// if the payment fails after the window, the order is cancelled then.
		if o.status != StatusPendingPayment {
			delete(o.deadlines, kind)
			return nil
		}
		// An attempt still open is canceled with the order; if the
		// provider confirms it later, the payment is refunded.
		o.cancel(now, "system", ReasonPaymentTimeout, PartyBuyer)
		return nil
	case DeadlineVerification, DeadlineProcessing:
		delete(o.deadlines, kind)
		a := o.openAttempt()
		switch {
		case a == nil:
		case kind == DeadlineVerification && a.Status == AttemptRequiresVerification:
			a.Status, a.Decline, a.UpdatedAt = AttemptFailed, DeclineVerificationExpired, now
			o.reopen(now, "payment_failed", DeclineVerificationExpired)
		case kind == DeadlineProcessing && o.status == StatusPaymentProcessing:
			a.Status, a.Decline, a.UpdatedAt = AttemptFailed, DeclineProcessingTimeout, now
			o.reopen(now, "payment_failed", DeclineProcessingTimeout)
		}
		return nil
	case DeadlineCancelAnswer:
		delete(o.deadlines, kind)
		if o.cancellation != nil && o.cancellation.Status == RequestOpen {
			o.acceptCancellation(now, "system", RequestAutoAccepted, "the seller did not answer in time", pol)
		}
		return nil
	case DeadlineShipBy:
		delete(o.deadlines, kind)
		if o.status == StatusAwaitingShipment {
			o.closeCancellation(now, RequestAutoAccepted, "the order was not shipped in time")
			o.cancelPaid(now, "system", ReasonShipByMissed, PartySeller, pol)
		}
		return nil
	case DeadlineProtection:
		delete(o.deadlines, kind)
		if o.status == StatusShipped {
			o.status = StatusCompleted
			o.record(now, "completed", "system", "buyer protection ended", nil)
		}
		return nil
	case DeadlinePart:
		o.firePart(now, pol)
		return nil
	case DeadlineRemindPayment, DeadlineRemindCancelAnswer, DeadlineRemindShipBy, DeadlineRemindDisputeAnswer, DeadlineRemindPart:
		o.fireReminder(now, kind)
		return nil
	case DeadlineOffer:
		delete(o.deadlines, kind)
		o.closeOffer(now, OfferLapsed, "the seller did not answer in time")
		return nil
	case DeadlineDisputeAnswer:
		delete(o.deadlines, kind)
		if o.status == StatusDisputed && (o.dispute.Status == DisputeOpen || o.dispute.Status == DisputeCounterOffered) {
			o.escalate(now, "system", "no answer in time")
		}
		return nil
	}
	return fmt.Errorf("%w: unknown deadline kind %q", ErrInvalid, kind)
}

// PriceChange is a seller's new prices for an unpaid order: unit prices by
// product id, and optionally a new shipping fee.
type PriceChange struct {
	UnitPrices  map[string]Money
	ShippingFee *Money
	Reason      string
}

// AdjustPrice applies a seller's price change to an unpaid order with no
// payment attempt open, and records the old and new totals.
func (o *Order) AdjustPrice(now time.Time, c PriceChange) error {
	return o.adjustPrice(now, c, o.discount, "")
}

// adjustPrice applies c and a new discount; proposedBy names who proposed
// it (an offer's buyer), if not the seller.
func (o *Order) adjustPrice(now time.Time, c PriceChange, discount int64, proposedBy string) error {
	if o.status != StatusPendingPayment {
		return o.illegal("adjust the price of")
	}
	if o.openAttempt() != nil {
		return fmt.Errorf("%w: the price cannot change during a payment", ErrPaymentInProgress)
	}
	if c.Reason == "" {
		return invalid("reason", "a price adjustment needs a reason")
	}
	items := slices.Clone(o.items)
	for pid, price := range c.UnitPrices {
		i := slices.IndexFunc(items, func(it Item) bool { return it.ProductID == pid })
		if i < 0 {
			return fmt.Errorf("%w: product %s is not in order %s", ErrInvalid, pid, o.id)
		}
		if price.Currency != o.currency {
			return fmt.Errorf("%w: the order is in %s, not %s", ErrInvalid, o.currency, price.Currency)
		}
		items[i].UnitPrice = price.Amount
	}
	items = o.resplit(items)
	shipping := o.shippingFee
	if c.ShippingFee != nil {
		if c.ShippingFee.Currency != o.currency {
			return fmt.Errorf("%w: the order is in %s, not %s", ErrInvalid, o.currency, c.ShippingFee.Currency)
		}
		shipping = c.ShippingFee.Amount
	}
	newTotal, err := o.checkedTotal(items, shipping, discount)
	if err != nil {
		return err
	}
	if err := o.reschedule(items, newTotal); err != nil {
		return err
	}
	adj := &PriceAdjustment{
		OldTotal: o.Total().Amount, NewTotal: newTotal,
		OldShippingFee: o.shippingFee, NewShippingFee: shipping, Reason: c.Reason, ProposedBy: proposedBy,
	}
	o.items, o.shippingFee, o.discount = items, shipping, discount
	o.record(now, "price_adjusted", "seller:"+o.sellerID, c.Reason, adj)
	return nil
}

// UnmarshalFromDatabase rebuilds an order from its stored fields. Only the
// store calls it; it trusts what was validated when the order was written.
func UnmarshalFromDatabase(s Stored) *Order {
	deadlines := maps.Clone(s.Deadlines)
	if deadlines == nil {
		deadlines = map[DeadlineKind]time.Time{}
	}
	lastSeq := s.LastSequence
	if n := len(s.History); n > 0 {
		lastSeq = max(lastSeq, s.History[n-1].Sequence)
	}
	return &Order{
		lastSeq: lastSeq,
		id:      s.ID, checkoutID: s.CheckoutID, buyerID: s.BuyerID, sellerID: s.SellerID,
		status: s.Status, currency: s.Currency, items: slices.Clone(s.Items), shippingFee: s.ShippingFee,
		handlingDays: s.HandlingDays, protectionDays: s.ProtectionDays, version: s.Version, createdAt: s.CreatedAt, updatedAt: s.UpdatedAt,
		cancelReason: s.CancelReason, lastDecline: s.LastDecline, shipment: s.Shipment,
		paymentDueAt: s.PaymentDueAt, paidAttemptID: s.PaidAttemptID, deadlines: deadlines, attempts: slices.Clone(s.Attempts), refunds: slices.Clone(s.Refunds),
		history: slices.Clone(s.History), cancelledBy: s.CancelledBy, cancellation: cloneCancellation(s.Cancellation),
		dispute: cloneDispute(s.Dispute), offer: cloneOffer(s.Offer), discount: s.Discount, coupons: slices.Clone(s.Coupons),
		quote: cloneQuote(s.Quote), schedule: cloneSchedule(s.Schedule),
	}
}

func cloneQuote(q *Quote) *Quote {
	if q == nil {
		return nil
	}
	c := *q
	return &c
}

// Stored is an order's fields as the store keeps them.
type Stored struct {
	ID, CheckoutID, BuyerID, SellerID string
	Status                            Status
	Currency                          string
	Items                             []Item
	ShippingFee                       int64
	HandlingDays                      int
	ProtectionDays                    int
	Version                           int64
	CreatedAt, UpdatedAt              time.Time
	CancelReason                      string
	LastDecline                       Decline
	PaymentDueAt                      time.Time
	PaidAttemptID                     string
	Shipment                          *Shipment
	Deadlines                         map[DeadlineKind]time.Time
	Attempts                          []Attempt
	Refunds                           []Refund
	History                           []Event
	// LastSequence is the sequence of the last stored event; a store that
	// leaves the history out (a batch of deadlines) sets it instead.
	LastSequence int64
	CancelledBy  Party
	Cancellation *CancellationRequest
	Dispute      *Dispute
	Offer        *Offer
	Discount     int64
	// Coupons are the coupons the order holds; the store reads each one's
	// State and Shared under a lock of the checkout's redemption.
	Coupons []CouponHold
	// Quote prices the order in the buyer's currency (nil: the store's).
	Quote *Quote
	// Schedule is the order's payment plan (nil: paid at once).
	Schedule *Schedule
}

// Stored returns the order's fields as the store keeps them, with the
// history including the events not yet stored.
func (o *Order) Stored() Stored {
	return Stored{
		ID: o.id, CheckoutID: o.checkoutID, BuyerID: o.buyerID, SellerID: o.sellerID,
		Status: o.status, Currency: o.currency, Items: slices.Clone(o.items), ShippingFee: o.shippingFee,
		HandlingDays: o.handlingDays, ProtectionDays: o.protectionDays, Version: o.version, CreatedAt: o.createdAt, UpdatedAt: o.updatedAt,
		CancelReason: o.cancelReason, LastDecline: o.lastDecline, Shipment: o.shipment,
		PaymentDueAt: o.paymentDueAt, PaidAttemptID: o.paidAttemptID, Deadlines: maps.Clone(o.deadlines), Attempts: slices.Clone(o.attempts), Refunds: slices.Clone(o.refunds),
		History: o.History(), LastSequence: o.lastSeq, CancelledBy: o.cancelledBy, Cancellation: cloneCancellation(o.cancellation),
		Dispute: cloneDispute(o.dispute), Offer: cloneOffer(o.offer), Discount: o.discount, Coupons: slices.Clone(o.coupons),
		Quote: cloneQuote(o.quote), Schedule: cloneSchedule(o.schedule),
	}
}
