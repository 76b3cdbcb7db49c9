package e2e

import (
	"fmt"
	"sync/atomic"
	"testing"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	"github.com/souk-dev/souk/internal/auth"
)

// BenchmarkCheckoutAndPay measures the main path over real gRPC: a checkout
// (stock reserved through seller-svc) followed by a card payment.
func BenchmarkCheckoutAndPay(b *testing.B) {
	s := startSystem(b, 1, nil)
	lamp := s.product("store-x", "Lamp", 1000, 100, 1000000000)
	ctx := as(s.token(auth.RoleBuyer, "alice"))
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			co, err := s.buyer.Checkout(ctx, &buyerv1.CheckoutRequest{Items: []*buyerv1.CheckoutItem{{ProductId: lamp.Id, Quantity: 1}}})
			if err != nil {
				b.Error(err)
				return
			}
			o := co.Orders[0]
			_, err = s.buyer.PayOrder(ctx, &buyerv1.PayOrderRequest{OrderId: o.Id, ExpectedTotal: o.Total,
				IdempotencyKey: fmt.Sprintf("bench-key-%d", n.Add(1)), Method: &buyerv1.PayOrderRequest_Card{Card: &buyerv1.Card{Number: "4242424242424242", ExpMonth: 1, ExpYear: 2099, Cvc: "123"}}})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
}

// BenchmarkGetOrder measures reading one order with its history over gRPC.
func BenchmarkGetOrder(b *testing.B) {
	s := startSystem(b, 1, nil)
	lamp := s.product("store-x", "Lamp", 1000, 100, 100)
	o := s.checkout("alice", 1, lamp)[0]
	ctx := as(s.token(auth.RoleBuyer, "alice"))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.buyer.GetOrder(ctx, &buyerv1.GetOrderRequest{OrderId: o.Id}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}
