package deadline_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/souk-dev/souk/internal/catalog"
	"github.com/souk-dev/souk/internal/deadline"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/testenv"
)

// Scenario 5 of issue #7: one deadline that cannot be fired (a kind a newer
// version wrote during a rolling deploy) is reported and skipped; it never
// holds up the deadlines behind it, sweep after sweep.
func TestSweepSkipsADeadlineItCannotFire(t *testing.T) {
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	p := catalog.Product{ID: uuid.NewString(), SellerID: "store-x", Title: "Lamp", Currency: "USD", Price: 1000, Stock: 10, HandlingDays: 3, ProtectionDays: 60,
		CreatedAt: now, UpdatedAt: now}
	if err := db.CreateProduct(ctx, p); err != nil {
		t.Fatal(err)
	}
	var orders []*order.Order
	for i := range 4 {
		window := time.Millisecond
		if i == 0 {
			window = 24 * time.Hour // the order with the poisoned deadline stays open
		}
		o, err := order.New(order.NewOrderParams{ID: uuid.NewString(), CheckoutID: uuid.NewString(), BuyerID: "alice", SellerID: "store-x",
			Currency: "USD", Items: []order.Item{{ProductID: p.ID, Quantity: 1, UnitPrice: 1000}}, HandlingDays: 3,
			PaymentWindow: window, Now: now.Add(-time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		orders = append(orders, o)
	}
	if err := db.CreateOrders(ctx, orders); err != nil {
		t.Fatal(err)
	}
	// The poisoned deadline is due first.
	if _, err := db.Pool().Exec(ctx, `INSERT INTO order_deadlines (order_id, kind, due_at, seller_id) VALUES ($1, 'from_a_newer_version', $2, 'store-x')`,
		orders[0].ID(), now.Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	var fired []string
	s := deadline.New(rdb, prefix, db, order.DefaultPolicy, func() time.Time { return now }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.OnFired(func(o *order.Order) { fired = append(fired, o.ID()) })
	for range 2 {
		if _, err := s.Sweep(ctx, 1); err != nil {
			t.Fatalf("sweep: %v", err)
		}
	}
	if len(fired) != 3 {
		t.Fatalf("fired %d orders, want all 3 payment windows", len(fired))
	}
	for _, o := range orders[1:] {
		got, err := db.Get(ctx, o.ID())
		if err != nil || got.Status() != order.StatusCancelled {
			t.Fatalf("order %s: %v %v", o.ID(), got.Status(), err)
		}
	}
	if s.Failures() != 2 {
		t.Fatalf("failures = %d, want the poisoned deadline reported once per sweep", s.Failures())
	}
	var n int
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM order_deadlines WHERE kind = 'from_a_newer_version'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the unknown deadline is gone (%d, %v): it belongs to the newer version", n, err)
	}
}

// TestListenerFiresOnEveryPrimary, on a single Redis and on a Redis
// Cluster: with the sweeper out of the way, the expired-key listener fires
// every deadline, including, on the cluster, keys that live on each of its
// primaries (a cluster notifies an expiry only on the key's own node).
func TestListenerFiresOnEveryPrimary(t *testing.T) {
	for _, r := range testenv.Redises(t) {
		t.Run(r.Name, func(t *testing.T) {
			db := testenv.DB(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			now := time.Now().UTC().Truncate(time.Microsecond)
			p := catalog.Product{ID: uuid.NewString(), SellerID: "store-x", Title: "Lamp", Currency: "USD", Price: 1000, Stock: 100, HandlingDays: 3,
				ProtectionDays: 60, CreatedAt: now, UpdatedAt: now}
			if err := db.CreateProduct(ctx, p); err != nil {
				t.Fatal(err)
			}
			// Order ids until every primary holds two orders' keys.
			primaryOf := func(string) string { return "the only one" }
			if c, ok := r.Client.(*redis.ClusterClient); ok {
				slots, err := c.ClusterSlots(ctx).Result()
				if err != nil {
					t.Fatal(err)
				}
				primaryOf = func(key string) string {
					slot, err := c.ClusterKeySlot(ctx, key).Result()
					if err != nil {
						t.Fatal(err)
					}
					for _, s := range slots {
						if int64(s.Start) <= slot && slot <= int64(s.End) {
							return s.Nodes[0].Addr
						}
					}
					t.Fatalf("slot %d has no primary", slot)
					return ""
				}
			}
			_, cluster := r.Client.(*redis.ClusterClient)
			var orders []*order.Order
			per := map[string]int{}
			// Two orders per primary (three of them), or four on a single Redis.
			want := 4
			if cluster {
				want = 6
			}
			for len(orders) < want {
				id := uuid.NewString()
				node := primaryOf(r.Prefix + "deadline:{" + id + "}:payment")
				if cluster && per[node] >= 2 {
					continue
				}
				per[node]++
				o, err := order.New(order.NewOrderParams{ID: id, CheckoutID: uuid.NewString(), BuyerID: "alice", SellerID: "store-x",
					Currency: "USD", Items: []order.Item{{ProductID: p.ID, Quantity: 1, UnitPrice: 1000}}, HandlingDays: 3,
					PaymentWindow: 2 * time.Second, Now: now})
				if err != nil {
					t.Fatal(err)
				}
				orders = append(orders, o)
			}
			if cluster && len(per) != 3 {
				t.Fatalf("the orders' keys are on %d primaries, want 3", len(per))
			}
			if err := db.CreateOrders(ctx, orders); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			paths := map[string]int{}
			s := deadline.New(r.Client, r.Prefix, db, order.DefaultPolicy, func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
				slog.New(slog.NewTextHandler(io.Discard, nil)))
			s.OnFiredDeadline(func(kind order.DeadlineKind, path string, _ time.Duration) {
				mu.Lock()
				defer mu.Unlock()
				paths[string(kind)+" by "+path]++
			})
			go func() { _ = s.Run(ctx, deadline.Config{Listen: true, SweepInterval: time.Hour}) }()
			testenv.Eventually(t, 15*time.Second, "every payment window fired", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return paths["payment by listener"] == len(orders)
			})
			for _, o := range orders {
				got, err := db.Get(ctx, o.ID())
				if err != nil || got.Status() != order.StatusCancelled {
					t.Fatalf("order %s: %v %v", o.ID(), got.Status(), err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(paths) != 1 {
				t.Fatalf("fired: %v; want only the listener's", paths)
			}
		})
	}
}

// TestHorizon: a deadline beyond the horizon has no Redis key (Redis holds
// the near-term deadlines only); the horizon's arming gives it one ahead of
// time, and the expired-key listener fires it.
func TestHorizon(t *testing.T) {
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	now := time.Now().UTC().Truncate(time.Microsecond)
	p := catalog.Product{ID: uuid.NewString(), SellerID: "store-x", Title: "Lamp", Currency: "USD", Price: 1000, Stock: 10, HandlingDays: 3,
		ProtectionDays: 60, CreatedAt: now, UpdatedAt: now}
	if err := db.CreateProduct(ctx, p); err != nil {
		t.Fatal(err)
	}
	var orders []*order.Order
	for _, window := range []time.Duration{500 * time.Millisecond, 3 * time.Second} {
		o, err := order.New(order.NewOrderParams{ID: uuid.NewString(), CheckoutID: uuid.NewString(), BuyerID: "alice", SellerID: "store-x",
			Currency: "USD", Items: []order.Item{{ProductID: p.ID, Quantity: 1, UnitPrice: 1000}}, HandlingDays: 3, PaymentWindow: window, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		orders = append(orders, o)
	}
	if err := db.CreateOrders(ctx, orders); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	paths := map[string]int{}
	s := deadline.New(rdb, prefix, db, order.DefaultPolicy, func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.SetHorizon(time.Second)
	s.OnFiredDeadline(func(_ order.DeadlineKind, path string, _ time.Duration) { mu.Lock(); paths[path]++; mu.Unlock() })
	near, far := orders[0], orders[1]
	s.Arm(ctx, near)
	s.Arm(ctx, far)
	key := func(o *order.Order) string { return prefix + "deadline:{" + o.ID() + "}:payment" }
	if n, _ := rdb.Exists(ctx, key(near)).Result(); n != 1 {
		t.Fatal("the deadline within the horizon has no key")
	}
	if n, _ := rdb.Exists(ctx, key(far)).Result(); n != 0 {
		t.Fatal("the deadline beyond the horizon has a key")
	}
	go func() { _ = s.Run(ctx, deadline.Config{Listen: true, SweepInterval: time.Hour}) }()
	testenv.Eventually(t, 3*time.Second, "the far deadline gets its key ahead of time", func() bool {
		n, _ := rdb.Exists(ctx, key(far)).Result()
		return n == 1
	})
	if time.Now().After(far.Deadlines()[order.DeadlinePayment]) {
		t.Fatal("the key came after the deadline")
	}
	testenv.Eventually(t, 10*time.Second, "both deadlines fired", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return paths[deadline.PathListener] == 2
	})
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 1 {
		t.Fatalf("fired by %v; want the listener alone", paths)
	}
}
