package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/testenv"
)

func (s *system) redis(t *testing.T) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: s.cfg.RedisAddr, DB: s.cfg.RedisDB})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// expectExpired waits for every order to be cancelled for payment_timeout
// and checks it happened once.
func (s *system) expectExpired(t *testing.T, buyer string, orders []*orderv1.Order, within time.Duration) {
	t.Helper()
	for _, o := range orders {
		testenv.Eventually(t, within, "order "+o.Id+" expired", func() bool {
			return s.order(buyer, o.Id).Status == orderv1.OrderStatus_ORDER_STATUS_CANCELLED
		})
		got := s.order(buyer, o.Id)
		if got.CancelReason != "payment_timeout" {
			t.Errorf("cancel reason = %q, want payment_timeout", got.CancelReason)
		}
		if n := countKinds(got)["cancelled"]; n != 1 {
			t.Errorf("order %s was cancelled %d times", o.Id, n)
		}
		if len(got.Deadlines) != 0 {
			t.Errorf("cancelled order still has deadlines %v", got.Deadlines)
		}
	}
}

func TestPaymentWindowExpires(t *testing.T) {
	cases := []struct {
		name     string
		replicas int
		tune     func(*app.Config)
		// lose, when set, runs after checkout: keys lost, services restarted…
		lose func(t *testing.T, s *system)
	}{
		{name: "listener", replicas: 1, tune: func(c *app.Config) { c.SweepInterval = time.Hour }},
		{name: "sweeper alone", replicas: 1, tune: func(c *app.Config) { c.Listener = false; c.SweepInterval = 200 * time.Millisecond }},
		{
			name: "redis lost its keys, re-armed on restart", replicas: 1,
			tune: func(c *app.Config) { c.SweepInterval = time.Hour },
			lose: func(t *testing.T, s *system) {
				if n := s.deleteKeys(t); n == 0 {
					t.Fatal("no deadline keys were armed")
				}
				// A replica started now re-arms the keys from Postgres; its
				// listener (not a sweep: the interval is an hour) fires them.
				s.startBuyer()
			},
		},
		{
			name: "redis lost its keys, swept", replicas: 1,
			tune: func(c *app.Config) { c.Listener = false; c.SweepInterval = 300 * time.Millisecond },
			lose: func(t *testing.T, s *system) { s.deleteKeys(t) },
		},
		{name: "two replicas of each service", replicas: 2, tune: func(c *app.Config) { c.SweepInterval = 100 * time.Millisecond }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startSystem(t, tc.replicas, func(c *app.Config) {
				c.PaymentWindow = 2 * time.Second
				tc.tune(c)
			})
			lamp := s.product("store-x", "Lamp", 1000, 100, 50)
			mug := s.product("store-y", "Mug", 500, 0, 50)
			var orders []*orderv1.Order
			for range 5 {
				orders = append(orders, s.checkout("alice", 2, lamp, mug)...)
			}
			if got := s.stock(lamp); got != 40 {
				t.Fatalf("lamp stock after checkouts = %d, want 40", got)
			}
			if tc.lose != nil {
				tc.lose(t, s)
			}
			s.expectExpired(t, "alice", orders, 10*time.Second)
			// Every unit comes back, once.
			if got := s.stock(lamp); got != 50 {
				t.Errorf("lamp stock after expiry = %d, want 50", got)
			}
			if got := s.stock(mug); got != 50 {
				t.Errorf("mug stock after expiry = %d, want 50", got)
			}
			// Nothing fires again later.
			time.Sleep(500 * time.Millisecond)
			s.expectExpired(t, "alice", orders, time.Second)
			if got := s.stock(lamp); got != 50 {
				t.Errorf("lamp stock later = %d, want 50", got)
			}
			if n := len(s.redis(t).Keys(context.Background(), s.cfg.RedisPrefix+"d[lt]:*").Val()); n != 0 {
				t.Errorf("%d deadline keys left in Redis", n)
			}
		})
	}
}

// TestPaidOrderDoesNotExpire checks that paying closes the payment window.
func TestPaidOrderDoesNotExpire(t *testing.T) {
	s := startSystem(t, 1, func(c *app.Config) { c.PaymentWindow = 1500 * time.Millisecond })
	lamp := s.product("store-x", "Lamp", 1000, 100, 50)
	o := s.checkout("alice", 1, lamp)[0]
	s.pay(t, "alice", o, "4242424242424242", "key-paid-1")
	time.Sleep(2500 * time.Millisecond)
	if got := s.order("alice", o.Id); got.Status != orderv1.OrderStatus_ORDER_STATUS_AWAITING_SHIPMENT {
		t.Fatalf("paid order status after the window = %s", got.Status)
	}
	if got := s.stock(lamp); got != 49 {
		t.Fatalf("stock = %d, want 49", got)
	}
}
