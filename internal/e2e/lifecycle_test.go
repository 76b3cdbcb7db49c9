package e2e

import (
	"context"
	"net/http"
	"testing"

	"github.com/souk-dev/souk/internal/auth"
)

// createProductJSON creates a product through the seller gateway and returns its id.
func (s *system) createProductJSON(tok, title string, price, shipping, stock int64) string {
	s.t.Helper()
	code, body := jsonCall(s.t, "POST", s.sellerURL("/v1/products"), tok, map[string]any{
		"title": title, "price": map[string]any{"amount_minor": price, "currency": "USD"},
		"shipping_fee": map[string]any{"amount_minor": shipping, "currency": "USD"}, "stock": stock, "handling_days": 5,
	})
	if code != http.StatusOK {
		s.t.Fatalf("create product: %d %v", code, body)
	}
	return str(body, "product", "id")
}

func (s *system) stockJSON(tok, productID string) string {
	s.t.Helper()
	code, body := jsonCall(s.t, "GET", s.sellerURL("/v1/products?page_size=200"), tok, nil)
	if code != http.StatusOK {
		s.t.Fatalf("list products: %d %v", code, body)
	}
	for _, p := range get(body, "products").([]any) {
		if str(p, "id") == productID {
			return str(p, "stock")
		}
	}
	s.t.Fatalf("product %s not listed", productID)
	return ""
}

// TestLifecycleThroughGateway walks an order from checkout to completion
// through the JSON gateways of both services.
func TestLifecycleThroughGateway(t *testing.T) {
	s := startSystem(t, 1, nil)
	sellerX, sellerY := s.token(auth.RoleSeller, "store-x"), s.token(auth.RoleSeller, "store-y")
	buyerA := s.token(auth.RoleBuyer, "alice")

	lamp := s.createProductJSON(sellerX, "Desk lamp", 2500, 500, 10)
	cable := s.createProductJSON(sellerX, "USB cable", 300, 200, 100)
	mug := s.createProductJSON(sellerY, "Mug", 900, 0, 5)

	code, body := jsonCall(t, "POST", s.buyerURL("/v1/checkout"), buyerA, map[string]any{"items": []any{
		map[string]any{"product_id": lamp, "quantity": 2},
		map[string]any{"product_id": cable, "quantity": 3},
		map[string]any{"product_id": mug, "quantity": 1},
	}})
	if code != http.StatusOK {
		t.Fatalf("checkout: %d %v", code, body)
	}
	orders := get(body, "orders").([]any)
	if len(orders) != 2 {
		t.Fatalf("checkout made %d orders, want one per seller (2)", len(orders))
	}
	var orderX string
	for _, o := range orders {
		if got := str(o, "status"); got != "ORDER_STATUS_PENDING_PAYMENT" {
			t.Errorf("new order status = %s", got)
		}
		if str(o, "seller_id") == "store-x" {
			orderX = str(o, "id")
			// 2×2500 + 3×300 + max(500, 200) shipping.
			if got := str(o, "total", "amount_minor"); got != "6400" {
				t.Errorf("store-x order total = %s, want 6400", got)
			}
		}
	}
	if got := s.stockJSON(sellerX, lamp); got != "8" {
		t.Errorf("lamp stock after checkout = %s, want 8", got)
	}

	// The seller sees the new purchase order at once, unpaid.
	code, body = jsonCall(t, "GET", s.sellerURL("/v1/orders?status=ORDER_STATUS_PENDING_PAYMENT"), sellerX, nil)
	if code != http.StatusOK || str(body, "orders", 0, "id") != orderX {
		t.Fatalf("seller's pending orders: %d %v", code, body)
	}

	// The seller gives a discount and free shipping.
	code, body = jsonCall(t, "POST", s.sellerURL("/v1/orders/"+orderX+":adjust-price"), sellerX, map[string]any{
		"item_prices":  []any{map[string]any{"product_id": lamp, "unit_price": map[string]any{"amount_minor": 2000, "currency": "USD"}}},
		"shipping_fee": map[string]any{"amount_minor": 0, "currency": "USD"},
		"reason":       "bulk discount, free shipping",
	})
	if code != http.StatusOK {
		t.Fatalf("adjust price: %d %v", code, body)
	}

	code, body = jsonCall(t, "GET", s.buyerURL("/v1/orders/"+orderX), buyerA, nil)
	if code != http.StatusOK {
		t.Fatalf("get order: %d %v", code, body)
	}
	if got := str(body, "order", "total", "amount_minor"); got != "4900" {
		t.Fatalf("total after adjustment = %s, want 4900", got)
	}
	adj := get(body, "order", "history", 1)
	if str(adj, "kind") != "price_adjusted" || str(adj, "price_adjustment", "old_total", "amount_minor") != "6400" ||
		str(adj, "price_adjustment", "new_total", "amount_minor") != "4900" || str(adj, "note") != "bulk discount, free shipping" {
		t.Fatalf("history entry 2 = %v, want the price adjustment 6400 → 4900 with its reason", adj)
	}

	pay := func(total int64, card, key string) (int, map[string]any) {
		return jsonCall(t, "POST", s.buyerURL("/v1/orders/"+orderX+":pay"), buyerA, map[string]any{
			"expected_total":  map[string]any{"amount_minor": total, "currency": "USD"},
			"idempotency_key": key,
			"card":            map[string]any{"number": card, "exp_month": 12, "exp_year": 2099, "cvc": "123"},
		})
	}
	// Paying the total seen before the adjustment is refused.
	if code, body = pay(6400, "4242424242424242", "pay-old-total"); code != http.StatusBadRequest || get(body, "code") != float64(9) {
		t.Fatalf("pay with old total: %d %v, want 400 FAILED_PRECONDITION", code, body)
	}
	// A declined card leaves the order pending, the decline visible.
	code, body = pay(4900, "4000000000009995", "pay-declined")
	if code != http.StatusOK || str(body, "attempt", "status") != "PAYMENT_ATTEMPT_STATUS_DECLINED" || str(body, "attempt", "decline", "code") != "insufficient_funds" ||
		str(body, "order", "status") != "ORDER_STATUS_PENDING_PAYMENT" || str(body, "order", "last_decline", "code") != "insufficient_funds" {
		t.Fatalf("declined payment: %d %v", code, body)
	}
	code, body = pay(4900, "4242424242424242", "pay-good")
	if code != http.StatusOK || str(body, "order", "status") != "ORDER_STATUS_AWAITING_SHIPMENT" || str(body, "attempt", "card_last4") != "4242" {
		t.Fatalf("payment: %d %v", code, body)
	}
	captured := 0
	ledger, _ := s.provider.Ledger(context.Background())
	for _, p := range ledger {
		if p.Status == "captured" {
			captured++
			if p.Amount != 4900 || p.OrderID != orderX {
				t.Fatalf("captured %d for order %s, want 4900 for %s", p.Amount, p.OrderID, orderX)
			}
		}
	}
	if captured != 1 {
		t.Fatalf("provider ledger = %+v, want one captured payment", ledger)
	}

	code, body = jsonCall(t, "POST", s.sellerURL("/v1/orders/"+orderX+":ship"), sellerX, map[string]any{
		"carrier": "Cainiao", "tracking_number": "LP00123456789CN", "tracking_url": "https://global.cainiao.com/detail.htm?mailNoList=LP00123456789CN",
	})
	if code != http.StatusOK || str(body, "order", "status") != "ORDER_STATUS_SHIPPED" {
		t.Fatalf("ship: %d %v", code, body)
	}
	code, body = jsonCall(t, "POST", s.buyerURL("/v1/orders/"+orderX+":confirm-receipt"), buyerA, map[string]any{})
	if code != http.StatusOK || str(body, "order", "status") != "ORDER_STATUS_COMPLETED" {
		t.Fatalf("confirm receipt: %d %v", code, body)
	}
	var kinds []string
	for _, h := range get(body, "order", "history").([]any) {
		kinds = append(kinds, str(h, "kind"))
	}
	want := []string{"created", "price_adjusted", "payment_declined", "paid", "shipped", "completed"}
	if len(kinds) != len(want) {
		t.Fatalf("history = %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("history = %v, want %v", kinds, want)
		}
	}
}
