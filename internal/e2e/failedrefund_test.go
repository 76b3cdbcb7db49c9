package e2e

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/payment"
	"github.com/souk-dev/souk/internal/testenv"
)

// refundsRefused is the simulated provider refusing every refund and void
// for good while refuse is set (the buyer's card account was closed).
type refundsRefused struct {
	payment.Provider
	refuse *atomic.Bool
}

func (p refundsRefused) Refund(ctx context.Context, req payment.RefundRequest) (string, error) {
	if p.refuse.Load() {
		return "", fmt.Errorf("%w: the card account is closed", payment.ErrRefused)
	}
	return p.Provider.Refund(ctx, req)
}

func (p refundsRefused) Void(ctx context.Context, ref string) error {
	if p.refuse.Load() {
		return fmt.Errorf("%w: the card account is closed", payment.ErrRefused)
	}
	return p.Provider.Void(ctx, ref)
}

// Money safety, round two, point 5: a refund the provider refuses for good
// is money still owed. It is counted for alerts, shown to the buyer and the
// seller with its reason, and stays until an admin retries it or records it
// as paid by other means, with who and why in the history.
func TestFailedRefundStaysVisibleUntilResolved(t *testing.T) {
	var refuse atomic.Bool
	refuse.Store(true)
	s := startSystemWith(t, 1, options{provider: func(p *payment.Simulated) payment.Provider { return refundsRefused{Provider: p, refuse: &refuse} }})
	lamp := s.product("store-x", "Lamp", 1000, 100, 10)
	buyerCtx, sellerCtx := as(s.token(auth.RoleBuyer, "alice")), as(s.token(auth.RoleSeller, "store-x"))
	admin := sellerv1.NewRefundResolutionServiceClient(dial(t, s.sellers[0].InternalGRPCAddr()))
	adminCtx := as(s.token(auth.RoleAdmin, "ops-1"))

	cancelled := func(key string) *orderv1.Order {
		o := s.checkout("alice", 1, lamp)[0]
		s.pay(t, "alice", o, "4242424242424242", key)
		testenv.Eventually(t, 15*time.Second, "the payment is captured", func() bool { return s.capturedFor(t, o.Id) == 1 })
		if _, err := s.buyer.RequestCancellation(buyerCtx, &buyerv1.RequestCancellationRequest{OrderId: o.Id, Reason: "no_longer_needed"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.seller.AnswerCancellation(sellerCtx, &sellerv1.AnswerCancellationRequest{OrderId: o.Id, Accept: true}); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 10*time.Second, "the provider refuses the refund", func() bool {
			got := s.order("alice", o.Id)
			return len(got.Refunds) == 1 && got.Refunds[0].Status == orderv1.RefundStatus_REFUND_STATUS_FAILED
		})
		return s.order("alice", o.Id)
	}
	retried, settled := cancelled("failed-refund-1"), cancelled("failed-refund-2")

	for _, o := range []*orderv1.Order{retried, settled} {
		if r := o.Refunds[0]; r.FailureReason == "" {
			t.Fatalf("the buyer sees a failed refund without its reason: %+v", r)
		}
		seen, err := s.seller.GetOrder(sellerCtx, &sellerv1.GetOrderRequest{OrderId: o.Id})
		if err != nil || seen.Order.Refunds[0].Status != orderv1.RefundStatus_REFUND_STATUS_FAILED || seen.Order.Refunds[0].FailureReason == "" {
			t.Fatalf("the seller's view of the failed refund: %v %v", seen.GetOrder().GetRefunds(), err)
		}
	}
	if n, ok := scrape(t, s.buyers[0].InternalHTTPAddr(), "souk_refunds_failed"); !ok || n != 2 {
		t.Fatalf("souk_refunds_failed = %v (%v), want 2", n, ok)
	}
	list, err := admin.ListFailedRefunds(adminCtx, &sellerv1.ListFailedRefundsRequest{PageSize: 1})
	if err != nil || len(list.Refunds) != 1 || list.NextPageToken == "" || list.Refunds[0].OrderId != retried.Id {
		t.Fatalf("the admin's first page of failed refunds: %v %v", list, err)
	}
	// A seller or a buyer cannot resolve refunds.
	if _, err := admin.SettleRefund(sellerCtx, &sellerv1.SettleRefundRequest{OrderId: settled.Id, RefundId: settled.Refunds[0].Id, Note: "x"}); err == nil {
		t.Fatal("a seller settled a refund")
	}

	refuse.Store(false) // the buyer's bank reopened the account
	if _, err := admin.RetryRefund(adminCtx, &sellerv1.RetryRefundRequest{OrderId: retried.Id, RefundId: retried.Refunds[0].Id,
		Note: "the bank reopened the account"}); err != nil {
		t.Fatal(err)
	}
	got := s.settled(t, "alice", retried.Id)
	if h := lastOfKind(got, "refund_retried"); h == nil || h.Actor != "admin:ops-1" {
		t.Fatalf("history of the retry: %v", got.History)
	}
	s.moneyOf(t, got)

	resp, err := admin.SettleRefund(adminCtx, &sellerv1.SettleRefundRequest{OrderId: settled.Id, RefundId: settled.Refunds[0].Id,
		Note: "paid by bank transfer, ref TX-991"})
	if err != nil {
		t.Fatal(err)
	}
	r := resp.Order.Refunds[0]
	if r.Status != orderv1.RefundStatus_REFUND_STATUS_SUCCEEDED || r.SettledBy != "admin:ops-1" || r.SettlementNote != "paid by bank transfer, ref TX-991" {
		t.Fatalf("settled refund %+v", r)
	}
	if h := lastOfKind(resp.Order, "refund_settled"); h == nil || h.Actor != "admin:ops-1" {
		t.Fatalf("history of the settlement: %v", resp.Order.History)
	}
	if _, err := admin.SettleRefund(adminCtx, &sellerv1.SettleRefundRequest{OrderId: settled.Id, RefundId: settled.Refunds[0].Id, Note: "again"}); err == nil {
		t.Fatal("a settled refund was settled again")
	}
	if n, _ := scrape(t, s.buyers[0].InternalHTTPAddr(), "souk_refunds_failed"); n != 0 {
		t.Fatalf("souk_refunds_failed = %v once both are resolved, want 0", n)
	}
}

// lastOfKind returns the order's last history entry of kind, or nil.
func lastOfKind(o *orderv1.Order, kind string) *orderv1.HistoryEntry {
	var out *orderv1.HistoryEntry
	for _, h := range o.History {
		if h.Kind == kind {
			out = h
		}
	}
	return out
}
