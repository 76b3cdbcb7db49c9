package e2e

import (
	"context"
	"testing"
	"time"

	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/postgres"
	"github.com/souk-dev/souk/internal/testenv"
)

// TestRefundWorkerSurvivesProviderOutage owes refunds while the provider is
// down: two buyer-svc replicas' workers retry with back-off, and once the
// provider is back every refund is made exactly once.
func TestRefundWorkerSurvivesProviderOutage(t *testing.T) {
	s := startSystem(t, 2, nil)
	lamp := s.product("store-x", "Lamp", 1000, 100, 100)
	var paid []*orderv1.Order
	for i := range 6 {
		o := s.checkout("alice", int64(1+i), lamp)[0]
		if r := s.pay(t, "alice", o, "4242424242424242", "refund-key-"+o.Id); r.Order.Status != paidStatus {
			t.Fatalf("pay: %s", r.Order.Status)
		}
		paid = append(paid, o)
	}
	testenv.Eventually(t, 5*time.Second, "every payment captured", func() bool {
		for _, o := range paid {
			if s.capturedFor(t, o.Id) != 1 {
				return false
			}
		}
		return true
	})
	for _, b := range s.buyers {
		b.Simulated().SetOutage(true)
	}
	// Cancel the paid orders as an accepted cancellation request would.
	db, err := postgres.Open(context.Background(), s.cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, o := range paid {
		if _, err := db.Update(context.Background(), o.Id, func(o *order.Order) error {
			return o.CancelPaid(app.Now(), "seller:store-x", "buyer_request_accepted", order.PartyBuyer, s.cfg.Policy)
		}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, "the workers retried during the outage", func() bool {
		for _, o := range paid {
			r := s.order("alice", o.Id).Refunds[0]
			if r.Status != orderv1.RefundStatus_REFUND_STATUS_PENDING && r.Status != orderv1.RefundStatus_REFUND_STATUS_PROCESSING {
				t.Fatalf("refund %s during the outage", r.Status)
			}
		}
		var tries int
		if err := db.Pool().QueryRow(context.Background(), `SELECT min(tries) FROM refunds`).Scan(&tries); err != nil {
			t.Fatal(err)
		}
		return tries >= 2
	})
	for _, b := range s.buyers {
		b.Simulated().SetOutage(false)
	}
	testenv.Eventually(t, 20*time.Second, "every refund made", func() bool {
		for _, o := range paid {
			if s.order("alice", o.Id).Refunds[0].Status != orderv1.RefundStatus_REFUND_STATUS_SUCCEEDED {
				return false
			}
		}
		return true
	})
	ledger, err := s.provider.Ledger(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ledger {
		if p.Refunds != 1 || p.Refunded != p.Amount {
			t.Errorf("payment of order %s: %d refunds of %d in all, want one of %d", p.OrderID, p.Refunds, p.Refunded, p.Amount)
		}
	}
	for _, o := range paid {
		got := s.order("alice", o.Id)
		if got.Status != cancelled || countKinds(got)["refund_succeeded"] != 1 {
			t.Errorf("order %s: %s, history %v", o.Id, got.Status, countKinds(got))
		}
	}
}
