package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/postgres"
)

// The scale run (-orders N): how Souk's costs grow with its data. The same
// operations run on the store (package postgres, in process: the gRPC,
// gateway and protobuf layers above it do the same work whatever the
// data's size) at scaleSmall orders and at N, seeded by COPY into two
// databases side by side and measured in turns, and the table gives each
// one's cost at both sizes and their ratio. pg_stat_statements counts the blocks each statement
// touched per call at both sizes: a statement whose plan reads more than
// its page shows as blocks that grow with the data.
const (
	scaleSmall = 10_000
	// scaleStores and scaleBuyers spread the orders: a few big stores and
	// many small ones (Zipf), and buyers nearly evenly.
	scaleStores = 10_000
	scaleBuyers = 1_000_000
	// deepPage is how many pages of the big store's list the deep page
	// is after.
	deepPage = 50
	// scaleDue is how many payment windows end at once for the sweeper's
	// measure at each size.
	scaleDue = 1_000
	// regulars are buyers with 30 orders among the first 3,000 seeded
	// (more later, by chance): a full first page at both sizes, so that
	// the buyer's page is measured like for like (at 10,000 orders most of
	// a million buyers have none).
	regulars = 100
)

// ScaleRow is one operation at both sizes: Small at scaleSmall orders,
// Large at N.
type ScaleRow struct {
	Op           string
	Small, Large ScaleCell
	// Statement is the one that touched the most blocks per call (at the
	// size where it touched more).
	Statement string
}

// ScaleCell is an operation at one size: its median round's figures, and
// every round's time.
type ScaleCell struct {
	// Time is the mean time per operation, at concurrency scaleConc.
	Time time.Duration
	// Blocks are the most shared blocks one of its statements touched per
	// call (hit or read); Read are the blocks per call all its statements
	// read from outside PostgreSQL's buffers; IOWait is the time per
	// operation its statements spent reading and writing blocks (track_io_timing:
	// from the OS's cache or the disk, and dirty buffers written out to
	// make room).
	Blocks, Read float64
	IOWait       time.Duration
	// Plan and Exec are the time per operation PostgreSQL spent planning
	// and running its statements (pg_stat_statements; on Citus, the
	// workers').
	Plan, Exec time.Duration
	// CPU is the CPU time per operation of PostgreSQL (all its processes;
	// on Citus, every node's) and of the store's code (this process): the
	// cost that 16 operations at once on two cores turn into time, without
	// the waits; 0 where it cannot be read (PostgreSQL elsewhere).
	CPU time.Duration
	// Background is the part of CPU that PostgreSQL's background
	// processes used (checkpointer, background writer, WAL writer,
	// autovacuum): writing out what the operations before dirtied, as much
	// as what this one did.
	Background time.Duration
	// Code is the part of CPU this process used: the store's code, pgx's
	// encoding and decoding, and the load's goroutines.
	Code   time.Duration
	Rounds []time.Duration
}

// CPURatio is the large CPU per operation over the small one (0 if
// either is unknown).
func (r ScaleRow) CPURatio() float64 {
	if r.Small.CPU <= 0 || r.Large.CPU <= 0 {
		return 0
	}
	return float64(r.Large.CPU) / float64(r.Small.CPU)
}

// cpuText is one of a cell's CPU figures (d), or "–" where the cell's CPU
// was not read.
func (c ScaleCell) cpuText(d time.Duration) string {
	if c.CPU <= 0 {
		return "–"
	}
	return d.Round(time.Microsecond).String()
}

// cpuRatioText is CPURatio, or "–" where it is unknown.
func (r ScaleRow) cpuRatioText() string {
	if q := r.CPURatio(); q > 0 {
		return fmt.Sprintf("%.2f", q)
	}
	return "–"
}

// Ratio is the large cost over the small one.
func (r ScaleRow) Ratio() float64 { return float64(r.Large.Time) / float64(max(r.Small.Time, 1)) }

// ReadsMoreThanItsPage reports whether the operation's statements touched
// clearly more blocks per call with more data: a plan that reads more
// than its page (a scan, or an index that does not bound the rows).
// Blocks may grow a little (an index one level deeper, a page of a
// bigger store spread over more heap pages); twice as many and 20 more
// is not that.
func (r ScaleRow) ReadsMoreThanItsPage() bool { return r.Large.Blocks > 2*r.Small.Blocks+20 }

// Scale is the scale run's result.
type Scale struct {
	Orders  int
	Seeding time.Duration
	Rows    []ScaleRow
	// Sizes is the database's size at each step.
	SmallSize, LargeSize string
	SharedBuffers        string
	// Reused: whether the large side is a database seeded before (the
	// small side is seeded afresh beside it), and how it was measured.
	Reused Reuse
	// Citus: the run was on a Citus cluster.
	Citus bool
	// SmallHeld is how many orders the small side held after its last
	// round: its seeded ones and those the measures made.
	SmallHeld int64
	// NoCPU is why the CPU figures could not be read (PostgreSQL on
	// another machine); empty when they were.
	NoCPU string
}

const scaleConc = 16

// scaleRounds is how many times each operation is measured at a size, the
// operations taking turns, its run split between them; the row keeps the
// median round. One cell per size let a moment's stall stand for the size:
// at 10,000 orders three pages touching the same 23 blocks each took
// between 4.3 and 7.3 ms in one run.
const scaleRounds = 5

// scaleRun holds the scale database and what the measures need of it.
type scaleRun struct {
	db     *postgres.DB
	pool   *pgxpool.Pool
	log    io.Writer
	seeded int
	// now is when the database was seeded (bench_seeded): the seeded
	// orders are dated back from it, and their ids begin with their day.
	now      time.Time
	bigStore string
	// ops are the operations timed (prepare), base the first number of
	// the orders they make.
	ops  []scaleOp
	base int
	// pays is the round's pool of unpaid orders to pay, payNext the next
	// of them; payPool is the next round's pool's size. madeNext numbers
	// the orders a checkout makes.
	pays              []string
	payPool           int
	payNext, madeNext atomic.Int64
	// run is how long each operation runs at each size.
	run time.Duration
	// salt sets a run's new orders apart from an earlier run's, on a
	// database measured again.
	salt int
	// citus: the run's tables are distributed on a Citus cluster.
	citus bool
	// name is the run's database (on Citus, its schema).
	name string
	// postmasters are the PostgreSQL servers whose CPU an operation is
	// charged with, found on the first reading; cpuErr, why they could
	// not be read.
	postmasters []int
	cpuErr      error
}

// cpuUsed is a reading of the CPU used so far: in all, by PostgreSQL's
// background processes, and by this process.
type cpuUsed struct {
	code     time.Duration
	postgres []pgReading // a server's each
}

// minus is the CPU used between then and u: all of it, its background
// processes', and this process's.
func (u cpuUsed) minus(then cpuUsed) (total, background, code time.Duration) {
	code = u.code - then.code
	total = code
	for i, r := range u.postgres {
		total += r.total() - then.postgres[i].total()
		background += r.backgroundSince(then.postgres[i])
	}
	return total, background, code
}

// cpu is the CPU used so far by PostgreSQL (every node's server, all its
// processes) and this process; false where it cannot be read.
func (s *scaleRun) cpu(ctx context.Context) (cpuUsed, bool) {
	if s.cpuErr != nil {
		return cpuUsed{}, false
	}
	if s.postmasters == nil {
		pids, err := postmasters(ctx, s.pool, s.citus)
		if err != nil {
			s.noCPU(err)
			return cpuUsed{}, false
		}
		s.postmasters = pids
	}
	_, own, _, err := procStat(os.Getpid())
	u := cpuUsed{code: own}
	for _, pm := range s.postmasters {
		r, err1 := readPostgres(pm)
		err = cmp.Or(err, err1)
		u.postgres = append(u.postgres, r)
	}
	if err != nil {
		s.noCPU(err)
		return cpuUsed{}, false
	}
	return u, true
}

// noCPU gives up reading the CPU for the rest of the run, saying why.
func (s *scaleRun) noCPU(err error) {
	fmt.Fprintf(s.log, "scale: no CPU figures: %v\n", err)
	s.cpuErr = err
}

// setCPU sets a cell's CPU figures: the CPU used since then (a cpu
// reading) per one of ops.
func (s *scaleRun) setCPU(ctx context.Context, c *ScaleCell, then cpuUsed, ok bool, ops int64) {
	now, ok2 := s.cpu(ctx)
	if ok && ok2 {
		n := time.Duration(max(ops, 1))
		total, background, code := now.minus(then)
		c.CPU, c.Background, c.Code = total/n, background/n, code/n
	}
}

// onEveryNode is a statement as run on the database's every node: on
// Citus, on the coordinator and (run_command_on_workers) on each worker.
func (s *scaleRun) onEveryNode(q string) []string {
	if !s.citus {
		return []string{q}
	}
	return []string{q, `SELECT run_command_on_workers($q$` + q + `$q$)`}
}

// Reuse is what a scale run does with its large side's database.
type Reuse uint8

const (
	// Seed seeds it afresh.
	Seed Reuse = iota
	// ReuseWarm measures the one a run left, read in first (warm).
	ReuseWarm
	// ReuseAsIs measures the one a run left as the OS's cache holds it:
	// from the disk, if the cache was dropped before.
	ReuseAsIs
)

// RunScale seeds two databases of its own by COPY, bench_scale_small with
// scaleSmall orders and bench_scale with n, and measures them in turns,
// each operation for run at each size.
//
// With reuse, it measures once more the bench_scale a run left with n
// orders seeded (another PostgreSQL setting, say), without seeding it.
//
// On Citus (adminURL a coordinator's database with its workers added), the
// run's tables are schemas of their own there (of the same names),
// distributed by Migrate, and the blocks counted are the workers', where
// the rows are.
func RunScale(ctx context.Context, adminURL string, n int, run time.Duration, reuse Reuse, citus bool, log io.Writer) (*Scale, error) {
	if n <= scaleSmall {
		return nil, fmt.Errorf("-orders %d: give more than %d", n, scaleSmall)
	}
	admin, err := pgxpool.New(ctx, adminURL)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	res := &Scale{Orders: n, Reused: reuse, Citus: citus}
	if err := admin.QueryRow(ctx, `SHOW shared_buffers`).Scan(&res.SharedBuffers); err != nil {
		return nil, err
	}
	// Two databases side by side: scaleSmall orders seeded afresh, and n
	// (seeded afresh, or as an earlier run left them), measured in turns.
	var large *scaleRun
	if reuse != Seed {
		large, err = openReused(ctx, admin, adminURL, n, citus, run, log)
	} else {
		large, err = openScale(ctx, admin, adminURL, scaleDatabase, true, citus, run, log)
	}
	if err != nil {
		return nil, err
	}
	defer large.db.Close()
	small, err := openScale(ctx, admin, adminURL, scaleDatabase+"_small", true, citus, run, log)
	if err != nil {
		return nil, err
	}
	defer small.db.Close()
	start := time.Now()
	if err := small.seed(ctx, scaleSmall); err != nil {
		return nil, err
	}
	if reuse == Seed {
		if err := large.seed(ctx, n); err != nil {
			return nil, err
		}
	}
	res.Seeding = time.Since(start)
	if reuse == ReuseWarm {
		if err := large.warm(ctx); err != nil {
			return nil, err
		}
	}
	res.SmallSize, res.LargeSize = small.size(ctx), large.size(ctx)
	for _, s := range []*scaleRun{small, large} {
		if err := s.prepare(ctx); err != nil {
			return nil, err
		}
	}
	// The sizes take turns a round at a time, so that a slow spell of
	// the machine (its rounds have differed by 1.7 times) falls on both
	// rather than on one size's every round.
	var rounds [2][][]measured // a size's, an operation's rounds
	for round := range scaleRounds {
		for i, s := range []*scaleRun{small, large} {
			ms, err := s.round(ctx, round)
			if err != nil {
				return nil, err
			}
			rounds[i] = slices.Grow(rounds[i], len(ms))[:len(ms)]
			for j, m := range ms {
				rounds[i][j] = append(rounds[i][j], m)
			}
		}
	}
	if res.SmallHeld, err = small.count(ctx); err != nil {
		return nil, err
	}
	if err := cmp.Or(small.cpuErr, large.cpuErr); err != nil {
		res.NoCPU = err.Error()
	}
	for i, rs := range rounds[0] {
		sm, lm := median(rs), median(rounds[1][i])
		r := ScaleRow{Op: sm.op, Small: sm.ScaleCell, Large: lm.ScaleCell, Statement: sm.statement}
		if lm.Blocks > sm.Blocks {
			r.Statement = lm.statement
		}
		for j := range rs {
			r.Small.Rounds, r.Large.Rounds = append(r.Small.Rounds, rs[j].Time), append(r.Large.Rounds, rounds[1][i][j].Time)
		}
		res.Rows = append(res.Rows, r)
	}
	return res, nil
}

// measured is an operation's round at one size.
type measured struct {
	op string
	ScaleCell
	statement string
}

// median is the median round (by time).
func median(ms []measured) measured {
	ms = slices.Clone(ms)
	slices.SortFunc(ms, func(a, b measured) int { return cmp.Compare(a.Time, b.Time) })
	return ms[len(ms)/2]
}

// scaleDatabase is the scale run's database (on Citus, its schema).
const scaleDatabase = "bench_scale"

// openScale opens the scale run's database name (on Citus, its schema),
// made afresh if fresh, and migrates it.
func openScale(ctx context.Context, admin *pgxpool.Pool, adminURL, name string, fresh, citus bool, run time.Duration, log io.Writer) (*scaleRun, error) {
	if fresh {
		qs := []string{`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`, `CREATE DATABASE ` + name}
		if citus {
			qs = []string{`DROP SCHEMA IF EXISTS ` + name + ` CASCADE`, `CREATE SCHEMA ` + name}
		}
		for _, q := range qs {
			if _, err := admin.Exec(ctx, q); err != nil {
				return nil, err
			}
		}
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return nil, err
	}
	if citus {
		// Appended, not re-encoded: pgx reads a "+" in options as itself.
		u.RawQuery = strings.TrimPrefix(u.RawQuery+"&search_path="+name, "&")
	} else {
		u.Path = "/" + name
	}
	db, err := postgres.Open(ctx, u.String())
	if err != nil {
		return nil, err
	}
	// A run's orders are numbered from its second, 2^24 of them at most:
	// a salt of a thousand values once gave two runs' checkouts one id.
	s := &scaleRun{salt: int(time.Now().Unix() % (1 << 30)), db: db, pool: db.Pool(), log: log,
		now: time.Now().UTC().Truncate(time.Microsecond), bigStore: scaleStore(0), run: run,
		citus: citus, name: name}
	err = db.Migrate(ctx)
	if err == nil {
		// In public, not the run's schema (dropped with it); Citus
		// creates it on the workers too.
		_, err = s.pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA public`)
	}
	if err == nil {
		err = s.registerStores(ctx)
	}
	if err == nil {
		// A database measured again keeps the time it was seeded at, which
		// its orders' ids carry (seededID).
		_, err = s.pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS bench_seeded (at timestamptz NOT NULL);
			INSERT INTO bench_seeded SELECT now() WHERE NOT EXISTS (SELECT 1 FROM bench_seeded)`)
	}
	if err == nil {
		err = s.pool.QueryRow(ctx, `SELECT at FROM bench_seeded`).Scan(&s.now)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	s.now = s.now.UTC()
	return s, nil
}

// openReused opens the scale database an earlier run seeded with n
// orders, refusing one that is not there or holds clearly fewer.
func openReused(ctx context.Context, admin *pgxpool.Pool, adminURL string, n int, citus bool, run time.Duration, log io.Writer) (*scaleRun, error) {
	there := `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`
	if citus {
		there = `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`
	}
	var ok bool
	if err := admin.QueryRow(ctx, there, scaleDatabase).Scan(&ok); err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("-scale-reuse: no %s left by an earlier run: run -orders %d without it first", scaleDatabase, n)
	}
	s, err := openScale(ctx, admin, adminURL, scaleDatabase, false, citus, run, log)
	if err != nil {
		return nil, err
	}
	// The seeding's VACUUM ANALYZE counted the orders (on Citus the
	// coordinator's table holds none, so it is not checked there).
	var held float64
	if err := s.pool.QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE oid = 'orders'::regclass`).Scan(&held); err != nil {
		s.db.Close()
		return nil, err
	}
	if !citus && held < 0.9*float64(n) {
		s.db.Close()
		return nil, fmt.Errorf("-scale-reuse: %s holds about %.0f orders, not %d: run -orders %d without it to seed them", scaleDatabase, held, n, n)
	}
	// The orders this measure makes are numbered apart from an earlier
	// measure's at the same size.
	s.seeded = n
	return s, nil
}

// warm reads the database's tables and indexes once, into PostgreSQL's
// buffers as far as they hold them and the rest into the OS's cache, as
// a server that has run a while holds them: after a restart of the
// machine a database measured again came off the disk (GetOrder at 10
// million orders 20-29 ms, against 5.8 ms just after seeding), a cold
// start rather than the data's size.
func (s *scaleRun) warm(ctx context.Context) error {
	if s.citus { // the rows are on the workers
		return nil
	}
	if _, err := s.pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_prewarm SCHEMA public`); err != nil {
		return err
	}
	// Into PostgreSQL's buffers, the smallest tables and indexes first, as
	// many as nine tenths of them hold: a server that has run a while holds
	// what it reads most, which a run of seconds would not bring in (with
	// buffers of gigabytes, a run started cold read most blocks from
	// outside them and measured the warming). The rest into the OS's
	// cache, where seeding leaves it; read in that order, the OS's cache
	// keeps the rest rather than a second copy of what the buffers hold.
	for _, pass := range []struct{ mode, where, into string }{
		{"buffer", "upto <= budget", "PostgreSQL's buffers"},
		{"read", "upto > budget", "the OS's cache"},
	} {
		start := time.Now()
		var blocks int64
		if err := s.pool.QueryRow(ctx, `WITH r AS (SELECT c.oid,
				sum(pg_relation_size(c.oid) / current_setting('block_size')::bigint) OVER (ORDER BY pg_relation_size(c.oid), c.oid) AS upto,
				(SELECT setting::bigint * 9 / 10 FROM pg_settings WHERE name = 'shared_buffers') AS budget
				FROM pg_class c WHERE c.relkind IN ('r', 'i') AND c.relnamespace = 'public'::regnamespace)
			SELECT coalesce(sum(public.pg_prewarm(oid, $1)), 0) FROM r WHERE `+pass.where, pass.mode).Scan(&blocks); err != nil {
			return fmt.Errorf("warm %s: %w", pass.into, err)
		}
		fmt.Fprintf(s.log, "scale: read %d blocks into %s in %v\n", blocks, pass.into, time.Since(start).Round(time.Second))
	}
	return nil
}

func (s *scaleRun) size(ctx context.Context) string {
	q := `SELECT pg_size_pretty(pg_database_size(current_database()))`
	var args []any
	if s.citus { // the run's tables on every node
		q, args = `SELECT pg_size_pretty(sum(citus_total_relation_size(logicalrelid))) FROM pg_dist_partition p
			JOIN pg_class c ON c.oid = p.logicalrelid WHERE c.relnamespace = $1::regnamespace`, []any{s.name}
	}
	var size string
	_ = s.pool.QueryRow(ctx, q, args...).Scan(&size)
	return size
}

func scaleStore(i int) string { return fmt.Sprintf("store-%05d", i) }
func scaleBuyer(i int) string { return fmt.Sprintf("buyer-%07d", i) }

// seed grows the database to n orders by COPY: each order one or two
// lines, from a store drawn by Zipf's law (store-00000 is the biggest),
// by one of a million buyers, placed over the last year; most are
// completed, some cancelled, a few waiting for payment with their payment
// deadline. Each has two events, created and its last.
func (s *scaleRun) seed(ctx context.Context, n int) error {
	from := s.seeded
	if n <= from {
		return nil
	}
	fmt.Fprintf(s.log, "scale: seeding orders %d to %d by COPY\n", from, n)
	r := rand.New(rand.NewPCG(uint64(from), 7))
	const chunk = 100_000
	for lo := from; lo < n; lo += chunk {
		hi := min(n, lo+chunk)
		var orders, events, deadlines [][]any
		for i := lo; i < hi; i++ {
			o := s.seededOrder(i, r)
			orders = append(orders, o.row)
			events = append(events, o.events...)
			if o.deadline != nil {
				deadlines = append(deadlines, o.deadline)
			}
		}
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			for _, c := range []struct {
				table string
				cols  []string
				rows  [][]any
			}{
				{"orders", seedOrderColumns, orders},
				{"order_events", []string{"order_id", "sequence", "kind", "actor", "occurred_at", "note", "published_at", "status_after",
					"version_after", "seller_id"}, events},
				{"order_deadlines", []string{"order_id", "kind", "due_at", "seller_id"}, deadlines},
			} {
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
					return fmt.Errorf("copy %s: %w", c.table, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if hi/1_000_000 != lo/1_000_000 || hi == n {
			fmt.Fprintf(s.log, "scale: %d orders\n", hi)
		}
	}
	s.seeded = n
	_, err := s.pool.Exec(ctx, `VACUUM ANALYZE`)
	return err
}

var seedOrderColumns = []string{"id", "checkout_id", "buyer_id", "seller_id", "status", "currency", "items", "shipping_fee_minor",
	"total_minor", "handling_days", "version", "created_at", "updated_at", "cancel_reason", "payment_due_at", "protection_days", "deadlines"}

type seeded struct {
	row      []any
	events   [][]any
	deadline []any
}

// seededStore is order i's store, drawn by Zipf's law (store-00000 is the
// biggest) from i alone, so that a measure can name an order by number.
func seededStore(i int) string {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	return scaleStore(int(rand.NewZipf(r, 1.1, 4, scaleStores-1).Uint64()))
}

// seededCreated is when seeded order i was made, from i alone: within
// the year before the seeding.
func (s *scaleRun) seededCreated(i int) time.Time {
	r := rand.New(rand.NewPCG(uint64(i), 11))
	return s.now.Add(-time.Duration(r.Int64N(int64(365 * 24 * time.Hour))))
}

// seededID is seeded order i's id, of its store and its day as Souk makes
// ids (order.NewIDAt): the same at every run on the database.
func (s *scaleRun) seededID(i int, store string) uuid.UUID {
	return storeIDAt(fmt.Sprintf("scale-%d", i), store, s.seededCreated(i))
}

// madeID is the id of order num that a measure makes at t.
func madeID(num int, store string, t time.Time) uuid.UUID {
	return storeIDAt(fmt.Sprintf("scale-%d", num), store, t)
}

// registerStores writes the key of every store the scale run's ids carry,
// as a store's first order does.
func (s *scaleRun) registerStores(ctx context.Context) error {
	keys, stores := make([]int64, scaleStores), make([]string, scaleStores)
	for i := range scaleStores {
		stores[i] = scaleStore(i)
		keys[i] = order.StoreKey(stores[i])
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO store_keys (key, seller_id) SELECT * FROM unnest($1::bigint[], $2::text[]) ON CONFLICT DO NOTHING`, keys, stores)
	return err
}

func (s *scaleRun) seededOrder(i int, r *rand.Rand) seeded {
	store := seededStore(i)
	buyer := scaleBuyer(r.IntN(scaleBuyers))
	if i < 30*regulars {
		buyer = scaleBuyer(i % regulars)
	}
	created := s.seededCreated(i)
	qty := 1 + r.Int64N(3)
	price := 500 + r.Int64N(20_000)
	items := fmt.Sprintf(`[{"product_id":"%s","title":"Product %d","quantity":%d,"unit_price":%d}]`,
		uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "p-%s-%d", store, i%50)), i%50, qty, price)
	status, last, reason := order.StatusCompleted, "completed", ""
	switch d := r.IntN(100); {
	case d < 10:
		status, last, reason = order.StatusCancelled, "cancelled", order.ReasonPaymentTimeout
	case d < 12 && created.After(s.now.Add(-20*24*time.Hour)):
		status, last = order.StatusPendingPayment, ""
	}
	id := s.seededID(i, store)
	total := qty*price + 500
	o := seeded{row: []any{id, uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "c-%d", i)), buyer, store, string(status), "USD",
		items, int64(500), total, 3, int64(1), created, created, reason, created.Add(20 * 24 * time.Hour), 60, nil}}
	o.events = append(o.events, []any{id, int64(1), "created", "buyer:" + buyer, created, "", created, string(order.StatusPendingPayment),
		int64(1), store})
	if last != "" {
		o.row[10] = int64(2) // the version: one per event
		o.events = append(o.events, []any{id, int64(2), last, "system", created, "", created, string(status), int64(2), store})
	} else {
		due := created.Add(20 * 24 * time.Hour)
		o.deadline = []any{id, string(order.DeadlinePayment), due, store}
		o.row[len(o.row)-1] = map[string]time.Time{string(order.DeadlinePayment): due}
	}
	return o
}

// scaleOp is one of the operations the scale run times.
type scaleOp struct {
	name string
	do   func(ctx context.Context) error
	// before readies a round of it, untimed.
	before func(ctx context.Context, round int) error
}

// prepare readies the measures at the database's present size: every
// store met, the big store's deep page found, and the operations to time.
func (s *scaleRun) prepare(ctx context.Context) error {
	fmt.Fprintf(s.log, "scale: measuring at %d orders\n", s.seeded)
	if err := s.meetStores(ctx); err != nil {
		return err
	}
	// The big store's pages are paged as of the seeding: the orders the
	// measures make are dated now and land in every store, and on a
	// database measured again the earlier runs' were its first page at
	// N (unpaid and paid orders, rows a quarter longer) against seeded
	// ones at scaleSmall, a page of other orders rather than of another
	// size. Seeded orders are dated before their seeding, and none the
	// measures make is ever completed.
	var asOf time.Time
	if err := s.pool.QueryRow(ctx, `SELECT max(created_at) FROM orders WHERE seller_id = $1 AND status = $2`, s.bigStore,
		string(order.StatusCompleted)).Scan(&asOf); err != nil {
		return fmt.Errorf("the big store's seeding: %w", err)
	}
	asOf = asOf.Add(time.Microsecond)
	token := ""
	for range deepPage {
		_, next, err := s.db.List(ctx, postgres.ListQuery{Party: postgres.Seller, PartyID: s.bigStore, PageSize: 20, PageToken: token,
			CreatedBefore: asOf})
		if err != nil {
			return err
		}
		token = next
	}
	// The orders the measures make are numbered apart from the seeded
	// ones and from another size's: pay pools from base, checkouts from
	// base+2^22, the sweeper's from base+2^23.
	s.base = (s.seeded+1)<<24 + s.salt<<24
	r := rand.New(rand.NewPCG(uint64(s.seeded), 1))
	var mu sync.Mutex
	pick := func(n int) int { mu.Lock(); defer mu.Unlock(); return r.IntN(n) }
	s.ops = []scaleOp{
		{name: "GetOrder (any order)", do: func(ctx context.Context) error {
			n := pick(s.seeded)
			_, err := s.db.Get(ctx, s.seededID(n, seededStore(n)).String())
			return err
		}},
		// GetOrder's floor: its statements and nothing of Souk's, so that
		// what the data's size adds to GetOrder can be told from what it
		// adds to any read of a uniformly random order.
		{name: getOrderFloor, do: func(ctx context.Context) error {
			n := pick(s.seeded)
			return s.readBare(ctx, s.seededID(n, seededStore(n)), seededStore(n))
		}},
		{name: "ListOrders (a buyer's first page)", do: func(ctx context.Context) error {
			_, _, err := s.db.List(ctx, postgres.ListQuery{Party: postgres.Buyer, PartyID: scaleBuyer(pick(regulars)), PageSize: 20})
			return err
		}},
		{name: "ListOrders (the big store's first page)", do: func(ctx context.Context) error {
			_, _, err := s.db.List(ctx, postgres.ListQuery{Party: postgres.Seller, PartyID: s.bigStore, PageSize: 20, CreatedBefore: asOf})
			return err
		}},
		{name: fmt.Sprintf("ListOrders (the big store's page %d)", deepPage), do: func(ctx context.Context) error {
			_, _, err := s.db.List(ctx, postgres.ListQuery{Party: postgres.Seller, PartyID: s.bigStore, PageSize: 20, PageToken: token,
				CreatedBefore: asOf})
			return err
		}},
		// A tab of a rare status: none of the store's seeded orders waits
		// to be shipped. Walking the store's index and filtering read all
		// of them for an empty page.
		{name: "ListOrders (the big store's orders to ship)", do: func(ctx context.Context) error {
			_, _, err := s.db.List(ctx, postgres.ListQuery{Party: postgres.Seller, PartyID: s.bigStore, Status: order.StatusAwaitingShipment,
				PageSize: 20, CreatedBefore: asOf})
			return err
		}},
		{name: "Checkout (store the orders)", do: func(ctx context.Context) error {
			_, err := s.unpaid(ctx, s.base+1<<22+int(s.madeNext.Add(1)), 1, 20*24*time.Hour)
			return err
		}},
		{name: "PayOrder (begin, succeed)", before: s.payPoolFor, do: func(ctx context.Context) error {
			i := int(s.payNext.Add(1))
			if i > len(s.pays) {
				return fmt.Errorf("the pay pool of %d ran out", len(s.pays))
			}
			return s.pay(ctx, s.pays[i-1])
		}},
	}
	s.madeNext.Store(0)
	s.payPool = max(500, int(s.roundRun().Seconds()*2_500))
	return nil
}

// meetStores routes an id of every store once, as a server that has run a
// while has: a process reads the store of an id's key the first time it
// meets the key. Both sizes have the same stores, but a size's measures
// meet only the stores of the orders they pick, so within its rounds the
// larger met more stores for the first time (GetOrder at 10 million
// orders read one on a third of its first 4,000 calls).
func (s *scaleRun) meetStores(ctx context.Context) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, scaleConc)
	for w := range scaleConc {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < scaleStores; i = int(next.Add(1)) - 1 {
				store := scaleStore(i)
				if _, _, err := s.db.Parties(ctx, storeIDAt("meet", store, time.Now()).String()); !errors.Is(err, order.ErrNotFound) {
					errs[w] = fmt.Errorf("meet %s: %v", store, err)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// getOrderFloor is the row of GetOrder's statements alone.
const getOrderFloor = "GetOrder's statements alone (its floor)"

// bareLoad is Souk's read of an order as pgbench sends it for the limit
// (loadStatements), of the order $1 of the store $2: a statement each.
var bareLoad = strings.Split(strings.TrimSuffix(loadStatements("$1::uuid", "$2", ""), ";\n"), ";\n")

// readBare reads an order with bareLoad in one pipeline on Souk's pool,
// its rows read and not decoded.
func (s *scaleRun) readBare(ctx context.Context, id uuid.UUID, store string) error {
	b := &pgx.Batch{}
	found := false
	for i, q := range bareLoad {
		qq := b.Queue(q, pgtype.UUID{Bytes: id, Valid: true}, store)
		if i == 0 {
			qq.Query(func(rows pgx.Rows) error {
				for rows.Next() {
					found = true
				}
				return rows.Err()
			})
		}
	}
	if err := s.db.Pool().SendBatch(ctx, b).Close(); err != nil {
		return err
	} else if !found {
		return fmt.Errorf("order %s not found", id)
	}
	return nil
}

// roundRun is how long an operation runs in a round.
func (s *scaleRun) roundRun() time.Duration { return s.run / scaleRounds }

// round times each operation once at the database's present size, then
// the sweeper on payment windows of its own (a batch of scaleDue): a row
// each.
func (s *scaleRun) round(ctx context.Context, round int) ([]measured, error) {
	// The payments a round makes are analyzed, as autovacuum would soon:
	// seeded without any, payment_attempts was read whole (46 blocks per
	// GetOrder at 10,000 orders) on a plan made when it was empty.
	if _, err := s.pool.Exec(ctx, `ANALYZE payment_attempts`); err != nil {
		return nil, err
	}
	var rows []measured
	for _, op := range s.ops {
		if op.before != nil {
			if err := op.before(ctx, round); err != nil {
				return nil, err
			}
		}
		row, err := s.timeOp(ctx, op.name, s.roundRun(), op.do)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	s.payPool = max(500, 2*int(min(s.payNext.Load(), int64(len(s.pays)))))
	row, err := s.sweep(ctx, s.base+1<<23+round*scaleDue)
	if err != nil {
		return nil, err
	}
	return append(rows, row), nil
}

// payPoolFor makes PayOrder's pool of unpaid orders for a round, the way
// checkouts make them, twice what the round before paid (a pool made for
// the whole run added more orders to the small side than it was seeded
// with). It is made just before PayOrder's turn, so that its writes fall
// on the operation they are for: made at the start of the round, they
// came just before GetOrder's turn, whose reads at 10 million orders must
// write dirty blocks out to make room (moving it did not change GetOrder's
// ratio: the rounds before write as much).
func (s *scaleRun) payPoolFor(ctx context.Context, round int) error {
	pays, err := s.unpaid(ctx, s.base+round<<19, s.payPool, 20*24*time.Hour)
	s.pays = pays
	s.payNext.Store(0)
	return err
}

// count is how many orders the database holds (on Citus, the
// distributed table's, from the workers).
func (s *scaleRun) count(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM orders`).Scan(&n)
	return n, err
}

// unpaid stores n unpaid orders numbered from first (a checkout's), by
// random buyers of random stores, and returns their ids.
func (s *scaleRun) unpaid(ctx context.Context, first, n int, window time.Duration) ([]string, error) {
	return storeOrders(ctx, s.db, n, func(i int, now time.Time) order.NewOrderParams {
		num := first + i
		store := scaleStore(num % scaleStores)
		return order.NewOrderParams{ID: madeID(num, store, now).String(), CheckoutID: uuid.Must(uuid.NewV7()).String(), BuyerID: scaleBuyer(num % scaleBuyers),
			SellerID: store, Currency: "USD", Items: []order.Item{{ProductID: s.seededID(-1, store).String(), Title: "Lamp",
				Quantity: 1, UnitPrice: 1000}}, HandlingDays: 3, PaymentWindow: window, Now: now}
	})
}

// pay pays an order as PayOrder does: an attempt begun in one change, the
// provider's success recorded in the next.
func (s *scaleRun) pay(ctx context.Context, id string) error {
	now := time.Now()
	a := order.Attempt{ID: uuid.NewString(), IdempotencyKey: uuid.NewString(), Fingerprint: "bench", Method: order.MethodCard,
		CardBrand: "visa", CardLast4: "4242"}
	if _, err := s.db.Update(ctx, id, func(o *order.Order) error { return o.BeginPayment(now, o.Due(), a) }); err != nil {
		return err
	}
	_, err := s.db.Update(ctx, id, func(o *order.Order) error {
		return o.ApplyResult(now, a.ID, order.Result{Kind: order.ResultSucceeded, ProviderRef: "ref-" + a.ID, Captured: true}, order.DefaultPolicy)
	})
	return err
}

// timeOp runs do at scaleConc for run and returns its mean time per
// operation, with the blocks its statements touched.
func (s *scaleRun) timeOp(ctx context.Context, name string, run time.Duration, do func(context.Context) error) (measured, error) {
	return s.bracket(ctx, name, scaleConc, func() (int64, error) {
		var done atomic.Int64
		var firstErr atomic.Value
		stop := time.Now().Add(run)
		var wg sync.WaitGroup
		for range scaleConc {
			wg.Go(func() {
				for time.Now().Before(stop) {
					if err := do(ctx); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
					done.Add(1)
				}
			})
		}
		wg.Wait()
		err, _ := firstErr.Load().(error)
		return done.Load(), err
	})
}

// bracket measures work, which does operations conc at a time and says
// how many: the mean time per operation, and the CPU and blocks its
// statements used, counted from just before it to just after.
func (s *scaleRun) bracket(ctx context.Context, name string, conc int, work func() (int64, error)) (measured, error) {
	if err := s.resetStats(ctx); err != nil {
		return measured{}, err
	}
	cpu, cpuOK := s.cpu(ctx)
	start := time.Now()
	ops, err := work()
	elapsed := time.Since(start)
	if err != nil {
		return measured{}, fmt.Errorf("%s: %w", name, err)
	}
	m := measured{op: name, ScaleCell: ScaleCell{Time: elapsed / time.Duration(max(ops, 1)) * time.Duration(conc)}}
	s.setCPU(ctx, &m.ScaleCell, cpu, cpuOK, ops)
	err = s.blocks(ctx, &m, ops)
	fmt.Fprintf(s.log, "scale: %-45s %8d ops  %v/op  %s\n", name, ops, m.Time, m.blocksText())
	return m, err
}

func (m measured) blocksText() string {
	return fmt.Sprintf("%.0f blocks/call, %.1f read, %v I/O, %v CPU (%v background)", m.Blocks, m.Read, m.IOWait.Round(time.Microsecond),
		m.CPU.Round(time.Microsecond), m.Background.Round(time.Microsecond))
}

// resetStats forgets the statements' counts on every node.
func (s *scaleRun) resetStats(ctx context.Context) error {
	for _, q := range s.onEveryNode(`SELECT public.pg_stat_statements_reset()`) {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// blocksSQL reads the statement that touched the most shared blocks per
// call, as blocks|read|io|plan|exec|query (see blocks).
const blocksSQL = `WITH st AS (SELECT * FROM public.pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND calls > 0
		AND query NOT LIKE '%pg_stat_statements%' AND query NOT LIKE '%run_command_on_workers%'
		AND query !~* '^\s*(BEGIN|COMMIT|ROLLBACK|SELECT pg_|SET |PREPARE TRANSACTION|COMMIT PREPARED|SELECT worker_|SELECT assign_)')
		SELECT format('%s|%s|%s|%s|%s|%s', (shared_blks_hit + shared_blks_read)::float8 / calls, (SELECT sum(shared_blks_read) FROM st)::float8 / calls,
			(SELECT sum(blk_read_time + blk_write_time) FROM st), (SELECT sum(total_plan_time) FROM st), (SELECT sum(total_exec_time) FROM st), query)
		FROM st ORDER BY (shared_blks_hit + shared_blks_read)::float8 / calls DESC LIMIT 1`

// blocks sets m's Blocks, the most shared blocks per call one statement
// touched since the last reset, and its statement (its first words); its
// Read, the blocks all of them read from outside the buffers, per call of
// that one; and its IOWait, the time all of them spent reading and writing
// blocks, per one of ops. On Citus the statements are the workers' (a
// statement of a shard), where the rows are.
func (s *scaleRun) blocks(ctx context.Context, m *measured, ops int64) error {
	var found []string
	if s.citus {
		rows, _ := s.pool.Query(ctx, `SELECT result FROM run_command_on_workers($q$`+blocksSQL+`$q$) WHERE success AND result <> ''`)
		var err error
		if found, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
	} else {
		var one string
		err := s.pool.QueryRow(ctx, blocksSQL).Scan(&one)
		if err == pgx.ErrNoRows {
			return nil
		} else if err != nil {
			return err
		}
		found = []string{one}
	}
	var io, plan, exec float64 // ms, on every node
	for _, f := range found {
		parts := strings.SplitN(f, "|", 6)
		if len(parts) != 6 {
			return fmt.Errorf("pg_stat_statements: %q", f)
		}
		b, err1 := strconv.ParseFloat(parts[0], 64)
		r, err2 := strconv.ParseFloat(parts[1], 64)
		ms, err3 := strconv.ParseFloat(cmp.Or(parts[2], "0"), 64)
		p, err4 := strconv.ParseFloat(cmp.Or(parts[3], "0"), 64)
		e, err5 := strconv.ParseFloat(cmp.Or(parts[4], "0"), 64)
		if err := cmp.Or(err1, err2, err3, err4, err5); err != nil {
			return fmt.Errorf("pg_stat_statements: %q: %w", f, err)
		}
		io, plan, exec = io+ms, plan+p, exec+e
		if b >= m.Blocks {
			m.Blocks, m.Read, m.statement = b, r, parts[5]
		}
	}
	each := func(ms float64) time.Duration {
		return time.Duration(ms * float64(time.Millisecond) / float64(max(ops, 1)))
	}
	m.IOWait, m.Plan, m.Exec = each(io), each(plan), each(exec)
	m.statement = strings.Join(strings.Fields(m.statement), " ")
	if len(m.statement) > 90 {
		m.statement = m.statement[:90] + "…"
	}
	return nil
}

// sweep is the sweeper's cost per due deadline: scaleDue payment windows
// that end now, read and fired in batches as the sweeper does.
func (s *scaleRun) sweep(ctx context.Context, first int) (measured, error) {
	if _, err := s.unpaid(ctx, first, scaleDue, time.Millisecond); err != nil {
		return measured{}, err
	}
	time.Sleep(10 * time.Millisecond)
	return s.bracket(ctx, "Sweeper (per due deadline)", 1, func() (int64, error) {
		fired, after := 0, postgres.Deadline{}
		for {
			ds, err := s.db.DueDeadlines(ctx, time.Now(), after, 200)
			if err != nil {
				return 0, err
			}
			if len(ds) == 0 {
				break
			}
			after = ds[len(ds)-1]
			ds = slices.DeleteFunc(ds, func(d postgres.Deadline) bool { return d.Kind != order.DeadlinePayment })
			res, err := s.db.FireDeadlines(ctx, ds, time.Now(), order.DefaultPolicy)
			if err != nil {
				return 0, err
			}
			fired += len(res.Fired)
		}
		if fired < scaleDue {
			return 0, fmt.Errorf("the sweeper fired %d of %d due deadlines", fired, scaleDue)
		}
		return int64(fired), nil
	})
}

// Markdown is the scale table.
func (sc *Scale) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Scale: %d orders against %d\n\n", scaleSmall, sc.Orders)
	switch sc.Reused {
	case ReuseWarm:
		fmt.Fprintf(&b, "Measured again (-scale-reuse): the %d orders are a database an earlier run seeded, as it is; the %d "+
			"are seeded afresh beside it. The large database is first read once (pg_prewarm, not on Citus): its smallest tables and "+
			"indexes into PostgreSQL's buffers, as many as nine tenths of them hold, the rest into the OS's cache, where seeding leaves it.\n\n", sc.Orders, scaleSmall)
	case ReuseAsIs:
		fmt.Fprintf(&b, "Measured again as it is (-scale-reuse -scale-cold): the %d orders are a database an earlier run seeded, not "+
			"read in first: its blocks come from the OS's cache as far as it holds them, the rest from the disk; the %d are seeded afresh "+
			"beside it.\n\n", sc.Orders, scaleSmall)
	}
	if sc.Citus {
		b.WriteString("On Citus: a coordinator and two workers on this machine, the tables distributed by store (32 shards each); " +
			"blocks are the workers' (a statement of one shard), where the rows are.\n\n")
	}
	fmt.Fprintf(&b, "The store's operations in process at c=%d (the layers above it do the same work at any size; time: the median of %d rounds "+
		"at each size, the operations taking turns in a round and the sizes a round at a time), on two databases seeded by COPY "+
		"(%v in all): %d stores (Zipf: store-00000 is the biggest), %d buyers, orders over a year. Size: %s, then %s. "+
		"The measures add orders as they go (checkouts, the orders paid and the sweeper's): the small side held %d after its last round. "+
		"Blocks: the most shared blocks one of the operation's statements touched per call (pg_stat_statements; for the sweeper, a "+
		"call is a batch of up to 200); read: the blocks per call its statements read from outside PostgreSQL's buffers "+
		"(shared_buffers %s), from the OS's cache or the disk. The big store's pages are paged as of the seeding (created before its newest "+
		"completed order), so that the orders the measures make, dated now, are not on them; I/O wait: the time per operation its statements spent reading blocks and writing "+
		"dirty ones out to make room (track_io_timing); CPU: the CPU time per operation of PostgreSQL (all its processes) and of the store's "+
		"code (this process), read from /proc, the cost that concurrency on %d cores turns into time; of it background: PostgreSQL's "+
		"checkpointer, background writer, WAL writer and autovacuum, meanwhile; of it the store's code: this process (the store, pgx, the load's goroutines); plan and execution: the time per operation PostgreSQL spent planning "+
		"and running its statements (pg_stat_statements). The buyer is one of %d with a full first page at both sizes. "+
		"GetOrder's statements alone are its floor: the SQL of its read (as pgbench sends it for the limit) in one pipeline on the store's "+
		"pool, of an order picked as GetOrder picks it, the rows read and not decoded.\n\n",
		scaleConc, scaleRounds, sc.Seeding.Round(time.Second), scaleStores, scaleBuyers, sc.SmallSize, sc.LargeSize, sc.SmallHeld,
		sc.SharedBuffers, runtime.NumCPU(), regulars)
	fmt.Fprintf(&b, "| operation | at %[1]d | at %[2]d | ratio | CPU/op at %[1]d | at %[2]d | CPU ratio | of it background at %[1]d | at %[2]d | "+
		"of it the store's code at %[1]d | at %[2]d | plan/op at %[1]d | at %[2]d | execution/op at %[1]d | at %[2]d | blocks/call at %[1]d | at %[2]d | read/call at %[1]d | at %[2]d | "+
		"I/O wait/op at %[1]d | at %[2]d | its statement | rounds at %[1]d | at %[2]d |\n"+
		"|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|\n", scaleSmall, sc.Orders)
	var flagged []string
	for _, r := range sc.Rows {
		fmt.Fprintf(&b, "| %s | %v | %v | %.2f | %s | %s | %s | %s | %s | %s | %s | %v | %v | %v | %v | %.0f | %.0f | %.1f | %.1f | %v | %v | `%s` | %s | %s |\n", r.Op,
			r.Small.Time.Round(time.Microsecond), r.Large.Time.Round(time.Microsecond), r.Ratio(), r.Small.cpuText(r.Small.CPU),
			r.Large.cpuText(r.Large.CPU), r.cpuRatioText(), r.Small.cpuText(r.Small.Background),
			r.Large.cpuText(r.Large.Background), r.Small.cpuText(r.Small.Code), r.Large.cpuText(r.Large.Code),
			r.Small.Plan.Round(time.Microsecond), r.Large.Plan.Round(time.Microsecond), r.Small.Exec.Round(time.Microsecond),
			r.Large.Exec.Round(time.Microsecond), r.Small.Blocks, r.Large.Blocks, r.Small.Read, r.Large.Read,
			r.Small.IOWait.Round(time.Microsecond), r.Large.IOWait.Round(time.Microsecond), r.Statement,
			roundsText(r.Small.Rounds), roundsText(r.Large.Rounds))
		if r.ReadsMoreThanItsPage() {
			flagged = append(flagged, r.Op)
		}
	}
	if sc.NoCPU != "" {
		fmt.Fprintf(&b, "\nCPU: – where it could not be read (%s).\n", sc.NoCPU)
	}
	if len(flagged) == 0 {
		b.WriteString("\nNo operation's statements read more blocks per call with the data than the page they return.\n")
	} else {
		fmt.Fprintf(&b, "\n**Reads more than its page** (blocks per call grow with the data): %s.\n", strings.Join(flagged, ", "))
	}
	return b.String()
}

// roundsText is a row's rounds, in turn.
func roundsText(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, d.Round(time.Microsecond).String())
	}
	return strings.Join(parts, ", ")
}
