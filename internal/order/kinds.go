package order

import (
	"slices"
	"strings"
)

// EventKinds lists the kinds of the events an order records, in its history
// and on the event feed. TestEveryStatusAndAction checks that the changes
// it makes record no other kind.
var EventKinds = []string{
	"created", "price_adjusted", "message_sent",
	"offer_made", "offer_accepted", "offer_declined", "offer_lapsed",
	"verification_required", "verification_code_wrong", "payment_processing", "payment_declined", "payment_failed", "paid",
	"late_payment", "payment_after_cancellation",
	"cancelled", "cancellation_requested", "cancellation_withdrawn", "cancellation_accepted", "cancellation_rejected",
	"shipped", "protection_extension_asked", "protection_extended", "completed",
	"dispute_opened", "dispute_evidence_added", "dispute_counter_offered", "dispute_escalated", "dispute_resolved", "dispute_withdrawn",
	"refund_owed", "refund_succeeded", "refund_failed", "refund_retried", "refund_settled",
	"reminder.payment", "reminder.cancel_answer", "reminder.ship_by", "reminder.dispute_answer", "reminder.part_due",
	"coupon_reserved", "coupon_consumed", "coupon_released", "quote_renewed",
	"part_paid", "part_past_due", "deposit_kept",
}

// IsEventKindFilter reports whether a watch's filter names event kinds: a
// kind of EventKinds, or a family ending in ".*" that takes at least one.
func IsEventKindFilter(k string) bool {
	if prefix, ok := strings.CutSuffix(k, ".*"); ok {
		return slices.ContainsFunc(EventKinds, func(e string) bool { return strings.HasPrefix(e, prefix+".") })
	}
	return slices.Contains(EventKinds, k)
}
