package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/souk-dev/souk/internal/testenv"
)

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// heldLog is a run's log, kept and given to the test only if it fails,
// after its errors: CI shows the head and the tail of a failure, and a
// hundred lines of a scale run's log hid the error between them.
type heldLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func holdLog(t *testing.T) *heldLog {
	l := &heldLog{}
	t.Cleanup(func() {
		if t.Failed() {
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Log("the run's log:\n" + l.buf.String())
		}
	})
	return l
}

func (l *heldLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// TestSmoke runs the bench itself, small: both services as processes over
// real gRPC, every operation, pgbench, the deadline burst and trickle. It
// keeps the program from rotting; its figures mean nothing here (the
// other tests run beside it, and nothing is timed).
func TestSmoke(t *testing.T) {
	_, prefix := testenv.Redis(t)
	admin := testenv.AdminURL(t)
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := Run(ctx, Target{Root: root, Dir: t.TempDir(), AdminURL: admin, RedisAddr: testenv.RedisAddr(t), Prefix: prefix, Log: holdLog(t)},
		// A cell of a second: ghz's run time starts before its connections,
		// and under make test's load a cell of 300 ms once ended before its
		// first call (GetOrder, 0 requests), ghz closing its ticker while it
		// still sent (a data race of ghz's own).
		Plan{Duration: time.Second, Concurrency: []int{2}, Burst: 200, Trickle: 20, Floor: true})
	if res != nil {
		t.Cleanup(func() {
			conn, err := pgx.Connect(context.Background(), admin)
			if err != nil {
				return
			}
			defer conn.Close(context.Background())
			for _, db := range res.Databases {
				_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]bool{}
	for _, row := range res.Rows {
		ops[row.Op] = true
		if row.Count == 0 || row.Errors != 0 || row.RPS <= 0 || row.GRPC <= 0 || row.SQL <= 0 || row.Ratio <= 0 || row.P99 < row.P50 {
			t.Errorf("%s at c=%d: %+v", row.Op, row.C, row)
		}
		// CPU is counted in ticks of 10 ms: a short cell's parts may show
		// none, but Souk's cell as a whole used some.
		if row.CPU.Total() <= 0 || row.NoopCPU == nil || row.SQLCPU == nil {
			t.Errorf("%s at c=%d: CPU per operation %v, of the no-op %v, of pgbench's run %v", row.Op, row.C, row.CPU, row.NoopCPU, row.SQLCPU)
		}
	}
	for _, op := range []string{"GetOrder", "ListOrders", "Checkout (spread)", "Checkout (hot)", "Checkout (hot coupon)", "AdjustOrderPrice", "PayOrder", "ShipOrder"} {
		if !ops[op] {
			t.Errorf("no row for %s", op)
		}
	}
	// The floor server ran GetOrder and the price change, as many requests
	// as Souk, without an error: the price change's writes held.
	floors := 0
	for _, row := range res.Rows {
		if f := row.Floor; f != nil {
			floors++
			if f.Count != row.Count || f.Errors != 0 || f.RPS <= 0 || f.CPU.Total() <= 0 {
				t.Errorf("%s at c=%d on the floor: %+v (Souk's run: %d requests)", row.Op, row.C, f, row.Count)
			}
		}
	}
	if floors != 2 {
		t.Errorf("%d floor runs, want GetOrder's and AdjustOrderPrice's", floors)
	}
	for name, d := range map[string]*Deadlines{"burst": res.Burst, "trickle": res.Trickle} {
		if d == nil {
			t.Fatalf("no %s", name)
		}
		fired := 0.0
		for _, v := range d.Paths {
			fired += v[0]
		}
		if int(fired) != d.N || d.P99 < d.P50 {
			t.Errorf("%s: %v fired of %d, lag p50 %v p99 %v", name, fired, d.N, d.P50, d.P99)
		}
	}
	if res.Burst.Bare <= 0 || res.Burst.BytesPerDead <= 0 {
		t.Errorf("burst: bare SQL took %v, %v bytes per deadline", res.Burst.Bare, res.Burst.BytesPerDead)
	}
	// The tests' PostgreSQL counts planning (make test starts it so): none
	// of Souk's statements may be planned anew on most of its calls.
	if !res.PlansTracked {
		t.Error("pg_stat_statements did not count planning: start the tests' PostgreSQL with make test")
	}
	for _, st := range res.Replanned {
		t.Errorf("planned %d times in %d calls: %s", st.Plans, st.Calls, st.Query)
	}
	md := res.Markdown()
	for _, want := range []string{"| PayOrder | 2 |", "## CPU per operation", "## Plans", "## Deadline burst", "## Deadline trickle", "| listener |", "## Floor", "| AdjustOrderPrice | 2 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("the table lacks %q:\n%s", want, md)
		}
	}
}

// A misspelt operation is refused before anything starts, naming the real ones.
func TestUnknownOperation(t *testing.T) {
	_, err := Run(context.Background(), Target{Dir: t.TempDir(), Log: testLog{t}}, Plan{Ops: []string{"GetOrders"}})
	if err == nil || !strings.Contains(err.Error(), `no operation "GetOrders"`) || !strings.Contains(err.Error(), "GetOrder,") {
		t.Fatalf("err = %v", err)
	}
}

// The plan report says when it could not measure, and lists a replanned
// statement as a table row whose | does not break the table.
func TestPlansReport(t *testing.T) {
	if md := (&Results{}).Markdown(); !strings.Contains(md, "Not measured") || !strings.Contains(md, "stack.sh stop") {
		t.Errorf("untracked plans:\n%s", md)
	}
	md := (&Results{PlansTracked: true, Replanned: []Replanned{{Calls: 300, Plans: 299, Query: "SELECT a || b FROM t"}}}).Markdown()
	if !strings.Contains(md, "| 300 | 299 | `SELECT a \\|\\| b FROM t` |") {
		t.Errorf("a replanned statement:\n%s", md)
	}
	if md := (&Results{PlansTracked: true}).Markdown(); !strings.Contains(md, "No statement of Souk's") {
		t.Errorf("none replanned:\n%s", md)
	}
}

// procStat reads this process's parent and its CPU, which grows as it works.
func TestProcStat(t *testing.T) {
	ppid, before, _, err := procStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if ppid != os.Getppid() {
		t.Errorf("parent %d, want %d", ppid, os.Getppid())
	}
	// Work until the kernel counts 50 ms more of this process's CPU (on a
	// loaded machine a wall-clock budget may get far less than it asks).
	var after time.Duration
	for start := time.Now(); time.Since(start) < 10*time.Second && after < before+50*time.Millisecond; {
		for spin := time.Now(); time.Since(spin) < 10*time.Millisecond; {
		}
		if _, after, _, err = procStat(os.Getpid()); err != nil {
			t.Fatal(err)
		}
	}
	if after < before+50*time.Millisecond {
		t.Errorf("CPU %v after 10 s of work from %v", after, before)
	}
	if _, _, _, err := procStat(-1); err == nil {
		t.Error("no error for a process that does not exist")
	}
}

// Without CPU figures the table says so rather than print zeros.
func TestCPUReport(t *testing.T) {
	if md := (&Results{Rows: []Row{{Op: "GetOrder", C: 1}}}).Markdown(); !strings.Contains(md, "## CPU per operation\n\nNot measured") {
		t.Errorf("no CPU figures:\n%s", md)
	}
	md := (&Results{Rows: []Row{{Op: "GetOrder", C: 16,
		CPU:     CPU{partPostgres: 100 * time.Microsecond, partBuyer: 130 * time.Microsecond, partLoad: 100 * time.Microsecond},
		NoopCPU: CPU{partBuyer: 30 * time.Microsecond, partLoad: 70 * time.Microsecond},
		SQLCPU:  CPU{partPostgres: 85 * time.Microsecond, partPgbench: 15 * time.Microsecond}}}}).Markdown()
	if !strings.Contains(md, "| GetOrder | 16 | 100 | 130 | 0 | 0 | 100 | 330 | 85 | 15 | 30 | 70 | 200 | 0.61 |") {
		t.Errorf("a row of CPU figures:\n%s", md)
	}
}

// A server whose postmaster.pid names no postgres process here (one on
// another machine, its process id free here or another program's) is
// not read.
func TestPostmasterElsewhere(t *testing.T) {
	for _, line := range []string{strconv.Itoa(os.Getpid()), "999999999", "", "-1", "postgres"} {
		if pid, err := localPostmaster(line); err == nil {
			t.Errorf("postmaster.pid saying %q: process %d read as PostgreSQL's", line, pid)
		}
	}
}

// TestDatedIDsAreTheSeedsIDs: a dated id of the seed's is its undated
// one with the day first, as the databases seeded since ids began with
// their day hold them; a change of either layout would leave such a
// database unread by -scale-reuse ("not found").
func TestDatedIDsAreTheSeedsIDs(t *testing.T) {
	at := time.Date(2026, 12, 6, 13, 0, 0, 0, time.UTC)
	dated, undated := storeIDAt("o42", "store-00007", at), storeID("o42", "store-00007")
	if dated[0] != 0x51 || dated[1] != 0x39 || [14]byte(dated[2:]) != [14]byte(undated[2:]) {
		t.Errorf("dated %s, undated %s: want the undated with day 20793 (0x5139) first", dated, undated)
	}
}

// Without CPU figures the scale table prints "–" and says why, not zeros.
func TestScaleTableWithoutCPU(t *testing.T) {
	cell := ScaleCell{Time: time.Millisecond, Blocks: 5}
	md := (&Scale{Orders: 40_000, NoCPU: "PostgreSQL (process 7) is not on this machine",
		Rows: []ScaleRow{{Op: "GetOrder", Small: cell, Large: cell}}}).Markdown()
	if !strings.Contains(md, "| GetOrder | 1ms | 1ms | 1.00 | – | – | – | – | – | – | – | 0s | 0s | 0s | 0s | 5 | 5 |") ||
		!strings.Contains(md, "CPU: – where it could not be read (PostgreSQL (process 7) is not on this machine).") {
		t.Errorf("the table:\n%s", md)
	}
	cell.CPU, cell.Background, cell.Code = 400*time.Microsecond, 0, 150*time.Microsecond
	md = (&Scale{Orders: 40_000, Rows: []ScaleRow{{Op: "GetOrder", Small: cell, Large: cell}}}).Markdown()
	if !strings.Contains(md, "| GetOrder | 1ms | 1ms | 1.00 | 400µs | 400µs | 1.00 | 0s | 0s | 150µs | 150µs | 0s | 0s | 0s | 0s | 5 | 5 |") || strings.Contains(md, "CPU: –") {
		t.Errorf("the table:\n%s", md)
	}
}

// TestPostgresBackgroundCPU tells the test PostgreSQL's background
// processes from its backends by their titles: its checkpointer is one,
// this test's own backend is not.
func TestPostgresBackgroundCPU(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testenv.AdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	pool, err := pgxpool.New(ctx, testenv.AdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	pids, err := postmasters(ctx, pool, false)
	if err != nil || len(pids) != 1 {
		t.Fatalf("postmasters: %v, %v", pids, err)
	}
	postmaster := pids[0]
	var backend int
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		t.Fatal(err)
	}
	if ppid, _, _, err := procStat(backend); err != nil || ppid != postmaster {
		t.Errorf("this test's backend's parent is %d (%v), not the postmaster found, %d", ppid, err, postmaster)
	}
	if isBackground(backend) {
		t.Errorf("this test's backend %d counted as a background process", backend)
	}
	var checkpointer int
	if err := conn.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'`).Scan(&checkpointer); err != nil {
		t.Fatal(err)
	}
	if !isBackground(checkpointer) {
		t.Errorf("the checkpointer %d not counted as a background process", checkpointer)
	}
	r, err := readPostgres(postmaster)
	if err != nil || r.total() <= 0 || !r.children[checkpointer].background || r.children[backend].background {
		t.Errorf("read: %+v, %v", r, err)
	}
}

// TestBackgroundCPUOfExitedProcesses: a background process that exits
// between two readings (an autovacuum worker, most often) leaves the live
// children, and the postmaster, reaping it, adds all its CPU to its
// children's. What it used before the first reading is not background CPU
// of the time between them, nor of any time: counted off, it made the
// scale smoke test's background CPU negative in CI.
func TestBackgroundCPUOfExitedProcesses(t *testing.T) {
	ms := time.Millisecond
	then := pgReading{postmaster: 100 * ms, reaped: 1000 * ms, children: map[int]pgChild{
		10: {cpu: 50 * ms, background: true},   // the checkpointer
		11: {cpu: 500 * ms, background: true},  // an autovacuum worker, about to exit
		12: {cpu: 300 * ms, background: false}, // a backend, about to exit
		13: {cpu: 40 * ms, background: false},  // a backend
		14: {cpu: 900 * ms, background: true},  // a background process whose pid is reused
	}}
	now := pgReading{postmaster: 110 * ms, reaped: 1000*ms + 520*ms + 330*ms + 950*ms, children: map[int]pgChild{
		10: {cpu: 60 * ms, background: true},  // 10 more
		13: {cpu: 70 * ms, background: false}, // 30 more
		15: {cpu: 25 * ms, background: true},  // a new autovacuum worker: 25
		14: {cpu: 5 * ms, background: true},   // a new one on 14's pid: 5
	}}
	if d := now.total() - then.total(); d != (10+1000+520+330+950+60+70+25+5-50-500-300-40-900-1000)*ms {
		t.Errorf("total %v", d)
	}
	// The postmaster's 10, the checkpointer's 10, the new ones' 25 and 5;
	// the exited ones' last 20 and 50 are the backends' (unknowable).
	if b := now.backgroundSince(then); b != 50*ms {
		t.Errorf("background %v, want 50ms", b)
	}
	if b := then.backgroundSince(then); b != 0 {
		t.Errorf("background since itself %v", b)
	}
}

// scaleSmokeRun is the scale smoke tests' run of an operation at a size:
// rounds of 300 ms.
const scaleSmokeRun = scaleRounds * 300 * time.Millisecond

// TestScaleSmoke runs the scale run small (10,000 orders, then 40,000):
// every operation measured at both sizes, and none of their statements
// reading more blocks per call with four times the data, which a plan
// that scans (rather than reading its page) would.
func TestScaleSmoke(t *testing.T) {
	log := holdLog(t)
	admin := testenv.AdminURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if conn, err := pgx.Connect(context.Background(), admin); err == nil {
			for _, db := range []string{"bench_scale", "bench_scale_small"} {
				_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
			}
			_ = conn.Close(context.Background())
		}
	})
	sc, err := RunScale(ctx, admin, 40_000, scaleSmokeRun, Seed, false, log)
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Rows) != 9 {
		t.Fatalf("%d rows: %+v", len(sc.Rows), sc.Rows)
	}
	for _, r := range sc.Rows {
		// PostgreSQL is on this machine: its CPU is read.
		if r.Small.Time <= 0 || r.Large.Time <= 0 || r.Small.Blocks <= 0 || r.Large.Blocks <= 0 || r.Statement == "" ||
			r.Small.CPU <= 0 || r.Large.CPU <= 0 {
			t.Errorf("%s: %+v", r.Op, r)
		}
		if r.Small.Background < 0 || r.Small.Background > r.Small.CPU || r.Large.Background > r.Large.CPU {
			t.Errorf("%s: background CPU %v of %v, %v of %v", r.Op, r.Small.Background, r.Small.CPU, r.Large.Background, r.Large.CPU)
		}
		if r.Small.Exec <= 0 || r.Large.Exec <= 0 || r.Small.Plan < 0 {
			t.Errorf("%s: planning %v and %v, execution %v and %v", r.Op, r.Small.Plan, r.Large.Plan, r.Small.Exec, r.Large.Exec)
		}
		if r.Small.Code <= 0 || r.Small.Code >= r.Small.CPU || r.Large.Code >= r.Large.CPU {
			t.Errorf("%s: the store's code's CPU %v of %v, %v of %v", r.Op, r.Small.Code, r.Small.CPU, r.Large.Code, r.Large.CPU)
		}
		if len(r.Small.Rounds) != scaleRounds || len(r.Large.Rounds) != scaleRounds || !slices.Contains(r.Large.Rounds, r.Large.Time) {
			t.Errorf("%s: rounds %v and %v, median %v", r.Op, r.Small.Rounds, r.Large.Rounds, r.Large.Time)
		}
		if r.ReadsMoreThanItsPage() {
			t.Errorf("%s reads more than its page: %.0f blocks per call at 10,000 orders, %.0f at 40,000 (%s)", r.Op, r.Small.Blocks,
				r.Large.Blocks, r.Statement)
		}
	}
	// GetOrder's floor reads what GetOrder reads: the same statements of
	// the same orders, only not decoded.
	get, floor := sc.Rows[0], sc.Rows[1]
	if get.Op != "GetOrder (any order)" || floor.Op != getOrderFloor {
		t.Errorf("rows %q and %q, want GetOrder and its floor", get.Op, floor.Op)
	}
	for _, c := range [][2]ScaleCell{{get.Small, floor.Small}, {get.Large, floor.Large}} {
		if d := c[0].Blocks - c[1].Blocks; d < -1 || d > 1 {
			t.Errorf("GetOrder touched %.1f blocks per call of one statement, its floor %.1f", c[0].Blocks, c[1].Blocks)
		}
	}
	// The small side is 10,000 orders and what the measures made: a
	// round's pay pool sized to twice what the round before paid, not
	// one pool for the whole run.
	if sc.SmallHeld < scaleSmall || sc.SmallHeld > 3*scaleSmall {
		t.Errorf("the small side held %d orders after its last round", sc.SmallHeld)
	}
	if md := sc.Markdown(); !strings.Contains(md, "No operation's statements read more") || !strings.Contains(md, "| I/O wait/op at 10000 |") {
		t.Errorf("the table:\n%s", md)
	}
	// Measured again without seeding the large side: the same operations
	// on the same orders, the new ones numbered apart from the first
	// measure's, against 10,000 orders seeded afresh beside them.
	var warmed strings.Builder
	again, err := RunScale(ctx, admin, 40_000, scaleSmokeRun, ReuseWarm, false, io.MultiWriter(log, &warmed))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(warmed.String(), "blocks into PostgreSQL's buffers") {
		t.Error("measured again, warm: the database was not read in first")
	}
	for i, r := range again.Rows {
		if r.Op != sc.Rows[i].Op || r.Large.Time <= 0 || r.Large.Blocks <= 0 || r.Small.Time <= 0 || r.Small.Blocks <= 0 {
			t.Errorf("measured again, %s: %+v", r.Op, r)
		}
	}
	if md := again.Markdown(); !strings.Contains(md, "Measured again") || !strings.Contains(md, "10000 orders against 40000") {
		t.Errorf("the table:\n%s", md)
	}
	// The large side is the database the first run left, as it was: not
	// seeded again.
	if again.LargeSize == "" || again.SmallSize == "" || again.LargeSize == again.SmallSize {
		t.Errorf("measured again: sizes %q and %q", again.SmallSize, again.LargeSize)
	}
	// Measured again as it is (-scale-cold): not read in first.
	var cold strings.Builder
	asIs, err := RunScale(ctx, admin, 40_000, scaleSmokeRun, ReuseAsIs, false, io.MultiWriter(log, &cold))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cold.String(), "blocks into") || len(asIs.Rows) != len(sc.Rows) || asIs.Rows[0].Large.Time <= 0 ||
		!strings.Contains(asIs.Markdown(), "Measured again as it is") {
		t.Errorf("measured again as it is: %+v\n%s", asIs.Rows, cold.String())
	}
	// Measured again as a size it was not seeded to, or when no run left
	// it, the run is refused before it seeds anything.
	if _, err := RunScale(ctx, admin, 400_000, scaleSmokeRun, ReuseWarm, false, log); err == nil ||
		!strings.Contains(err.Error(), "holds about") || !strings.Contains(err.Error(), "not 400000") {
		t.Errorf("measured again as 400,000 orders: %v", err)
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP DATABASE bench_scale WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	if _, err := RunScale(ctx, admin, 40_000, scaleSmokeRun, ReuseWarm, false, log); err == nil || !strings.Contains(err.Error(), "no bench_scale left") {
		t.Errorf("measured again with no database: %v", err)
	}
}

// TestScaleSmokeOnCitus runs the scale run (make bench -citus) small on the
// test Citus cluster: seeded by COPY into distributed tables, every
// operation measured at both sizes on Citus, with the workers' blocks. The
// workers' statement counts are shared with the other packages' Citus
// tests running meanwhile, so which statement touched the most blocks is
// not judged here (TestStoreStatementsRouteToOneShard checks the plans).
func TestScaleSmokeOnCitus(t *testing.T) {
	log := holdLog(t)
	pool, _ := testenv.Citus(t) // the test cluster, up
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS bench_scale, bench_scale_small CASCADE")
	})
	url := os.Getenv("SOUK_TEST_CITUS_URL") + "&options=-c%20citus.shard_count%3D4"
	sc, err := RunScale(ctx, url, 20_000, scaleSmokeRun, Seed, true, log)
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Rows) != 9 {
		t.Fatalf("%d rows: %+v", len(sc.Rows), sc.Rows)
	}
	for _, r := range sc.Rows {
		// A buyer's page fans out; its shards' statements have not shown
		// in the workers' pg_stat_statements (not understood), so its
		// blocks are not required.
		if r.Small.Time <= 0 || r.Large.Time <= 0 || !strings.Contains(r.Op, "buyer") && (r.Small.Blocks <= 0 || r.Large.Blocks <= 0) ||
			r.Small.CPU <= 0 || r.Large.CPU <= 0 {
			t.Errorf("%s: %+v", r.Op, r)
		}
	}
	var shards int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'bench_scale.orders'::regclass`).Scan(&shards); err != nil || shards != 4 {
		t.Errorf("the run's orders have %d shards (%v), want 4: not distributed", shards, err)
	}
	if md := sc.Markdown(); !strings.Contains(md, "On Citus") {
		t.Errorf("the table:\n%s", md)
	}
}
