package e2e

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/payment"
	"github.com/souk-dev/souk/internal/testenv"
)

// paymentCase is a test card or account and what paying with it does: at
// once, and (for asynchronous ones) once the provider reports back.
type paymentCase struct {
	name string
	// method is the request's payment method as JSON (for the gateway) and
	// as a setter of the gRPC request.
	json  map[string]any
	grpc  func(*buyerv1.PayOrderRequest)
	first expectation
	final *expectation // set for asynchronous outcomes
}

type expectation struct {
	order   orderv1.OrderStatus
	attempt orderv1.PaymentAttemptStatus
	decline string // the decline code, "" for none
}

func cardCase(name, number string, first expectation, final *expectation) paymentCase {
	c := map[string]any{"number": number, "exp_month": 12, "exp_year": 2099, "cvc": "123"}
	return paymentCase{name: name, json: map[string]any{"card": c}, first: first, final: final, grpc: func(r *buyerv1.PayOrderRequest) {
		r.Method = &buyerv1.PayOrderRequest_Card{Card: &buyerv1.Card{Number: number, ExpMonth: 12, ExpYear: 2099, Cvc: "123"}}
	}}
}

const (
	pending    = orderv1.OrderStatus_ORDER_STATUS_PENDING_PAYMENT
	processing = orderv1.OrderStatus_ORDER_STATUS_PAYMENT_PROCESSING
	partly     = orderv1.OrderStatus_ORDER_STATUS_PARTIALLY_PAID
	paidStatus = orderv1.OrderStatus_ORDER_STATUS_AWAITING_SHIPMENT
	cancelled  = orderv1.OrderStatus_ORDER_STATUS_CANCELLED

	aVerify    = orderv1.PaymentAttemptStatus_PAYMENT_ATTEMPT_STATUS_REQUIRES_VERIFICATION
	aProc      = orderv1.PaymentAttemptStatus_PAYMENT_ATTEMPT_STATUS_PROCESSING
	aSucceeded = orderv1.PaymentAttemptStatus_PAYMENT_ATTEMPT_STATUS_SUCCEEDED
	aDeclined  = orderv1.PaymentAttemptStatus_PAYMENT_ATTEMPT_STATUS_DECLINED
	aFailed    = orderv1.PaymentAttemptStatus_PAYMENT_ATTEMPT_STATUS_FAILED
	aCanceled  = orderv1.PaymentAttemptStatus_PAYMENT_ATTEMPT_STATUS_CANCELED
)

func paymentCases() []paymentCase {
	declined := func(code string) expectation { return expectation{pending, aDeclined, code} }
	return []paymentCase{
		cardCase("card approves", "4242424242424242", expectation{paidStatus, aSucceeded, ""}, nil),
		cardCase("mastercard approves", "5555555555554444", expectation{paidStatus, aSucceeded, ""}, nil),
		cardCase("do_not_honor", "4000000000000002", declined("do_not_honor"), nil),
		cardCase("incorrect_cvc", "4000000000000127", declined("incorrect_cvc"), nil),
		cardCase("insufficient_funds", "4000000000009995", declined("insufficient_funds"), nil),
		cardCase("expired_card", "4000000000000069", declined("expired_card"), nil),
		cardCase("bank_restriction", "4000000000009987", declined("bank_restriction"), nil),
		cardCase("processing_error", "4000000000000119", expectation{pending, aFailed, "processing_error"}, nil),
		cardCase("verification_required", "4000000000003220", expectation{pending, aVerify, ""}, nil),
		cardCase("slow confirmation", "4000000000000077", expectation{processing, aProc, ""}, &expectation{paidStatus, aSucceeded, ""}),
		cardCase("slow decline", "4000000000000341", expectation{processing, aProc, ""}, &expectation{pending, aDeclined, "do_not_honor"}),
		// The provider approves but its answer is lost: the payment is
		// being checked until reconciliation asks the provider.
		cardCase("answer lost", "4000000000002014", expectation{processing, aProc, ""}, &expectation{paidStatus, aSucceeded, ""}),
		{name: "wallet approves", json: map[string]any{"wallet": map[string]any{"account": payment.WalletApprove}},
			grpc: func(r *buyerv1.PayOrderRequest) {
				r.Method = &buyerv1.PayOrderRequest_Wallet{Wallet: &buyerv1.Wallet{Account: payment.WalletApprove}}
			}, first: expectation{paidStatus, aSucceeded, ""}},
		{name: "wallet rejects", json: map[string]any{"wallet": map[string]any{"account": payment.WalletReject}},
			grpc: func(r *buyerv1.PayOrderRequest) {
				r.Method = &buyerv1.PayOrderRequest_Wallet{Wallet: &buyerv1.Wallet{Account: payment.WalletReject}}
			}, first: declined("wallet_rejected")},
		{name: "bank transfer confirmed", json: map[string]any{"bank_transfer": map[string]any{"account_number": "DE89370400440532013000"}},
			grpc: func(r *buyerv1.PayOrderRequest) {
				r.Method = &buyerv1.PayOrderRequest_BankTransfer{BankTransfer: &buyerv1.BankTransfer{AccountNumber: "DE89370400440532013000"}}
			}, first: expectation{processing, aProc, ""}, final: &expectation{paidStatus, aSucceeded, ""}},
		{name: "bank transfer fails", json: map[string]any{"bank_transfer": map[string]any{"account_number": "TESTFAIL0001"}},
			grpc: func(r *buyerv1.PayOrderRequest) {
				r.Method = &buyerv1.PayOrderRequest_BankTransfer{BankTransfer: &buyerv1.BankTransfer{AccountNumber: "TESTFAIL0001"}}
			}, first: expectation{processing, aProc, ""}, final: &expectation{pending, aFailed, "transfer_failed"}},
	}
}

// deadline returns the due time of an order's deadline of kind, or zero.
func deadline(o *orderv1.Order, kind string) time.Time {
	for _, d := range o.Deadlines {
		if d.Kind == kind {
			return d.DueAt.AsTime()
		}
	}
	return time.Time{}
}

// check compares an order and its attempt with an expectation; a decline
// must come with a message and advice.
func (e expectation) check(t *testing.T, what string, o *orderv1.Order, a *orderv1.PaymentAttempt) {
	t.Helper()
	if o.Status != e.order || a.Status != e.attempt || a.GetDecline().GetCode() != e.decline {
		t.Fatalf("%s: order %s, attempt %s (decline %q); want %s, %s (%q)", what, o.Status, a.Status, a.GetDecline().GetCode(), e.order, e.attempt, e.decline)
	}
	if e.decline != "" {
		if d := a.Decline; d.Message == "" || d.Advice == "" || o.LastDecline.GetCode() != e.decline {
			t.Fatalf("%s: decline %+v, order's last decline %+v", what, d, o.LastDecline)
		}
	}
	if e.order == pending && deadline(o, "payment").IsZero() {
		t.Fatalf("%s: an order waiting for payment has deadlines %v, want its payment window", what, o.Deadlines)
	}
}

// TestEveryTestCardAndAccount pays with every documented test card and
// account, through gRPC and through the JSON gateway.
func TestEveryTestCardAndAccount(t *testing.T) {
	s := startSystem(t, 1, nil)
	lamp := s.product("store-x", "Lamp", 1000, 100, 1000)
	buyerTok := s.token(auth.RoleBuyer, "alice")
	for _, transport := range []string{"grpc", "json"} {
		for _, tc := range paymentCases() {
			t.Run(transport+"/"+tc.name, func(t *testing.T) {
				o := s.checkout("alice", 1, lamp)[0]
				window := deadline(o, "payment")
				key := "pay-" + uuid.NewString()
				var got *orderv1.Order
				var a *orderv1.PaymentAttempt
				if transport == "grpc" {
					req := &buyerv1.PayOrderRequest{OrderId: o.Id, ExpectedTotal: o.Total, IdempotencyKey: key}
					tc.grpc(req)
					resp, err := s.buyer.PayOrder(as(buyerTok), req)
					if err != nil {
						t.Fatal(err)
					}
					got, a = resp.Order, resp.Attempt
				} else {
					body := map[string]any{"expected_total": map[string]any{"amount_minor": o.Total.AmountMinor, "currency": "USD"}, "idempotency_key": key}
					for k, v := range tc.json {
						body[k] = v
					}
					code, out := jsonCall(t, "POST", s.buyerURL("/v1/orders/"+o.Id+":pay"), buyerTok, body)
					if code != http.StatusOK {
						t.Fatalf("pay: %d %v", code, out)
					}
					// Read it back over gRPC to compare typed values; the
					// JSON answer must say the same.
					got = s.order("alice", o.Id)
					a = got.PaymentAttempts[0]
					if str(out, "attempt", "status") != a.Status.String() || str(out, "attempt", "decline", "code") != a.GetDecline().GetCode() ||
						str(out, "order", "status") != got.Status.String() {
						t.Fatalf("JSON answer %v differs from the order %s / %s", out, got.Status, a.Status)
					}
				}
				tc.first.check(t, "answer", got, a)
				if tc.first.order == pending && !deadline(got, "payment").Equal(window) {
					t.Fatalf("payment window moved from %s to %s", window, deadline(got, "payment"))
				}
				if tc.final != nil {
					testenv.Eventually(t, 10*time.Second, "the provider's report", func() bool {
						return s.order("alice", o.Id).PaymentAttempts[0].Status != aProc
					})
					got = s.order("alice", o.Id)
					tc.final.check(t, "after the report", got, got.PaymentAttempts[0])
				}
			})
		}
	}
}

// TestVerification completes a verification_required payment with the
// right code after a wrong one, fails one after too many wrong codes, and
// lets an unverified one expire.
func TestVerification(t *testing.T) {
	s := startSystem(t, 1, func(c *app.Config) { c.Policy.VerificationTTL = 1500 * time.Millisecond })
	lamp := s.product("store-x", "Lamp", 1000, 100, 1000)
	ctx := as(s.token(auth.RoleBuyer, "alice"))
	sellerCtx := as(s.token(auth.RoleSeller, "store-x"))
	verify := func(o *orderv1.Order, a *orderv1.PaymentAttempt, code string) *buyerv1.VerifyPaymentResponse {
		t.Helper()
		resp, err := s.buyer.VerifyPayment(ctx, &buyerv1.VerifyPaymentRequest{OrderId: o.Id, AttemptId: a.Id, Code: code})
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		return resp
	}

	o := s.checkout("alice", 1, lamp)[0]
	a := s.pay(t, "alice", o, "4000000000003220", "verify-key-1").Attempt
	// The price cannot change while the attempt waits for its code.
	_, err := s.seller.AdjustOrderPrice(sellerCtx, &sellerv1.AdjustOrderPriceRequest{OrderId: o.Id, ShippingFee: usd(0), Reason: "free shipping"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("adjusting during verification: %v, want FAILED_PRECONDITION", err)
	}
	if r := verify(o, a, "111111"); r.Attempt.Status != aVerify || r.Attempt.VerificationFailures != 1 {
		t.Fatalf("wrong code: attempt %s with %d failures", r.Attempt.Status, r.Attempt.VerificationFailures)
	}
	if r := verify(o, a, payment.VerificationCode); r.Attempt.Status != aSucceeded || r.Order.Status != paidStatus {
		t.Fatalf("right code: attempt %s, order %s", r.Attempt.Status, r.Order.Status)
	}
	if _, err := s.buyer.VerifyPayment(ctx, &buyerv1.VerifyPaymentRequest{OrderId: o.Id, AttemptId: a.Id, Code: payment.VerificationCode}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("verifying twice: %v", err)
	}

	o = s.checkout("alice", 1, lamp)[0]
	a = s.pay(t, "alice", o, "4000000000003220", "verify-key-2").Attempt
	var r *buyerv1.VerifyPaymentResponse
	for range 3 {
		r = verify(o, a, "999999")
	}
	if r.Attempt.Status != aFailed || r.Attempt.Decline.Code != "verification_failed" || r.Order.Status != pending {
		t.Fatalf("three wrong codes: attempt %s (%v), order %s", r.Attempt.Status, r.Attempt.Decline, r.Order.Status)
	}

	o = s.checkout("alice", 1, lamp)[0]
	s.pay(t, "alice", o, "4000000000003220", "verify-key-3")
	testenv.Eventually(t, 10*time.Second, "the unverified attempt expires", func() bool {
		return s.order("alice", o.Id).PaymentAttempts[0].Status == aFailed
	})
	if got := s.order("alice", o.Id); got.PaymentAttempts[0].Decline.Code != "verification_expired" || got.Status != pending {
		t.Fatalf("expired attempt: %v, order %s", got.PaymentAttempts[0].Decline, got.Status)
	}
	// The order can be paid again.
	if r := s.pay(t, "alice", o, "4242424242424242", "verify-key-4"); r.Order.Status != paidStatus {
		t.Fatalf("paying after the expiry: %s", r.Order.Status)
	}
}

// TestIdempotencyKeys repeats a payment with its key, reuses a key for
// another payment, and sends one key from ten goroutines at once.
func TestIdempotencyKeys(t *testing.T) {
	s := startSystem(t, 1, nil)
	lamp := s.product("store-x", "Lamp", 1000, 100, 1000)
	ctx := as(s.token(auth.RoleBuyer, "alice"))
	o := s.checkout("alice", 1, lamp)[0]
	first := s.pay(t, "alice", o, "4242424242424242", "same-key-1")
	again := s.pay(t, "alice", o, "4242424242424242", "same-key-1")
	if again.Attempt.Id != first.Attempt.Id || again.Attempt.Status != aSucceeded {
		t.Fatalf("the retry answered attempt %s (%s), want %s", again.Attempt.Id, again.Attempt.Status, first.Attempt.Id)
	}
	// The same key with other parameters: another card, another order.
	other := s.checkout("alice", 1, lamp)[0]
	for name, req := range map[string]*buyerv1.PayOrderRequest{
		"other card":  {OrderId: o.Id, ExpectedTotal: o.Total, IdempotencyKey: "same-key-1", Method: &buyerv1.PayOrderRequest_Card{Card: &buyerv1.Card{Number: "5555555555554444", ExpMonth: 12, ExpYear: 2099, Cvc: "123"}}},
		"other order": {OrderId: other.Id, ExpectedTotal: other.Total, IdempotencyKey: "same-key-1", Method: &buyerv1.PayOrderRequest_Card{Card: &buyerv1.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2099, Cvc: "123"}}},
	} {
		_, err := s.buyer.PayOrder(ctx, req)
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "same-key-1") {
			t.Errorf("%s: %v, want FAILED_PRECONDITION naming the key", name, err)
		}
	}

	// Ten concurrent requests with one key: one charge.
	o = s.checkout("alice", 1, lamp)[0]
	var wg sync.WaitGroup
	var mu sync.Mutex
	attempts := map[string]bool{}
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := s.buyer.PayOrder(ctx, &buyerv1.PayOrderRequest{OrderId: o.Id, ExpectedTotal: o.Total, IdempotencyKey: "concurrent-key",
				Method: &buyerv1.PayOrderRequest_Card{Card: &buyerv1.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2099, Cvc: "123"}}})
			if err != nil && status.Code(err) != codes.Aborted {
				t.Errorf("concurrent pay: %v", err)
				return
			}
			if err == nil {
				mu.Lock()
				attempts[resp.Attempt.Id] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(attempts) != 1 {
		t.Fatalf("concurrent requests answered %d different attempts, want 1", len(attempts))
	}
	if n := s.capturedFor(t, o.Id); n != 1 {
		t.Fatalf("order charged %d times, want once", n)
	}
}

// capturedFor counts the provider's captured payments of an order.
func (s *system) capturedFor(t *testing.T, orderID string) int {
	t.Helper()
	ledger, err := s.provider.Ledger(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range ledger {
		if p.OrderID == orderID && (p.Status == "captured" || p.Status == "succeeded") {
			n++
		}
	}
	return n
}

// TestLateConfirmationAfterExpiry: a bank transfer that Souk gave up on
// (its processing deadline passed) and whose order was then cancelled by
// the payment window, confirmed late by the bank, leaves the order
// cancelled and is refunded automatically, once.
func TestLateConfirmationAfterExpiry(t *testing.T) {
	s := startSystem(t, 1, func(c *app.Config) {
		c.PaymentWindow = 600 * time.Millisecond
		c.Policy.ProcessingTimeout = 300 * time.Millisecond
		c.SweepInterval = 100 * time.Millisecond
	})
	lamp := s.product("store-x", "Lamp", 1000, 100, 10)
	o := s.checkout("alice", 2, lamp)[0]
	resp, err := s.buyer.PayOrder(as(s.token(auth.RoleBuyer, "alice")), &buyerv1.PayOrderRequest{OrderId: o.Id, ExpectedTotal: o.Total, IdempotencyKey: "late-key-1",
		Method: &buyerv1.PayOrderRequest_BankTransfer{BankTransfer: &buyerv1.BankTransfer{AccountNumber: "DE89370400440532013000"}}})
	if err != nil || resp.Order.Status != processing {
		t.Fatalf("bank transfer: %v %v", resp.GetOrder().GetStatus(), err)
	}
	testenv.Eventually(t, 10*time.Second, "the refund is paid", func() bool {
		got := s.order("alice", o.Id)
		return len(got.Refunds) == 1 && got.Refunds[0].Status == orderv1.RefundStatus_REFUND_STATUS_SUCCEEDED
	})
	got := s.order("alice", o.Id)
	if got.Status != cancelled || got.CancelReason != "payment_timeout" || got.PaymentAttempts[0].Status != aSucceeded {
		t.Fatalf("order %s (%s), attempt %s", got.Status, got.CancelReason, got.PaymentAttempts[0].Status)
	}
	r := got.Refunds[0]
	if r.Amount.AmountMinor != o.Total.AmountMinor || r.Reason != "payment_after_cancellation" || r.Method != orderv1.PaymentMethod_PAYMENT_METHOD_BANK_TRANSFER {
		t.Fatalf("refund %+v", r)
	}
	if due := r.DueAt.AsTime().Sub(r.CreatedAt.AsTime()); due < 15*24*time.Hour || due > 23*24*time.Hour {
		t.Fatalf("refund due %s after it was owed, want 15 banking days", due)
	}
	if s.stock(lamp) != 10 {
		t.Fatalf("stock = %d, want 10", s.stock(lamp))
	}
	ledger, _ := s.provider.Ledger(context.Background())
	if len(ledger) != 1 || ledger[0].Refunded != o.Total.AmountMinor || ledger[0].Refunds != 1 {
		t.Fatalf("ledger %+v, want one payment refunded once in full", ledger)
	}
	// The buyer lists it; the seller sees it on the order.
	refunds, err := s.buyer.ListRefunds(as(s.token(auth.RoleBuyer, "alice")), &buyerv1.ListRefundsRequest{})
	if err != nil || len(refunds.Refunds) != 1 || refunds.Refunds[0].Id != r.Id {
		t.Fatalf("buyer's refunds: %v %v", refunds, err)
	}
	so, err := s.seller.GetOrder(as(s.token(auth.RoleSeller, "store-x")), &sellerv1.GetOrderRequest{OrderId: o.Id})
	if err != nil || len(so.Order.Refunds) != 1 {
		t.Fatalf("seller's view: %v %v", so, err)
	}
}

// TestPayOrdersOfOneCheckout pays the orders of two sellers in one action.
func TestPayOrdersOfOneCheckout(t *testing.T) {
	s := startSystem(t, 1, nil)
	lamp, mug := s.product("store-x", "Lamp", 1000, 100, 10), s.product("store-y", "Mug", 500, 0, 10)
	orders := s.checkout("alice", 1, lamp, mug)
	ctx := as(s.token(auth.RoleBuyer, "alice"))
	req := &buyerv1.PayOrdersRequest{IdempotencyKey: "pay-both-1", Method: &buyerv1.PayOrdersRequest_Card{Card: &buyerv1.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2099, Cvc: "123"}}}
	for _, o := range orders {
		req.Orders = append(req.Orders, &buyerv1.OrderPayment{OrderId: o.Id, ExpectedTotal: o.Total})
	}
	resp, err := s.buyer.PayOrders(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range resp.Results {
		if r.ErrorCode != "" || r.Order.Status != paidStatus || r.Attempt.Amount.AmountMinor != orders[i].Total.AmountMinor {
			t.Fatalf("result %d: %+v", i, r)
		}
		if n := s.capturedFor(t, r.OrderId); n != 1 {
			t.Fatalf("order %s charged %d times", r.OrderId, n)
		}
	}
	again, err := s.buyer.PayOrders(ctx, req)
	if err != nil || again.Results[0].Attempt.Id != resp.Results[0].Attempt.Id {
		t.Fatalf("repeat: %v %v", again, err)
	}
	// One order's total changed: it alone is refused.
	orders = s.checkout("alice", 1, lamp, mug)
	req = &buyerv1.PayOrdersRequest{IdempotencyKey: "pay-both-2", Method: req.Method, Orders: []*buyerv1.OrderPayment{
		{OrderId: orders[0].Id, ExpectedTotal: usd(1)}, {OrderId: orders[1].Id, ExpectedTotal: orders[1].Total},
	}}
	resp, err = s.buyer.PayOrders(ctx, req)
	if err != nil || resp.Results[0].ErrorCode != "FAILED_PRECONDITION" || resp.Results[1].Order.GetStatus() != paidStatus {
		t.Fatalf("mixed: %v %v", resp, err)
	}
}
