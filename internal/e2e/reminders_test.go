package e2e

import (
	"testing"
	"time"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/testenv"
)

// TestRemindersFireOnce: a day before the payment window closes the buyer
// is reminded; a day before a cancellation request's or a dispute's answer
// is due, or the ship-by date, the seller is. Each reminder is an event of
// the order, fired once with two replicas and no expired-key listener.
func TestRemindersFireOnce(t *testing.T) {
	s := startSystem(t, 2, func(c *app.Config) {
		// Each deadline a day and a second or so away: its reminder is due
		// in a second or so.
		c.PaymentWindow = order.ReminderLead + time.Second
		c.Policy.HandlingDay = (order.ReminderLead + 1500*time.Millisecond) / 3 // 3 handling days
		c.Policy.CancelAnswerWindow = order.ReminderLead + time.Second
		c.Policy.DisputeAnswerWindow = order.ReminderLead + time.Second
		c.Listener = false
		c.SweepInterval = 100 * time.Millisecond
	})
	lamp := s.product("store-x", "Lamp", 1000, 100, 100)
	buyerCtx, sellerCtx := as(s.token(auth.RoleBuyer, "alice")), as(s.token(auth.RoleSeller, "store-x"))

	unpaid := s.checkout("alice", 1, lamp)[0]
	unshipped := s.paidOrder(t, lamp)
	requested := s.paidOrder(t, lamp)
	if _, err := s.buyer.RequestCancellation(buyerCtx, &buyerv1.RequestCancellationRequest{OrderId: requested.Id, Reason: "no_longer_needed"}); err != nil {
		t.Fatal(err)
	}
	disputedO := s.paidOrder(t, lamp)
	if _, err := s.seller.ShipOrder(sellerCtx, &sellerv1.ShipOrderRequest{OrderId: disputedO.Id, Carrier: "DHL", TrackingNumber: "JD1000"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.buyer.OpenDispute(buyerCtx, &buyerv1.OpenDisputeRequest{OrderId: disputedO.Id, Reason: "not_received", RefundAmount: usd(100),
		Evidence: &orderv1.EvidenceInput{Text: "nothing came"}}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		o    *orderv1.Order
		kind string
		who  string
	}{
		{unpaid, "reminder.payment", "buyer:alice"},
		{unshipped, "reminder.ship_by", "seller:store-x"},
		{requested, "reminder.cancel_answer", "seller:store-x"},
		{disputedO, "reminder.dispute_answer", "seller:store-x"},
	}
	reminded := func(o *orderv1.Order, kind string) []*orderv1.HistoryEntry {
		var out []*orderv1.HistoryEntry
		for _, h := range s.order("alice", o.Id).History {
			if h.Kind == kind {
				out = append(out, h)
			}
		}
		return out
	}
	for _, c := range cases {
		testenv.Eventually(t, 10*time.Second, c.kind+" fires", func() bool { return len(reminded(c.o, c.kind)) > 0 })
	}
	time.Sleep(time.Second) // every replica's sweeper has had its chance to fire them again
	for _, c := range cases {
		got := reminded(c.o, c.kind)
		if len(got) != 1 || got[0].Actor != "system" || len(got[0].Note) < len(c.who) || got[0].Note[:len(c.who)] != c.who {
			t.Fatalf("%s: %d reminders %v, want one for %s", c.kind, len(got), got, c.who)
		}
		// Reminders are not deadlines the order shows.
		for _, d := range s.order("alice", c.o.Id).Deadlines {
			if order.IsReminder(order.DeadlineKind(d.Kind)) {
				t.Fatalf("%s shows the reminder deadline %s", c.kind, d.Kind)
			}
		}
	}
	// The paid orders were never reminded to pay.
	for _, o := range []*orderv1.Order{unshipped, requested, disputedO} {
		if n := len(reminded(o, "reminder.payment")); n != 0 {
			t.Fatalf("a paid order was reminded to pay %d times", n)
		}
	}
}
