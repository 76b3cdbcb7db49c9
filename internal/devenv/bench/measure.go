package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bojand/ghz/runner"
	"github.com/jackc/pgx/v5"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
)

// counters are the record's commits and Redis's commands so far.
type counters struct {
	at      time.Time
	commits float64
	redis   float64
}

func (b *bench) counters(ctx context.Context) (counters, error) {
	c := counters{at: time.Now()}
	if err := b.soukPool.QueryRow(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&c.commits); err != nil {
		return c, err
	}
	info, err := b.rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return c, err
	}
	for _, line := range strings.Split(info, "\n") {
		if _, rest, ok := strings.Cut(line, ":calls="); ok {
			n, _ := strconv.ParseFloat(strings.SplitN(rest, ",", 2)[0], 64)
			c.redis += n
		}
	}
	return c, nil
}

// statsDelay is how long PostgreSQL may keep a backend's counts before
// pg_stat_database shows them (an idle backend reports within 10 s).
const statsDelay = 11 * time.Second

// Row is one operation at one concurrency.
type Row struct {
	Op string
	C  int
	Cell
	CommitsOp float64
	RedisOp   float64
	GRPC, SQL float64 // the limits, requests per second
	Combined  float64
	Ratio     float64
	// CPU per operation of Souk's run, and of the limit's two runs: the
	// no-op call (buyer-svc and the load generator) and pgbench's
	// (PostgreSQL and pgbench); nil where not measured.
	CPU, NoopCPU, SQLCPU CPU
	// Floor is the floor server's run of the operation, if it has one.
	Floor *Floor
}

// Cell is what a load generator's run saw.
type Cell struct {
	Count       uint64
	Errors      int
	RPS         float64
	P50, P99    time.Duration
	ErrorSample string
}

func (c Cell) String() string {
	return fmt.Sprintf("%8.0f/s p50 %-8v p99 %-8v errors %d %s", c.RPS, c.P50.Round(10*time.Microsecond), c.P99.Round(10*time.Microsecond),
		c.Errors, c.ErrorSample)
}

// cellOf reads a run's report.
func cellOf(rep *runner.Report) Cell {
	c := Cell{Count: rep.Count, RPS: rep.Rps}
	for code, n := range rep.StatusCodeDist {
		if code != "OK" {
			c.Errors += n
		}
	}
	for e := range rep.ErrorDist {
		c.ErrorSample = e
		break
	}
	for _, l := range rep.LatencyDistribution {
		switch l.Percentage {
		case 50:
			c.P50 = l.Latency
		case 99:
			c.P99 = l.Latency
		}
	}
	return c
}

// Floor is the floor server's run of an operation: as many requests, on
// the same orders, right after Souk's.
type Floor struct {
	Cell
	CPU CPU // PostgreSQL, the floor server, Redis and the load generator
}

// idle measures the record's commits and Redis's commands per second
// while nothing is asked of Souk (its relay, sweeper and listeners), to
// take them out of the operations' counts.
func (b *bench) idle(ctx context.Context) (commits, redis float64, err error) {
	span := time.Second
	if b.p.Duration >= time.Second { // not a smoke run: wait for the seed's counts too
		time.Sleep(statsDelay)
		span = 3 * time.Second
	}
	c0, err := b.counters(ctx)
	if err != nil {
		return 0, 0, err
	}
	time.Sleep(span)
	c1, err := b.counters(ctx)
	if err != nil {
		return 0, 0, err
	}
	s := c1.at.Sub(c0.at).Seconds()
	return (c1.commits - c0.commits) / s, (c1.redis - c0.redis) / s, nil
}

// published waits until Souk's relay has published every event the seed
// wrote (one per order: 180,000 for a 20-second cell, about ten seconds'
// work), so that neither the idle counts nor the first cells measure the
// relay's catching up. A relay that makes no progress for stall (one
// turned off, SOUK_RELAY=false) is not waited for.
func (b *bench) published(ctx context.Context, stall time.Duration) error {
	last, since := int64(-1), time.Now()
	for {
		st, err := b.soukDB.State(ctx)
		if err != nil {
			return err
		}
		n := st.OutboxUnpublished
		switch {
		case n == 0:
			return nil
		case last < 0:
			b.log("the relay publishes the seed's %d events first...", n)
		case n < last:
			since = time.Now()
		case time.Since(since) > stall:
			b.log("the relay published nothing for %s (%d events wait): measuring anyway", stall, n)
			return nil
		}
		if last < 0 || n < last {
			last = n
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (b *bench) operations(ctx context.Context) error {
	if err := b.published(ctx, 10*time.Second); err != nil {
		return err
	}
	idleCommits, idleRedis, err := b.idle(ctx)
	if err != nil {
		return err
	}
	b.res.IdleCommits, b.res.IdleRedis = idleCommits, idleRedis
	noop := make(map[int]float64)
	noopCPU := make(map[int]CPU)
	type run struct{ base, count int }
	runs := map[string]map[int]run{} // by operation and concurrency
	for _, o := range b.ops() {
		if len(b.p.Ops) > 0 && !slices.Contains(b.p.Ops, o.name) || o.follows != "" && runs[o.follows] == nil {
			continue // not asked for, or the operation it follows did not run
		}
		used := 0 // orders of the op's pool taken by earlier runs
		runs[o.name] = map[int]run{}
		for _, c := range b.p.Concurrency {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			addr, token := b.buyerAddr, b.buyerTok
			if o.seller {
				addr, token = b.sellerAddr, b.sellerTok
			}
			before, err := b.counters(ctx)
			if err != nil {
				return err
			}
			base, total := used, 0
			if o.follows != "" {
				base, total = runs[o.follows][c].base, runs[o.follows][c].count
			}
			row := Row{Op: o.name, C: c}
			cpu0 := b.cpuNow(ctx)
			rep, err := b.load(o.call, addr, token, c, total, func(i int) proto.Message { return o.request(base, i) })
			if err != nil {
				return fmt.Errorf("%s: %w", o.name, err)
			}
			ended := time.Now()
			row.CPU = perOp(b.cpuSince(ctx, cpu0).only(soukParts...), float64(rep.Count))
			runs[o.name][c] = run{base: base, count: int(rep.Count)}
			used += int(rep.Count) + c
			row.Cell = cellOf(rep)
			// The limits, while PostgreSQL gets round to reporting.
			if _, ok := noop[c]; !ok {
				cpu0 := b.cpuNow(ctx)
				r, err := b.load(healthpb.Health_Check_FullMethodName[1:], b.buyerAddr, "", c, 0, nil)
				if err != nil {
					return fmt.Errorf("no-op: %w", err)
				}
				noop[c] = r.Rps
				noopCPU[c] = perOp(b.cpuSince(ctx, cpu0).only(partBuyer, partLoad), float64(r.Count))
			}
			row.GRPC, row.NoopCPU = noop[c], noopCPU[c]
			cpu0 = b.cpuNow(ctx)
			var txns float64
			var client time.Duration
			if row.SQL, txns, client, err = b.pgbench(ctx, o.name, o.sql, c); err != nil {
				return err
			}
			if used := b.cpuSince(ctx, cpu0).only(partPostgres); used != nil {
				used[partPgbench] = client
				row.SQLCPU = perOp(used, txns)
			}
			if wait := statsDelay - time.Since(ended); wait > 0 && b.p.Duration >= time.Second {
				time.Sleep(wait)
			}
			after, err := b.counters(ctx)
			if err != nil {
				return err
			}
			secs := after.at.Sub(before.at).Seconds()
			if rep.Count > 0 {
				row.CommitsOp = (after.commits - before.commits - idleCommits*secs) / float64(rep.Count)
				row.RedisOp = (after.redis - before.redis - idleRedis*secs) / float64(rep.Count)
			}
			if row.GRPC > 0 && row.SQL > 0 {
				row.Combined = 1 / (1/row.GRPC + 1/row.SQL)
				row.Ratio = row.RPS / row.Combined
			}
			b.log("%-18s c=%-3d %s", row.Op, c, row.Cell)
			// The floor last, on the orders Souk's run took, as many: its
			// commits and Redis commands stay out of Souk's counts.
			if o.floor && b.p.Floor {
				cpu0 := b.cpuNow(ctx)
				rep, err := b.load(o.call, b.floorAddr, "", c, int(row.Count), func(i int) proto.Message { return o.request(base, i) })
				if err != nil {
					return fmt.Errorf("%s on the floor: %w", o.name, err)
				}
				row.Floor = &Floor{Cell: cellOf(rep)}
				row.Floor.CPU = perOp(b.cpuSince(ctx, cpu0).only(partPostgres, partFloor, partRedis, partLoad), float64(rep.Count))
				b.log("%-18s c=%-3d %s (floor)", row.Op, c, row.Floor.Cell)
			}
			b.res.Rows = append(b.res.Rows, row)
		}
	}
	b.res.Replanned, b.res.PlansTracked, err = b.replanned(ctx)
	return err
}

// checkOps refuses operation names the bench does not know ("none" runs
// none), rather than print an empty table for a typo.
func (b *bench) checkOps() error {
	var known []string
	for _, o := range b.ops() {
		known = append(known, o.name)
	}
	for _, name := range b.p.Ops {
		if name != "none" && !slices.Contains(known, name) {
			return fmt.Errorf("no operation %q; the operations are %s, or none", name, strings.Join(known, ", "))
		}
	}
	return nil
}

var (
	tpsRE  = regexp.MustCompile(`tps = ([0-9.]+)`)
	txnsRE = regexp.MustCompile(`number of transactions actually processed: ([0-9]+)`)
)

// pgbench runs script on the bench's copy of the record at concurrency c
// and returns its transactions (one script run each) per second, how many
// it ran, and the CPU pgbench itself used.
func (b *bench) pgbench(ctx context.Context, name, script string, c int) (tps, txns float64, client time.Duration, err error) {
	f := filepath.Join(b.t.Dir, "pgbench-"+strings.NewReplacer(" ", "-", "(", "", ")", "").Replace(name)+".sql")
	if err := os.WriteFile(f, []byte(script), 0o644); err != nil {
		return 0, 0, 0, err
	}
	args := []string{"-n", "-M", "prepared", "-c", strconv.Itoa(c), "-j", strconv.Itoa(min(c, 2)), "-f", f}
	if secs := int(math.Round(b.p.Duration.Seconds())); secs >= 1 {
		args = append(args, "-T", strconv.Itoa(secs))
	} else {
		args = append(args, "-t", "20")
	}
	cmd := exec.CommandContext(ctx, pgbenchPath(), append(args, b.sql)...)
	out, err := cmd.CombinedOutput()
	m, n := tpsRE.FindSubmatch(out), txnsRE.FindSubmatch(out)
	if err != nil || m == nil || n == nil || strings.Contains(string(out), "aborted") {
		return 0, 0, 0, fmt.Errorf("pgbench %s: %v\n%s", name, err, out)
	}
	tps, _ = strconv.ParseFloat(string(m[1]), 64)
	txns, _ = strconv.ParseFloat(string(n[1]), 64)
	return tps, txns, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

func pgbenchPath() string {
	if dir := os.Getenv("SOUK_PG_BIN"); dir != "" {
		return filepath.Join(dir, "pgbench")
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench")
	if len(dirs) == 0 {
		return "pgbench"
	}
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) < version(dirs[j]) })
	return dirs[len(dirs)-1]
}

func version(path string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return n
}

// fired reads the services' deadline metrics: how many deadlines each
// path fired, and how many of those within a second of being due.
func (b *bench) fired(ctx context.Context) (map[string][2]float64, error) {
	out := map[string][2]float64{}
	for _, u := range b.metricsURLs {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "souk_deadline_lag_seconds_") {
				continue
			}
			path := labelOf(line, "path")
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			cur := out[path]
			switch {
			case strings.HasPrefix(line, "souk_deadline_lag_seconds_count"):
				cur[0] += v
			case strings.HasPrefix(line, "souk_deadline_lag_seconds_bucket") && labelOf(line, "le") == "1":
				cur[1] += v
			}
			out[path] = cur
		}
		res.Body.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func labelOf(line, name string) string {
	_, rest, ok := strings.Cut(line, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// Replanned is a statement of Souk's that PostgreSQL planned anew on most
// of its calls (pg_stat_statements): a statement whose generic plan never
// wins, such as a one-id "= ANY($1)" or a parameter's LIMIT was.
type Replanned struct {
	Calls, Plans int64
	Query        string
}

// replanned reads, from pg_stat_statements of Souk's database, the
// statements called at least 200 times and planned on more than half of
// their calls. (Every connection plans a statement up to six times before
// PostgreSQL settles on a generic plan: some 50 plans over the services'
// pools, which a short run's count must outgrow.) It reports false when
// PostgreSQL does not track planning (started without the module: a stack
// left running by an interrupted run).
func (b *bench) replanned(ctx context.Context) ([]Replanned, bool, error) {
	var tracked bool
	if err := b.soukPool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_settings WHERE name = 'pg_stat_statements.track_planning' AND setting = 'on')
		AND EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements')`).Scan(&tracked); err != nil || !tracked {
		return nil, false, err
	}
	rows, _ := b.soukPool.Query(ctx, `SELECT calls, plans, regexp_replace(query, '\s+', ' ', 'g') FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND calls >= 200 AND plans * 2 > calls
		ORDER BY plans DESC`)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Replanned])
	return out, true, err
}
