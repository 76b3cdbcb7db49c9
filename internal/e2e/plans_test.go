package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/testenv"
)

// payDue pays what an order asks next (its amount_due: the total, or the
// next part) with card.
func (s *system) payDue(t *testing.T, buyer string, o *orderv1.Order, card, key string) *buyerv1.PayOrderResponse {
	t.Helper()
	resp, err := s.buyer.PayOrder(as(s.token(auth.RoleBuyer, buyer)), &buyerv1.PayOrderRequest{
		OrderId: o.Id, ExpectedTotal: o.AmountDue, IdempotencyKey: key,
		Method: &buyerv1.PayOrderRequest_Card{Card: &buyerv1.Card{Number: card, ExpMonth: 12, ExpYear: 2099, Cvc: "123"}},
	})
	if err != nil {
		t.Fatalf("pay %v of %s: %v", o.AmountDue, o.Id, err)
	}
	return resp
}

// ledgerOf returns the provider's payments of an order: amount and
// refunded, by payment.
func (s *system) ledgerOf(t *testing.T, orderID string) (captured, refunded int64, n int) {
	t.Helper()
	ledger, err := s.provider.Ledger(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ledger {
		if p.OrderID != orderID || p.Status != "captured" {
			continue
		}
		if p.Refunded > p.Amount {
			t.Fatalf("the provider paid back %d of a payment of %d", p.Refunded, p.Amount)
		}
		captured, refunded, n = captured+p.Amount, refunded+p.Refunded, n+1
	}
	return captured, refunded, n
}

func partStatuses(o *orderv1.Order) []orderv1.PaymentPartStatus {
	var out []orderv1.PaymentPartStatus
	for _, p := range o.GetSchedule().GetParts() {
		out = append(out, p.Status)
	}
	return out
}

// TestDepositOrdersEndToEnd (#24, point 2): a pre-sale sold with a 30%
// deposit over the gateway. The deposit is paid; the seller cannot ship;
// the balance is declined, then paid; the order ships, and a dispute's
// refund draws on the balance first, then the deposit. A second order's
// balance is never paid: past due, then cancelled balance_unpaid with the
// deposit refunded; a third product keeps its deposit, as it stated. A
// cancellation the seller asked for refunds every part of an instalment
// order.
func TestDepositOrdersEndToEnd(t *testing.T) {
	s := startSystem(t, 1, nil)
	sellerTok := s.token(auth.RoleSeller, "store-pre")
	sellerCtx := as(sellerTok)
	code, out := jsonCall(t, "POST", s.sellerURL("/v1/products"), sellerTok, map[string]any{
		"title": "Pre-sale phone", "price": map[string]any{"amount_minor": 10000, "currency": "USD"},
		"shipping_fee": map[string]any{"amount_minor": 500, "currency": "USD"}, "stock": 10, "handling_days": 2,
		"payment_plan": map[string]any{"kind": "PAYMENT_PLAN_KIND_DEPOSIT", "deposit_percent": 30, "balance_window": "3s", "grace": "2s"}})
	if code != http.StatusOK || str(out, "product", "payment_plan", "kind") != "PAYMENT_PLAN_KIND_DEPOSIT" {
		t.Fatalf("a deposit product: %d %v", code, out)
	}
	phone := &sellerv1.Product{Id: str(out, "product", "id"), SellerId: "store-pre"}
	code, bad := jsonCall(t, "POST", s.sellerURL("/v1/products"), sellerTok, map[string]any{
		"title": "Bad plan", "price": map[string]any{"amount_minor": 100, "currency": "USD"},
		"shipping_fee": map[string]any{"amount_minor": 0, "currency": "USD"}, "stock": 1, "handling_days": 2,
		"payment_plan": map[string]any{"kind": "PAYMENT_PLAN_KIND_DEPOSIT", "deposit_percent": 30}})
	if code != http.StatusBadRequest {
		t.Fatalf("a deposit plan without a balance window: %d %v", code, bad)
	}
	keeper, err := s.seller.CreateProduct(as(s.token(auth.RoleSeller, "store-keep")), &sellerv1.CreateProductRequest{Title: "Pre-sale console", Price: usd(20000),
		ShippingFee: usd(0), Stock: 5, HandlingDays: 2, PaymentPlan: &orderv1.PaymentPlan{Kind: orderv1.PaymentPlanKind_PAYMENT_PLAN_KIND_DEPOSIT,
			DepositAmountMinor: 5000, BalanceWindow: durationpb.New(3 * time.Second), Grace: durationpb.New(2 * time.Second), KeepDeposit: true}})
	if err != nil {
		t.Fatal(err)
	}

	// Paid in two parts, shipped, disputed.
	o := s.checkout("alice", 1, phone)[0]
	if p := o.Schedule.GetParts(); len(p) != 2 || p[0].Amount.AmountMinor != 3150 || p[1].Amount.AmountMinor != 7350 ||
		o.AmountDue.AmountMinor != 3150 || o.Status != orderv1.OrderStatus_ORDER_STATUS_PENDING_PAYMENT {
		t.Fatalf("the schedule: %v, due %v", o.Schedule, o.AmountDue)
	}
	if _, err := s.buyer.PayOrder(as(s.token(auth.RoleBuyer, "alice")), &buyerv1.PayOrderRequest{OrderId: o.Id, ExpectedTotal: o.Total,
		IdempotencyKey: "pay-whole-0001", Method: &buyerv1.PayOrderRequest_Card{Card: &buyerv1.Card{Number: "4242424242424242", ExpMonth: 12,
			ExpYear: 2099, Cvc: "123"}}}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("paying the whole total instead of the deposit: %v", err)
	}
	r := s.payDue(t, "alice", o, "4242424242424242", "pay-deposit-0001")
	if r.Order.Status != orderv1.OrderStatus_ORDER_STATUS_PARTIALLY_PAID || r.Order.AmountDue.AmountMinor != 7350 ||
		r.Order.AmountPaid.AmountMinor != 3150 || partStatuses(r.Order)[0] != orderv1.PaymentPartStatus_PAYMENT_PART_STATUS_PAID {
		t.Fatalf("after the deposit: %s due %v paid %v", r.Order.Status, r.Order.AmountDue, r.Order.AmountPaid)
	}
	ship := &sellerv1.ShipOrderRequest{OrderId: o.Id, Carrier: "DHL", TrackingNumber: "JD0001"}
	if _, err := s.seller.ShipOrder(sellerCtx, ship); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("shipping before the balance: %v", err)
	}
	r = s.payDue(t, "alice", r.Order, "4000000000009995", "pay-balance-0001")
	if r.Attempt.Decline.GetCode() != "insufficient_funds" || r.Order.Status != orderv1.OrderStatus_ORDER_STATUS_PARTIALLY_PAID {
		t.Fatalf("a declined balance: %v %s", r.Attempt.Decline, r.Order.Status)
	}
	r = s.payDue(t, "alice", r.Order, "4242424242424242", "pay-balance-0002")
	if r.Order.Status != orderv1.OrderStatus_ORDER_STATUS_AWAITING_SHIPMENT || r.Order.AmountPaid.AmountMinor != 10500 {
		t.Fatalf("after the balance: %s paid %v", r.Order.Status, r.Order.AmountPaid)
	}
	testenv.Eventually(t, 15*time.Second, "both parts captured", func() bool { c, _, n := s.ledgerOf(t, o.Id); return n == 2 && c == 10500 })
	if _, err := s.seller.ShipOrder(sellerCtx, ship); err != nil {
		t.Fatalf("shipping a paid pre-sale: %v", err)
	}
	aliceCtx := as(s.token(auth.RoleBuyer, "alice"))
	if _, err := s.buyer.OpenDispute(aliceCtx, &buyerv1.OpenDisputeRequest{OrderId: o.Id, Reason: "damaged", RefundAmount: usd(9000),
		Evidence: &orderv1.EvidenceInput{Text: "cracked screen"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.seller.AnswerDispute(sellerCtx, &sellerv1.AnswerDisputeRequest{OrderId: o.Id,
		Answer: &sellerv1.AnswerDisputeRequest_Accept{Accept: &sellerv1.AcceptDispute{}}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 15*time.Second, "the dispute's refunds paid", func() bool {
		got := s.order("alice", o.Id)
		done := len(got.Refunds) == 2
		for _, rf := range got.Refunds {
			done = done && rf.Status == orderv1.RefundStatus_REFUND_STATUS_SUCCEEDED
		}
		return done
	})
	got := s.order("alice", o.Id)
	byAttempt := map[string]int64{}
	for _, rf := range got.Refunds {
		byAttempt[rf.PaymentAttemptId] += rf.Amount.AmountMinor
	}
	parts := got.Schedule.Parts
	if byAttempt[parts[1].AttemptId] != 7350 || byAttempt[parts[0].AttemptId] != 1650 {
		t.Fatalf("refunds by attempt %v, want 7350 from the balance and 1650 from the deposit", byAttempt)
	}
	if c, back, _ := s.ledgerOf(t, o.Id); c != 10500 || back != 9000 {
		t.Fatalf("the provider took %d and gave back %d", c, back)
	}

	// One store's products under different plans are bought apart.
	mixed, err := s.seller.CreateProduct(sellerCtx, &sellerv1.CreateProductRequest{Title: "Pre-sale case", Price: usd(900), ShippingFee: usd(0),
		Stock: 5, HandlingDays: 2, PaymentPlan: &orderv1.PaymentPlan{Kind: orderv1.PaymentPlanKind_PAYMENT_PLAN_KIND_DEPOSIT,
			DepositPercent: 50, BalanceWindow: durationpb.New(time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.buyer.Checkout(aliceCtx, &buyerv1.CheckoutRequest{Items: []*buyerv1.CheckoutItem{{ProductId: phone.Id, Quantity: 1},
		{ProductId: mixed.Product.Id, Quantity: 1}}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("two plans in one order: %v", err)
	}

	// Balances never paid: the deposit refunded, or kept as stated.
	orders := s.checkout("bob", 1, phone, keeper.Product)
	for i, o := range orders {
		s.payDue(t, "bob", o, "4242424242424242", "pay-bob-deposit-000"+string(rune('1'+i)))
	}
	testenv.Eventually(t, 30*time.Second, "the unpaid balances cancel their orders", func() bool {
		for _, o := range orders {
			if s.order("bob", o.Id).Status != orderv1.OrderStatus_ORDER_STATUS_CANCELLED {
				return false
			}
		}
		return true
	})
	for _, o := range orders {
		got := s.order("bob", o.Id)
		kinds := countKinds(got)
		if got.CancelReason != "balance_unpaid" || kinds["part_past_due"] != 1 ||
			partStatuses(got)[1] != orderv1.PaymentPartStatus_PAYMENT_PART_STATUS_PAST_DUE {
			t.Fatalf("order %s: %s, history %v, parts %v", o.Id, got.CancelReason, kinds, partStatuses(got))
		}
		keeps := o.Items[0].ProductId == keeper.Product.Id
		if keeps && (len(got.Refunds) != 0 || kinds["deposit_kept"] != 1) || !keeps && (len(got.Refunds) != 1 || got.Refunds[0].Amount.AmountMinor != 3150) {
			t.Fatalf("keeps=%v: refunds %v, history %v", keeps, got.Refunds, kinds)
		}
	}

	// Instalments: the buyer chooses them; the seller's cancellation pays
	// back every part paid.
	tv, err := s.seller.CreateProduct(sellerCtx, &sellerv1.CreateProductRequest{Title: "TV", Price: usd(30001), ShippingFee: usd(0), Stock: 5,
		HandlingDays: 2, PaymentPlan: &orderv1.PaymentPlan{Kind: orderv1.PaymentPlanKind_PAYMENT_PLAN_KIND_INSTALMENTS, Instalments: 3,
			Every: durationpb.New(24 * time.Hour), Grace: durationpb.New(time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	whole := s.checkout("carol", 1, tv.Product)[0]
	if whole.Schedule != nil || whole.AmountDue.AmountMinor != 30001 {
		t.Fatalf("without asking for instalments: %v due %v", whole.Schedule, whole.AmountDue)
	}
	carolCtx := as(s.token(auth.RoleBuyer, "carol"))
	preview, err := s.buyer.PreviewCheckout(carolCtx, &buyerv1.PreviewCheckoutRequest{PayInInstalments: true,
		Items: []*buyerv1.CheckoutItem{{ProductId: tv.Product.Id, Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if p := preview.Orders[0]; len(p.Schedule.GetParts()) != 3 || p.AmountDue.AmountMinor != 10000 || p.Schedule.Parts[2].Amount.AmountMinor != 10001 {
		t.Fatalf("the preview's schedule: %v, due %v", p.Schedule, p.AmountDue)
	}
	res, err := s.buyer.Checkout(carolCtx, &buyerv1.CheckoutRequest{PayInInstalments: true,
		Items: []*buyerv1.CheckoutItem{{ProductId: tv.Product.Id, Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	in := res.Orders[0]
	if p := in.Schedule.GetParts(); len(p) != 3 || p[0].Amount.AmountMinor != 10000 || p[2].Amount.AmountMinor != 10001 {
		t.Fatalf("instalments %v", in.Schedule)
	}
	r = s.payDue(t, "carol", in, "4242424242424242", "pay-tv-part-0001")
	r = s.payDue(t, "carol", r.Order, "4242424242424242", "pay-tv-part-0002")
	if r.Order.Status != orderv1.OrderStatus_ORDER_STATUS_PARTIALLY_PAID || r.Order.AmountPaid.AmountMinor != 20000 {
		t.Fatalf("two instalments: %s %v", r.Order.Status, r.Order.AmountPaid)
	}
	if _, err := s.buyer.RequestCancellation(carolCtx, &buyerv1.RequestCancellationRequest{OrderId: in.Id, Reason: "seller_asked_to_cancel"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.seller.AnswerCancellation(sellerCtx, &sellerv1.AnswerCancellationRequest{OrderId: in.Id, Accept: true}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 15*time.Second, "both instalments paid back", func() bool { _, back, n := s.ledgerOf(t, in.Id); return n == 2 && back == 20000 })
	got = s.order("carol", in.Id)
	if got.CancelledBy != "seller" || partStatuses(got)[2] != orderv1.PaymentPartStatus_PAYMENT_PART_STATUS_VOID {
		t.Fatalf("cancelled by %q, parts %v", got.CancelledBy, partStatuses(got))
	}
}

// TestDashboardSchedule (#24): the seller's order page shows a EUR
// buyer's pre-sale paid in parts: each part in dollars and in euros, the
// deposit paid, the balance counting down to its due date, and what was
// paid so far; the order is under "Partly paid".
func TestDashboardSchedule(t *testing.T) {
	s := startSystem(t, 1, nil)
	p, err := s.seller.CreateProduct(as(s.token(auth.RoleSeller, "store-s")), &sellerv1.CreateProductRequest{Title: "Pre-sale bike",
		Price: usd(50000), ShippingFee: usd(0), Stock: 3, HandlingDays: 2, PaymentPlan: &orderv1.PaymentPlan{
			Kind: orderv1.PaymentPlanKind_PAYMENT_PLAN_KIND_DEPOSIT, DepositPercent: 20, BalanceWindow: durationpb.New(7 * 24 * time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.buyer.Checkout(as(s.token(auth.RoleBuyer, "alice")), &buyerv1.CheckoutRequest{Currency: "EUR",
		Items: []*buyerv1.CheckoutItem{{ProductId: p.Product.Id, Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	o := res.Orders[0]
	paid := s.payDue(t, "alice", o, "4242424242424242", "pay-bike-deposit-1").Order
	if paid.Status != orderv1.OrderStatus_ORDER_STATUS_PARTIALLY_PAID || paid.AmountPaid.Currency != "EUR" {
		t.Fatalf("after the deposit: %s %v", paid.Status, paid.AmountPaid)
	}
	b := newBrowser(t)
	base := "http://" + s.sellers[0].HTTPAddr()
	b.do("open", 15*time.Second, chromedp.Navigate(base+"/"), chromedp.WaitVisible(`textarea[name=token]`, chromedp.ByQuery))
	b.submit("Sign in to your store", map[string]string{"token": s.token(auth.RoleSeller, "store-s")}, "")
	b.do("the partly paid tab", 10*time.Second, chromedp.WaitVisible(`[data-tab=PARTIALLY_PAID]`, chromedp.ByQuery))
	b.do("the order page", 10*time.Second, chromedp.Navigate(base+"/dashboard/#/orders/"+o.Id),
		chromedp.WaitVisible(`tr[data-part="2"]`, chromedp.ByQuery))
	deposit, balance := paid.Schedule.Parts[0], paid.Schedule.Parts[1]
	euros := func(m *orderv1.Money) string { return fmt.Sprintf("€%d.%02d", m.AmountMinor/100, m.AmountMinor%100) }
	b.waitText(`tr[data-part="1"] .part-status`, "paid", 2*time.Second)
	b.waitText(`tr[data-part="1"] .part-amount`, "$100.00", 2*time.Second)
	b.waitText(`tr[data-part="1"] .part-presentment`, euros(deposit.PresentmentAmount), 2*time.Second)
	b.waitText(`tr[data-part="2"] .part-status`, "open", 2*time.Second)
	b.waitText(`tr[data-part="2"] .part-amount`, "$400.00", 2*time.Second)
	b.waitText(`tr[data-part="2"] .part-presentment`, euros(balance.PresentmentAmount), 2*time.Second)
	if got := b.text(`tr[data-part="2"] [data-due]`); !strings.HasPrefix(got, "next part due in 6 d") && !strings.HasPrefix(got, "next part due in 7 d") {
		t.Fatalf("the balance's countdown reads %q", got)
	}
	b.waitText("#amount-paid", euros(paid.AmountPaid), 2*time.Second)
	b.waitText(".line-presentment", euros(paid.Presentment.Items[0].Subtotal), 2*time.Second)
	b.waitText("#order-status", "partially paid", 2*time.Second)
	b.shoot("order-schedule")
}

// TestDashboardRefundItems: a store refunds one of two lamps of a paid
// order from its dashboard: the refund is owed at the unit's price and
// then paid, and the form offers only the unit left.
func TestDashboardRefundItems(t *testing.T) {
	s := startSystem(t, 1, nil)
	lamp := s.product("store-r", "Lamp", 1250, 300, 10)
	o := s.checkout("alice", 2, lamp)[0]
	s.pay(t, "alice", o, "4242424242424242", "pay-lamps-1")
	b := newBrowser(t)
	base := "http://" + s.sellers[0].HTTPAddr()
	b.do("open", 15*time.Second, chromedp.Navigate(base+"/"), chromedp.WaitVisible(`textarea[name=token]`, chromedp.ByQuery))
	b.submit("Sign in to your store", map[string]string{"token": s.token(auth.RoleSeller, "store-r")}, "")
	b.do("the order page", 10*time.Second, chromedp.Navigate(base+"/dashboard/#/orders/"+o.Id),
		chromedp.WaitVisible(`form[aria-label="Refund items"]`, chromedp.ByQuery))
	b.submit("Refund items", map[string]string{"units_" + lamp.Id: "1", "reason": "one arrived broken"}, "")
	b.waitText(`section[aria-label=Refunds] td.num`, "$12.50", 5*time.Second)
	got := s.order("alice", o.Id)
	if len(got.Refunds) != 1 || got.Refunds[0].Amount.AmountMinor != 1250 || got.Items[0].RefundedUnits != 1 {
		t.Fatalf("refunds %v, units refunded %d", got.Refunds, got.Items[0].RefundedUnits)
	}
	b.do("one unit left to refund", 5*time.Second, chromedp.WaitVisible(`form[aria-label="Refund items"] input[max="1"]`, chromedp.ByQuery))
	b.shoot("order-refund-items")
}
