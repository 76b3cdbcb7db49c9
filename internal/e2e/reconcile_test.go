package e2e

import (
	"errors"
	"testing"
	"time"

	"github.com/souk-dev/souk/buyer-svc/buyer"
	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/payment"
	"github.com/souk-dev/souk/internal/testenv"
)

// Money safety, round two, point 3: reconciliation never gives up on a
// payment whose call may still land at the provider. A wallet payment (money
// taken at once) is slow to reach the provider while Redis loses the
// order's lock; its answer is then lost.
func TestReconciliationWaitsForCallsInFlight(t *testing.T) {
	walletPay := func(t *testing.T, s *system, o *orderv1.Order, key string) {
		t.Helper()
		_, _ = s.buyer.PayOrder(as(s.token(auth.RoleBuyer, "alice")), &buyerv1.PayOrderRequest{OrderId: o.Id, ExpectedTotal: o.Total,
			IdempotencyKey: key, Method: &buyerv1.PayOrderRequest_Wallet{Wallet: &buyerv1.Wallet{Account: payment.WalletApprove}}})
	}
	slow := func(s **system, inFlight time.Duration) func(*payment.Simulated) payment.Provider {
		return func(p *payment.Simulated) payment.Provider {
			return &faultyProvider{Provider: p, detached: true,
				// Only wallet payments are slow.
				beforePay: func(req payment.PaymentRequest) {
					if req.Method == order.MethodWallet {
						(*s).deleteKeys(t) // Redis lost its data: the lock is gone
						time.Sleep(inFlight)
					}
				},
				afterPay: func(req payment.PaymentRequest, res order.Result, err error) (order.Result, error) {
					if err == nil && req.Method == order.MethodWallet {
						return order.Result{}, errors.New("read tcp: connection reset by peer")
					}
					return res, err
				}}
		}
	}

	t.Run("a call longer than the lock", func(t *testing.T) {
		// The call outlives the lock's TTL but not the provider time-out:
		// reconciliation waits for it, then finds the money taken.
		var s *system
		s = startSystemWith(t, 1, options{
			tune:     func(c *app.Config) { c.LockTTL = time.Second },
			buyer:    func(c *buyer.Config) { c.ProviderTimeout = 3 * time.Second },
			provider: slow(&s, 2*time.Second),
		})
		lamp := s.product("store-x", "Lamp", 1000, 100, 10)
		o := s.checkout("alice", 1, lamp)[0]
		walletPay(t, s, o, "in-flight-1")
		testenv.Eventually(t, 15*time.Second, "reconciliation records the payment", func() bool { return s.order("alice", o.Id).Status == paidStatus })
		got := s.order("alice", o.Id)
		if len(got.Refunds) != 0 || got.PaymentAttempts[0].Status != aSucceeded {
			t.Fatalf("attempt %s, refunds %v", got.PaymentAttempts[0].Status, got.Refunds)
		}
		s.moneyOf(t, got)
	})
	t.Run("a payment that lands after Souk gave up", func(t *testing.T) {
		// The request reaches the provider after the call timed out and
		// after reconciliation found nothing: the second look finds the
		// money taken and pays it back.
		var s *system
		s = startSystemWith(t, 1, options{
			tune:     func(c *app.Config) { c.LockTTL = time.Second },
			buyer:    func(c *buyer.Config) { c.ProviderTimeout = time.Second },
			provider: slow(&s, 2500*time.Millisecond),
		})
		lamp := s.product("store-x", "Lamp", 1000, 100, 10)
		o := s.checkout("alice", 1, lamp)[0]
		walletPay(t, s, o, "in-flight-2")
		testenv.Eventually(t, 20*time.Second, "the late payment is paid back", func() bool {
			got := s.order("alice", o.Id)
			return len(got.Refunds) == 1 && got.Refunds[0].Status == refundOK
		})
		got := s.order("alice", o.Id)
		if got.Status != pending || got.Refunds[0].Reason != "late_payment" || got.Refunds[0].Amount.AmountMinor != o.Total.AmountMinor {
			t.Fatalf("order %s, refunds %v", got.Status, got.Refunds)
		}
		s.moneyOf(t, got)
		// The order can be paid again, once.
		again := s.pay(t, "alice", got, "4242424242424242", "in-flight-3")
		if again.Order.Status != paidStatus {
			t.Fatalf("paying again: %s", again.Order.Status)
		}
	})
}
