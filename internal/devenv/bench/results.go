package main

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Results is what a run measured.
type Results struct {
	Plan                   Plan
	Rows                   []Row
	IdleCommits, IdleRedis float64 // per second, taken out of the rows' counts
	Burst, Trickle         *Deadlines
	Databases              []string // the run's own, left for a look
	// Replanned are Souk's statements PostgreSQL planned anew on most of
	// their calls, if PlansTracked.
	Replanned    []Replanned
	PlansTracked bool
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// Markdown is the run's table, as printed and written to a file.
func (r *Results) Markdown() string {
	var s strings.Builder
	fmt.Fprintf(&s, "# Souk bench, %s\n\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&s, "Each cell ran %v. Limit: the no-op gRPC call (health check) and pgbench running the operation's SQL, "+
		"in the same run, combined as 1/(1/grpc + 1/sql). Commits and Redis commands are per operation, less what an idle "+
		"Souk does (%.1f commits/s, %.1f Redis commands/s); the simulated provider's ledger is in a database of its own.\n\n",
		r.Plan.Duration, r.IdleCommits, r.IdleRedis)
	s.WriteString("| operation | c | ops/s | p50 | p99 | p99/p50 | errors | PG commits/op | Redis cmds/op | no-op gRPC/s | SQL/s | limit/s | ratio |\n")
	s.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, row := range r.Rows {
		spread := 0.0
		if row.P50 > 0 {
			spread = float64(row.P99) / float64(row.P50)
		}
		fmt.Fprintf(&s, "| %s | %d | %.0f | %s | %s | %.1f | %d | %.2f | %.2f | %.0f | %.0f | %.0f | %.2f |\n",
			row.Op, row.C, row.RPS, ms(row.P50), ms(row.P99), spread, row.Errors, row.CommitsOp, row.RedisOp, row.GRPC, row.SQL,
			row.Combined, row.Ratio)
	}
	writeCPU(&s, r.Rows)
	writeFloor(&s, r.Rows)
	writeCoupon(&s, r.Rows)
	s.WriteString("\n## Plans\n\n")
	switch {
	case !r.PlansTracked:
		s.WriteString("Not measured: PostgreSQL runs without pg_stat_statements tracking planning, a stack left running by an interrupted run " +
			"(stop it, and make bench starts its own with the module: `SOUK_DATA_DIR=.data/bench/stack SOUK_PG_PORT=55436 SOUK_REDIS_PORT=56386 " +
			"SOUK_CLUSTER_PORTS= internal/devenv/stack.sh stop`).\n")
	case len(r.Replanned) == 0:
		s.WriteString("No statement of Souk's called 200 times or more was planned anew on most of its calls (pg_stat_statements).\n")
	default:
		s.WriteString("Statements of Souk's planned anew on most of their calls (pg_stat_statements):\n\n| calls | plans | statement |\n|---:|---:|---|\n")
		for _, st := range r.Replanned {
			q := st.Query
			if len(q) > 160 {
				q = q[:160] + "…"
			}
			fmt.Fprintf(&s, "| %d | %d | `%s` |\n", st.Calls, st.Plans, strings.ReplaceAll(q, "|", "\\|"))
		}
	}
	if b := r.Burst; b != nil {
		s.WriteString("\n## Deadline burst\n\n")
		rate := float64(b.N) / b.Took.Seconds()
		bare := float64(b.N) / b.Bare.Seconds()
		fmt.Fprintf(&s, "%d payment windows ending in the same second: all cancelled %.2f s after they were due (%.0f/s); "+
			"the same cancellations as bare batched SQL (1,000 a transaction): %.2f s (%.0f/s). Ratio %.2f.\n\n",
			b.N, b.Took.Seconds(), rate, b.Bare.Seconds(), bare, rate/bare)
		fmt.Fprintf(&s, "Redis memory per armed deadline: %.0f bytes.\n\n", b.BytesPerDead)
		writeLag(&s, b)
	}
	if t := r.Trickle; t != nil {
		s.WriteString("\n## Deadline trickle\n\n")
		fmt.Fprintf(&s, "%d payment windows ending one after another, armed ahead by the horizon.\n\n", t.N)
		writeLag(&s, t)
	}
	return s.String()
}

// writeCoupon compares checkouts that all redeem one platform coupon with
// checkouts of no coupon, at each concurrency.
func writeCoupon(s *strings.Builder, rows []Row) {
	plain := map[int]Row{}
	for _, r := range rows {
		if r.Op == "Checkout (spread)" {
			plain[r.C] = r
		}
	}
	first := true
	for _, r := range rows {
		p, ok := plain[r.C]
		if r.Op != "Checkout (hot coupon)" || !ok || p.RPS <= 0 {
			continue
		}
		if first {
			s.WriteString("\n## One hot coupon\n\nCheckouts that all redeem the same platform coupon (its row locked in each order's " +
				"transaction) against checkouts without one, same products:\n\n| c | with the coupon ops/s | without ops/s | ratio | p99 with | p99 without |\n|---:|---:|---:|---:|---:|---:|\n")
			first = false
		}
		fmt.Fprintf(s, "| %d | %.0f | %.0f | %.2f | %s | %s |\n", r.C, r.RPS, p.RPS, r.RPS/p.RPS, ms(r.P99), ms(p.P99))
	}
}

func writeLag(s *strings.Builder, d *Deadlines) {
	fmt.Fprintf(s, "Lag (fired − due): p50 %s, p99 %s.\n\n", ms(d.P50), ms(d.P99))
	s.WriteString("| path | fired | share | within 1 s |\n|---|---:|---:|---:|\n")
	paths := make([]string, 0, len(d.Paths))
	total := 0.0
	for p, v := range d.Paths {
		paths = append(paths, p)
		total += v[0]
	}
	sort.Strings(paths)
	for _, p := range paths {
		v := d.Paths[p]
		share, within := 0.0, 0.0
		if total > 0 {
			share = v[0] / total
		}
		if v[0] > 0 {
			within = v[1] / v[0]
		}
		fmt.Fprintf(s, "| %s | %.0f | %.1f%% | %.1f%% |\n", p, v[0], 100*share, 100*within)
	}
}

// writeCPU is the table of what each operation cost the machine's parts,
// next to what the limit's runs cost: where Souk spends what the limit
// leaves out.
func writeCPU(s *strings.Builder, rows []Row) {
	s.WriteString("\n## CPU per operation\n\n")
	measured := slices.ContainsFunc(rows, func(r Row) bool { return r.CPU != nil })
	if !measured {
		s.WriteString("Not measured: the stack's processes could not be read from /proc.\n")
		return
	}
	s.WriteString("Microseconds of CPU per operation, from /proc and Redis's INFO over each run: Souk's, pgbench's run of its SQL " +
		"(per transaction), and the no-op call's (per call). The limit allows their sum; with every run using both cores, " +
		"limit/Souk is about the ratio above.\n\n")
	s.WriteString("| operation | c | " + strings.Join(soukParts, " | ") + " | Souk | SQL: PostgreSQL | pgbench | no-op: buyer-svc | load generator | limit | limit/Souk |\n")
	s.WriteString("|---|---:" + strings.Repeat("|---:", len(soukParts)+8) + "|\n")
	us := func(d time.Duration) string { return strconv.FormatInt(d.Microseconds(), 10) }
	for _, r := range rows {
		if r.CPU == nil {
			continue
		}
		fmt.Fprintf(s, "| %s | %d", r.Op, r.C)
		for _, p := range soukParts {
			fmt.Fprintf(s, " | %s", us(r.CPU[p]))
		}
		limit := r.SQLCPU.Total() + r.NoopCPU.Total()
		share := "–"
		if limit > 0 && r.SQLCPU != nil && r.NoopCPU != nil && r.CPU.Total() > 0 {
			share = fmt.Sprintf("%.2f", float64(limit)/float64(r.CPU.Total()))
		}
		fmt.Fprintf(s, " | %s | %s | %s | %s | %s | %s | %s |\n", us(r.CPU.Total()), us(r.SQLCPU[partPostgres]), us(r.SQLCPU[partPgbench]),
			us(r.NoopCPU[partBuyer]), us(r.NoopCPU[partLoad]), us(limit), share)
	}
}

// writeFloor is the table of the floor server's runs beside Souk's: what
// Souk's own work costs on top of the stack, and how near the limit the
// stack alone comes.
func writeFloor(s *strings.Builder, rows []Row) {
	if !slices.ContainsFunc(rows, func(r Row) bool { return r.Floor != nil }) {
		return
	}
	s.WriteString("\n## Floor\n\n")
	s.WriteString("The floor server (internal/devenv/bench/floor) answers the same requests over the same gRPC, pgx and go-redis, " +
		"with pgbench's SQL (and, for the price change, a Redis lock), and nothing else: no authentication, validation or logs, " +
		"no rows decoded, a reply made once. Its run follows Souk's, as many requests on the same orders. Souk/floor is what " +
		"Souk's own work leaves of the stack's speed; floor/limit is how near the limit the stack alone comes.\n\n")
	s.WriteString("| operation | c | Souk ops/s | floor ops/s | Souk/floor | floor/limit | floor p50 | floor p99 | errors | " +
		"floor CPU/op: PostgreSQL | floor | Redis | load generator | total | Souk's total |\n")
	s.WriteString("|---|---:" + strings.Repeat("|---:", 14) + "|\n")
	us := func(d time.Duration) string { return strconv.FormatInt(d.Microseconds(), 10) }
	for _, r := range rows {
		f := r.Floor
		if f == nil {
			continue
		}
		share, near := 0.0, 0.0
		if f.RPS > 0 {
			share = r.RPS / f.RPS
		}
		if r.Combined > 0 {
			near = f.RPS / r.Combined
		}
		fmt.Fprintf(s, "| %s | %d | %.0f | %.0f | %.2f | %.2f | %s | %s | %d | %s | %s | %s | %s | %s | %s |\n", r.Op, r.C, r.RPS, f.RPS,
			share, near, ms(f.P50), ms(f.P99), f.Errors, us(f.CPU[partPostgres]), us(f.CPU[partFloor]), us(f.CPU[partRedis]),
			us(f.CPU[partLoad]), us(f.CPU.Total()), us(r.CPU.Total()))
	}
}
