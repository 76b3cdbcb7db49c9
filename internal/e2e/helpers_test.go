package e2e

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/auth"
)

func usd(amount int64) *orderv1.Money { return &orderv1.Money{AmountMinor: amount, Currency: "USD"} }

// product creates a product of store over gRPC.
func (s *system) product(store, title string, price, shipping, stock int64) *sellerv1.Product {
	s.t.Helper()
	resp, err := s.seller.CreateProduct(as(s.token(auth.RoleSeller, store)), &sellerv1.CreateProductRequest{
		Title: title, Price: usd(price), ShippingFee: usd(shipping), Stock: stock, HandlingDays: 3,
	})
	if err != nil {
		s.t.Fatalf("create product: %v", err)
	}
	return resp.Product
}

// stock returns a product's stock as its seller sees it.
func (s *system) stock(p *sellerv1.Product) int64 {
	s.t.Helper()
	resp, err := s.seller.ListProducts(as(s.token(auth.RoleSeller, p.SellerId)), &sellerv1.ListProductsRequest{PageSize: 200})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, q := range resp.Products {
		if q.Id == p.Id {
			return q.Stock
		}
	}
	s.t.Fatalf("product %s not listed", p.Id)
	return 0
}

// checkout buys quantity of each product as buyer and returns the orders.
func (s *system) checkout(buyer string, quantity int64, ps ...*sellerv1.Product) []*orderv1.Order {
	s.t.Helper()
	req := &buyerv1.CheckoutRequest{}
	for _, p := range ps {
		req.Items = append(req.Items, &buyerv1.CheckoutItem{ProductId: p.Id, Quantity: quantity})
	}
	resp, err := s.buyer.Checkout(as(s.token(auth.RoleBuyer, buyer)), req)
	if err != nil {
		s.t.Fatalf("checkout: %v", err)
	}
	return resp.Orders
}

// order returns an order as its buyer sees it.
func (s *system) order(buyer, id string) *orderv1.Order {
	s.t.Helper()
	resp, err := s.buyer.GetOrder(as(s.token(auth.RoleBuyer, buyer)), &buyerv1.GetOrderRequest{OrderId: id})
	if err != nil {
		s.t.Fatalf("get order %s: %v", id, err)
	}
	return resp.Order
}

// countKinds counts the history entries of each kind.
func countKinds(o *orderv1.Order) map[string]int {
	n := map[string]int{}
	for _, h := range o.History {
		n[h.Kind]++
	}
	return n
}

// deleteKeys drops every Redis key of the system, as a Redis that lost its data.
func (s *system) deleteKeys(t *testing.T) int {
	t.Helper()
	rdb := s.redis(t)
	keys, err := rdb.Keys(context.Background(), s.cfg.RedisPrefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		if err := rdb.Del(context.Background(), keys...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	return len(keys)
}

// pay pays an order's current total with card and fails the test on error.
func (s *system) pay(t *testing.T, buyer string, o *orderv1.Order, card, key string) *buyerv1.PayOrderResponse {
	t.Helper()
	resp, err := s.buyer.PayOrder(as(s.token(auth.RoleBuyer, buyer)), &buyerv1.PayOrderRequest{
		OrderId: o.Id, ExpectedTotal: o.Total, IdempotencyKey: key,
		Method: &buyerv1.PayOrderRequest_Card{Card: &buyerv1.Card{Number: card, ExpMonth: 12, ExpYear: 2099, Cvc: "123"}},
	})
	if err != nil {
		t.Fatalf("pay: %v", err)
	}
	return resp
}

// payTransfer pays an order by bank transfer from account.
func (s *system) payTransfer(t *testing.T, buyer string, o *orderv1.Order, account, key string) *buyerv1.PayOrderResponse {
	t.Helper()
	resp, err := s.buyer.PayOrder(as(s.token(auth.RoleBuyer, buyer)), &buyerv1.PayOrderRequest{OrderId: o.Id, ExpectedTotal: o.Total,
		IdempotencyKey: key, Method: &buyerv1.PayOrderRequest_BankTransfer{BankTransfer: &buyerv1.BankTransfer{AccountNumber: account}}})
	if err != nil {
		t.Fatalf("pay by transfer: %v", err)
	}
	return resp
}

// db opens a pool on the system's database, for a test to inspect or
// change the record as an operator (or a fault) would.
func (s *system) db(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), s.cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
