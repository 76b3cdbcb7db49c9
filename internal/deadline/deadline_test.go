package deadline_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/souk-dev/souk/internal/catalog"
	"github.com/souk-dev/souk/internal/deadline"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/postgres"
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
	// The poisoned deadline is due first, written as Souk writes one: in
	// the sweeper's index and on the order's row.
	for _, q := range []string{`INSERT INTO order_deadlines (order_id, kind, due_at, seller_id) VALUES ($1, 'from_a_newer_version', $2, 'store-x')`,
		`UPDATE orders SET deadlines = deadlines || jsonb_build_object('from_a_newer_version', $2::timestamptz) WHERE id = $1`} {
		if _, err := db.Pool().Exec(ctx, q, orders[0].ID(), now.Add(-2*time.Hour)); err != nil {
			t.Fatal(err)
		}
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
			// Payment windows until every primary holds the markers of two orders' buckets.
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
			for i := 0; len(orders) < want; i++ {
				// Due times a bucket apart: each bucket's marker lands on some primary.
				window := 2*time.Second + time.Duration(i)*250*time.Millisecond
				node := primaryOf(deadline.MarkerKey(r.Prefix, now.Add(window)))
				if cluster && per[node] >= 2 {
					continue
				}
				per[node]++
				o, err := order.New(order.NewOrderParams{ID: uuid.NewString(), CheckoutID: uuid.NewString(), BuyerID: "alice", SellerID: "store-x",
					Currency: "USD", Items: []order.Item{{ProductID: p.ID, Quantity: 1, UnitPrice: 1000}}, HandlingDays: 3,
					PaymentWindow: window, Now: now})
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
	// The far order first, so that the near one is stored just before it
	// is armed: on Citus under make test's load a store took long enough
	// for a window of half a second to end before its arming.
	_, fars := store(t, db, 1, 5*time.Second)
	_, nears := store(t, db, 1, 1500*time.Millisecond)
	var mu sync.Mutex
	paths := map[string]int{}
	s := deadline.New(rdb, prefix, db, order.DefaultPolicy, func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.SetHorizon(2 * time.Second)
	s.OnFiredDeadline(func(_ order.DeadlineKind, path string, _ time.Duration) { mu.Lock(); paths[path]++; mu.Unlock() })
	near, far := nears[0], fars[0]
	s.Arm(ctx, near)
	s.Arm(ctx, far)
	armed := func(o *order.Order) bool {
		return s.Armed(ctx, o.ID(), order.DeadlinePayment, o.Deadlines()[order.DeadlinePayment])
	}
	if !armed(near) {
		t.Fatal("the deadline within the horizon is not armed")
	}
	if armed(far) {
		t.Fatal("the deadline beyond the horizon is armed")
	}
	go func() { _ = s.Run(ctx, deadline.Config{Listen: true, SweepInterval: time.Hour}) }()
	testenv.Eventually(t, 6*time.Second, "the far deadline is armed ahead of time", func() bool { return armed(far) })
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

// store makes a product with stock 1,000 and n unpaid orders of one unit
// each, whose payment windows end window from now.
func store(t *testing.T, db *postgres.DB, n int, window time.Duration) (catalog.Product, []*order.Order) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	p := catalog.Product{ID: uuid.NewString(), SellerID: "store-x", Title: "Lamp", Currency: "USD", Price: 1000, Stock: 1000, HandlingDays: 3,
		ProtectionDays: 60, CreatedAt: now, UpdatedAt: now}
	if err := db.CreateProduct(ctx, p); err != nil {
		t.Fatal(err)
	}
	var orders []*order.Order
	for range n {
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
	return p, orders
}

func stock(t *testing.T, db *postgres.DB, id string) int64 {
	t.Helper()
	var n int64
	if err := db.Pool().QueryRow(context.Background(), `SELECT stock FROM products WHERE id = $1`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// counter counts the deadlines a scheduler fired, by path.
type counter struct {
	mu    sync.Mutex
	paths map[string]int
}

func (c *counter) fired(_ order.DeadlineKind, path string, _ time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paths == nil {
		c.paths = map[string]int{}
	}
	c.paths[path]++
}

func (c *counter) get(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paths[path]
}

func scheduler(db *postgres.DB, rdb redis.UniversalClient, prefix string) *deadline.Scheduler {
	return deadline.New(rdb, prefix, db, order.DefaultPolicy, func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// TestBurstWithTwoReplicas: 300 payment windows end in the same quarter
// second, watched by two replicas' listeners: every order is cancelled
// once (one cancellation event each, the stock back exactly once), the
// listeners fired them all, many per transaction, and Redis is left empty.
func TestBurstWithTwoReplicas(t *testing.T) {
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 300
	p, orders := store(t, db, n, 2*time.Second)
	if got := stock(t, db, p.ID); got != 1000 {
		t.Fatalf("stock = %d before the burst", got) // orders made in the store directly reserve nothing
	}
	var c counter
	for range 2 {
		s := scheduler(db, rdb, prefix)
		s.OnFiredDeadline(c.fired)
		s.Arm(ctx, orders...)
		go func() { _ = s.Run(ctx, deadline.Config{Listen: true, SweepInterval: time.Hour, Batch: 100}) }()
	}
	testenv.Eventually(t, 20*time.Second, "every payment window fired", func() bool { return c.get(deadline.PathListener) >= n })
	time.Sleep(300 * time.Millisecond) // anything fired twice would show by now
	if got := c.get(deadline.PathListener); got != n {
		t.Fatalf("fired %d deadlines for %d orders", got, n)
	}
	var cancelled, events int
	ids := make([]string, n)
	for i, o := range orders {
		ids[i] = o.ID()
	}
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM orders WHERE id = ANY($1::uuid[]) AND status = 'CANCELLED' AND version = 2`, ids).Scan(&cancelled); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM order_events WHERE order_id = ANY($1::uuid[]) AND kind = 'cancelled'`, ids).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if cancelled != n || events != n {
		rows, _ := db.Pool().Query(ctx, `SELECT status || ' v' || version FROM orders WHERE id = ANY($1::uuid[])`, ids)
		got, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		t.Fatalf("%d orders cancelled at version 2, %d cancellation events; want %d of each (%v)", cancelled, events, n, got[:3])
	}
	if got := stock(t, db, p.ID); got != 1000+n {
		t.Fatalf("stock = %d after the burst, want %d (each order's unit back once)", got, 1000+n)
	}
	if keys := rdb.Keys(ctx, prefix+"d[lt]:*").Val(); len(keys) != 0 {
		t.Fatalf("Redis still holds %v", keys)
	}
}

// TestBatchMeetsALockedOrder: a batch that meets an order a payment holds
// fires the others at once, leaves that one untouched while it is held,
// and fires it (through the listener, once) when the holder lets go
// without closing the window.
func TestBatchMeetsALockedOrder(t *testing.T) {
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, orders := store(t, db, 3, time.Second)
	held := orders[1]
	tx, err := db.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT 1 FROM orders WHERE id = $1 AND seller_id = $2 FOR UPDATE`, held.ID(), held.SellerID()); err != nil {
		t.Fatal(err)
	}
	var c counter
	s := scheduler(db, rdb, prefix)
	s.OnFiredDeadline(c.fired)
	s.Arm(ctx, orders...)
	go func() { _ = s.Run(ctx, deadline.Config{Listen: true, SweepInterval: time.Hour}) }()
	testenv.Eventually(t, 10*time.Second, "the free orders' windows fired", func() bool { return c.get(deadline.PathListener) == 2 })
	status := func(o *order.Order) order.Status {
		got, err := db.Get(ctx, o.ID())
		if err != nil {
			t.Fatal(err)
		}
		return got.Status()
	}
	time.Sleep(500 * time.Millisecond)
	if got := status(held); got != order.StatusPendingPayment {
		t.Fatalf("the held order is %s while held", got)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "the held order's window fired once let go", func() bool { return c.get(deadline.PathListener) == 3 })
	for _, o := range orders {
		if got := status(o); got != order.StatusCancelled {
			t.Fatalf("order %s is %s", o.ID(), got)
		}
	}
}

// TestHandOverJustBeforeDue: a deadline the horizon's arming reaches only
// just before it is due (or after) joins a bucket still ahead, so the
// listener still fires it, and promptly.
func TestHandOverJustBeforeDue(t *testing.T) {
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var c counter
	var lags []time.Duration
	var mu sync.Mutex
	s := scheduler(db, rdb, prefix)
	s.SetHorizon(time.Hour)
	s.OnFiredDeadline(func(kind order.DeadlineKind, path string, lag time.Duration) {
		c.fired(kind, path, lag)
		mu.Lock()
		lags = append(lags, lag)
		mu.Unlock()
	})
	go func() { _ = s.Run(ctx, deadline.Config{Listen: true, SweepInterval: time.Hour}) }()
	time.Sleep(200 * time.Millisecond) // the scheduler's first sweep and arming are over
	// Two deadlines nobody armed (made in the store directly), 60 ms ahead.
	_, orders := store(t, db, 2, 60*time.Millisecond)
	time.Sleep(40 * time.Millisecond) // armed ~20 ms before they are due ...
	if n, err := s.RearmAll(ctx); err != nil || n != 2 {
		t.Fatalf("armed %d: %v", n, err)
	}
	time.Sleep(100 * time.Millisecond) // ... and again once overdue: harmless
	if _, err := s.RearmAll(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "both fired by the listener", func() bool { return c.get(deadline.PathListener) == 2 })
	time.Sleep(300 * time.Millisecond)
	if got := c.get(deadline.PathListener); got != 2 {
		t.Fatalf("fired %d times", got)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, lag := range lags {
		if lag > 2*time.Second {
			t.Fatalf("fired %v late", lag)
		}
	}
	for _, o := range orders {
		if got, err := db.Get(ctx, o.ID()); err != nil || got.Status() != order.StatusCancelled || got.Version() != 2 {
			t.Fatalf("order %s: %v, version %d (%v); want cancelled once", o.ID(), got.Status(), got.Version(), err)
		}
	}
}

// Money safety, round two, point 6: a replica whose clock runs an hour
// ahead fires no payment window early, by the sweeper or by its listener;
// the database's clock decides. A replica with the right clock then fires
// the deadline when it is due.
func TestSkewedClockFiresNothingEarly(t *testing.T) {
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, orders := store(t, db, 2, 1500*time.Millisecond)
	var fired atomic.Int32
	ahead := deadline.New(rdb, prefix, db, order.DefaultPolicy, func() time.Time { return time.Now().UTC().Add(time.Hour).Truncate(time.Microsecond) },
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	ahead.OnFired(func(*order.Order) { fired.Add(1) })
	if n, err := ahead.Sweep(ctx, 10); err != nil || n != 0 {
		t.Fatalf("a sweep by a clock an hour ahead fired %d (%v), want none", n, err)
	}
	// Its listener gets the deadlines at once (its clock says they are
	// past): the database's clock refuses them.
	ahead.Arm(ctx, orders...)
	go func() { _ = ahead.Run(ctx, deadline.Config{Listen: true, SweepInterval: 200 * time.Millisecond}) }()
	time.Sleep(time.Second)
	for _, o := range orders {
		got, err := db.Get(ctx, o.ID())
		if err != nil || got.Status() != order.StatusPendingPayment {
			t.Fatalf("order %s is %v (%v) before its payment window ended", o.ID(), got.Status(), err)
		}
	}
	if fired.Load() != 0 {
		t.Fatalf("the skewed replica fired %d", fired.Load())
	}
	// Once the windows really end, they fire.
	testenv.Eventually(t, 10*time.Second, "the windows end and fire", func() bool {
		for _, o := range orders {
			if got, err := db.Get(ctx, o.ID()); err != nil || got.Status() != order.StatusCancelled {
				return false
			}
		}
		return true
	})
	for _, o := range orders {
		got, _ := db.Get(ctx, o.ID())
		for _, e := range got.History() {
			if e.Kind == "cancelled" && e.OccurredAt.Before(o.Deadlines()[order.DeadlinePayment]) {
				t.Fatalf("order %s cancelled at %s, before its window ended at %s", o.ID(), e.OccurredAt, o.Deadlines()[order.DeadlinePayment])
			}
		}
	}
}

// Money safety, round two, point 8: when Redis loses its data, the
// deadlines' keys are armed again at once, so the listener still fires them
// on time instead of leaving them to a sweep (here an hour away) or to the
// next re-arm half a horizon later.
func TestDeadlinesAreRearmedAfterRedisLostItsData(t *testing.T) {
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, orders := store(t, db, 1, 3*time.Second)
	var c counter
	s := scheduler(db, rdb, prefix)
	s.SetHorizon(time.Hour)
	s.OnFiredDeadline(c.fired)
	go func() { _ = s.Run(ctx, deadline.Config{Listen: true, SweepInterval: time.Hour}) }()
	o := orders[0]
	due := o.Deadlines()[order.DeadlinePayment]
	testenv.Eventually(t, 2*time.Second, "the deadline is armed", func() bool { return s.Armed(ctx, o.ID(), order.DeadlinePayment, due) })
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys %v, %v", keys, err)
	}
	if err := rdb.Del(ctx, keys...).Err(); err != nil { // Redis restarted empty
		t.Fatal(err)
	}
	testenv.Eventually(t, 3*time.Second, "the deadline is armed again", func() bool { return s.Armed(ctx, o.ID(), order.DeadlinePayment, due) })
	testenv.Eventually(t, 10*time.Second, "the listener fires it", func() bool { return c.get(deadline.PathListener) == 1 })
	if late := time.Since(due); late > 2*time.Second {
		t.Fatalf("fired %s after it was due", late)
	}
}
