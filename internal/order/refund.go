package order

import (
	"fmt"
	"slices"
	"time"
)

// RefundStatus is where a refund stands.
type RefundStatus string

// The statuses of a refund.
const (
	RefundPending    RefundStatus = "PENDING"
	RefundProcessing RefundStatus = "PROCESSING"
	RefundSucceeded  RefundStatus = "SUCCEEDED"
	RefundFailed     RefundStatus = "FAILED"
)

// Refund is money owed back to the buyer for a payment attempt. It is
// recorded in the same transaction as the change that owes it and carried
// out by the refund worker; its id is its idempotency key at the provider.
type Refund struct {
	ID          string
	AttemptID   string
	Amount      Money
	Method      Method
	ProviderRef string // the payment's reference at the provider
	Status      RefundStatus
	Reason      string
	DueAt       time.Time
	// Tries counts the worker's calls to the provider.
	Tries int
	// NextTryAt is when the worker may (re)try: the end of a lease, or of a back-off.
	NextTryAt time.Time
	// LastError is why the last try failed; for a FAILED refund, why the
	// provider refused it, which buyer and seller both see.
	LastError string
	RefundRef string // the refund's reference at the provider
	// SettledBy names the admin who recorded the refund as paid by other
	// means (a bank transfer, a voucher), with why in SettlementNote.
	SettledBy      string
	SettlementNote string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	CompletedAt    time.Time
	// FX is what a refund in the buyer's currency comes to in the store's;
	// zero for a refund in the store's currency.
	FX RefundFX
}

// RefundFX is a refund in the buyer's currency as the store's books see
// it. The store gives back its share of what the payment credited it (the
// refund's share of the payment, at the rate of the payment's quote):
// Debit. The platform pays the buyer back at the rate of the day the
// refund is paid: Cost, in the store's currency, at Rate (store currency
// per unit of the buyer's). The difference, Debit - Cost, is the
// platform's gain (a loss when negative). It is kept with the refund as
// JSON.
type RefundFX struct {
	Currency   string `json:"currency"`
	Debit      int64  `json:"debit"`
	Rate       string `json:"rate,omitempty"`
	Cost       int64  `json:"cost,omitempty"`
	Difference int64  `json:"difference,omitempty"`
}

// Refunds returns a copy of the order's refunds, oldest first.
func (o *Order) Refunds() []Refund { return append([]Refund(nil), o.refunds...) }

// oweRefund records that the attempt's amount is owed back, due
// pol.RefundBankingDays banking days from now.
func (o *Order) oweRefund(now time.Time, a Attempt, reason string, pol Policy) {
	o.oweRefundOf(now, a, a.Amount, reason, pol)
}

// oweRefundOf records that amount of the attempt is owed back, never more
// than what is left of it after the refunds already owed.
func (o *Order) oweRefundOf(now time.Time, a Attempt, amount Money, reason string, pol Policy) {
	amount.Amount = min(amount.Amount, a.Amount.Amount-o.refunded(a.ID))
	if amount.Amount <= 0 {
		return
	}
	o.refunds = append(o.refunds, Refund{
		AttemptID: a.ID, Amount: amount, Method: a.Method, ProviderRef: a.ProviderRef,
		Status: RefundPending, Reason: reason, DueAt: pol.Calendar.Add(now, pol.RefundBankingDays),
		NextTryAt: now, CreatedAt: now, UpdatedAt: now, FX: o.refundFX(a, amount),
	})
	o.record(now, "refund_owed", "system", fmt.Sprintf("%s owed back: %s", amount, reason), nil)
	d := o.moneyDetail(amount)
	d.AttemptID = a.ID
	o.detail(d)
}

func (o *Order) refund(id string) *Refund {
	for i := range o.refunds {
		if o.refunds[i].ID == id {
			return &o.refunds[i]
		}
	}
	return nil
}

// StartRefund hands a refund to a worker until now+pol.RefundLease. A
// refund that is done, or leased to another worker, returns ErrNotDue.
func (o *Order) StartRefund(now time.Time, id string, pol Policy) (Refund, error) {
	r := o.refund(id)
	if r == nil {
		return Refund{}, fmt.Errorf("%w: refund %s", ErrNotFound, id)
	}
	if (r.Status != RefundPending && r.Status != RefundProcessing) || now.Before(r.NextTryAt) {
		return Refund{}, fmt.Errorf("%w: refund %s is %s until %s", ErrNotDue, id, r.Status, r.NextTryAt)
	}
	r.Status, r.NextTryAt, r.UpdatedAt = RefundProcessing, now.Add(pol.RefundLease), now
	r.Tries++
	return *r, nil
}

// RefundRetryLater records a failed try and when to try again.
func (o *Order) RefundRetryLater(now time.Time, id string, at time.Time, reason string) error {
	r := o.refund(id)
	if r == nil || r.Status != RefundProcessing {
		return fmt.Errorf("%w: refund %s is not being processed", ErrIllegalTransition, id)
	}
	r.Status, r.NextTryAt, r.LastError, r.UpdatedAt = RefundPending, at, reason, now
	return nil
}

// refundFX is the store's debit for amount of a payment in the buyer's
// currency: its share of what the payment credited the store, figured on
// what is refunded of the payment in all (so that the debits of a payment
// refunded in full add up to its credit exactly). It is called before the
// refund is added.
func (o *Order) refundFX(a Attempt, amount Money) RefundFX {
	if amount.Currency == o.currency || a.Amount.Amount <= 0 {
		return RefundFX{}
	}
	credited := o.credit(a.ID) // nothing for a payment the order never kept
	before := o.refunded(a.ID)
	share := func(n int64) int64 { return mulDiv(n, credited, a.Amount.Amount, true) }
	return RefundFX{Currency: o.currency, Debit: share(before+amount.Amount) - share(before)}
}

// CompleteRefund records the provider's confirmation of a refund. today,
// for a refund in the buyer's currency, is the rate it was paid at (from
// the buyer's currency to the store's): the platform's difference is
// recorded with it.
func (o *Order) CompleteRefund(now time.Time, id, refundRef string, today *Quote) error {
	r := o.refund(id)
	if r == nil || r.Status != RefundProcessing {
		return fmt.Errorf("%w: refund %s is not being processed", ErrIllegalTransition, id)
	}
	if today != nil && r.FX.Currency != "" && today.Base == r.Amount.Currency && today.Currency == r.FX.Currency {
		r.FX.Rate, r.FX.Cost = today.Rate.String(), today.Convert(r.Amount.Amount)
		r.FX.Difference = r.FX.Debit - r.FX.Cost
	}
	r.Status, r.RefundRef, r.CompletedAt, r.UpdatedAt, r.LastError = RefundSucceeded, refundRef, now, now, ""
	o.record(now, "refund_succeeded", "system", fmt.Sprintf("%s refunded", r.Amount), nil)
	o.refundDetail(*r)
	return nil
}

// FailRefund records that the provider refused a refund for good.
func (o *Order) FailRefund(now time.Time, id, reason string) error {
	r := o.refund(id)
	if r == nil || r.Status != RefundProcessing {
		return fmt.Errorf("%w: refund %s is not being processed", ErrIllegalTransition, id)
	}
	r.Status, r.LastError, r.UpdatedAt = RefundFailed, reason, now
	o.record(now, "refund_failed", "system", reason, nil)
	o.refundDetail(*r)
	return nil
}

// RetryRefund hands a refund the provider refused for good back to the
// worker, as an admin asked (the cause was mended: a card reissued, an
// account reopened). It is refused if the payment's other refunds have
// since taken what it would pay back.
func (o *Order) RetryRefund(now time.Time, id, admin, note string) error {
	r, err := o.failedRefund(id)
	if err != nil {
		return err
	}
	if a, ok := o.Attempt(r.AttemptID); !ok || o.refunded(a.ID)+r.Amount.Amount > a.Amount.Amount {
		return fmt.Errorf("%w: the payment's other refunds leave less than %s to pay back", ErrIllegalTransition, r.Amount)
	}
	r.Status, r.NextTryAt, r.Tries, r.UpdatedAt = RefundPending, now, 0, now
	o.record(now, "refund_retried", "admin:"+admin, fmt.Sprintf("%s: %s", r.Amount, note), nil)
	o.refundDetail(*r)
	return nil
}

// SettleRefund records that a refund the provider refused for good was
// paid by other means, by whom and why: the money is no longer owed.
func (o *Order) SettleRefund(now time.Time, id, admin, note string) error {
	r, err := o.failedRefund(id)
	if err != nil {
		return err
	}
	r.Status, r.SettledBy, r.SettlementNote, r.CompletedAt, r.UpdatedAt = RefundSucceeded, "admin:"+admin, note, now, now
	o.record(now, "refund_settled", "admin:"+admin, fmt.Sprintf("%s paid by other means: %s", r.Amount, note), nil)
	o.refundDetail(*r)
	return nil
}

func (o *Order) failedRefund(id string) (*Refund, error) {
	r := o.refund(id)
	switch {
	case r == nil:
		return nil, fmt.Errorf("%w: refund %s on order %s", ErrNotFound, id, o.id)
	case r.Status != RefundFailed:
		return nil, fmt.Errorf("%w: refund %s is %s, not failed", ErrIllegalTransition, id, r.Status)
	}
	return r, nil
}

// CancelPaid cancels a paid order that has not shipped: its stock goes
// back and the payment is owed back. by says whose fault it is.
func (o *Order) CancelPaid(now time.Time, actor, reason string, by Party, pol Policy) error {
	if o.status != StatusAwaitingShipment && o.status != StatusPaymentProcessing && o.status != StatusPartiallyPaid {
		return o.illegal("cancel a paid order that is")
	}
	o.cancelPaid(now, actor, reason, by, pol)
	return nil
}

// cancelPaid cancels and owes back what is left of the payments the order
// holds (the one that paid it, or every part paid; other successes were
// owed back when they arrived); an attempt still being checked is
// canceled, and refunded if it succeeds later.
func (o *Order) cancelPaid(now time.Time, actor, reason string, by Party, pol Policy) {
	pays := o.payments()
	o.cancel(now, actor, reason, by)
	for _, a := range pays {
		o.oweRefund(now, a, reason, pol)
	}
}

// paidAttempt returns the attempt that paid the order.
func (o *Order) paidAttempt() (Attempt, bool) {
	if a := o.attempt(o.paidAttemptID); a != nil && o.paidAttemptID != "" {
		return *a, true
	}
	return Attempt{}, false
}

// refunded returns how much of an attempt is already owed or paid back.
func (o *Order) refunded(attemptID string) int64 {
	var n int64
	for _, r := range o.refunds {
		if r.AttemptID == attemptID && r.Status != RefundFailed {
			n += r.Amount.Amount
		}
	}
	return n
}

// RefundItems owes back units of some of a paid order's lines (units maps
// a product to how many): a seller who cannot send them all, or took them
// back. Each unit is refunded at its share of what the line cost after its
// coupons (the net divided by the quantity, rounded down), the last unit
// of a line carrying the rounding, so that a line refunded in full gives
// back exactly its net: a coupon is never paid out, and thresholds are not
// checked again. The net is the one the buyer paid, in the currency
// charged (a foreign buyer's converted line), and so is Item.Refunded.
// Never more than is left of the payment (with an accepted offer's
// discount, that is what bounds it). It returns what is owed.
func (o *Order) RefundItems(now time.Time, units map[string]int64, reason string, pol Policy) (Money, error) {
	if o.status != StatusAwaitingShipment && o.status != StatusShipped {
		return Money{}, o.illegal("refund items of")
	}
	if reason == "" {
		return Money{}, invalid("reason", "a refund of items needs a reason")
	}
	if len(units) == 0 {
		return Money{}, invalid("items", "name the items to refund")
	}
	pays := o.payments()
	if len(pays) == 0 {
		return Money{}, o.illegal("refund items of")
	}
	cur := pays[0].Amount.Currency
	items := slices.Clone(o.items)
	presented := o.Presented()
	var total int64
	for i := range items {
		it := &items[i]
		n, named := units[it.ProductID]
		if !named {
			continue
		}
		if n <= 0 || it.RefundedUnits+n > it.Quantity {
			return Money{}, invalid("items", "product %s: %d of %d units are refunded already; %d more cannot be", it.ProductID,
				it.RefundedUnits, it.Quantity, n)
		}
		net := presented.Lines[i].Net
		amount := net / it.Quantity * n
		if it.RefundedUnits+n == it.Quantity {
			amount = net - it.Refunded
		}
		it.RefundedUnits += n
		it.Refunded += amount
		total += amount
	}
	for pid := range units {
		if !slices.ContainsFunc(items, func(it Item) bool { return it.ProductID == pid }) {
			return Money{}, invalid("items", "product %s is not in order %s", pid, o.id)
		}
	}
	if left := o.refundable(); total > left {
		return Money{}, fmt.Errorf("%w: the items come to %s and only %d of the payment is left to refund", ErrIllegalTransition,
			Money{Amount: total, Currency: cur}, left)
	}
	o.items = items
	amount := Money{Amount: total, Currency: cur}
	if total > 0 {
		o.oweRefundDrawn(now, amount, reason, pol)
	}
	return amount, nil
}

// refundDetail attaches a refund's amount and ids to the event just recorded.
func (o *Order) refundDetail(r Refund) {
	d := o.moneyDetail(r.Amount)
	d.RefundID, d.AttemptID = r.ID, r.AttemptID
	o.detail(d)
}
