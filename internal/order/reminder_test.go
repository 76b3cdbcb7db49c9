package order_test

import (
	"errors"
	"testing"
	"time"

	"github.com/souk-dev/souk/internal/order"
)

func TestReminders(t *testing.T) {
	pol := order.DefaultPolicy
	o := newOrder(t) // payment window: 20 days
	due := t0.Add(20 * 24 * time.Hour)
	if at := o.Deadlines()[order.DeadlineRemindPayment]; !at.Equal(due.Add(-order.ReminderLead)) {
		t.Fatalf("payment reminder at %v, want a day before %v", at, due)
	}
	if err := o.FireDeadline(due.Add(-25*time.Hour), order.DeadlineRemindPayment, pol); !errors.Is(err, order.ErrNotDue) {
		t.Fatalf("early: %v", err)
	}
	must(t, o.FireDeadline(due.Add(-order.ReminderLead), order.DeadlineRemindPayment, pol))
	h := o.History()
	if last := h[len(h)-1]; last.Kind != "reminder.payment" || last.Note != "buyer:alice by "+due.Format(time.RFC3339) {
		t.Fatalf("reminder event %+v", last)
	}
	// Fired once: firing again, or any later change, does not bring it back.
	if err := o.FireDeadline(due, order.DeadlineRemindPayment, pol); !errors.Is(err, order.ErrNotDue) {
		t.Fatalf("fired twice: %v", err)
	}
	fee := order.Money{Amount: 0, Currency: "USD"}
	must(t, o.AdjustPrice(due.Add(-time.Hour), order.PriceChange{ShippingFee: &fee, Reason: "free"}))
	if _, ok := o.Deadlines()[order.DeadlineRemindPayment]; ok {
		t.Fatal("the payment reminder came back")
	}

	// A paid order: the ship-by reminder replaces the payment one; a
	// cancellation request adds the seller's answer reminder; shipping and
	// answering drop them.
	p := newOrder(t)
	must(t, p.BeginPayment(t0, p.Total(), attempt("k1")))
	must(t, p.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultSucceeded, ProviderRef: "p", Captured: true}, pol))
	d := p.Deadlines()
	if _, ok := d[order.DeadlineRemindPayment]; ok || !d[order.DeadlineRemindShipBy].Equal(t0.Add(2*24*time.Hour)) {
		t.Fatalf("deadlines after payment: %v", d)
	}
	must(t, p.RequestCancellation(t0, "no_longer_needed", "", pol))
	if !p.Deadlines()[order.DeadlineRemindCancelAnswer].Equal(t0.Add(pol.CancelAnswerWindow - order.ReminderLead)) {
		t.Fatalf("no answer reminder: %v", p.Deadlines())
	}
	must(t, p.AnswerCancellation(t0, false, "packed", pol))
	must(t, p.Ship(t0, order.Shipment{Carrier: "DHL", TrackingNumber: "JD01"}, pol))
	for _, k := range []order.DeadlineKind{order.DeadlineRemindCancelAnswer, order.DeadlineRemindShipBy} {
		if _, ok := p.Deadlines()[k]; ok {
			t.Fatalf("%s still open after it stopped applying: %v", k, p.Deadlines())
		}
	}
	// A deadline less than a day away gets no reminder.
	q := newOrder(t)
	must(t, q.BeginPayment(t0, q.Total(), attempt("k1")))
	pol.HandlingDay = time.Hour
	must(t, q.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultSucceeded, ProviderRef: "p", Captured: true}, pol))
	if _, ok := q.Deadlines()[order.DeadlineRemindShipBy]; ok {
		t.Fatalf("a reminder for a deadline three hours away: %v", q.Deadlines())
	}
}
