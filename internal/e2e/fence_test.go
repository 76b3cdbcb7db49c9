package e2e

import (
	"testing"
	"time"

	"github.com/souk-dev/souk/buyer-svc/buyer"
	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/payment"
	"github.com/souk-dev/souk/internal/testenv"
)

// Money safety, round two, point 2: the payment's fence is what the payment
// depends on (the attempt is still the open one, the amount unchanged), not
// the order's version. A message from each party and a reminder that fires
// while the provider is slow to answer leave a good authorization alone.
func TestPaymentSurvivesChangesThatDoNotTouchIt(t *testing.T) {
	var s *system
	var orderID string
	s = startSystemWith(t, 1, options{
		tune: func(c *app.Config) {
			c.PaymentWindow = order.ReminderLead + time.Second // the payment reminder is due in a second
			c.SweepInterval = 100 * time.Millisecond
		},
		buyer: func(c *buyer.Config) { c.ProviderTimeout = 15 * time.Second }, // the provider waits for the reminder
		provider: func(p *payment.Simulated) payment.Provider {
			return &faultyProvider{Provider: p, afterPay: func(_ payment.PaymentRequest, res order.Result, err error) (order.Result, error) {
				// While the provider thinks, both parties write and the
				// payment reminder fires.
				if _, err := s.buyer.SendOrderMessage(as(s.token(auth.RoleBuyer, "alice")), &buyerv1.SendOrderMessageRequest{OrderId: orderID,
					Message: &orderv1.MessageInput{Text: "paying now"}}); err != nil {
					t.Errorf("the buyer's message during the payment: %v", err)
				}
				if _, err := s.seller.SendOrderMessage(as(s.token(auth.RoleSeller, "store-x")), &sellerv1.SendOrderMessageRequest{OrderId: orderID,
					Message: &orderv1.MessageInput{Text: "thank you"}}); err != nil {
					t.Errorf("the seller's message during the payment: %v", err)
				}
				testenv.Eventually(t, 10*time.Second, "the payment reminder fires", func() bool {
					return countKinds(s.order("alice", orderID))["reminder.payment"] == 1
				})
				return res, err
			}}
		},
	})
	lamp := s.product("store-x", "Lamp", 1000, 100, 10)
	o := s.checkout("alice", 1, lamp)[0]
	orderID = o.Id
	resp := s.pay(t, "alice", o, "4242424242424242", "fence-key-1")
	if resp.Order.Status != paidStatus || resp.Attempt.Status != aSucceeded {
		t.Fatalf("a payment during a conversation and a reminder: order %s, attempt %s (%v)", resp.Order.Status, resp.Attempt.Status,
			resp.Attempt.Decline)
	}
	testenv.Eventually(t, 15*time.Second, "the payment is captured", func() bool { return s.capturedFor(t, o.Id) == 1 })
	got := s.order("alice", o.Id)
	if n := countKinds(got); n["message_sent"] != 2 || n["reminder.payment"] != 1 || n["paid"] != 1 {
		t.Fatalf("history %v", n)
	}
	s.moneyOf(t, got)
}
