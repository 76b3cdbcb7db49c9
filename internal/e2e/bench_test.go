package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
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

// BenchmarkEventLatency measures how long an event takes from the commit of
// its change (the writer's call returning) to each of 100 watchers of the
// store over gRPC, with the relay's default interval: p50 and p99 over every
// (event, watcher) pair. The changes are messages, one every 20 ms.
func BenchmarkEventLatency(b *testing.B) {
	s := startSystem(b, 1, func(c *app.Config) { c.RelayInterval = 200 * time.Millisecond })
	lamp := s.product("store-x", "Lamp", 1000, 100, 100)
	o := s.checkout("alice", 1, lamp)[0]
	storeTok := s.token(auth.RoleSeller, "store-x")
	const watchers = 100
	var (
		mu    sync.Mutex
		sent  = map[string]time.Time{} // message id → when its call returned
		lat   []time.Duration
		ready sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn := dial(b, s.sellers[0].GRPCAddr())
	for range watchers {
		ready.Add(1)
		stream, err := sellerv1.NewSellerServiceClient(conn).WatchOrderEvents(authorized(ctx, storeTok),
			&sellerv1.WatchOrderEventsRequest{Filter: &orderv1.EventFilter{Kinds: []string{"message_sent"}}})
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			first := true
			for {
				r, err := stream.Recv()
				if err != nil {
					return
				}
				if first {
					first = false
					ready.Done()
				}
				if e := r.GetEvent(); e != nil {
					at := time.Now()
					mu.Lock()
					if t0, ok := sent[e.GetMessage().GetId()]; ok {
						lat = append(lat, at.Sub(t0))
					}
					mu.Unlock()
				}
			}
		}()
	}
	ready.Wait()
	sellerCtx := as(storeTok)
	b.ResetTimer()
	for b.Loop() {
		r, err := s.seller.SendOrderMessage(sellerCtx, &sellerv1.SendOrderMessageRequest{OrderId: o.Id, Message: &orderv1.MessageInput{Text: "on its way soon"}})
		if err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		sent[r.Message.Id] = time.Now()
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	b.StopTimer()
	want := len(sent) * watchers
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lat) != want {
		b.Fatalf("%d deliveries, want %d", len(lat), want)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(watchers, "watchers")
}
