package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/souk-dev/souk/internal/catalog"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/postgres"
	"github.com/souk-dev/souk/internal/testenv"
)

// recorder is a pgx tracer that keeps every statement a pool sends (its
// SQL and arguments), batched or not.
type recorder struct {
	mu    sync.Mutex
	stmts []recorded
}

type recorded struct {
	sql  string
	args []any
}

func (r *recorder) add(sql string, args []any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stmts = append(r.stmts, recorded{sql, args})
}

func (r *recorder) take() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.stmts
	r.stmts = nil
	return out
}

func (r *recorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.add(d.SQL, d.Args)
	return ctx
}
func (r *recorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *recorder) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (r *recorder) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	r.add(d.SQL, d.Args)
}
func (r *recorder) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

var taskCount = regexp.MustCompile(`Task Count: (\d+)`)

// tasks returns how many shard tasks each statement of recs that reads or
// writes a distributed table runs (EXPLAIN's "Task Count"), by statement;
// statements of reference and coordinator tables, and transaction
// control, are left out.
func tasks(t *testing.T, pool *pgxpool.Pool, recs []recorded) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range recs {
		sql := strings.TrimSpace(r.sql)
		switch up := strings.ToUpper(sql); {
		case up == "BEGIN", up == "COMMIT", up == "ROLLBACK", strings.HasPrefix(up, "SET "), strings.HasPrefix(up, "SELECT NOW()"):
			continue
		}
		rows, _ := pool.Query(context.Background(), "EXPLAIN "+sql, r.args...)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("EXPLAIN %s: %v", sql, err)
		}
		plan := strings.Join(lines, "\n")
		n := 0
		for _, m := range taskCount.FindAllStringSubmatch(plan, -1) {
			var c int
			fmt.Sscan(m[1], &c)
			n = max(n, c)
		}
		if n > 0 {
			out[sql] = n
		}
	}
	return out
}

// TestStoreStatementsRouteToOneShard (#25) runs Souk's store on Citus
// (the schema distributed by Migrate, 4 shards a table) and EXPLAINs
// every statement an operation sent, with its arguments: each operation
// the README says stays on one shard sends no statement that reaches
// more than one (a single-task router plan), and those it says fan out
// reach every shard. An id alone routes: the order ids carry their
// store's key.
func TestStoreStatementsRouteToOneShard(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	url := testenv.CitusDatabaseURL(t)
	db, err := postgres.Open(ctx, url, func(c *pgxpool.Config) { c.ConnConfig.Tracer = rec })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	explain, err := pgxpool.New(ctx, url) // without the recorder
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(explain.Close)

	p := mustProduct(t, db, "store-a", 50)
	other := mustProduct(t, db, "store-b", 50)
	var orders []*order.Order
	for i := range 6 {
		orders = append(orders, mustOrder(t, db, p, fmt.Sprintf("buyer-%d", i%2), t0.Add(time.Duration(i)*time.Minute)))
		mustOrder(t, db, other, fmt.Sprintf("buyer-%d", i%2), t0.Add(time.Duration(i)*time.Minute))
	}
	o := orders[0]
	var shards int
	if err := explain.QueryRow(ctx, `SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'orders'::regclass`).Scan(&shards); err != nil || shards != 4 {
		t.Fatalf("orders has %d shards (%v), want 4", shards, err)
	}

	oneShard := []struct {
		name string
		op   func() error
	}{
		{"GetOrder by id alone", func() error { _, err := db.Get(ctx, o.ID()); return err }},
		{"an order's header", func() error { _, err := db.Header(ctx, o.ID()); return err }},
		{"an order's history", func() error { _, _, err := db.ListHistory(ctx, o.ID(), 20, ""); return err }},
		{"an order's conversation", func() error { _, _, err := db.ListMessages(ctx, o.ID(), 20, ""); return err }},
		{"the store's orders, first page", func() error {
			_, _, err := db.List(ctx, postgres.ListQuery{Party: postgres.Seller, PartyID: "store-a", PageSize: 3})
			return err
		}},
		{"the store's orders, second page", func() error {
			_, next, err := db.List(ctx, postgres.ListQuery{Party: postgres.Seller, PartyID: "store-a", PageSize: 3})
			if err == nil {
				_, _, err = db.List(ctx, postgres.ListQuery{Party: postgres.Seller, PartyID: "store-a", PageSize: 3, PageToken: next})
			}
			return err
		}},
		{"the store's stats", func() error { _, err := db.SellerStats(ctx, "store-a", t0.Add(time.Hour)); return err }},
		{"the store's catalog", func() error { _, _, err := db.ListProducts(ctx, "store-a", 20, ""); return err }},
		{"a price change", func() error {
			_, err := db.Update(ctx, orders[1].ID(), func(o *order.Order) error {
				return o.AdjustPrice(t0.Add(time.Hour), order.PriceChange{UnitPrices: map[string]order.Money{p.ID: {Amount: 900, Currency: "USD"}}, Reason: "discount"})
			})
			return err
		}},
		{"a cancellation (stock given back)", func() error {
			_, err := db.Update(ctx, orders[2].ID(), func(o *order.Order) error { return o.Cancel(t0.Add(time.Hour), o.BuyerID(), "changed my mind") })
			return err
		}},
		{"the sweeper's batch of one store", func() error {
			_, err := db.FireDeadlines(ctx, []postgres.Deadline{{OrderID: orders[3].ID(), Kind: order.DeadlinePayment}, {OrderID: orders[4].ID(), Kind: order.DeadlinePayment}},
				t0.Add(2*time.Hour), order.DefaultPolicy)
			return err
		}},
	}
	for _, c := range oneShard {
		rec.take()
		if err := c.op(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		recs := rec.take()
		ts := tasks(t, explain, recs)
		if len(ts) == 0 {
			t.Errorf("%s: no statement of a distributed table among %d", c.name, len(recs))
		}
		for sql, n := range ts {
			if n != 1 {
				t.Errorf("%s: a statement runs on %d shards, not one:\n%s", c.name, n, sql)
			}
		}
	}

	// A buyer's orders are in every store: their page asks every shard.
	rec.take()
	page, _, err := db.List(ctx, postgres.ListQuery{Party: postgres.Buyer, PartyID: "buyer-0", PageSize: 4})
	if err != nil || len(page) != 4 {
		t.Fatalf("buyer's page: %d orders, %v", len(page), err)
	}
	for sql, n := range tasks(t, explain, rec.take()) {
		if n != shards {
			t.Errorf("a buyer's page: a statement runs on %d shards, want all %d:\n%s", n, shards, sql)
		}
	}

	// The sweeper's batch of three stores, two of them on one shard: a
	// transaction per shard (not per store), each statement on its shard.
	var mate, apart string
	if err := explain.QueryRow(ctx, `SELECT min(s) FILTER (WHERE same), min(s) FILTER (WHERE NOT same) FROM
		(SELECT 'store-' || g AS s, get_shard_id_for_distribution_column('orders', 'store-' || g) =
			get_shard_id_for_distribution_column('orders', 'store-a') AS same FROM generate_series(1, 100) g) x`).Scan(&mate, &apart); err != nil {
		t.Fatal(err)
	}
	var due []postgres.Deadline
	for _, p := range []catalog.Product{p, mustProduct(t, db, mate, 5), mustProduct(t, db, apart, 5)} {
		due = append(due, postgres.Deadline{OrderID: mustOrder(t, db, p, "buyer-9", t0.Add(time.Hour)).ID(), Kind: order.DeadlinePayment})
	}
	rec.take()
	res, err := db.FireDeadlines(ctx, due, t0.Add(3*time.Hour), order.DefaultPolicy)
	if err != nil || len(res.Fired) != 3 {
		t.Fatalf("the batch of three stores: %d fired (%+v), %v", len(res.Fired), res, err)
	}
	recs := rec.take()
	begins := 0
	for _, r := range recs {
		if strings.EqualFold(strings.TrimSpace(r.sql), "begin") {
			begins++
		}
	}
	if begins != 2 {
		t.Errorf("the batch of store-a and %s (one shard) and %s (another): %d transactions, want one a shard", mate, apart, begins)
	}
	for sql, n := range tasks(t, explain, recs) {
		if n != 1 {
			t.Errorf("the batch of three stores: a statement runs on %d shards, not one:\n%s", n, sql)
		}
	}
}

// TestIDsWithoutTheirStoreStillRoute: an order whose id carries no store
// (a random UUID, as a database made before store keys has them) is read,
// changed and listed by id as any other; an id of a known store that
// names no order, and one whose key no store registered, are not found;
// orders read together come back in the order asked, whichever way each
// id was routed.
func TestIDsWithoutTheirStoreStillRoute(t *testing.T) {
	db := testenv.DB(t)
	ctx := context.Background()
	p := mustProduct(t, db, "store-old", 10)
	checkout := uuid.NewString()
	if _, err := db.Reserve(ctx, checkout, []postgres.StockItem{{ProductID: p.ID, Quantity: 1}}, t0); err != nil {
		t.Fatal(err)
	}
	old, err := order.New(order.NewOrderParams{ID: uuid.NewString(), CheckoutID: checkout, BuyerID: "alice", SellerID: p.SellerID,
		Currency: "USD", Items: []order.Item{{ProductID: p.ID, Title: p.Title, Quantity: 1, UnitPrice: p.Price}},
		ShippingFee: p.ShippingFee, HandlingDays: 3, PaymentWindow: time.Hour, Now: t0.Add(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateOrders(ctx, []*order.Order{old}); err != nil {
		t.Fatal(err)
	}
	fresh := mustOrder(t, db, p, "alice", t0)
	if _, ok := order.KeyOf(old.ID()); ok {
		t.Fatalf("a random id %s has a store key", old.ID())
	}
	if got, err := db.Get(ctx, old.ID()); err != nil || got.SellerID() != "store-old" {
		t.Fatalf("get an order by a random id: %v, %v", got, err)
	}
	if _, err := db.Update(ctx, old.ID(), func(o *order.Order) error { return o.Cancel(t0.Add(time.Minute), "alice", "changed my mind") }); err != nil {
		t.Fatal(err)
	}
	if h, err := db.Header(ctx, old.ID()); err != nil || h.SellerID != "store-old" {
		t.Fatalf("header: %+v, %v", h, err)
	}
	for _, id := range []string{order.NewID("store-old"), order.NewID("a-store-never-seen"), "not-an-id"} {
		if _, err := db.Get(ctx, id); !errors.Is(err, order.ErrNotFound) {
			t.Errorf("get %s: %v, want not found", id, err)
		}
	}
	// Both in one read, in the order asked: the checkout's orders oldest first.
	os, err := db.CheckoutOrders(ctx, "alice", checkout)
	if err != nil || len(os) != 1 || os[0].ID() != old.ID() || os[0].Status() != order.StatusCancelled {
		t.Fatalf("the checkout's orders: %v, %v", os, err)
	}
	page, _, err := db.List(ctx, postgres.ListQuery{Party: postgres.Buyer, PartyID: "alice", PageSize: 10})
	if err != nil || len(page) != 2 || page[0].ID() != old.ID() || page[1].ID() != fresh.ID() {
		t.Fatalf("alice's page: %v, %v", page, err)
	}
}

// TestUnknownStoreKeysAreAskedOnce: an id whose key no store registered (a
// made-up id) is not found, and a process asks store_keys about its key
// once, not on every call; a store that then registers the key here routes
// its orders at once.
func TestUnknownStoreKeysAreAskedOnce(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	db, err := postgres.Open(ctx, testenv.DatabaseURL(t), func(c *pgxpool.Config) { c.ConnConfig.Tracer = rec })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	asked := func() (n int) {
		for _, r := range rec.take() {
			if strings.Contains(r.sql, "FROM store_keys") {
				n++
			}
		}
		return n
	}
	madeUp := order.NewID("store-late")
	for i := range 3 {
		if _, err := db.Get(ctx, madeUp); !errors.Is(err, order.ErrNotFound) {
			t.Fatalf("get a made-up id: %v, want not found", err)
		}
		if _, err := db.Header(ctx, madeUp); !errors.Is(err, order.ErrNotFound) {
			t.Fatalf("header of a made-up id: %v, want not found", err)
		}
		if n, want := asked(), map[bool]int{true: 1, false: 0}[i == 0]; n != want {
			t.Fatalf("call %d asked store_keys %d times, want %d", i+1, n, want)
		}
	}
	p := mustProduct(t, db, "store-late", 5)
	o := mustOrder(t, db, p, "alice", t0)
	rec.take()
	if got, err := db.Get(ctx, o.ID()); err != nil || got.SellerID() != "store-late" {
		t.Fatalf("get an order of the store that registered: %v, %v", got, err)
	}
	if n := asked(); n != 0 {
		t.Errorf("a registered store's order asked store_keys %d times", n)
	}
}

// TestStoreKeyTakenIsRefused: a store whose key another store holds (made
// here by writing store_keys, as real keys collide one time in 2^62) is
// refused as ErrStoreKeyTaken naming both stores, and nothing of it is
// written: its product is not stored, and the key stays the other's.
func TestStoreKeyTakenIsRefused(t *testing.T) {
	ctx := context.Background()
	url := testenv.DatabaseURL(t)
	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	raw, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close(ctx) })
	if _, err := raw.Exec(ctx, `INSERT INTO store_keys (key, seller_id) VALUES ($1, 'store-first')`, order.StoreKey("store-second")); err != nil {
		t.Fatal(err)
	}
	p := catalog.Product{ID: order.NewID("store-second"), SellerID: "store-second", Title: "Lamp", Currency: "USD", Price: 1000,
		Stock: 5, HandlingDays: 3, ProtectionDays: 60, CreatedAt: t0, UpdatedAt: t0}
	err = db.CreateProduct(ctx, p)
	if !errors.Is(err, order.ErrStoreKeyTaken) || !strings.Contains(err.Error(), "store-first") || !strings.Contains(err.Error(), "store-second") {
		t.Fatalf("a product of a store whose key is taken: %v, want ErrStoreKeyTaken naming both stores", err)
	}
	var products int
	var holder string
	if err := raw.QueryRow(ctx, `SELECT (SELECT count(*) FROM products), (SELECT seller_id FROM store_keys WHERE key = $1)`,
		order.StoreKey("store-second")).Scan(&products, &holder); err != nil {
		t.Fatal(err)
	}
	if products != 0 || holder != "store-first" {
		t.Errorf("%d products stored, key held by %s: want none and store-first", products, holder)
	}
}
