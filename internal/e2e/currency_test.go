package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/souk-dev/souk/buyer-svc/buyer"
	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/rates"
	"github.com/souk-dev/souk/internal/testenv"
)

// TestForeignCurrencyEndToEnd (#24): a EUR buyer buys from a USD store over
// the gateway; the order shows the store's amounts and, converted line by
// line, the buyer's, with the quote. The quote expires while the order
// waits and the rate moves: the old EUR total is refused with the new one
// (TOTAL_CHANGED), which the buyer then pays; the provider charges EUR.
// The store refunds one of two units in EUR, at the line's converted net.
func TestForeignCurrencyEndToEnd(t *testing.T) {
	table, err := rates.NewTable("test-rates", "USD", map[string]string{"EUR": "0.9215"})
	if err != nil {
		t.Fatal(err)
	}
	s := startSystemWith(t, 1, options{buyer: func(c *buyer.Config) { c.Rates, c.QuoteTTL = table, 3*time.Second }})
	lamp := s.product("store-u", "Lamp", 1999, 499, 10)
	aliceTok := s.token(auth.RoleBuyer, "alice")

	code, out := jsonCall(t, "POST", s.buyerURL("/v1/checkout"), aliceTok, map[string]any{
		"items": []any{map[string]any{"product_id": lamp.Id, "quantity": 2}}, "currency": "EUR"})
	if code != http.StatusOK {
		t.Fatalf("checkout: %d %v", code, out)
	}
	o := get(out, "orders", 0)
	// 39.98 USD × 0.9215 = 36.84157 → 36.84; 4.99 → 4.598 → 4.60: 41.44 EUR. The store's figures stay USD.
	if num(t, o, "total", "amount_minor") != 4497 || str(o, "total", "currency") != "USD" ||
		str(o, "presentment", "currency") != "EUR" || num(t, o, "presentment", "items", 0, "subtotal", "amount_minor") != 3684 ||
		num(t, o, "presentment", "shipping_fee", "amount_minor") != 460 || num(t, o, "presentment", "total", "amount_minor") != 4144 ||
		str(o, "presentment", "quote", "rate") != "0.921500000000" || str(o, "presentment", "quote", "base") != "USD" {
		t.Fatalf("the order: %v", o)
	}
	id := str(o, "id")
	seen, err := s.seller.GetOrder(as(s.token(auth.RoleSeller, "store-u")), &sellerv1.GetOrderRequest{OrderId: id})
	if err != nil || seen.Order.Total.AmountMinor != 4497 || seen.Order.Presentment.GetQuote().GetRate() != "0.921500000000" {
		t.Fatalf("the store's view: %v %v", seen.GetOrder().GetTotal(), err)
	}

	// The quote expires, and the dollar buys more euros now: 0.95.
	time.Sleep(3200 * time.Millisecond)
	if err := table.Set("EUR", "0.95"); err != nil {
		t.Fatal(err)
	}
	card := map[string]any{"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}
	code, refused := jsonCall(t, "POST", s.buyerURL("/v1/orders/"+id+":pay"), aliceTok, map[string]any{
		"expected_total": map[string]any{"amount_minor": 4144, "currency": "EUR"}, "idempotency_key": "pay-eur-0001", "card": card})
	// 39.98 × 0.95 = 37.981 → 37.98; 4.99 × 0.95 = 4.7405 → 4.74: 42.72 EUR.
	if code != http.StatusBadRequest || str(refused, "details", 0, "reason") != "TOTAL_CHANGED" ||
		str(refused, "details", 0, "metadata", "total_minor") != "4272" {
		t.Fatalf("paying the old total: %d %v", code, refused)
	}
	requoted := s.order("alice", id)
	if requoted.Presentment.Total.AmountMinor != 4272 || countKinds(requoted)["quote_renewed"] != 1 || requoted.Total.AmountMinor != 4497 {
		t.Fatalf("after the new quote: %v, history %v", requoted.Presentment.Total, countKinds(requoted))
	}
	paid, err := s.buyer.PayOrder(as(aliceTok), &buyerv1.PayOrderRequest{OrderId: id, ExpectedTotal: &orderv1.Money{AmountMinor: 4272, Currency: "EUR"},
		IdempotencyKey: "pay-eur-0002", Method: &buyerv1.PayOrderRequest_Card{Card: &buyerv1.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2099, Cvc: "123"}}})
	if err != nil || paid.Order.Status != orderv1.OrderStatus_ORDER_STATUS_AWAITING_SHIPMENT || paid.Attempt.Amount.Currency != "EUR" || paid.Attempt.Amount.AmountMinor != 4272 {
		t.Fatalf("paying the new total: %v %v", paid, err)
	}

	// The store's figures are in its currency: the order's USD total.
	st, err := s.seller.GetSellerStats(as(s.token(auth.RoleSeller, "store-u")), &sellerv1.GetSellerStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	today := st.Days[len(st.Days)-1]
	if len(today.Revenue) != 1 || today.Revenue[0].Currency != "USD" || today.Revenue[0].AmountMinor != 4497 {
		t.Fatalf("today's revenue %v, want 44.97 USD", today.Revenue)
	}

	// One of the two lamps is refunded: half the line's EUR net (3798 / 2),
	// paid when a euro buys 1/0.90 dollars.
	if err := table.Set("EUR", "0.90"); err != nil {
		t.Fatal(err)
	}
	r, err := s.seller.RefundItems(as(s.token(auth.RoleSeller, "store-u")), &sellerv1.RefundItemsRequest{OrderId: id, Reason: "one arrived broken",
		Items: []*sellerv1.RefundItem{{ProductId: lamp.Id, Quantity: 1}}})
	if err != nil || r.Amount.Currency != "EUR" || r.Amount.AmountMinor != 1899 {
		t.Fatalf("refund of one lamp: %v %v", r.GetAmount(), err)
	}
	testenv.Eventually(t, 15*time.Second, "the EUR refund is paid", func() bool {
		o := s.order("alice", id)
		return len(o.Refunds) == 1 && o.Refunds[0].Status == orderv1.RefundStatus_REFUND_STATUS_SUCCEEDED
	})
	// The store gives back its share of the 44.97 USD it was credited:
	// 1899 × 4497 / 4272 = 1999.02 → 19.99 USD. The platform paid 18.99 EUR
	// at 1.1111 USD: 21.10 USD, 1.11 more; the difference is recorded.
	fx := s.order("alice", id).Refunds[0].Fx
	if fx.GetStoreDebit().GetAmountMinor() != 1999 || fx.GetStoreDebit().GetCurrency() != "USD" || fx.GetRate() != "1.111111111111" ||
		fx.GetCost().GetAmountMinor() != 2110 || fx.GetPlatformDifference().GetAmountMinor() != -111 {
		t.Fatalf("the refund's FX record: %v", fx)
	}
	ledger, err := s.provider.Ledger(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, p := range ledger {
		if p.OrderID != id {
			continue
		}
		found++
		if p.Amount != 4272 || p.Refunded != 1899 {
			t.Fatalf("the provider took %d and gave back %d, want 4272 and 1899 (EUR)", p.Amount, p.Refunded)
		}
	}
	if found != 1 {
		t.Fatalf("%d payments of the order in the provider's ledger, want 1", found)
	}
}

// TestPayLater (#24, point 3): buy now, pay later is one payment for Souk:
// the provider's credit check approves and pays the whole amount at once
// (captured), or declines with its own reasons: a refused account
// (pay_later_declined) and a purchase above the account's limit
// (pay_later_limit), which the buyer sees with advice and may pay another
// way.
func TestPayLater(t *testing.T) {
	s := startSystem(t, 1, nil)
	lamp := s.product("store-l", "Lamp", 2500, 500, 100)
	tv := s.product("store-l", "Television", 150000, 0, 10)
	buyerCtx := as(s.token(auth.RoleBuyer, "alice"))
	payLater := func(o *orderv1.Order, account, key string) (*buyerv1.PayOrderResponse, error) {
		return s.buyer.PayOrder(buyerCtx, &buyerv1.PayOrderRequest{OrderId: o.Id, ExpectedTotal: o.Total, IdempotencyKey: key,
			Method: &buyerv1.PayOrderRequest_PayLater{PayLater: &buyerv1.PayLater{Account: account, Instalments: 4}}})
	}
	o := s.checkout("alice", 1, lamp)[0]
	r, err := payLater(o, "decline-me@paylater.test", "paylater-0001")
	if err != nil || r.Attempt.Decline.GetCode() != "pay_later_declined" || r.Attempt.Decline.GetAdvice() == "" ||
		r.Order.Status != orderv1.OrderStatus_ORDER_STATUS_PENDING_PAYMENT {
		t.Fatalf("a refused account: %v %v", r, err)
	}
	r, err = payLater(o, "alice@paylater.test", "paylater-0002")
	if err != nil || r.Order.Status != orderv1.OrderStatus_ORDER_STATUS_AWAITING_SHIPMENT || r.Attempt.Method != orderv1.PaymentMethod_PAYMENT_METHOD_PAY_LATER {
		t.Fatalf("an approved account: %v %v", r, err)
	}
	big := s.checkout("alice", 1, tv)[0]
	if r, err := payLater(big, "alice@paylater.test", "paylater-0003"); err != nil || r.Attempt.Decline.GetCode() != "pay_later_limit" {
		t.Fatalf("above the limit: %v %v", r, err)
	}
	ledger, err := s.provider.Ledger(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var captured int
	for _, p := range ledger {
		if p.OrderID == o.Id && p.Status == "captured" {
			captured++
			if p.Amount != 3000 {
				t.Fatalf("the provider paid %d, want the whole 3000 at once", p.Amount)
			}
		}
	}
	if captured != 1 {
		t.Fatalf("%d captured pay-later payments of the order, want 1", captured)
	}
}
