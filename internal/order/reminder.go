package order

import "time"

// ReminderLead is how long before a deadline its party is reminded.
const ReminderLead = 24 * time.Hour

// The reminder deadline kinds: each fires ReminderLead before the deadline
// it reminds of, through the one deadline mechanism, so that it fires once
// with any number of replicas.
const (
	// DeadlineRemindPayment reminds the buyer that the payment window closes.
	DeadlineRemindPayment DeadlineKind = "remind_payment"
	// DeadlineRemindCancelAnswer reminds the seller to answer a cancellation request.
	DeadlineRemindCancelAnswer DeadlineKind = "remind_cancel_answer"
	// DeadlineRemindShipBy reminds the seller to ship.
	DeadlineRemindShipBy DeadlineKind = "remind_ship_by"
	// DeadlineRemindDisputeAnswer reminds the side whose answer a dispute waits for.
	DeadlineRemindDisputeAnswer DeadlineKind = "remind_dispute_answer"
)

// reminders pairs each reminder with the deadline it reminds of.
var reminders = []struct{ of, remind DeadlineKind }{
	{DeadlinePayment, DeadlineRemindPayment},
	{DeadlineCancelAnswer, DeadlineRemindCancelAnswer},
	{DeadlineShipBy, DeadlineRemindShipBy},
	{DeadlineDisputeAnswer, DeadlineRemindDisputeAnswer},
	{DeadlinePart, DeadlineRemindPart},
}

// IsReminder reports whether a deadline kind is a reminder.
func IsReminder(kind DeadlineKind) bool {
	for _, r := range reminders {
		if r.remind == kind {
			return true
		}
	}
	return false
}

// syncReminders gives every open deadline that is more than ReminderLead
// away its reminder, and drops the reminders of deadlines that closed. A
// reminder already due stays until it fires; one that fired is not set again
// for the same deadline.
func (o *Order) syncReminders(now time.Time) {
	for _, r := range reminders {
		due, ok := o.deadlines[r.of]
		switch at := due.Add(-ReminderLead); {
		case !ok:
			delete(o.deadlines, r.remind)
		case at.After(now):
			o.deadlines[r.remind] = at
		}
	}
}

// fireReminder records a reminder of the deadline it reminds of, if that
// is still open; it names who is reminded.
func (o *Order) fireReminder(now time.Time, kind DeadlineKind) {
	delete(o.deadlines, kind)
	for _, r := range reminders {
		due, ok := o.deadlines[r.of]
		if r.remind != kind || !ok {
			continue
		}
		who := "seller:" + o.sellerID
		switch {
		case r.of == DeadlinePayment:
			if o.status != StatusPendingPayment {
				return
			}
			who = "buyer:" + o.buyerID
		case r.of == DeadlinePart:
			if o.status != StatusPartiallyPaid {
				return
			}
			who = "buyer:" + o.buyerID
		case r.of == DeadlineDisputeAnswer && o.dispute != nil && o.dispute.Status == DisputeCounterOffered:
			who = "buyer:" + o.buyerID
		}
		o.record(now, "reminder."+string(r.of), "system", who+" by "+due.UTC().Format(time.RFC3339), nil)
	}
}
