package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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

// faultyProvider is the simulated provider with faults a test injects at
// the edge: hooks run around its calls.
type faultyProvider struct {
	payment.Provider
	// beforePay, if set, runs before every Pay reaches the provider.
	beforePay func(req payment.PaymentRequest)
	// detached, if set, lets a Pay reach the provider after its caller gave
	// up (a request still on its way when the caller's time-out fired).
	detached bool
	// afterPay, if set, sees every Pay's answer and may change it.
	afterPay func(req payment.PaymentRequest, res order.Result, err error) (order.Result, error)
	// beforeCapture, if set, runs before every Capture.
	beforeCapture func(ref string)
	// lookupDown, if set and true, makes every Lookup fail as an outage.
	lookupDown *atomic.Bool
}

func (p *faultyProvider) Lookup(ctx context.Context, key string) (order.Result, bool, error) {
	if p.lookupDown != nil && p.lookupDown.Load() {
		return order.Result{}, false, fmt.Errorf("%w: lookup unavailable", payment.ErrTransient)
	}
	return p.Provider.Lookup(ctx, key)
}

func (p *faultyProvider) Pay(ctx context.Context, req payment.PaymentRequest) (order.Result, error) {
	if p.beforePay != nil {
		p.beforePay(req)
	}
	if p.detached {
		ctx = context.WithoutCancel(ctx)
	}
	res, err := p.Provider.Pay(ctx, req)
	if p.afterPay != nil {
		return p.afterPay(req, res, err)
	}
	return res, err
}

func (p *faultyProvider) Capture(ctx context.Context, ref string) error {
	if p.beforeCapture != nil {
		p.beforeCapture(ref)
	}
	return p.Provider.Capture(ctx, ref)
}

// moneyOf checks the provider's ledger against an order: what it holds
// of the buyer's money (captured minus refunded) must be what the order's
// final state implies: its total while it stands paid, nothing once it
// was cancelled. No payment is refunded more than it took.
func (s *system) moneyOf(t *testing.T, o *orderv1.Order) {
	t.Helper()
	ledger, err := s.provider.Ledger(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var held int64
	for _, p := range ledger {
		if p.OrderID != o.Id {
			continue
		}
		if p.Refunded > p.Amount {
			t.Fatalf("payment %s refunded %d of %d", p.Ref, p.Refunded, p.Amount)
		}
		if p.Status == "captured" || p.Status == "succeeded" {
			held += p.Amount - p.Refunded
		} else if p.Refunded > 0 {
			t.Fatalf("payment %s is %s but refunded %d", p.Ref, p.Status, p.Refunded)
		}
	}
	want := int64(0)
	switch o.Status {
	case paidStatus, orderv1.OrderStatus_ORDER_STATUS_SHIPPED, orderv1.OrderStatus_ORDER_STATUS_COMPLETED, disputed:
		// The total, less what a dispute paid back; payments that arrived
		// after the order stopped waiting for them are all paid back.
		want = o.Total.AmountMinor
		for _, r := range o.Refunds {
			if r.Reason != "late_payment" && r.Reason != "payment_after_cancellation" {
				want -= r.Amount.AmountMinor
			}
		}
	}
	if held != want {
		t.Fatalf("the provider holds %d of order %s (%s), want %d; ledger %+v", held, o.Id, o.Status, want, ledger)
	}
}

// settled waits until every refund of the order is done and returns it.
func (s *system) settled(t *testing.T, buyer, id string) *orderv1.Order {
	t.Helper()
	testenv.Eventually(t, 15*time.Second, "every refund of "+id+" is made", func() bool {
		for _, r := range s.order(buyer, id).Refunds {
			if r.Status != refundOK {
				return false
			}
		}
		return true
	})
	return s.order(buyer, id)
}

// Scenario 1: a bank transfer times out, the buyer pays by card, the bank
// confirms late. The late transfer is paid back once; the card pays the
// order, and a cancellation or a dispute draws on the card.
func TestLateSuccessIsRefundedOnce(t *testing.T) {
	s := startSystem(t, 1, func(c *app.Config) { c.Policy.ProcessingTimeout = 300 * time.Millisecond })
	lamp := s.product("store-x", "Lamp", 1000, 100, 100)
	buyerCtx, sellerCtx := as(s.token(auth.RoleBuyer, "alice")), as(s.token(auth.RoleSeller, "store-x"))

	lateThenCard := func(t *testing.T) *orderv1.Order {
		o := s.checkout("alice", 1, lamp)[0]
		_, err := s.buyer.PayOrder(buyerCtx, &buyerv1.PayOrderRequest{OrderId: o.Id, ExpectedTotal: o.Total, IdempotencyKey: "transfer-" + o.Id,
			Method: &buyerv1.PayOrderRequest_BankTransfer{BankTransfer: &buyerv1.BankTransfer{AccountNumber: "DE89370400440532013000"}}})
		if err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 5*time.Second, "the transfer times out", func() bool { return s.order("alice", o.Id).Status == pending })
		s.pay(t, "alice", o, "4242424242424242", "card-"+o.Id)
		testenv.Eventually(t, 10*time.Second, "the late transfer is paid back", func() bool {
			got := s.order("alice", o.Id)
			return len(got.Refunds) == 1 && got.Refunds[0].Status == refundOK
		})
		got := s.order("alice", o.Id)
		if got.Status != paidStatus || got.Refunds[0].PaymentAttemptId != got.PaymentAttempts[0].Id || got.Refunds[0].Reason != "late_payment" {
			t.Fatalf("after the late transfer: %s, refunds %v", got.Status, got.Refunds)
		}
		return got
	}

	t.Run("cancellation", func(t *testing.T) {
		o := lateThenCard(t)
		if _, err := s.buyer.RequestCancellation(buyerCtx, &buyerv1.RequestCancellationRequest{OrderId: o.Id, Reason: "no_longer_needed"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.seller.AnswerCancellation(sellerCtx, &sellerv1.AnswerCancellationRequest{OrderId: o.Id, Accept: true}); err != nil {
			t.Fatal(err)
		}
		got := s.settled(t, "alice", o.Id)
		perAttempt := map[string]int64{}
		for _, r := range got.Refunds {
			perAttempt[r.PaymentAttemptId] += r.Amount.AmountMinor
		}
		if len(got.Refunds) != 2 || perAttempt[got.PaymentAttempts[0].Id] != o.Total.AmountMinor || perAttempt[got.PaymentAttempts[1].Id] != o.Total.AmountMinor {
			t.Fatalf("refunds %v, want each payment back once", got.Refunds)
		}
		s.moneyOf(t, got)
	})
	t.Run("dispute", func(t *testing.T) {
		o := lateThenCard(t)
		if _, err := s.seller.ShipOrder(sellerCtx, &sellerv1.ShipOrderRequest{OrderId: o.Id, Carrier: "DHL", TrackingNumber: "JD0001"}); err != nil {
			t.Fatal(err)
		}
		_, err := s.buyer.OpenDispute(buyerCtx, &buyerv1.OpenDisputeRequest{OrderId: o.Id, Reason: "damaged", RefundAmount: usd(400),
			Evidence: &orderv1.EvidenceInput{Text: "broken"}})
		if err != nil {
			t.Fatalf("a dispute of an order paid by its second attempt: %v", err)
		}
		if _, err := s.seller.AnswerDispute(sellerCtx, &sellerv1.AnswerDisputeRequest{OrderId: o.Id,
			Answer: &sellerv1.AnswerDisputeRequest_Accept{Accept: &sellerv1.AcceptDispute{}}}); err != nil {
			t.Fatal(err)
		}
		got := s.settled(t, "alice", o.Id)
		if got.Status != orderv1.OrderStatus_ORDER_STATUS_COMPLETED || len(got.Refunds) != 2 || got.Refunds[1].PaymentAttemptId != got.PaymentAttempts[1].Id {
			t.Fatalf("order %s, refunds %v", got.Status, got.Refunds)
		}
		s.moneyOf(t, got)
	})
}

// Scenario 2: a capture refused for good (the authorization expired) takes
// the order back to waiting for payment with a decline the buyer sees; the
// seller can never ship it meanwhile.
func TestCaptureRefusedReopensTheOrder(t *testing.T) {
	var expire atomic.Bool
	var sim *payment.Simulated
	s := startSystemWith(t, 1, options{provider: func(p *payment.Simulated) payment.Provider {
		sim = p
		return &faultyProvider{Provider: p, beforeCapture: func(ref string) {
			if expire.Load() {
				// The authorization lapses at the provider before the capture.
				_ = sim.Void(context.Background(), ref)
			}
		}}
	}})
	lamp := s.product("store-x", "Lamp", 1000, 100, 100)
	sellerCtx := as(s.token(auth.RoleSeller, "store-x"))
	o := s.checkout("alice", 1, lamp)[0]
	expire.Store(true)
	resp := s.pay(t, "alice", o, "4242424242424242", "capture-refused-1")
	if resp.Order.Status != pending || resp.Attempt.Status != aFailed || resp.Order.LastDecline.GetCode() != "capture_refused" ||
		resp.Order.LastDecline.Advice == "" || deadline(resp.Order, "payment").IsZero() {
		t.Fatalf("after a refused capture: order %s, attempt %s, decline %v, deadlines %v", resp.Order.Status, resp.Attempt.Status,
			resp.Order.LastDecline, resp.Order.Deadlines)
	}
	if _, err := s.seller.ShipOrder(sellerCtx, &sellerv1.ShipOrderRequest{OrderId: o.Id, Carrier: "DHL", TrackingNumber: "JD0001"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("shipping an order whose money never arrived: %v", err)
	}
	expire.Store(false)
	again := s.pay(t, "alice", resp.Order, "5555555555554444", "capture-refused-2")
	if again.Order.Status != paidStatus {
		t.Fatalf("paying again: %s", again.Order.Status)
	}
	if _, err := s.seller.ShipOrder(sellerCtx, &sellerv1.ShipOrderRequest{OrderId: o.Id, Carrier: "DHL", TrackingNumber: "JD0001"}); err != nil {
		t.Fatal(err)
	}
	s.moneyOf(t, s.order("alice", o.Id))
}

// Scenario 3: the order's lock is lost (Redis lost its data) while a
// payment waits for the provider; the buyer's retry takes the lock and
// records the payment. When the first request finally gets its answer it
// must not void the authorization the order is now paid with.
func TestLostLockNeverVoidsARecordedPayment(t *testing.T) {
	firstPay, release := make(chan struct{}), make(chan struct{})
	firstDone := make(chan struct{})
	var pays, captures atomic.Int32
	s := startSystemWith(t, 1, options{provider: func(p *payment.Simulated) payment.Provider {
		return &faultyProvider{Provider: p,
			afterPay: func(_ payment.PaymentRequest, res order.Result, err error) (order.Result, error) {
				if pays.Add(1) == 1 {
					close(firstPay)
					<-release // the first request's answer is slow to arrive
				}
				return res, err
			},
			beforeCapture: func(string) {
				if captures.Add(1) == 1 {
					// The retry's capture waits for the first request to finish.
					select {
					case <-firstDone:
					case <-time.After(5 * time.Second):
					}
				}
			}}
	}})
	lamp := s.product("store-x", "Lamp", 1000, 100, 100)
	o := s.checkout("alice", 1, lamp)[0]
	buyerCtx := as(s.token(auth.RoleBuyer, "alice"))
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(firstDone)
		_, _ = s.buyer.PayOrder(buyerCtx, payCard(o, "4242424242424242", "lost-lock-1"))
	}()
	<-firstPay
	s.deleteKeys(t) // Redis restarted empty: the lock is gone
	go func() {
		defer wg.Done()
		_, _ = s.buyer.PayOrder(buyerCtx, payCard(o, "4242424242424242", "lost-lock-1"))
	}()
	testenv.Eventually(t, 10*time.Second, "the retry records the payment", func() bool { return s.order("alice", o.Id).Status == paidStatus })
	close(release)
	wg.Wait()
	testenv.Eventually(t, 15*time.Second, "the payment is captured", func() bool { return s.capturedFor(t, o.Id) == 1 })
	got := s.order("alice", o.Id)
	if got.Status != paidStatus || len(got.PaymentAttempts) != 1 || got.PaymentAttempts[0].Status != aSucceeded {
		t.Fatalf("order %s, attempts %v", got.Status, got.PaymentAttempts)
	}
	s.moneyOf(t, got)
}

// Scenario 4: the provider authorizes but its answer is lost (a time-out).
// The attempt stays open ("being checked"), a second payment is refused,
// and reconciliation settles the first: one charge.
func TestAmbiguousProviderErrorIsCheckedNotDeclined(t *testing.T) {
	var lose atomic.Bool
	lose.Store(true)
	s := startSystemWith(t, 1, options{
		tune:  func(c *app.Config) { c.LockTTL = time.Second },
		buyer: func(c *buyer.Config) { c.ProviderTimeout = time.Second },
		provider: func(p *payment.Simulated) payment.Provider {
			return &faultyProvider{Provider: p, afterPay: func(_ payment.PaymentRequest, res order.Result, err error) (order.Result, error) {
				if err == nil && lose.Load() {
					return order.Result{}, errors.New("read tcp: i/o timeout")
				}
				return res, err
			}}
		}})
	lamp := s.product("store-x", "Lamp", 1000, 100, 100)
	o := s.checkout("alice", 1, lamp)[0]
	resp := s.pay(t, "alice", o, "4242424242424242", "ambiguous-1")
	if resp.Order.Status != processing || resp.Attempt.Status != aProc || resp.Order.LastDecline != nil {
		t.Fatalf("after a lost answer: order %s, attempt %s, decline %v; want the payment being checked", resp.Order.Status, resp.Attempt.Status, resp.Order.LastDecline)
	}
	_, err := s.buyer.PayOrder(as(s.token(auth.RoleBuyer, "alice")), payCard(o, "5555555555554444", "ambiguous-2"))
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("a second payment while the first is checked: %v, want FAILED_PRECONDITION", err)
	}
	lose.Store(false)
	testenv.Eventually(t, 15*time.Second, "reconciliation settles the payment", func() bool { return s.order("alice", o.Id).Status == paidStatus })
	testenv.Eventually(t, 15*time.Second, "the payment is captured", func() bool { return s.capturedFor(t, o.Id) == 1 })
	ledger, _ := s.provider.Ledger(context.Background())
	if len(ledger) != 1 {
		t.Fatalf("ledger %+v, want one payment", ledger)
	}
	s.moneyOf(t, s.order("alice", o.Id))
}

// Scenario 4, continued: a wallet payment (money taken at once) whose
// answer was lost, on an order cancelled (an accepted cancellation
// request) before reconciliation could ask the provider. Reconciliation
// still asks, finds the money taken, and pays it back.
func TestAmbiguousPaymentOfACancelledOrderIsReconciled(t *testing.T) {
	var lookupDown atomic.Bool
	lookupDown.Store(true)
	s := startSystemWith(t, 1, options{
		tune:  func(c *app.Config) { c.LockTTL = time.Second },
		buyer: func(c *buyer.Config) { c.ProviderTimeout = time.Second },
		provider: func(p *payment.Simulated) payment.Provider {
			return &faultyProvider{Provider: p, lookupDown: &lookupDown,
				afterPay: func(_ payment.PaymentRequest, res order.Result, err error) (order.Result, error) {
					if err == nil {
						return order.Result{}, errors.New("read tcp: connection reset by peer")
					}
					return res, err
				}}
		}})
	lamp := s.product("store-x", "Lamp", 1000, 100, 100)
	o := s.checkout("alice", 1, lamp)[0]
	buyerCtx := as(s.token(auth.RoleBuyer, "alice"))
	resp, err := s.buyer.PayOrder(buyerCtx, &buyerv1.PayOrderRequest{OrderId: o.Id, ExpectedTotal: o.Total, IdempotencyKey: "wallet-lost-1",
		Method: &buyerv1.PayOrderRequest_Wallet{Wallet: &buyerv1.Wallet{Account: payment.WalletApprove}}})
	if err != nil || resp.Order.Status != processing {
		t.Fatalf("a wallet payment whose answer was lost: %v %v", resp.GetOrder().GetStatus(), err)
	}
	if _, err := s.buyer.RequestCancellation(buyerCtx, &buyerv1.RequestCancellationRequest{OrderId: o.Id, Reason: "no_longer_needed"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.seller.AnswerCancellation(as(s.token(auth.RoleSeller, "store-x")), &sellerv1.AnswerCancellationRequest{OrderId: o.Id, Accept: true}); err != nil {
		t.Fatal(err)
	}
	if got := s.order("alice", o.Id); got.Status != cancelled || got.PaymentAttempts[0].Status != aCanceled {
		t.Fatalf("after the cancellation: %s, attempt %s", got.Status, got.PaymentAttempts[0].Status)
	}
	lookupDown.Store(false)
	testenv.Eventually(t, 15*time.Second, "the money taken is paid back", func() bool {
		got := s.order("alice", o.Id)
		return len(got.Refunds) == 1 && got.Refunds[0].Status == refundOK
	})
	got := s.order("alice", o.Id)
	if got.Refunds[0].Amount.AmountMinor != o.Total.AmountMinor || got.Refunds[0].Reason != "payment_after_cancellation" {
		t.Fatalf("refund %+v", got.Refunds[0])
	}
	s.moneyOf(t, got)
}

// Scenario 6: a checkout retried with its idempotency key returns the same
// orders and reserves the stock once, even when the retries race.
func TestCheckoutIdempotencyKey(t *testing.T) {
	s := startSystem(t, 1, nil)
	lamp := s.product("store-x", "Lamp", 1000, 100, 50)
	cable := s.product("store-y", "Cable", 300, 50, 50)
	buyerCtx := as(s.token(auth.RoleBuyer, "alice"))
	req := &buyerv1.CheckoutRequest{IdempotencyKey: "cart-0001", Items: []*buyerv1.CheckoutItem{{ProductId: lamp.Id, Quantity: 2}, {ProductId: cable.Id, Quantity: 3}}}
	var wg sync.WaitGroup
	answers := make([]*buyerv1.CheckoutResponse, 6)
	errs := make([]error, len(answers))
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i], errs[i] = s.buyer.Checkout(buyerCtx, req)
		}()
	}
	wg.Wait()
	ids := map[string]bool{}
	for i, a := range answers {
		if errs[i] != nil {
			t.Fatalf("checkout %d: %v", i, errs[i])
		}
		if len(a.Orders) != 2 || a.CheckoutId != answers[0].CheckoutId {
			t.Fatalf("checkout %d answered %v", i, a)
		}
		for _, o := range a.Orders {
			ids[o.Id] = true
		}
	}
	if len(ids) != 2 {
		t.Fatalf("%d distinct orders, want 2", len(ids))
	}
	if s.stock(lamp) != 48 || s.stock(cable) != 47 {
		t.Fatalf("stock %d and %d, want 48 and 47: reserved once", s.stock(lamp), s.stock(cable))
	}
	list, err := s.buyer.ListOrders(buyerCtx, &buyerv1.ListOrdersRequest{})
	if err != nil || len(list.Orders) != 2 {
		t.Fatalf("alice has %d orders (%v), want 2", len(list.GetOrders()), err)
	}
	req.Items[0].Quantity = 5
	if _, err := s.buyer.Checkout(buyerCtx, req); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("the key with another cart: %v, want FAILED_PRECONDITION", err)
	}
	// The same key is another buyer's own.
	other, err := s.buyer.Checkout(as(s.token(auth.RoleBuyer, "bob")), &buyerv1.CheckoutRequest{IdempotencyKey: "cart-0001",
		Items: []*buyerv1.CheckoutItem{{ProductId: lamp.Id, Quantity: 1}}})
	if err != nil || other.CheckoutId == answers[0].CheckoutId {
		t.Fatalf("bob's checkout with alice's key: %v %v", other, err)
	}
	var n int
	if err := s.db(t).QueryRow(context.Background(), `SELECT count(*) FROM stock_reservations`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d reservations left once the orders are stored (%v), want none", n, err)
	}
}

// Scenario 7: a transfer the bank is still checking when the payment
// window ends is not cancelled by it; if it then fails, the order is
// cancelled at that moment, with its stock back.
func TestPaymentWindowWaitsForAPaymentBeingChecked(t *testing.T) {
	s := startSystemWith(t, 1, options{
		tune:  func(c *app.Config) { c.PaymentWindow = time.Second; c.SweepInterval = 100 * time.Millisecond },
		buyer: func(c *buyer.Config) { c.SettleAfter = 2500 * time.Millisecond },
	})
	lamp := s.product("store-x", "Lamp", 1000, 100, 10)
	buyerCtx := as(s.token(auth.RoleBuyer, "alice"))
	transfer := func(o *orderv1.Order, account string) {
		t.Helper()
		_, err := s.buyer.PayOrder(buyerCtx, &buyerv1.PayOrderRequest{OrderId: o.Id, ExpectedTotal: o.Total, IdempotencyKey: "window-" + o.Id,
			Method: &buyerv1.PayOrderRequest_BankTransfer{BankTransfer: &buyerv1.BankTransfer{AccountNumber: account}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	confirmed, failed := s.checkout("alice", 1, lamp)[0], s.checkout("alice", 1, lamp)[0]
	transfer(confirmed, "DE89370400440532013000")
	transfer(failed, "TESTFAIL0001")
	time.Sleep(1500 * time.Millisecond) // the window has passed, the bank has not answered
	for _, o := range []*orderv1.Order{confirmed, failed} {
		if got := s.order("alice", o.Id); got.Status != processing {
			t.Fatalf("the window ended a payment being checked: %s (%s)", got.Status, got.CancelReason)
		}
	}
	testenv.Eventually(t, 10*time.Second, "the bank answers", func() bool {
		return s.order("alice", confirmed.Id).Status == paidStatus && s.order("alice", failed.Id).Status == cancelled
	})
	if got := s.order("alice", confirmed.Id); len(got.Refunds) != 0 {
		t.Fatalf("the confirmed transfer was refunded: %v", got.Refunds)
	}
	got := s.order("alice", failed.Id)
	if got.CancelReason != "payment_timeout" || got.LastDecline.GetCode() != "transfer_failed" || len(got.Refunds) != 0 {
		t.Fatalf("failed transfer: %q, decline %v, refunds %v", got.CancelReason, got.LastDecline, got.Refunds)
	}
	if s.stock(lamp) != 9 {
		t.Fatalf("stock %d, want 9 (the failed order's unit back)", s.stock(lamp))
	}
	s.moneyOf(t, s.order("alice", confirmed.Id))
}

// Scenario 8: a stranger's call on an order id is refused before it takes
// the order's lock, so it can never hold up the owner; and a lock wait is
// as long as the code says (2 s), not five times that.
func TestStrangersNeverTakeTheLock(t *testing.T) {
	s := startSystem(t, 1, nil)
	lamp := s.product("store-x", "Lamp", 1000, 100, 10)
	o := s.checkout("alice", 1, lamp)[0]
	// Somebody holds the order's lock (a payment in progress).
	rdb := s.redis(t)
	if err := rdb.Set(context.Background(), s.cfg.RedisPrefix+"lock:{"+o.Id+"}", "holder", 30*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := s.buyer.PayOrder(as(s.token(auth.RoleBuyer, "mallory")), payCard(o, "4242424242424242", "stranger-1"))
	if status.Code(err) != codes.NotFound || time.Since(start) > time.Second {
		t.Fatalf("a stranger's payment: %v after %s, want NOT_FOUND at once", err, time.Since(start))
	}
	start = time.Now()
	_, err = s.seller.AdjustOrderPrice(as(s.token(auth.RoleSeller, "store-z")), &sellerv1.AdjustOrderPriceRequest{OrderId: o.Id, Reason: "x",
		ItemPrices: []*sellerv1.ItemPrice{{ProductId: lamp.Id, UnitPrice: usd(1)}}})
	if status.Code(err) != codes.NotFound || time.Since(start) > time.Second {
		t.Fatalf("another store's adjustment: %v after %s, want NOT_FOUND at once", err, time.Since(start))
	}
	start = time.Now()
	_, err = s.buyer.PayOrder(as(s.token(auth.RoleBuyer, "alice")), payCard(o, "4242424242424242", "owner-key-1"))
	if waited := time.Since(start); status.Code(err) != codes.Aborted || waited < 1900*time.Millisecond || waited > 4*time.Second {
		t.Fatalf("the owner's payment behind a held lock: %v after %s, want ABORTED after about 2s", err, waited)
	}
}

// Scenario 10: a seller sees that an order is paid, not how; links and
// tracking URLs are http(s) only; fingerprints keep no card detail.
func TestPrivacyAndLinks(t *testing.T) {
	s := startSystem(t, 1, nil)
	lamp := s.product("store-x", "Lamp", 1000, 100, 10)
	o := s.checkout("alice", 1, lamp)[0]
	s.pay(t, "alice", o, "4242424242424242", "privacy-key-1")
	sellerTok := s.token(auth.RoleSeller, "store-x")
	got, err := s.seller.GetOrder(as(sellerTok), &sellerv1.GetOrderRequest{OrderId: o.Id})
	if err != nil {
		t.Fatal(err)
	}
	a := got.Order.PaymentAttempts[0]
	if a.Status != aSucceeded || a.CardBrand != "" || a.CardLast4 != "" || a.Account != "" {
		t.Fatalf("the seller sees the attempt %+v", a)
	}
	for _, h := range got.Order.History {
		if strings.Contains(h.Note, "4242") || strings.Contains(h.Note, "visa") {
			t.Fatalf("the seller's history shows the card: %q", h.Note)
		}
	}
	if b := s.order("alice", o.Id).PaymentAttempts[0]; b.CardLast4 != "4242" {
		t.Fatalf("the buyer no longer sees their own card: %+v", b)
	}
	for _, url := range []string{"javascript:alert(1)", "data:text/html,hi", "ftp://x.example/a"} {
		code, _ := jsonCall(t, "POST", s.sellerURL("/v1/orders/"+o.Id+":ship"), sellerTok,
			map[string]any{"carrier": "DHL", "tracking_number": "JD0001", "tracking_url": url})
		if code != http.StatusBadRequest {
			t.Fatalf("tracking URL %q: HTTP %d, want 400", url, code)
		}
	}
	if _, err := s.seller.ShipOrder(as(sellerTok), &sellerv1.ShipOrderRequest{OrderId: o.Id, Carrier: "DHL", TrackingNumber: "JD0001",
		TrackingUrl: "HTTPS://track.example/JD0001"}); err != nil {
		t.Fatal(err)
	}
	_, err = s.buyer.OpenDispute(as(s.token(auth.RoleBuyer, "alice")), &buyerv1.OpenDisputeRequest{OrderId: o.Id, Reason: "damaged", RefundAmount: usd(100),
		Evidence: &orderv1.EvidenceInput{Text: "see", Links: []string{"javascript:alert(document.cookie)"}}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a javascript: evidence link: %v, want INVALID_ARGUMENT", err)
	}
	rows, err := s.db(t).Query(context.Background(), `SELECT fingerprint FROM idempotency_keys UNION ALL SELECT fingerprint FROM payment_attempts`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var fp string
		if err := rows.Scan(&fp); err != nil {
			t.Fatal(err)
		}
		// An HMAC's hex may hold "4242" by chance (about 1 in 1,000): the
		// check is that the fingerprint is a bare digest, nothing else.
		if !hmacDigest.MatchString(fp) {
			t.Fatalf("fingerprint %q is not a bare HMAC digest: it may keep the card's details", fp)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("%d fingerprints, want the key's and the attempt's", n)
	}
}

// hmacDigest is a payment fingerprint as stored: a keyed digest in hex, with
// nothing of its input beside it.
var hmacDigest = regexp.MustCompile(`^hmac:[0-9a-f]{64}$`)

// Round two, point 18: a seller sees that a payment was declined, not why:
// the decline is the buyer's business, in the seller's order, list, history
// and event feed alike.
func TestSellerSeesADeclineNotItsReason(t *testing.T) {
	s := startSystem(t, 1, nil)
	lamp := s.product("store-x", "Lamp", 1000, 100, 10)
	sellerCtx := as(s.token(auth.RoleSeller, "store-x"))
	o := s.checkout("alice", 1, lamp)[0]
	resp := s.pay(t, "alice", o, "4000000000009995", "declined-for-seller")
	if resp.Order.LastDecline.GetCode() != "insufficient_funds" {
		t.Fatalf("the buyer's decline: %v", resp.Order.LastDecline)
	}
	got, err := s.seller.GetOrder(sellerCtx, &sellerv1.GetOrderRequest{OrderId: o.Id})
	if err != nil {
		t.Fatal(err)
	}
	list, err := s.seller.ListOrders(sellerCtx, &sellerv1.ListOrdersRequest{})
	if err != nil || len(list.Orders) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	if got.Order.LastDecline != nil || list.Orders[0].LastDecline != nil || got.Order.PaymentAttempts[0].Decline != nil {
		t.Fatalf("the seller sees the decline: %v / %v / %v", got.Order.LastDecline, list.Orders[0].LastDecline, got.Order.PaymentAttempts[0].Decline)
	}
	if got.Order.PaymentAttempts[0].Status != aDeclined || countKinds(got.Order)["payment_declined"] != 1 {
		t.Fatalf("the seller does not see that the payment was declined: %v", got.Order.PaymentAttempts[0].Status)
	}
	for _, h := range got.Order.History {
		if strings.Contains(h.Note, "insufficient") || strings.Contains(h.Note, "funds") {
			t.Fatalf("the seller's history tells why: %q", h.Note)
		}
	}
}
