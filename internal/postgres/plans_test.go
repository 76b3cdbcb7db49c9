package postgres_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/postgres"
	"github.com/souk-dev/souk/internal/testenv"
)

// TestReadsAreNotReplanned reads one order ten times on one connection and
// finds that PostgreSQL settled on a generic plan of the order's statement
// after its first five custom ones, rather than planning it anew for every
// read (as it did for "id = ANY($1)" with one id, which cost the reads over
// half of PostgreSQL's time in make bench).
func TestReadsAreNotReplanned(t *testing.T) {
	db := oneConnection(t)
	p := mustProduct(t, db, "store-p", 5)
	o := mustOrder(t, db, p, "alice", t0)
	for range 10 {
		if _, err := db.Get(context.Background(), o.ID()); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := db.Pool().Query(context.Background(), `SELECT generic_plans, custom_plans FROM pg_prepared_statements
		WHERE generic_plans + custom_plans = 10
		AND (statement LIKE '%FROM orders WHERE id = $1::uuid AND seller_id%' OR statement LIKE '%FROM payment_attempts WHERE order_id %')`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var generic, custom int64
		if err := rows.Scan(&generic, &custom); err != nil {
			t.Fatal(err)
		}
		if custom > 5 || generic < 5 {
			t.Errorf("a statement of the order's read was planned %d times for itself and ran %d times on a generic plan; want at most 5 and at least 5", custom, generic)
		}
		n++
	}
	if rows.Err() != nil || n != 2 {
		t.Fatalf("found %d of the read's two statements (%v)", n, rows.Err())
	}
}

// TestRoutesAreNotReplanned: a process reads the store of an id's key the
// first time it meets the key, one key a read; PostgreSQL settles on a
// generic plan of that read rather than planning "key = ANY($1)" anew each
// time (over 80 µs a read at ten million orders, on every store a new
// replica meets).
func TestRoutesAreNotReplanned(t *testing.T) {
	ctx := context.Background()
	url := testenv.DatabaseURL(t)
	writer := openAt(t, url)
	var ids []string
	for i := range 10 {
		p := mustProduct(t, writer, fmt.Sprintf("store-route-%d", i), 5)
		ids = append(ids, mustOrder(t, writer, p, "alice", t0).ID())
	}
	// A new process: one connection, no store met yet.
	reader := openAt(t, url, func(c *pgxpool.Config) { c.MaxConns = 1 })
	for _, id := range ids {
		if _, err := reader.Get(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	var generic, custom int64
	if err := reader.Pool().QueryRow(ctx, `SELECT generic_plans, custom_plans FROM pg_prepared_statements
		WHERE statement LIKE '%FROM store_keys WHERE key%'`).Scan(&generic, &custom); err != nil {
		t.Fatal(err)
	}
	if generic+custom != 10 || custom > 5 {
		t.Errorf("the store of a key was read %d times on a generic plan and planned anew %d times; want 10 reads, at most 5 planned", generic, custom)
	}
}

// TestPagesAreNotReplanned lists a buyer's 300 orders ten times, a page of
// 20 each, on one connection and finds that PostgreSQL settled on a
// generic plan of the page's statement. With the page size as a parameter
// ("LIMIT $2") it never did: a generic plan does not know the limit and is
// costed for a tenth of the buyer's orders, so every page was planned anew
// (and such a generic plan, dear enough, would even be compiled by JIT).
func TestPagesAreNotReplanned(t *testing.T) {
	ctx := context.Background()
	db := oneConnection(t)
	p := mustProduct(t, db, "store-pages", 1000)
	var orders []*order.Order
	for i := range 300 {
		o, err := order.New(order.NewOrderParams{ID: uuid.NewString(), CheckoutID: uuid.NewString(), BuyerID: "pager", SellerID: p.SellerID,
			Currency: "USD", Items: []order.Item{{ProductID: p.ID, Title: p.Title, Quantity: 1, UnitPrice: p.Price}},
			HandlingDays: 3, PaymentWindow: time.Hour, Now: t0.Add(time.Duration(i) * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		orders = append(orders, o)
	}
	if err := db.CreateOrders(ctx, orders); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool().Exec(ctx, `ANALYZE orders`); err != nil {
		t.Fatal(err)
	}
	pagesSettleOnGeneric(t, db, postgres.ListQuery{Party: postgres.Buyer, PartyID: "pager", PageSize: 20}, "buyer_id")
}

// pagesSettleOnGeneric lists q's page ten times on db's one connection and
// checks that PostgreSQL ran the page's statement (orders by col) on a
// generic plan after at most five custom ones.
func pagesSettleOnGeneric(t *testing.T, db *postgres.DB, q postgres.ListQuery, col string) {
	t.Helper()
	ctx := context.Background()
	for range 10 {
		page, _, err := db.List(ctx, q)
		if err != nil || len(page) != 20 {
			t.Fatalf("a page of %d orders (%v); want 20", len(page), err)
		}
	}
	var generic, custom int64
	if err := db.Pool().QueryRow(ctx, `SELECT generic_plans, custom_plans FROM pg_prepared_statements
		WHERE statement LIKE '%FROM orders WHERE ' || $1 || '%' AND statement NOT LIKE '%pg_prepared_statements%'`, col).Scan(&generic, &custom); err != nil {
		t.Fatal(err)
	}
	if custom > 5 || generic < 5 {
		t.Errorf("the page's statement was planned %d times for itself and ran %d times on a generic plan; want at most 5 and at least 5", custom, generic)
	}
}

// TestStorePagesAreNotReplanned lists a big store's first page ten times
// on one connection, as of a time (the page a dashboard keeps while new
// orders come in, and the scale run's), and finds that PostgreSQL settled
// on a generic plan. Left to choose, it planned the page anew every time:
// the scale run at 10 million orders spent 84 µs a page planning the
// statement (none at 10,000), more than running it, which made the big
// store's page 1.3–1.6 times as dear; the custom plan was costed a little
// under the generic one for the biggest store.
func TestStorePagesAreNotReplanned(t *testing.T) {
	ctx := context.Background()
	db := oneConnection(t)
	var orders []*order.Order
	add := func(store string, at time.Time) { orders = append(orders, storeOrder(t, store, at)) }
	for i := range 3000 {
		add("store-big", t0.Add(time.Duration(i)*3*time.Hour))
	}
	for i := range 2000 {
		add(fmt.Sprintf("store-%03d", i%500), t0.Add(time.Duration(i)*4*time.Hour))
	}
	for batch := range slices.Chunk(orders, 500) {
		if err := db.CreateOrders(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Pool().Exec(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	asOf := t0.Add(2999*3*time.Hour + time.Microsecond)
	pagesSettleOnGeneric(t, db, postgres.ListQuery{Party: postgres.Seller, PartyID: "store-big", PageSize: 20, CreatedBefore: asOf}, "seller_id")
}

// storeOrder is a new order of one item in store, its buyer the store's,
// placed at.
func storeOrder(t *testing.T, store string, at time.Time) *order.Order {
	t.Helper()
	o, err := order.New(order.NewOrderParams{ID: order.NewID(store), CheckoutID: uuid.NewString(), BuyerID: "buyer-" + store, SellerID: store,
		Currency: "USD", Items: []order.Item{{ProductID: uuid.NewString(), Quantity: 1, UnitPrice: 100}}, HandlingDays: 3,
		PaymentWindow: time.Hour, Now: at})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// oneConnection opens a fresh database with a pool of one connection, so
// that every statement runs on the same session.
// planLog holds the plans auto_explain logged on a connection.
type planLog struct {
	mu    sync.Mutex
	plans []string
}

// last returns the last plan logged of a statement holding sql.
func (l *planLog) last(t *testing.T, sql string) string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.plans) - 1; i >= 0; i-- {
		if strings.Contains(l.plans[i], sql) {
			return l.plans[i]
		}
	}
	t.Fatalf("no plan of %q among the %d logged", sql, len(l.plans))
	return ""
}

// explainedConnection is oneConnection, its URL extended by params, with
// every statement's plan logged by auto_explain, run and its buffers
// counted.
func explainedConnection(t *testing.T, params string) (*postgres.DB, *planLog) {
	t.Helper()
	l := &planLog{}
	db, err := postgres.Open(context.Background(), testenv.DatabaseURL(t)+params, func(c *pgxpool.Config) {
		c.MaxConns = 1
		c.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
			_, err := conn.Exec(ctx, `LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on;
				SET auto_explain.log_buffers = on; SET client_min_messages = log`)
			return err
		}
		c.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.plans = append(l.plans, n.Message)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db, l
}

func oneConnection(t *testing.T) *postgres.DB {
	t.Helper()
	return openAt(t, testenv.DatabaseURL(t), func(c *pgxpool.Config) { c.MaxConns = 1 })
}

// openAt opens the database at url for the test, as a process of its own.
func openAt(t *testing.T, url string, opts ...func(*pgxpool.Config)) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// TestPlacesAreReadInOrder checks that the relay's read of the next
// places, on a generic plan, goes by the places' key (the test's tables
// are too small for PostgreSQL to prefer an index, so scans and sorts are
// priced out: a plan without the index would have them).
func TestPlacesAreReadInOrder(t *testing.T) {
	ctx := context.Background()
	db := oneConnection(t)
	for _, sql := range []string{`SET plan_cache_mode = force_generic_plan`, `SET enable_seqscan = off`, `SET enable_sort = off`,
		`PREPARE places(bigint) AS SELECT e.id FROM event_places p JOIN order_events e ON e.id = p.event_id
			JOIN orders o ON o.id = e.order_id WHERE p.seq > $1 ORDER BY p.seq LIMIT 500`} {
		if _, err := db.Pool().Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := db.Pool().Query(ctx, `EXPLAIN EXECUTE places(0)`)
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if !strings.Contains(strings.Join(plan, "\n"), "event_places_pkey") {
		t.Errorf("the read of places does not use their index:\n%s", strings.Join(plan, "\n"))
	}
}

// TestBigStorePagesReadTheirPage lists the first page of a store far bigger
// than the average on a generic plan (as a connection runs the page's
// statement after its first five) and finds that it reads about the page,
// not the store. A generic plan takes a store's orders for the average
// store's few, and PostgreSQL chose to fetch all of them by a bitmap and
// sort them for the 20 newest: TestScaleSmoke saw the biggest store's
// first page touch 984 blocks at 10,000 orders and 4,758 at 40,000 (every
// order of the store and its deadlines, then read beside), now and then,
// under make test's load. The plan is taken from auto_explain, its buffers counted.
func TestBigStorePagesReadTheirPage(t *testing.T) {
	ctx := context.Background()
	db, plans := explainedConnection(t, "&plan_cache_mode=force_generic_plan")
	var orders []*order.Order
	add := func(store string, at time.Time) { orders = append(orders, storeOrder(t, store, at)) }
	for i := range 1500 {
		add("store-big", t0.Add(time.Duration(i)*time.Minute))
	}
	for i := range 300 {
		add(fmt.Sprintf("store-%03d", i), t0.Add(time.Duration(i)*time.Second))
	}
	if err := db.CreateOrders(ctx, orders); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool().Exec(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	page, _, err := db.List(ctx, postgres.ListQuery{Party: postgres.Seller, PartyID: "store-big", PageSize: 20})
	if err != nil || len(page) != 20 {
		t.Fatalf("a page of %d orders (%v), want 20", len(page), err)
	}
	readsItsPage(t, plans.last(t, "FROM orders WHERE seller_id"), "the big store's first page")
	// The page of the orders waiting to be shipped (the seller's tab to
	// work from): three of the store's 1,500. Walking the store's index and
	// filtering by status read every one of its orders to find fewer than a
	// page (at 10 million orders, the biggest store's 449,505: 450,000
	// blocks, 3 to 6 s).
	if _, err := db.Pool().Exec(ctx, `UPDATE orders SET status = $1 WHERE id IN ($2, $3, $4)`, string(order.StatusAwaitingShipment),
		orders[10].ID(), orders[700].ID(), orders[1400].ID()); err != nil {
		t.Fatal(err)
	}
	page, _, err = db.List(ctx, postgres.ListQuery{Party: postgres.Seller, PartyID: "store-big", Status: order.StatusAwaitingShipment, PageSize: 20})
	if err != nil || len(page) != 3 || page[0].ID() != orders[1400].ID() {
		t.Fatalf("the page to ship: %d orders (%v), want 3, newest first", len(page), err)
	}
	readsItsPage(t, plans.last(t, "FROM orders WHERE seller_id = $1 AND status"), "the big store's page of orders to ship")
}

var sharedHits = regexp.MustCompile(`Buffers: shared hit=(\d+)`)

// readsItsPage checks that a page's plan (auto_explain's, with buffers)
// touched about the page's blocks: under 50.
func readsItsPage(t *testing.T, plan, page string) {
	t.Helper()
	m := sharedHits.FindStringSubmatch(plan)
	if m == nil {
		t.Fatalf("no buffers in the plan of %s: %s", page, plan)
	}
	if n, _ := strconv.Atoi(m[1]); n > 50 {
		t.Errorf("%s touched %d blocks, want about the page's (under 50):\n%s", page, n, plan)
	}
}

// TestRelayIsNotReplanned runs the relay a round at a time behind a stream
// of 20,000 events, as it runs behind the services, and finds that its
// statements settled on generic plans that walk keys. Left to choose,
// PostgreSQL planned the read of the next places anew on most rounds (39
// of 90 here; TestSmoke under CI's load: 723 plans in 1,295 calls): with
// the last place sent as a constant it expects a handful of rows above it,
// read by the events' key, while the generic plan, costed for the batch of
// 500, hashed every event.
func TestRelayIsNotReplanned(t *testing.T) {
	ctx := context.Background()
	db, plans := explainedConnection(t, "")
	p := mustProduct(t, db, "store-relay-plans", 10000)
	relay := func() {
		t.Helper()
		for {
			n, err := db.SequenceEvents(ctx, 500)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.PublishEvents(ctx, 500, func(int64, []postgres.OutboxEvent) error { return nil }); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return
			}
		}
	}
	for b := range 20 {
		orders := make([]*order.Order, 1000)
		for i := range orders {
			o, err := order.New(order.NewOrderParams{ID: order.NewID(p.SellerID), CheckoutID: uuid.NewString(), BuyerID: "relayed", SellerID: p.SellerID,
				Currency: "USD", Items: []order.Item{{ProductID: p.ID, Title: p.Title, Quantity: 1, UnitPrice: p.Price}},
				HandlingDays: 3, PaymentWindow: time.Hour, Now: t0.Add(time.Duration(b*1000+i) * time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			orders[i] = o
		}
		if err := db.CreateOrders(ctx, orders); err != nil {
			t.Fatal(err)
		}
		relay()
	}
	round := func(orders int) {
		t.Helper()
		for range orders {
			mustOrder(t, db, p, "relayed", t0)
		}
		relay()
	}
	if _, err := db.Pool().Exec(ctx, `ANALYZE event_places; ANALYZE event_queue; ANALYZE order_events; ANALYZE orders`); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		round(i % 2)
	}
	for _, like := range []string{`%FROM event_places WHERE seq > $1%`, `DELETE FROM event_queue WHERE ctid%`} {
		var generic, custom int64
		if err := db.Pool().QueryRow(ctx, `SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE $1`, like).
			Scan(&generic, &custom); err != nil {
			t.Fatalf("%s: %v", like, err)
		}
		if custom > 5 {
			t.Errorf("%s: planned %d times for itself, %d times on a generic plan; want at most 5 custom plans", like, custom, generic)
		}
	}
	// The plans it settled on walk keys, reading their batch: no table is
	// scanned or hashed whole.
	for _, sql := range []string{"FROM event_places WHERE seq > $1", "DELETE FROM event_queue WHERE ctid", "FROM event_queue ORDER BY event_id"} {
		if plan := plans.last(t, sql); strings.Contains(plan, "Seq Scan") || strings.Contains(plan, "Hash") || strings.Contains(plan, "Sort Method") ||
			strings.Contains(plan, "Gather") {
			t.Errorf("the relay's %q reads more than its batch:\n%s", sql, plan)
		}
	}
}
