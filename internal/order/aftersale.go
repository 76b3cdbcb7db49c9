package order

import (
	"fmt"
	"slices"
	"time"
)

// Party is a side of an order, to whom something is attributed.
type Party string

// The parties.
const (
	PartyBuyer    Party = "buyer"
	PartySeller   Party = "seller"
	PartyPlatform Party = "platform"
)

// CancelReasons are the reasons a buyer may give for a cancellation request
// after payment, each attributed to the buyer or the seller: a
// seller-attributed cancellation counts against the seller's rate.
var CancelReasons = map[string]Party{
	"no_longer_needed":        PartyBuyer,
	"wrong_size_or_colour":    PartyBuyer,
	"found_better_price":      PartyBuyer,
	"shipping_takes_too_long": PartySeller,
	"seller_asked_to_cancel":  PartySeller,
	"other":                   PartyBuyer,
}

// RequestStatus is where a cancellation request stands.
type RequestStatus string

// The statuses of a cancellation request.
const (
	RequestOpen         RequestStatus = "OPEN"
	RequestAccepted     RequestStatus = "ACCEPTED"
	RequestAutoAccepted RequestStatus = "AUTO_ACCEPTED"
	RequestRejected     RequestStatus = "REJECTED"
	RequestWithdrawn    RequestStatus = "WITHDRAWN"
)

// CancellationRequest is a buyer's request to cancel a paid order, which
// the seller answers.
type CancellationRequest struct {
	Reason      string
	Note        string
	AttributeTo Party
	Status      RequestStatus
	RequestedAt time.Time
	AnsweredAt  time.Time
	Answer      string
}

func cloneCancellation(c *CancellationRequest) *CancellationRequest {
	if c == nil {
		return nil
	}
	cp := *c
	return &cp
}

// Cancellation returns the latest cancellation request, or nil.
func (o *Order) Cancellation() *CancellationRequest { return cloneCancellation(o.cancellation) }

// CancelledBy returns to whom the order's cancellation is attributed.
func (o *Order) CancelledBy() Party { return o.cancelledBy }

// RequestCancellation opens a buyer's cancellation request on a paid order
// that has not shipped; the seller must answer within the policy's window.
func (o *Order) RequestCancellation(now time.Time, reason, note string, pol Policy) error {
	if o.status != StatusPaymentProcessing && o.status != StatusAwaitingShipment && o.status != StatusPartiallyPaid {
		return o.illegal("request the cancellation of")
	}
	by, ok := CancelReasons[reason]
	if !ok {
		return invalid("reason", "unknown cancellation reason %q", reason)
	}
	if reason == "other" && note == "" {
		return invalid("note", "the reason \"other\" needs a note")
	}
	if o.cancellation != nil && o.cancellation.Status == RequestOpen {
		return fmt.Errorf("%w: a cancellation request is already open", ErrIllegalTransition)
	}
	o.cancellation = &CancellationRequest{Reason: reason, Note: note, AttributeTo: by, Status: RequestOpen, RequestedAt: now}
	o.deadlines[DeadlineCancelAnswer] = now.Add(pol.CancelAnswerWindow)
	o.record(now, "cancellation_requested", "buyer:"+o.buyerID, reason+notePart(note), nil)
	return nil
}

func notePart(note string) string {
	if note == "" {
		return ""
	}
	return ": " + note
}

func (o *Order) openCancellation() error {
	if o.status != StatusPaymentProcessing && o.status != StatusAwaitingShipment && o.status != StatusPartiallyPaid {
		return o.illegal("answer a cancellation request of")
	}
	if o.cancellation == nil || o.cancellation.Status != RequestOpen {
		return fmt.Errorf("%w: no cancellation request is open", ErrIllegalTransition)
	}
	return nil
}

// WithdrawCancellation closes the buyer's open request; the order carries on.
func (o *Order) WithdrawCancellation(now time.Time) error {
	if err := o.openCancellation(); err != nil {
		return err
	}
	o.closeCancellation(now, RequestWithdrawn, "")
	o.record(now, "cancellation_withdrawn", "buyer:"+o.buyerID, "", nil)
	return nil
}

// closeCancellation closes an open request, if any, with status.
func (o *Order) closeCancellation(now time.Time, status RequestStatus, answer string) {
	if o.cancellation == nil || o.cancellation.Status != RequestOpen {
		return
	}
	o.cancellation.Status, o.cancellation.AnsweredAt, o.cancellation.Answer = status, now, answer
	delete(o.deadlines, DeadlineCancelAnswer)
}

// AnswerCancellation is the seller's answer to an open request: accepting
// cancels the order (stock back, payment owed back); rejecting needs a note
// and the order carries on.
func (o *Order) AnswerCancellation(now time.Time, accept bool, note string, pol Policy) error {
	if err := o.openCancellation(); err != nil {
		return err
	}
	if accept {
		o.acceptCancellation(now, "seller:"+o.sellerID, RequestAccepted, note, pol)
		return nil
	}
	if note == "" {
		return invalid("note", "rejecting a cancellation request needs a note for the buyer")
	}
	o.closeCancellation(now, RequestRejected, note)
	o.record(now, "cancellation_rejected", "seller:"+o.sellerID, note, nil)
	return nil
}

func (o *Order) acceptCancellation(now time.Time, actor string, status RequestStatus, note string, pol Policy) {
	c := o.cancellation
	o.closeCancellation(now, status, note)
	o.record(now, "cancellation_accepted", actor, note, nil)
	o.cancelPaid(now, actor, c.Reason, c.AttributeTo, pol)
}

// Ship records the shipment of a paid order and starts buyer protection.
// A seller must answer an open cancellation request first.
func (o *Order) Ship(now time.Time, s Shipment, pol Policy) error {
	if o.status == StatusPartiallyPaid {
		return fmt.Errorf("%w: the order is paid in parts and %s is paid so far; ship once every part is paid", ErrIllegalTransition, o.Paid())
	}
	if o.status != StatusAwaitingShipment {
		return o.illegal("ship")
	}
	if o.cancellation != nil && o.cancellation.Status == RequestOpen {
		return fmt.Errorf("%w: answer the buyer's cancellation request before shipping", ErrIllegalTransition)
	}
	pays := o.payments()
	if len(pays) == 0 {
		return fmt.Errorf("%w: the order is not paid", ErrIllegalTransition)
	}
	for _, a := range pays {
		if !a.Captured {
			return fmt.Errorf("%w: the payment is not captured yet; ship once it is", ErrIllegalTransition)
		}
	}
	if s.Carrier == "" || s.TrackingNumber == "" {
		return fmt.Errorf("%w: carrier and tracking number are required", ErrInvalid)
	}
	s.ShippedAt = now
	o.shipment = &s
	o.status = StatusShipped
	delete(o.deadlines, DeadlineShipBy)
	o.deadlines[DeadlineProtection] = now.Add(time.Duration(max(o.protectionDays, 1)) * pol.ProtectionDay)
	o.record(now, "shipped", "seller:"+o.sellerID, s.Carrier+" "+s.TrackingNumber, nil)
	return nil
}

// ConfirmReceipt completes a shipped order at the buyer's word.
func (o *Order) ConfirmReceipt(now time.Time) error {
	if o.status != StatusShipped {
		return o.illegal("confirm receipt of")
	}
	o.status = StatusCompleted
	delete(o.deadlines, DeadlineProtection)
	o.record(now, "completed", "buyer:"+o.buyerID, "receipt confirmed", nil)
	return nil
}

// MaxExtensionDays bounds one extension of buyer protection.
const MaxExtensionDays = 90

// ExtendProtection moves the end of buyer protection of a shipped order
// days later, at the seller's word.
func (o *Order) ExtendProtection(now time.Time, days int, reason string, pol Policy) error {
	if o.status != StatusShipped {
		return o.illegal("extend the protection of")
	}
	if days < 1 || days > MaxExtensionDays {
		return invalid("days", "an extension is 1 to %d days", MaxExtensionDays)
	}
	o.deadlines[DeadlineProtection] = o.deadlines[DeadlineProtection].Add(time.Duration(days) * pol.ProtectionDay)
	o.record(now, "protection_extended", "seller:"+o.sellerID, fmt.Sprintf("%d days%s", days, notePart(reason)), nil)
	return nil
}

// AskProtectionExtension records a buyer's request that the seller extend
// buyer protection; the seller decides with ExtendProtection.
func (o *Order) AskProtectionExtension(now time.Time, days int, note string) error {
	if o.status != StatusShipped {
		return o.illegal("ask for more protection time on")
	}
	if days < 1 || days > MaxExtensionDays {
		return invalid("days", "an extension is 1 to %d days", MaxExtensionDays)
	}
	o.record(now, "protection_extension_asked", "buyer:"+o.buyerID, fmt.Sprintf("%d days%s", days, notePart(note)), nil)
	return nil
}

// DisputeReasons are the reasons a buyer may open a dispute for.
var DisputeReasons = []string{"no_tracking_information", "not_received", "not_as_described", "damaged", "other"}

// DisputeStatus is where a dispute stands.
type DisputeStatus string

// The statuses of a dispute.
const (
	DisputeOpen           DisputeStatus = "OPEN"
	DisputeCounterOffered DisputeStatus = "COUNTER_OFFERED"
	DisputeEscalated      DisputeStatus = "ESCALATED"
	DisputeResolved       DisputeStatus = "RESOLVED"
	DisputeWithdrawn      DisputeStatus = "WITHDRAWN"
)

// Evidence is what one side shows in a dispute: text and links to images.
type Evidence struct {
	Party Party
	Text  string
	Links []string
	// MessageIDs are messages of the order's conversation the evidence
	// cites (the caller checks they are the order's).
	MessageIDs []string `json:",omitempty"`
	At         time.Time
}

// Dispute is a buyer's claim on a shipped order.
type Dispute struct {
	Reason          string
	RequestedAmount Money
	Status          DisputeStatus
	CounterAmount   Money
	// RefundAmount is what the resolution pays back (zero: nothing).
	RefundAmount Money
	Resolution   string
	Evidence     []Evidence
	OpenedAt     time.Time
	ResolvedAt   time.Time
	// ProtectionEnd is when buyer protection was to end when the dispute
	// opened; withdrawing the dispute restores it.
	ProtectionEnd time.Time
}

func cloneDispute(d *Dispute) *Dispute {
	if d == nil {
		return nil
	}
	cp := *d
	cp.Evidence = slices.Clone(d.Evidence)
	return &cp
}

// Dispute returns the order's dispute, or nil.
func (o *Order) Dispute() *Dispute { return cloneDispute(o.dispute) }

// OpenDispute opens a buyer's dispute on a shipped order, asking for
// amount back (up to what was paid); the seller must answer in time.
func (o *Order) OpenDispute(now time.Time, reason string, amount Money, ev Evidence, pol Policy) error {
	if o.status != StatusShipped {
		return o.illegal("open a dispute on")
	}
	if !slices.Contains(DisputeReasons, reason) {
		return invalid("reason", "unknown dispute reason %q", reason)
	}
	if err := o.checkRefundAmount(amount, false); err != nil {
		return err
	}
	ev.Party, ev.At = PartyBuyer, now
	o.dispute = &Dispute{Reason: reason, RequestedAmount: amount, Status: DisputeOpen, OpenedAt: now,
		Evidence: []Evidence{ev}, ProtectionEnd: o.deadlines[DeadlineProtection]}
	o.status = StatusDisputed
	delete(o.deadlines, DeadlineProtection)
	o.deadlines[DeadlineDisputeAnswer] = now.Add(pol.DisputeAnswerWindow)
	o.record(now, "dispute_opened", "buyer:"+o.buyerID, fmt.Sprintf("%s, asking %s back", reason, amount), nil)
	return nil
}

// checkRefundAmount checks an amount can be paid back from what was paid
// (zero only when allowZero).
func (o *Order) checkRefundAmount(amount Money, allowZero bool) error {
	pays := o.payments()
	if len(pays) == 0 {
		return fmt.Errorf("%w: the order has no payment to refund", ErrIllegalTransition)
	}
	left, cur := o.refundable(), pays[0].Amount.Currency
	if amount.Currency != cur || amount.Amount < 0 || amount.Amount > left || (amount.Amount == 0 && !allowZero) {
		return invalid("refund_amount", "the refund must be between %d and %d %s", map[bool]int64{true: 0, false: 1}[allowZero], left, cur)
	}
	return nil
}

func (o *Order) activeDispute(statuses ...DisputeStatus) error {
	if o.status != StatusDisputed || o.dispute == nil || !slices.Contains(statuses, o.dispute.Status) {
		return fmt.Errorf("%w: no dispute is waiting for that", ErrIllegalTransition)
	}
	return nil
}

// MaxEvidence is how many items of evidence a dispute holds, both sides'
// together: the dispute is loaded with its order.
const MaxEvidence = 30

// AddEvidence adds a side's evidence to an unresolved dispute.
func (o *Order) AddEvidence(now time.Time, ev Evidence) error {
	if err := o.activeDispute(DisputeOpen, DisputeCounterOffered, DisputeEscalated); err != nil {
		return err
	}
	if ev.Text == "" && len(ev.Links) == 0 {
		return invalid("evidence", "evidence needs text or links")
	}
	if len(o.dispute.Evidence) >= MaxEvidence {
		return fmt.Errorf("%w: a dispute holds at most %d items of evidence", ErrTooMany, MaxEvidence)
	}
	ev.At = now
	o.dispute.Evidence = append(o.dispute.Evidence, ev)
	o.record(now, "dispute_evidence_added", string(ev.Party)+":"+o.partyID(ev.Party), ev.Text, nil)
	return nil
}

// NotYours is how an order is refused to a caller who is not one of its
// parties: as if it did not exist.
func NotYours(id string) error { return fmt.Errorf("%w: order %s", ErrNotFound, id) }

// AsParty returns fn preceded by the check that the order is id's, as
// party p (CheckParty).
func AsParty(p Party, id string, fn func(*Order) error) func(*Order) error {
	return func(o *Order) error {
		if err := o.CheckParty(p, id); err != nil {
			return err
		}
		return fn(o)
	}
}

// CheckParty returns NotYours unless id is the order's buyer (p is
// PartyBuyer) or its seller (PartySeller).
func (o *Order) CheckParty(p Party, id string) error {
	return CheckParties(o.id, o.buyerID, o.sellerID, p, id)
}

// CheckParties is CheckParty for an order known by its id and parties
// alone (a read that needs nothing else of it).
func CheckParties(orderID, buyerID, sellerID string, p Party, id string) error {
	if partyID(buyerID, sellerID, p) != id {
		return NotYours(orderID)
	}
	return nil
}

func (o *Order) partyID(p Party) string { return partyID(o.buyerID, o.sellerID, p) }

func partyID(buyerID, sellerID string, p Party) string {
	switch p {
	case PartyBuyer:
		return buyerID
	case PartySeller:
		return sellerID
	}
	return "admin"
}

// WithdrawDispute closes the buyer's dispute; the order is SHIPPED again
// with the protection it had left.
func (o *Order) WithdrawDispute(now time.Time) error {
	if err := o.activeDispute(DisputeOpen, DisputeCounterOffered, DisputeEscalated); err != nil {
		return err
	}
	o.dispute.Status, o.dispute.ResolvedAt = DisputeWithdrawn, now
	o.status = StatusShipped
	delete(o.deadlines, DeadlineDisputeAnswer)
	// The days the dispute took are not the buyer's loss: protection runs
	// on from now for as long as it had left when the dispute opened.
	o.deadlines[DeadlineProtection] = now.Add(max(o.dispute.ProtectionEnd.Sub(o.dispute.OpenedAt), 0))
	o.record(now, "dispute_withdrawn", "buyer:"+o.buyerID, "", nil)
	return nil
}

// AcceptDispute is the seller paying back what the buyer asked.
func (o *Order) AcceptDispute(now time.Time, pol Policy) error {
	if err := o.activeDispute(DisputeOpen); err != nil {
		return err
	}
	o.resolve(now, "seller:"+o.sellerID, o.dispute.RequestedAmount, "accepted by the seller", pol)
	return nil
}

// CounterOffer is the seller proposing another amount; the buyer must
// answer in time.
func (o *Order) CounterOffer(now time.Time, amount Money, note string, pol Policy) error {
	if err := o.activeDispute(DisputeOpen); err != nil {
		return err
	}
	if err := o.checkRefundAmount(amount, false); err != nil {
		return err
	}
	o.dispute.Status, o.dispute.CounterAmount = DisputeCounterOffered, amount
	o.deadlines[DeadlineDisputeAnswer] = now.Add(pol.DisputeAnswerWindow)
	o.record(now, "dispute_counter_offered", "seller:"+o.sellerID, fmt.Sprintf("offers %s back%s", amount, notePart(note)), nil)
	return nil
}

// AnswerCounterOffer is the buyer taking the seller's offer, or refusing it
// (the platform decides then).
func (o *Order) AnswerCounterOffer(now time.Time, accept bool, pol Policy) error {
	if err := o.activeDispute(DisputeCounterOffered); err != nil {
		return err
	}
	if accept {
		o.resolve(now, "buyer:"+o.buyerID, o.dispute.CounterAmount, "the buyer took the seller's offer", pol)
		return nil
	}
	o.escalate(now, "buyer:"+o.buyerID, "the buyer refused the seller's offer")
	return nil
}

// RejectDispute is the seller refusing with evidence; the platform decides.
func (o *Order) RejectDispute(now time.Time, ev Evidence) error {
	if err := o.activeDispute(DisputeOpen); err != nil {
		return err
	}
	if ev.Text == "" {
		return invalid("reject.evidence", "rejecting a dispute needs the seller's evidence")
	}
	ev.Party, ev.At = PartySeller, now
	o.dispute.Evidence = append(o.dispute.Evidence, ev)
	o.escalate(now, "seller:"+o.sellerID, "the seller rejected the dispute")
	return nil
}

func (o *Order) escalate(now time.Time, actor, why string) {
	o.dispute.Status = DisputeEscalated
	delete(o.deadlines, DeadlineDisputeAnswer)
	o.record(now, "dispute_escalated", actor, why, nil)
}

// DecideDispute is the platform's decision on an escalated dispute: the
// amount paid back, from nothing to all that is left.
func (o *Order) DecideDispute(now time.Time, admin string, amount Money, note string, pol Policy) error {
	if err := o.activeDispute(DisputeEscalated); err != nil {
		return err
	}
	if err := o.checkRefundAmount(amount, true); err != nil {
		return err
	}
	o.resolve(now, "admin:"+admin, amount, "decided by the platform"+notePart(note), pol)
	return nil
}

// resolve ends a dispute paying amount back: nothing or part of the payment
// completes the order; all of it closes the order as refunded (cancelled,
// the seller's fault; the goods are not restocked).
func (o *Order) resolve(now time.Time, actor string, amount Money, how string, pol Policy) {
	o.dispute.Status, o.dispute.RefundAmount, o.dispute.Resolution, o.dispute.ResolvedAt = DisputeResolved, amount, how, now
	delete(o.deadlines, DeadlineDisputeAnswer)
	o.record(now, "dispute_resolved", actor, fmt.Sprintf("%s back: %s", amount, how), nil)
	if amount.Amount > 0 {
		o.oweRefundDrawn(now, amount, "dispute", pol)
	}
	if amount.Amount == o.Paid().Amount {
		o.status, o.cancelReason, o.cancelledBy = StatusCancelled, ReasonRefundedInDispute, PartySeller
		o.record(now, "cancelled", actor, ReasonRefundedInDispute, nil)
		return
	}
	o.status = StatusCompleted
	o.record(now, "completed", actor, "dispute resolved", nil)
}

// ReasonRefundedInDispute closes an order whose dispute refunded it in full.
const ReasonRefundedInDispute = "refunded_in_full"
