package order

import (
	"fmt"
	"slices"
	"time"
)

// StatusPartiallyPaid is an order paid in parts with some of them paid: it
// waits for the rest and cannot ship until it has them.
const StatusPartiallyPaid Status = "PARTIALLY_PAID"

// The deadlines of an order paid in parts.
const (
	// DeadlinePart is the next part's due date; when it passes, the part
	// is past due for the plan's grace period, and when that passes too the
	// order is cancelled (balance_unpaid).
	DeadlinePart DeadlineKind = "part_due"
	// DeadlineRemindPart reminds the buyer of the next part.
	DeadlineRemindPart DeadlineKind = "remind_part_due"
)

// ReasonBalanceUnpaid cancels an order whose part was not paid in time.
const ReasonBalanceUnpaid = "balance_unpaid"

// Schedule returns the order's payment plan and its parts, or nil when it
// is paid at once.
func (o *Order) Schedule() *Schedule { return cloneSchedule(o.schedule) }

// PartsDue are the parts' amounts in the currency the buyer pays, in the
// schedule's order, under the order's current quote: each part converted
// on its own, the last taking what the presented total leaves, so that
// they sum to it. A part paid under an earlier quote was charged what its
// attempt says. Nil without a schedule.
func (o *Order) PartsDue() []Money {
	if o.schedule == nil {
		return nil
	}
	q, total := o.rate(), o.Total().Amount
	if o.quote != nil {
		total = o.Presented().Total
	}
	parts := o.schedule.Parts
	out := make([]Money, len(parts))
	for i, p := range parts {
		out[i] = Money{Amount: q.Convert(p.Amount), Currency: q.Currency}
		if i == len(parts)-1 {
			out[i].Amount = total
		}
		total -= out[i].Amount
	}
	return out
}

// credit is what a payment the order keeps credits the store, in the
// order's currency: the part it paid, or the whole order; nothing for one
// it does not keep (late, or after cancellation).
func (o *Order) credit(attemptID string) int64 {
	if p := o.partPaidBy(attemptID); p != nil {
		return p.Amount
	}
	if attemptID != "" && attemptID == o.paidAttemptID {
		return o.Total().Amount
	}
	return 0
}

// paymentDetail attaches a payment's amount, method and (in the buyer's
// currency) the store's credit to the event just recorded.
func (o *Order) paymentDetail(a Attempt) {
	d := o.moneyDetail(a.Amount)
	d.AttemptID, d.Method = a.ID, string(a.Method)
	if d.Currency != "" {
		d.Credited = o.credit(a.ID)
	}
	o.detail(d)
}

// nextIndex is the index of the first part not paid (open or past due),
// or -1.
func (o *Order) nextIndex() int {
	if o.schedule == nil {
		return -1
	}
	return slices.IndexFunc(o.schedule.Parts, func(p Part) bool { return p.Status == PartOpen || p.Status == PartPastDue })
}

// nextPart is the first part not paid, or nil.
func (o *Order) nextPart() *Part {
	if i := o.nextIndex(); i >= 0 {
		return &o.schedule.Parts[i]
	}
	return nil
}

// Pays reports whether an attempt's money counts toward the order: it
// paid the order, or one of its parts.
func (o *Order) Pays(attemptID string) bool {
	if attemptID == "" {
		return false
	}
	if o.paidAttemptID == attemptID {
		return true
	}
	return o.partPaidBy(attemptID) != nil
}

// payCurrency is the currency the buyer pays in.
func (o *Order) payCurrency() string {
	if o.quote != nil {
		return o.quote.Currency
	}
	return o.currency
}

func (o *Order) partPaidBy(attemptID string) *Part {
	if o.schedule == nil {
		return nil
	}
	for i := range o.schedule.Parts {
		if p := &o.schedule.Parts[i]; p.Status == PartPaid && p.AttemptID == attemptID {
			return p
		}
	}
	return nil
}

// payments returns the attempts whose money the order holds, oldest
// first: the one that paid it, or those that paid its parts.
func (o *Order) payments() []Attempt {
	if o.schedule == nil {
		if a, ok := o.paidAttempt(); ok {
			return []Attempt{a}
		}
		return nil
	}
	var out []Attempt
	for _, p := range o.schedule.Parts {
		if a := o.attempt(p.AttemptID); p.Status == PartPaid && a != nil {
			out = append(out, *a)
		}
	}
	return out
}

// Paid returns what the buyer has paid toward the order (before refunds),
// in the currency charged.
func (o *Order) Paid() Money {
	m := Money{Currency: o.payCurrency()}
	for _, a := range o.payments() {
		m.Amount += a.Amount.Amount
	}
	return m
}

// refundable is what is left of the payments after their refunds.
func (o *Order) refundable() int64 {
	var n int64
	for _, a := range o.payments() {
		n += a.Amount.Amount - o.refunded(a.ID)
	}
	return n
}

// oweRefundDrawn owes amount back, drawn from the payments newest first,
// none more than is left of it.
func (o *Order) oweRefundDrawn(now time.Time, amount Money, reason string, pol Policy) {
	pays := o.payments()
	parts := make([]PaidPart, len(pays))
	for i, a := range pays {
		parts[i] = PaidPart{Seq: i, Captured: a.Amount.Amount, Refunded: o.refunded(a.ID)}
	}
	take, _ := Draw(parts, amount.Amount)
	for i := len(pays) - 1; i >= 0; i-- {
		if n := take[i]; n > 0 {
			o.oweRefundOf(now, pays[i], Money{Amount: n, Currency: amount.Currency}, reason, pol)
		}
	}
}

// unpaidStatus is where an order not (fully) paid waits: for its first
// payment, or for the rest of its parts.
func (o *Order) unpaidStatus() Status {
	if len(o.payments()) > 0 {
		return StatusPartiallyPaid
	}
	return StatusPendingPayment
}

// payPart records a success that pays the next part of a plan. It
// reports false when that part is the last: the order is then paid as
// one paid at once.
func (o *Order) payPart(now time.Time, a *Attempt) bool {
	p := o.nextPart()
	if p == nil {
		return false
	}
	p.Status, p.AttemptID, p.PaidAt = PartPaid, a.ID, now
	delete(o.deadlines, DeadlinePart)
	next := o.nextPart()
	if next == nil {
		return false
	}
	o.status = StatusPartiallyPaid
	o.armPart()
	o.record(now, "part_paid", "buyer:"+o.buyerID, fmt.Sprintf("part %d of %d (%s): %s by %s; part %d due %s", p.Seq,
		len(o.schedule.Parts), p.Kind, a.Amount, a.Method, next.Seq, next.DueAt.UTC().Format(time.RFC3339)), nil)
	o.paymentDetail(*a)
	return true
}

// armPart sets the deadline of the next part: its due date, or the end
// of its grace once it is past due.
func (o *Order) armPart() {
	p := o.nextPart()
	if p == nil || o.status != StatusPartiallyPaid {
		delete(o.deadlines, DeadlinePart)
		return
	}
	due := p.DueAt
	if p.Status == PartPastDue {
		due = due.Add(o.schedule.Plan.Grace)
	}
	o.deadlines[DeadlinePart] = due
}

// firePart carries out the next part's deadline: a part that falls due
// is past due for the grace period; one past due when that ends cancels
// the order. A part being paid (the provider checks it) waits for its
// answer: a failure then cancels the order if the grace has passed.
func (o *Order) firePart(now time.Time, pol Policy) {
	delete(o.deadlines, DeadlinePart)
	p := o.nextPart()
	if p == nil || o.status != StatusPartiallyPaid {
		return
	}
	end := p.DueAt.Add(o.schedule.Plan.Grace)
	// (A part already past due has its deadline at the grace's end.)
	if p.Status == PartOpen && now.Before(end) {
		p.Status = PartPastDue
		o.deadlines[DeadlinePart] = end
		o.record(now, "part_past_due", "system", fmt.Sprintf("part %d (%s) was due %s; the order is cancelled at %s unless it is paid",
			p.Seq, p.Kind, p.DueAt.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339)), nil)
		return
	}
	o.cancelUnpaidPart(now, pol)
}

// cancelUnpaidPart cancels an order whose part was not paid in time (the
// buyer's doing): every part paid is owed back, except a deposit the
// plan stated it keeps.
func (o *Order) cancelUnpaidPart(now time.Time, pol Policy) {
	o.nextPart().Status = PartPastDue
	pays := o.payments()
	o.cancel(now, "system", ReasonBalanceUnpaid, PartyBuyer)
	for _, a := range pays {
		if o.keeps(ReasonBalanceUnpaid, a.ID) {
			o.record(now, "deposit_kept", "system", fmt.Sprintf("%s kept, as the product stated at checkout", a.Amount), nil)
			o.paymentDetail(a)
			continue
		}
		o.oweRefund(now, a, ReasonBalanceUnpaid, pol)
	}
}

// keeps reports whether an order cancelled for reason keeps what attempt
// paid: only the deposit of a plan that keeps it when the balance goes
// unpaid. Everything else it was paid is owed back.
func (o *Order) keeps(reason, attemptID string) bool {
	if reason != ReasonBalanceUnpaid {
		return false
	}
	p := o.partPaidBy(attemptID)
	return p != nil && p.Kind == PartDeposit && o.schedule.Plan.KeepDeposit
}

// voidParts closes the parts a cancelled order will never be paid.
func (o *Order) voidParts() {
	if o.schedule == nil {
		return
	}
	for i := range o.schedule.Parts {
		if p := &o.schedule.Parts[i]; p.Status == PartOpen {
			p.Status = PartVoid
		}
	}
}

// unpayPart reopens the part an attempt paid (its capture was refused).
func (o *Order) unpayPart(attemptID string) {
	if p := o.partPaidBy(attemptID); p != nil {
		p.Status, p.AttemptID, p.PaidAt = PartOpen, "", time.Time{}
	}
}

// reschedule splits a changed total over the plan again (the seller's
// new price, an accepted offer), before any part is paid; the due dates
// stay as they were set at checkout.
func (o *Order) reschedule(items []Item, total int64) error {
	if o.schedule == nil {
		return nil
	}
	var off int64
	for _, it := range items {
		off += it.Off()
	}
	parts, err := o.schedule.Plan.Schedule(total+off, total, o.createdAt)
	if err != nil {
		return err
	}
	o.schedule.Parts = parts
	return nil
}
