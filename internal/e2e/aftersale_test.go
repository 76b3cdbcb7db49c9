package e2e

import (
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/testenv"
)

const (
	shipped   = orderv1.OrderStatus_ORDER_STATUS_SHIPPED
	disputed  = orderv1.OrderStatus_ORDER_STATUS_DISPUTED
	completed = orderv1.OrderStatus_ORDER_STATUS_COMPLETED
	refundOK  = orderv1.RefundStatus_REFUND_STATUS_SUCCEEDED
)

// shortWindows shortens every after-payment window to seconds.
func shortWindows(c *app.Config) {
	c.Policy.CancelAnswerWindow = 1500 * time.Millisecond
	c.Policy.HandlingDay = time.Second                // the test products take 3 handling days: ship by 3s after payment
	c.Policy.ProtectionDay = 33333 * time.Microsecond // 60 protection days: two seconds
	c.Policy.DisputeAnswerWindow = 1500 * time.Millisecond
	c.SweepInterval = 100 * time.Millisecond
}

// paidOrder checks out one unit of p as alice and pays for it.
func (s *system) paidOrder(t *testing.T, p *sellerv1.Product) *orderv1.Order {
	t.Helper()
	o := s.checkout("alice", 1, p)[0]
	r := s.pay(t, "alice", o, "4242424242424242", "paid-"+o.Id)
	if r.Order.Status != paidStatus {
		t.Fatalf("pay: %s", r.Order.Status)
	}
	return r.Order
}

// expectRefunded waits for the order to be cancelled with one refund paid
// in full, its stock back.
func (s *system) expectRefunded(t *testing.T, o *orderv1.Order, by string, p *sellerv1.Product, stock int64) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, "the refund is paid", func() bool {
		got := s.order("alice", o.Id)
		return len(got.Refunds) == 1 && got.Refunds[0].Status == refundOK
	})
	got := s.order("alice", o.Id)
	if got.Status != cancelled || got.CancelledBy != by || got.Refunds[0].Amount.AmountMinor != o.Total.AmountMinor || len(got.Deadlines) != 0 {
		t.Fatalf("order %s by %q, refund %v, deadlines %v; want cancelled by %s with the total refunded", got.Status, got.CancelledBy, got.Refunds[0].Amount, got.Deadlines, by)
	}
	if n := s.stock(p); n != stock {
		t.Fatalf("stock = %d, want %d", n, stock)
	}
}

func TestCancellationRequests(t *testing.T) {
	s := startSystem(t, 1, shortWindows)
	lamp := s.product("store-x", "Lamp", 1000, 100, 100)
	buyerTok, sellerTok := s.token(auth.RoleBuyer, "alice"), s.token(auth.RoleSeller, "store-x")
	buyerCtx, sellerCtx := as(buyerTok), as(sellerTok)

	t.Run("request, accept (JSON)", func(t *testing.T) {
		o := s.paidOrder(t, lamp)
		code, body := jsonCall(t, "POST", s.buyerURL("/v1/orders/"+o.Id+":request-cancellation"), buyerTok, map[string]any{"reason": "found_better_price"})
		if code != http.StatusOK || str(body, "order", "cancellation_request", "status") != "OPEN" || deadline(s.order("alice", o.Id), "cancel_answer").IsZero() {
			t.Fatalf("request: %d %v", code, body)
		}
		code, body = jsonCall(t, "POST", s.buyerURL("/v1/orders/"+o.Id+":request-cancellation"), buyerTok, map[string]any{"reason": "no_longer_needed"})
		if code != http.StatusBadRequest {
			t.Fatalf("a second open request: %d %v", code, body)
		}
		code, body = jsonCall(t, "POST", s.sellerURL("/v1/orders/"+o.Id+":answer-cancellation"), sellerTok, map[string]any{"accept": true})
		if code != http.StatusOK || str(body, "order", "status") != "ORDER_STATUS_CANCELLED" || str(body, "order", "cancellation_request", "status") != "ACCEPTED" {
			t.Fatalf("accept: %d %v", code, body)
		}
		s.expectRefunded(t, o, "buyer", lamp, 100)
	})

	t.Run("request, reject, ship, confirm", func(t *testing.T) {
		o := s.paidOrder(t, lamp)
		if _, err := s.buyer.RequestCancellation(buyerCtx, &buyerv1.RequestCancellationRequest{OrderId: o.Id, Reason: "other", Note: "ordered twice"}); err != nil {
			t.Fatal(err)
		}
		_, err := s.seller.ShipOrder(sellerCtx, &sellerv1.ShipOrderRequest{OrderId: o.Id, Carrier: "DHL", TrackingNumber: "JD0001"})
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("shipping with a request open: %v", err)
		}
		if _, err := s.seller.AnswerCancellation(sellerCtx, &sellerv1.AnswerCancellationRequest{OrderId: o.Id}); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("rejecting without a note: %v", err)
		}
		r, err := s.seller.AnswerCancellation(sellerCtx, &sellerv1.AnswerCancellationRequest{OrderId: o.Id, Note: "already packed"})
		if err != nil || r.Order.Status != paidStatus || r.Order.CancellationRequest.Status != "REJECTED" {
			t.Fatalf("reject: %v %v", r, err)
		}
		if _, err := s.seller.ShipOrder(sellerCtx, &sellerv1.ShipOrderRequest{OrderId: o.Id, Carrier: "DHL", TrackingNumber: "JD0001"}); err != nil {
			t.Fatal(err)
		}
		c, err := s.buyer.ConfirmReceipt(buyerCtx, &buyerv1.ConfirmReceiptRequest{OrderId: o.Id})
		if err != nil || c.Order.Status != completed || len(c.Order.Refunds) != 0 {
			t.Fatalf("confirm: %v %v", c, err)
		}
	})

	t.Run("request, silence: accepted", func(t *testing.T) {
		before := s.stock(lamp)
		o := s.paidOrder(t, lamp)
		if _, err := s.buyer.RequestCancellation(buyerCtx, &buyerv1.RequestCancellationRequest{OrderId: o.Id, Reason: "shipping_takes_too_long"}); err != nil {
			t.Fatal(err)
		}
		s.expectRefunded(t, o, "seller", lamp, before)
		if got := s.order("alice", o.Id); got.CancellationRequest.Status != "AUTO_ACCEPTED" || countKinds(got)["cancellation_accepted"] != 1 {
			t.Fatalf("request %s, history %v", got.CancellationRequest.Status, countKinds(got))
		}
	})

	t.Run("request, withdraw", func(t *testing.T) {
		o := s.paidOrder(t, lamp)
		if _, err := s.buyer.RequestCancellation(buyerCtx, &buyerv1.RequestCancellationRequest{OrderId: o.Id, Reason: "no_longer_needed"}); err != nil {
			t.Fatal(err)
		}
		r, err := s.buyer.WithdrawCancellation(buyerCtx, &buyerv1.WithdrawCancellationRequest{OrderId: o.Id})
		if err != nil || r.Order.CancellationRequest.Status != "WITHDRAWN" || !deadline(r.Order, "cancel_answer").IsZero() {
			t.Fatalf("withdraw: %v %v", r, err)
		}
		time.Sleep(2 * time.Second) // past the answer window: nothing fires
		got := s.order("alice", o.Id)
		if got.Status == cancelled && got.CancelReason != "not_shipped_in_time" {
			t.Fatalf("a withdrawn request cancelled the order: %s", got.CancelReason)
		}
		if _, err := s.seller.AnswerCancellation(sellerCtx, &sellerv1.AnswerCancellationRequest{OrderId: o.Id, Accept: true}); status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("answering a withdrawn request: %v", err)
		}
	})
}

func TestShipByAndProtection(t *testing.T) {
	s := startSystem(t, 1, shortWindows)
	lamp := s.product("store-x", "Lamp", 1000, 100, 100)
	sellerCtx := as(s.token(auth.RoleSeller, "store-x"))

	t.Run("ship-by passes", func(t *testing.T) {
		o := s.paidOrder(t, lamp)
		if d := deadline(o, "ship_by"); d.Sub(o.UpdatedAt.AsTime()) < 2900*time.Millisecond || d.Sub(o.UpdatedAt.AsTime()) > 3100*time.Millisecond {
			t.Fatalf("ship-by %s after payment, want 3 handling days (3s here)", d.Sub(o.UpdatedAt.AsTime()))
		}
		s.expectRefunded(t, o, "seller", lamp, 100)
		if got := s.order("alice", o.Id); got.CancelReason != "not_shipped_in_time" {
			t.Fatalf("reason %q", got.CancelReason)
		}
	})

	t.Run("protection ends", func(t *testing.T) {
		o := s.paidOrder(t, lamp)
		r, err := s.seller.ShipOrder(sellerCtx, &sellerv1.ShipOrderRequest{OrderId: o.Id, Carrier: "DHL", TrackingNumber: "JD0002"})
		if err != nil || deadline(r.Order, "protection").IsZero() || !deadline(r.Order, "ship_by").IsZero() {
			t.Fatalf("ship: %v %v", r.GetOrder().GetDeadlines(), err)
		}
		testenv.Eventually(t, 10*time.Second, "protection ends", func() bool { return s.order("alice", o.Id).Status == completed })
		if got := s.order("alice", o.Id); len(got.Deadlines) != 0 || countKinds(got)["completed"] != 1 {
			t.Fatalf("completed order: deadlines %v, history %v", got.Deadlines, countKinds(got))
		}
	})

	t.Run("extension moves the deadline", func(t *testing.T) {
		o := s.paidOrder(t, lamp)
		r, _ := s.seller.ShipOrder(sellerCtx, &sellerv1.ShipOrderRequest{OrderId: o.Id, Carrier: "DHL", TrackingNumber: "JD0003"})
		before := deadline(r.Order, "protection")
		if _, err := s.buyer.AskProtectionExtension(as(s.token(auth.RoleBuyer, "alice")), &buyerv1.AskProtectionExtensionRequest{OrderId: o.Id, Days: 7, Note: "customs"}); err != nil {
			t.Fatal(err)
		}
		e, err := s.seller.ExtendProtection(sellerCtx, &sellerv1.ExtendProtectionRequest{OrderId: o.Id, Days: 90, Reason: "customs delay"})
		if err != nil {
			t.Fatal(err)
		}
		// Protection days as configured (SOUK_PROTECTION_DAY), not 24 hours.
		if moved := deadline(e.Order, "protection").Sub(before); moved != 90*s.cfg.Policy.ProtectionDay {
			t.Fatalf("the deadline moved %s, want 90 protection days (%s)", moved, 90*s.cfg.Policy.ProtectionDay)
		}
		time.Sleep(2500 * time.Millisecond) // past the original end
		if got := s.order("alice", o.Id); got.Status != shipped {
			t.Fatalf("extended order is %s", got.Status)
		}
	})
}

func TestDisputes(t *testing.T) {
	s := startSystem(t, 1, func(c *app.Config) {
		c.Policy.DisputeAnswerWindow = 1500 * time.Millisecond
		c.SweepInterval = 100 * time.Millisecond
	})
	lamp := s.product("store-x", "Lamp", 1000, 100, 100)
	buyerTok := s.token(auth.RoleBuyer, "alice")
	buyerCtx, sellerCtx := as(buyerTok), as(s.token(auth.RoleSeller, "store-x"))
	admin := sellerv1.NewDisputeResolutionServiceClient(dial(t, s.sellers[0].InternalGRPCAddr()))
	adminCtx := as(s.token(auth.RoleAdmin, "moderator-1"))

	shippedOrder := func(t *testing.T) *orderv1.Order {
		o := s.paidOrder(t, lamp)
		if _, err := s.seller.ShipOrder(sellerCtx, &sellerv1.ShipOrderRequest{OrderId: o.Id, Carrier: "DHL", TrackingNumber: "JD0009"}); err != nil {
			t.Fatal(err)
		}
		return o
	}
	open := func(t *testing.T, o *orderv1.Order, amount int64) *orderv1.Order {
		t.Helper()
		r, err := s.buyer.OpenDispute(buyerCtx, &buyerv1.OpenDisputeRequest{OrderId: o.Id, Reason: "damaged", RefundAmount: usd(amount),
			Evidence: &orderv1.EvidenceInput{Text: "the lamp arrived broken", Links: []string{"https://img.example/1.jpg"}}})
		if err != nil || r.Order.Status != disputed || r.Order.Dispute.Status != "OPEN" || deadline(r.Order, "dispute_answer").IsZero() || !deadline(r.Order, "protection").IsZero() {
			t.Fatalf("open dispute: %v %v", r, err)
		}
		return r.Order
	}
	refundOf := func(t *testing.T, o *orderv1.Order, amount int64) *orderv1.Order {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, "the dispute refund is paid", func() bool {
			got := s.order("alice", o.Id)
			return len(got.Refunds) == 1 && got.Refunds[0].Status == refundOK
		})
		got := s.order("alice", o.Id)
		if got.Refunds[0].Amount.AmountMinor != amount || got.Dispute.Status != "RESOLVED" {
			t.Fatalf("refund %v, dispute %s; want %d", got.Refunds[0].Amount, got.Dispute.Status, amount)
		}
		return got
	}

	t.Run("accept in full (JSON)", func(t *testing.T) {
		o := shippedOrder(t)
		open(t, o, o.Total.AmountMinor)
		code, body := jsonCall(t, "POST", s.sellerURL("/v1/orders/"+o.Id+"/dispute:answer"), s.token(auth.RoleSeller, "store-x"), map[string]any{"accept": map[string]any{}})
		if code != http.StatusOK {
			t.Fatalf("accept: %d %v", code, body)
		}
		if got := refundOf(t, o, o.Total.AmountMinor); got.Status != cancelled || got.CancelReason != "refunded_in_full" || got.CancelledBy != "seller" {
			t.Fatalf("full refund: %s %q by %q", got.Status, got.CancelReason, got.CancelledBy)
		}
	})

	t.Run("accept in part", func(t *testing.T) {
		o := shippedOrder(t)
		open(t, o, 400)
		if _, err := s.seller.AnswerDispute(sellerCtx, &sellerv1.AnswerDisputeRequest{OrderId: o.Id, Answer: &sellerv1.AnswerDisputeRequest_Accept{Accept: &sellerv1.AcceptDispute{}}}); err != nil {
			t.Fatal(err)
		}
		if got := refundOf(t, o, 400); got.Status != completed {
			t.Fatalf("partial refund leaves the order %s", got.Status)
		}
	})

	t.Run("counter-offer taken", func(t *testing.T) {
		o := shippedOrder(t)
		open(t, o, 800)
		r, err := s.seller.AnswerDispute(sellerCtx, &sellerv1.AnswerDisputeRequest{OrderId: o.Id,
			Answer: &sellerv1.AnswerDisputeRequest_CounterOffer{CounterOffer: &sellerv1.CounterOffer{Amount: usd(300), Note: "a small scratch"}}})
		if err != nil || r.Order.Dispute.Status != "COUNTER_OFFERED" || r.Order.Dispute.CounterAmount.AmountMinor != 300 {
			t.Fatalf("counter-offer: %v %v", r, err)
		}
		if _, err := s.buyer.AnswerCounterOffer(buyerCtx, &buyerv1.AnswerCounterOfferRequest{OrderId: o.Id, Accept: true}); err != nil {
			t.Fatal(err)
		}
		refundOf(t, o, 300)
	})

	t.Run("reject, escalate, the platform decides", func(t *testing.T) {
		o := shippedOrder(t)
		open(t, o, 1100)
		if _, err := s.seller.AnswerDispute(sellerCtx, &sellerv1.AnswerDisputeRequest{OrderId: o.Id,
			Answer: &sellerv1.AnswerDisputeRequest_Reject{Reject: &sellerv1.RejectDispute{Evidence: &orderv1.EvidenceInput{Text: "it left intact", Links: []string{"https://img.example/packing.jpg"}}}}}); err != nil {
			t.Fatal(err)
		}
		list, err := admin.ListEscalatedDisputes(adminCtx, &sellerv1.ListEscalatedDisputesRequest{})
		if err != nil || len(list.Orders) != 1 || list.Orders[0].Id != o.Id || len(list.Orders[0].Dispute.Evidence) != 2 {
			t.Fatalf("escalated: %v %v", list, err)
		}
		if _, err := admin.DecideDispute(as(s.token(auth.RoleSeller, "store-x")), &sellerv1.DecideDisputeRequest{OrderId: o.Id, RefundAmount: usd(1), Note: "x"}); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("a seller deciding: %v", err)
		}
		if _, err := admin.DecideDispute(adminCtx, &sellerv1.DecideDisputeRequest{OrderId: o.Id, RefundAmount: usd(5000), Note: "too much"}); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("deciding more than was paid: %v", err)
		}
		if _, err := admin.DecideDispute(adminCtx, &sellerv1.DecideDisputeRequest{OrderId: o.Id, RefundAmount: usd(550), Note: "half: the photos disagree"}); err != nil {
			t.Fatal(err)
		}
		got := refundOf(t, o, 550)
		if got.Status != completed || countKinds(got)["dispute_escalated"] != 1 || countKinds(got)["dispute_resolved"] != 1 {
			t.Fatalf("decided: %s, history %v", got.Status, countKinds(got))
		}
	})

	t.Run("silence escalates", func(t *testing.T) {
		o := shippedOrder(t)
		open(t, o, 500)
		testenv.Eventually(t, 10*time.Second, "the dispute escalates", func() bool {
			return s.order("alice", o.Id).Dispute.Status == "ESCALATED"
		})
		if _, err := admin.DecideDispute(adminCtx, &sellerv1.DecideDisputeRequest{OrderId: o.Id, RefundAmount: usd(0), Note: "no evidence of damage"}); err != nil {
			t.Fatal(err)
		}
		if got := s.order("alice", o.Id); got.Status != completed || len(got.Refunds) != 0 {
			t.Fatalf("decided for the seller: %s, %d refunds", got.Status, len(got.Refunds))
		}
	})

	t.Run("withdraw restores protection", func(t *testing.T) {
		o := shippedOrder(t)
		before := deadline(s.order("alice", o.Id), "protection")
		opened := open(t, o, 100)
		if _, err := s.buyer.AddDisputeEvidence(buyerCtx, &buyerv1.AddDisputeEvidenceRequest{OrderId: o.Id, Evidence: &orderv1.EvidenceInput{Text: "another photo"}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // days in the dispute
		r, err := s.buyer.WithdrawDispute(buyerCtx, &buyerv1.WithdrawDisputeRequest{OrderId: o.Id})
		if err != nil || r.Order.Status != shipped || len(r.Order.Dispute.Evidence) != 2 {
			t.Fatalf("withdraw: %v %v", r, err)
		}
		// The protection left when the dispute opened runs on from the
		// withdrawal: the days in the dispute are not lost.
		left := before.Sub(opened.Dispute.OpenedAt.AsTime())
		if got, want := deadline(r.Order, "protection"), r.Order.Dispute.ResolvedAt.AsTime().Add(left); !got.Equal(want) {
			t.Fatalf("protection ends %s after the withdrawal, want %s (%s left when it opened)", got, want, left)
		}
	})
}

// TestSellerStats checks the store's figures after a few orders.
func TestSellerStats(t *testing.T) {
	s := startSystem(t, 1, nil)
	lamp := s.product("store-x", "Lamp", 1000, 100, 100)
	buyerCtx, sellerCtx := as(s.token(auth.RoleBuyer, "alice")), as(s.token(auth.RoleSeller, "store-x"))
	s.checkout("alice", 1, lamp) // unpaid
	requested := s.paidOrder(t, lamp)
	if _, err := s.buyer.RequestCancellation(buyerCtx, &buyerv1.RequestCancellationRequest{OrderId: requested.Id, Reason: "no_longer_needed"}); err != nil {
		t.Fatal(err)
	}
	cancelledBySeller := s.paidOrder(t, lamp)
	if _, err := s.buyer.RequestCancellation(buyerCtx, &buyerv1.RequestCancellationRequest{OrderId: cancelledBySeller.Id, Reason: "seller_asked_to_cancel"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.seller.AnswerCancellation(sellerCtx, &sellerv1.AnswerCancellationRequest{OrderId: cancelledBySeller.Id, Accept: true}); err != nil {
		t.Fatal(err)
	}
	shippedO := s.paidOrder(t, lamp)
	s.seller.ShipOrder(sellerCtx, &sellerv1.ShipOrderRequest{OrderId: shippedO.Id, Carrier: "DHL", TrackingNumber: "JD0100"})
	s.buyer.OpenDispute(buyerCtx, &buyerv1.OpenDisputeRequest{OrderId: shippedO.Id, Reason: "not_received", RefundAmount: shippedO.Total, Evidence: &orderv1.EvidenceInput{Text: "nothing came"}})
	s.paidOrder(t, lamp)

	st, err := s.seller.GetSellerStats(sellerCtx, &sellerv1.GetSellerStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	by := map[orderv1.OrderStatus]int64{}
	for _, c := range st.OrdersByStatus {
		by[c.Status] = c.Count
	}
	if by[pending] != 1 || by[paidStatus] != 2 || by[cancelled] != 1 || by[disputed] != 1 {
		t.Fatalf("orders by status: %v", by)
	}
	// 4 paid orders, 1 cancelled by the seller's fault: 25%.
	if st.PaidOrders != 4 || st.SellerCancellations != 1 || st.CancellationRateBp != 2500 {
		t.Fatalf("paid %d, seller cancellations %d, rate %d bp", st.PaidOrders, st.SellerCancellations, st.CancellationRateBp)
	}
	if len(st.OpenCancellationRequests) != 1 || st.OpenCancellationRequests[0].OrderId != requested.Id || st.OpenCancellationRequests[0].DueAt == nil {
		t.Fatalf("open requests: %v", st.OpenCancellationRequests)
	}
	if st.OpenCancellationRequestCount != 1 || st.OpenDisputeCount != 1 {
		t.Fatalf("open counts: %d requests, %d disputes; want 1 and 1", st.OpenCancellationRequestCount, st.OpenDisputeCount)
	}
	if len(st.OpenDisputes) != 1 || st.OpenDisputes[0].OrderId != shippedO.Id || st.OpenDisputes[0].Detail != "OPEN" {
		t.Fatalf("open disputes: %v", st.OpenDisputes)
	}
	// The accepted cancellation's refund may already be paid by the worker.
	if st.RefundsInFlight > 1 {
		t.Fatalf("refunds in flight: %d", st.RefundsInFlight)
	}
	// The last 30 days: today has the five orders and the four payments.
	if len(st.Days) != 30 {
		t.Fatalf("%d days", len(st.Days))
	}
	today := st.Days[29]
	if today.Date != time.Now().UTC().Format(time.DateOnly) || today.Orders != 5 || today.PaidOrders != 4 || len(today.Revenue) != 1 ||
		today.Revenue[0].AmountMinor != 4*1100 || st.Days[0].Orders != 0 || st.Days[0].Date != time.Now().UTC().AddDate(0, 0, -29).Format(time.DateOnly) {
		t.Fatalf("days: first %v, today %v", st.Days[0], today)
	}
	// The cancellation requests tab: only the order whose request waits.
	reqs, err := s.seller.ListOrders(sellerCtx, &sellerv1.ListOrdersRequest{CancellationRequested: true})
	if err != nil || len(reqs.Orders) != 1 || reqs.Orders[0].Id != requested.Id {
		t.Fatalf("orders with an open request: %v %v", reqs, err)
	}
	other, _ := s.seller.GetSellerStats(as(s.token(auth.RoleSeller, "store-y")), &sellerv1.GetSellerStatsRequest{})
	if len(other.OrdersByStatus) != 0 || other.PaidOrders != 0 {
		t.Fatalf("another store sees %v", other)
	}
}
