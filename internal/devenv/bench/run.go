package main

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bojand/ghz/runner"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jhump/protoreflect/desc"
	"github.com/jhump/protoreflect/dynamic"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/catalog"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/postgres"
)

// Target is where a run happens.
type Target struct {
	Root      string // the repository, to build the services from
	Dir       string // binaries, logs
	AdminURL  string // a PostgreSQL superuser; the run makes its own databases
	RedisAddr string
	Prefix    string // of the services' Redis keys
	Log       io.Writer
}

// Plan is what a run measures.
type Plan struct {
	Duration    time.Duration
	Concurrency []int
	Burst       int
	Trickle     int
	Ops         []string // only these operations (none: all)
	PGPool      int      // the services' pool_max_conns (0: their default)
	// Floor also runs the operations that have one on the floor server
	// (internal/devenv/bench/floor): the same SQL and lock, nothing else.
	Floor bool
}

// The bench's parties, and its ids: ids of the bench's store as Souk makes
// them (order.NewID), their random half md5 of a name, as pgbench makes
// them too (bench_id('o' || n)), so that both work on the same rows.
const (
	buyerID  = "bench-buyer"
	sellerID = "bench-store"
	spread   = 1000 // products checkouts spread over; product 0 is the hot one
)

func benchID(kind string, n int) string { return storeID(kind+strconv.Itoa(n), sellerID).String() }

// storeID is an id of store's as order.NewID makes them, its random half
// md5 of name: the same at every run.
func storeID(name, store string) uuid.UUID {
	sum := md5.Sum([]byte(name))
	var id uuid.UUID
	copy(id[:8], sum[:8])
	id[6] = id[6]&0x0f | 0x80 // version 8
	binary.BigEndian.PutUint64(id[8:], uint64(order.StoreKey(store)))
	return id
}

// storeIDAt is an id of store's made at t (order.IDOf): storeID's with
// the day in its first two bytes, the same at every run, so that a
// database an earlier run seeded is read by the ids it was seeded with
// (-scale-reuse).
func storeIDAt(name, store string, t time.Time) uuid.UUID {
	id := storeID(name, store)
	return uuid.MustParse(order.IDOf(store, t, [6]byte(id[2:8])))
}

// benchIDSQL defines bench_id, benchID in SQL: the first 16 hex digits of
// md5 of the name with the version digit, then the store's key.
func benchIDSQL() string {
	return fmt.Sprintf(`CREATE FUNCTION bench_id(name text) RETURNS uuid LANGUAGE sql IMMUTABLE AS
		$$ SELECT (overlay(left(md5(name), 16) placing '8' from 13 for 1) || '%016x')::uuid $$`, uint64(order.StoreKey(sellerID)))
}

// pools of orders, by the first order number of each.
type pools struct {
	get, adjust, pay, burst, trickle int // first numbers
	size                             int // orders in each of get, adjust and pay
}

// bench is a run in progress.
type bench struct {
	t                   Target
	p                   Plan
	log                 func(format string, args ...any)
	souk, sql, sim      string // database URLs
	soukPool, sqlPool   *pgxpool.Pool
	soukDB, sqlDB       *postgres.DB
	rdb                 *redis.Client
	buyerAddr           string
	sellerAddr          string
	floorAddr           string
	metricsURLs         []string
	buyerTok, sellerTok string
	pools               pools
	procs               []*proc
	postmaster          int  // PostgreSQL's, once cpu has found it
	cpuFailed           bool // cpu could not be read; said once
	res                 *Results
}

// Run measures Souk on t as p says.
func Run(ctx context.Context, t Target, p Plan) (res *Results, err error) {
	b := &bench{t: t, p: p, res: &Results{Plan: p}}
	b.log = func(format string, args ...any) { fmt.Fprintf(t.Log, "bench: "+format+"\n", args...) }
	defer b.close()
	if err := b.checkOps(); err != nil {
		return nil, err
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"databases", b.databases},
		{"seed", b.seed},
		{"services", b.services},
		{"operations", b.operations},
		{"deadline burst", b.burst},
		{"deadline trickle", b.trickle},
	}
	for _, s := range steps {
		b.log("%s...", s.name)
		if err := s.fn(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return b.res, nil
}

func (b *bench) close() {
	b.stop()
	for _, p := range []*pgxpool.Pool{b.soukPool, b.sqlPool} {
		if p != nil {
			p.Close()
		}
	}
	for _, db := range []*postgres.DB{b.soukDB, b.sqlDB} {
		if db != nil {
			db.Close()
		}
	}
	if b.rdb != nil {
		_ = b.rdb.Close()
	}
}

// databases makes three: Souk's record, the simulated provider's ledger
// (so that Souk's commits are counted alone) and a copy of the record for
// pgbench and the bare SQL.
func (b *bench) databases(ctx context.Context) error {
	admin, err := pgxpool.New(ctx, b.t.AdminURL)
	if err != nil {
		return err
	}
	defer admin.Close()
	u, err := url.Parse(b.t.AdminURL)
	if err != nil {
		return err
	}
	base := "bench_" + strings.Trim(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToLower(b.t.Prefix)), "_")
	b.res.Databases = []string{base, base + "_sql", base + "_sim"}
	for _, name := range b.res.Databases {
		if _, err := admin.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			return err
		}
		if _, err := admin.Exec(ctx, `CREATE DATABASE `+name); err != nil {
			return err
		}
	}
	at := func(name string) string { v := *u; v.Path = "/" + name; return v.String() }
	b.souk, b.sql, b.sim = at(base), at(base+"_sql"), at(base+"_sim")
	for _, db := range []struct {
		url string
		out **postgres.DB
	}{{b.souk, &b.soukDB}, {b.sql, &b.sqlDB}} {
		if *db.out, err = postgres.Open(ctx, db.url); err != nil {
			return err
		}
		if err := (*db.out).Migrate(ctx); err != nil {
			return err
		}
	}
	b.soukPool, b.sqlPool = b.soukDB.Pool(), b.sqlDB.Pool()
	// Which statements PostgreSQL plans anew (read when the module is loaded).
	if _, err := b.soukPool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		return err
	}
	if _, err := b.sqlPool.Exec(ctx, `CREATE SEQUENCE bench_seq START 1000`); err != nil {
		return err
	}
	if _, err := b.sqlPool.Exec(ctx, benchIDSQL()); err != nil {
		return err
	}
	b.rdb = redis.NewClient(&redis.Options{Addr: b.t.RedisAddr})
	return b.rdb.Ping(ctx).Err()
}

// seed makes the same catalog and orders in both databases: products with
// ample stock, and pools of unpaid orders for the reads, the price changes
// and the payments (the paid ones then ship).
func (b *bench) seed(ctx context.Context) error {
	// Enough orders for every run of an operation at its best rate (an
	// update reached 2,200/s at c=64: a pool that runs out shows as errors).
	size := max(300, int(b.p.Duration.Seconds()*3000)*len(b.p.Concurrency))
	b.pools = pools{get: 1, adjust: 1_000_000, pay: 2_000_000, burst: 3_000_000, trickle: 4_000_000, size: size}
	for _, db := range []*postgres.DB{b.soukDB, b.sqlDB} {
		now := time.Now().UTC().Truncate(time.Microsecond)
		for i := range spread + 1 {
			if err := db.CreateProduct(ctx, catalog.Product{ID: benchID("p", i), SellerID: sellerID, Title: "Product " + strconv.Itoa(i),
				Currency: "USD", Price: 1000, Stock: 1_000_000_000, HandlingDays: 3, ProtectionDays: 60, CreatedAt: now, UpdatedAt: now}); err != nil {
				return err
			}
		}
		// One platform coupon every "hot coupon" checkout redeems: each
		// locks its row in the transaction that stores the order.
		if _, err := db.Pool().Exec(ctx, `INSERT INTO coupons (id, code, source, kind, currency, amount_minor, starts_at, ends_at)
			VALUES (md5('hot-coupon')::uuid, $1, 'PLATFORM', 'AMOUNT_OFF', 'USD', 100, now() - interval '1 hour', now() + interval '30 days')`,
			hotCoupon); err != nil {
			return err
		}
		for _, first := range []int{b.pools.get, b.pools.adjust, b.pools.pay} {
			if err := makeOrders(ctx, db, first, size, 20*24*time.Hour); err != nil {
				return err
			}
		}
		// Statistics now, as a database in service has them, rather than
		// whenever autovacuum gets round to it: a page's plan changed when
		// it did in mid-run (in make test, with the other tests beside it,
		// the smoke run saw ListOrders planned anew on 149 of 207 calls).
		if _, err := db.Pool().Exec(ctx, "ANALYZE"); err != nil {
			return err
		}
	}
	return nil
}

// makeOrders stores n unpaid orders numbered from first, one unit of a
// product each, whose payment windows end window from now.
func makeOrders(ctx context.Context, db *postgres.DB, first, n int, window time.Duration) error {
	_, err := storeOrders(ctx, db, n, func(i int, now time.Time) order.NewOrderParams {
		num := first + i
		return order.NewOrderParams{ID: benchID("o", num), CheckoutID: benchID("c", num), BuyerID: buyerID, SellerID: sellerID,
			Currency: "USD", Items: []order.Item{{ProductID: benchID("p", 1+num%spread), Title: "Product", Quantity: 1, UnitPrice: 1000}},
			HandlingDays: 3, PaymentWindow: window, Now: now}
	})
	return err
}

// storeOrders makes n orders of params(i) as checkouts make them, stored
// a thousand at a time, and returns their ids.
func storeOrders(ctx context.Context, db *postgres.DB, n int, params func(i int, now time.Time) order.NewOrderParams) ([]string, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	ids := make([]string, 0, n)
	var batch []*order.Order
	for i := range n {
		o, err := order.New(params(i, now))
		if err != nil {
			return nil, err
		}
		batch, ids = append(batch, o), append(ids, o.ID())
		if len(batch) == 1000 || i == n-1 {
			if err := db.CreateOrders(ctx, batch); err != nil {
				return nil, err
			}
			batch = batch[:0]
		}
	}
	return ids, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// services builds both and starts them as processes, as make up does.
func (b *bench) services(ctx context.Context) error {
	bin := filepath.Join(b.t.Dir, "bin")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin+"/", "./buyer-svc", "./seller-svc", "./internal/devenv/bench/floor")
	build.Dir, build.Stdout, build.Stderr = b.t.Root, b.t.Log, b.t.Log
	if err := build.Run(); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	logs := filepath.Join(b.t.Dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return err
	}
	// The ports are chosen free, then handed to the services: another
	// process may take one in between, and the service exits. Then again.
	var err error
	for try := 1; try <= 3; try++ {
		var exited bool
		if exited, err = b.start(ctx, bin, logs); err == nil || !exited {
			break
		}
		b.log("%v; starting again on other ports", err)
	}
	if err != nil {
		return err
	}
	cfg := app.NewEnv(func(k string) (string, bool) {
		if k == "SOUK_ENV" {
			return "development", true
		}
		return "", false
	}).Load()
	iss, err := auth.NewIssuer(ctx, cfg.Keys())
	if err != nil {
		return err
	}
	if b.buyerTok, err = iss.Sign(auth.Principal{Role: auth.RoleBuyer, Subject: buyerID}, 24*time.Hour); err != nil {
		return err
	}
	b.sellerTok, err = iss.Sign(auth.Principal{Role: auth.RoleSeller, Subject: sellerID}, 24*time.Hour)
	return err
}

// proc is a service the bench runs; done is closed when it has exited.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// start starts both services on free ports and waits until they serve.
// On failure it stops them again and says whether one exited by itself.
func (b *bench) start(ctx context.Context, bin, logs string) (exited bool, err error) {
	addrs := map[string]string{}
	for _, name := range []string{"SOUK_BUYER_GRPC_ADDR", "SOUK_BUYER_HTTP_ADDR", "SOUK_BUYER_INTERNAL_HTTP_ADDR", "SOUK_SELLER_GRPC_ADDR",
		"SOUK_SELLER_HTTP_ADDR", "SOUK_SELLER_INTERNAL_GRPC_ADDR", "SOUK_SELLER_INTERNAL_HTTP_ADDR", "SOUK_FLOOR_ADDR", "SOUK_FLOOR_PPROF_ADDR"} {
		a, err := freeAddr()
		if err != nil {
			return false, err
		}
		addrs[name] = a
	}
	souk, sql := b.souk, b.sql
	if b.p.PGPool > 0 {
		souk += "&pool_max_conns=" + strconv.Itoa(b.p.PGPool)
		sql += "&pool_max_conns=" + strconv.Itoa(b.p.PGPool)
	}
	env := append(os.Environ(), "SOUK_ENV=development", "SOUK_DATABASE_URL="+souk, "SOUK_SIM_DATABASE_URL="+b.sim,
		"SOUK_REDIS_ADDR="+b.t.RedisAddr, "SOUK_REDIS_PREFIX="+b.t.Prefix,
		// The load generator is one buyer with many unpaid orders.
		"SOUK_MAX_UNPAID_ORDERS=0", "SOUK_MAX_UNPAID_UNITS=0", "SOUK_PPROF=true")
	for k, v := range addrs {
		env = append(env, k+"="+v)
	}
	defer func() {
		if err != nil {
			b.stop()
		}
	}()
	for _, name := range []string{"seller-svc", "buyer-svc", partFloor} {
		f, err := os.Create(filepath.Join(logs, name+".log"))
		if err != nil {
			return false, err
		}
		cmd := exec.Command(filepath.Join(bin, name))
		cmd.Env, cmd.Stdout, cmd.Stderr = env, f, f
		if name == partFloor {
			// On pgbench's copy of the record: the floor's commits and events
			// stay out of Souk's counts and off its relay.
			cmd.Env = append(slices.Clip(env), "SOUK_DATABASE_URL="+sql)
		}
		if err := cmd.Start(); err != nil {
			f.Close()
			return false, err
		}
		p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
		go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
		b.procs = append(b.procs, p)
	}
	b.buyerAddr, b.sellerAddr, b.floorAddr = addrs["SOUK_BUYER_GRPC_ADDR"], addrs["SOUK_SELLER_GRPC_ADDR"], addrs["SOUK_FLOOR_ADDR"]
	b.metricsURLs = []string{"http://" + addrs["SOUK_BUYER_INTERNAL_HTTP_ADDR"] + "/metrics", "http://" + addrs["SOUK_SELLER_INTERNAL_HTTP_ADDR"] + "/metrics"}
	b.log("buyer-svc: gRPC %s, internal %s; seller-svc: gRPC %s, internal %s (metrics and profiles: /metrics, /debug/pprof/); floor: gRPC %s, profiles %s",
		b.buyerAddr, addrs["SOUK_BUYER_INTERNAL_HTTP_ADDR"], b.sellerAddr, addrs["SOUK_SELLER_INTERNAL_HTTP_ADDR"], b.floorAddr,
		addrs["SOUK_FLOOR_PPROF_ADDR"])
	for _, p := range b.procs {
		addr := map[string]string{"seller-svc": b.sellerAddr, "buyer-svc": b.buyerAddr, partFloor: b.floorAddr}[p.name]
		if err := waitServing(ctx, addr, p.done); err != nil {
			tail, _ := os.ReadFile(filepath.Join(logs, p.name+".log"))
			if len(tail) > 2000 {
				tail = tail[len(tail)-2000:]
			}
			select {
			case <-p.done:
				exited = true
			default:
			}
			return exited, fmt.Errorf("%s did not start on %s: %w; the end of its log:\n%s", p.name, addr, err, tail)
		}
	}
	return false, nil
}

// stop stops the services and waits until they have exited.
func (b *bench) stop() {
	for _, p := range b.procs {
		_ = p.cmd.Process.Signal(os.Interrupt)
	}
	for _, p := range b.procs {
		<-p.done
	}
	b.procs = nil
}

// waitServing waits until the gRPC server at addr serves, or its process
// has exited (exited closed).
func waitServing(ctx context.Context, addr string, exited <-chan struct{}) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && res.Status == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-exited:
			return errors.New("it exited")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// op is an operation the bench drives.
type op struct {
	name   string
	call   string // package.Service.Method
	seller bool   // on seller-svc, with the seller's token
	// request builds the i-th request of a run whose requests number from
	// base.
	request func(base, i int) proto.Message
	// pool is the first order number its requests use (0: none), so that
	// each run takes orders no run took before.
	pool int
	// follows names the operation whose runs made the orders this one
	// needs: each run takes exactly what that one's run at the same
	// concurrency made (ShipOrder ships what PayOrder paid).
	follows string
	// sql is the pgbench script of the SQL it needs.
	sql string
	// floor: the floor server answers it too.
	floor bool
}

func (b *bench) ops() []op {
	money := &orderv1.Money{AmountMinor: 1000, Currency: "USD"}
	return []op{
		{name: "GetOrder", call: "souk.buyer.v1.BuyerService.GetOrder", sql: getOrderSQL(b.pools.get, b.pools.size), floor: true,
			request: func(_, i int) proto.Message {
				return &buyerv1.GetOrderRequest{OrderId: benchID("o", b.pools.get+i%b.pools.size)}
			}},
		{name: "ListOrders", call: "souk.buyer.v1.BuyerService.ListOrders", sql: listOrdersSQL,
			request: func(_, _ int) proto.Message { return &buyerv1.ListOrdersRequest{PageSize: 20} }},
		{name: "Checkout (spread)", call: "souk.buyer.v1.BuyerService.Checkout", sql: checkoutSQL(false),
			request: func(base, i int) proto.Message {
				return &buyerv1.CheckoutRequest{IdempotencyKey: fmt.Sprintf("bench-s-%d", base+i),
					Items: []*buyerv1.CheckoutItem{{ProductId: benchID("p", 1+(base+i)%spread), Quantity: 1}}}
			}},
		{name: "Checkout (hot)", call: "souk.buyer.v1.BuyerService.Checkout", sql: checkoutSQL(true),
			request: func(base, i int) proto.Message {
				return &buyerv1.CheckoutRequest{IdempotencyKey: fmt.Sprintf("bench-h-%d", base+i),
					Items: []*buyerv1.CheckoutItem{{ProductId: benchID("p", 0), Quantity: 1}}}
			}},
		{name: "Checkout (hot coupon)", call: "souk.buyer.v1.BuyerService.Checkout", sql: checkoutCouponSQL,
			request: func(base, i int) proto.Message {
				return &buyerv1.CheckoutRequest{IdempotencyKey: fmt.Sprintf("bench-hc-%d", base+i), PlatformCoupon: hotCoupon,
					Items: []*buyerv1.CheckoutItem{{ProductId: benchID("p", 1+(base+i)%spread), Quantity: 1}}}
			}},
		{name: "AdjustOrderPrice", call: "souk.seller.v1.SellerService.AdjustOrderPrice", seller: true, pool: b.pools.adjust, floor: true,
			sql: adjustSQL(b.pools.adjust, b.pools.size),
			request: func(base, i int) proto.Message {
				return &sellerv1.AdjustOrderPriceRequest{OrderId: benchID("o", b.pools.adjust+base+i), Reason: "bulk discount",
					ShippingFee: &orderv1.Money{AmountMinor: 50, Currency: "USD"}}
			}},
		{name: "PayOrder", call: "souk.buyer.v1.BuyerService.PayOrder", pool: b.pools.pay, sql: payOrderSQL(b.pools.pay, b.pools.size),
			request: func(base, i int) proto.Message {
				return &buyerv1.PayOrderRequest{OrderId: benchID("o", b.pools.pay+base+i), ExpectedTotal: money,
					IdempotencyKey: fmt.Sprintf("bench-pay-%d", base+i),
					Method:         &buyerv1.PayOrderRequest_Card{Card: &buyerv1.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2030, Cvc: "123"}}}
			}},
		{name: "ShipOrder", call: "souk.seller.v1.SellerService.ShipOrder", seller: true, pool: b.pools.pay, follows: "PayOrder",
			sql: shipOrderSQL(b.pools.pay, b.pools.size),
			request: func(base, i int) proto.Message {
				return &sellerv1.ShipOrderRequest{OrderId: benchID("o", b.pools.pay+base+i), Carrier: "DHL", TrackingNumber: fmt.Sprintf("TRK-%d", base+i)}
			}},
	}
}

// dropReplies is the load generator's codec: requests are marshalled as
// gRPC's own codec does, and the operations' replies (ghz's dynamic
// messages) are dropped undecoded, as an HTTP load generator drops bodies.
// ghz would decode each into a dynamic message, a cost on the shared cores
// that grows with the reply (at c=16 it spent more CPU on a page of 20
// orders than buyer-svc did) and that the no-op call held against it, a
// health check, barely pays. Status and errors still come from the
// trailers; ghz's own calls (server reflection) are decoded as usual.
type dropReplies struct{ encoding.CodecV2 }

// Unmarshal drops an operation's reply.
func (c dropReplies) Unmarshal(data mem.BufferSlice, v any) error {
	if _, ok := v.(*dynamic.Message); ok {
		return nil
	}
	return c.CodecV2.Unmarshal(data, v)
}

// load runs one operation at concurrency c for the plan's duration (or,
// if total > 0, for total requests) and returns ghz's report.
func (b *bench) load(call, addr, token string, c, total int, data func(i int) proto.Message) (*runner.Report, error) {
	opts := []runner.Option{
		runner.WithInsecure(true),
		runner.WithConcurrency(uint(c)),
		runner.WithTimeout(30 * time.Second),
		runner.WithDefaultCallOptions([]grpc.CallOption{grpc.ForceCodecV2(dropReplies{encoding.GetCodecV2(grpcproto.Name)})}),
	}
	if total > 0 {
		opts = append(opts, runner.WithTotalRequests(uint(total)))
	} else {
		// Requests in flight at the end finish, rather than fail.
		opts = append(opts, runner.WithRunDuration(b.p.Duration), runner.WithDurationStopAction("wait"))
	}
	if data == nil { // an empty request (ghz takes empty bytes for none)
		opts = append(opts, runner.WithDataFromJSON("{}"))
	} else {
		opts = append(opts, runner.WithBinaryDataFunc(func(_ *desc.MethodDescriptor, cd *runner.CallData) []byte {
			raw, err := proto.Marshal(data(int(cd.RequestNumber)))
			if err != nil {
				panic(err)
			}
			return raw
		}))
	}
	if token != "" {
		opts = append(opts, runner.WithMetadata(map[string]string{"authorization": "Bearer " + token}))
	}
	rep, err := runner.Run(call, addr, opts...)
	if err != nil {
		msg := err.Error()
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		return nil, fmt.Errorf("%s: %s", call, msg)
	}
	return rep, nil
}
