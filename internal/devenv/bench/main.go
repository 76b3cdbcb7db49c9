// Command bench measures Souk against the limits of the machine it runs on,
// in one run (the machines are shared and noisy: only ratios taken in the
// same run mean anything). It starts its own PostgreSQL (fsync on) and
// Redis as `make up` does, runs both services as processes, and drives
// them over gRPC with ghz's runner; for each operation and concurrency it
// prints throughput, p50 and p99, PostgreSQL commits and Redis commands per
// operation, and the limit held against: the no-op gRPC call and pgbench
// running the operation's SQL, combined as 1/(1/grpc + 1/sql). Then a
// burst of deadlines against the same cancellations as bare batched SQL, a
// steady trickle of deadlines, and Redis bytes per armed deadline.
//
//	go run ./internal/devenv/bench [-burst 100000] [-trickle 600] [-duration 5s] [-c 1,16,64] [-ops GetOrder,PayOrder] [-pgpool 8] [-orders 10000000]
//
// -burst 0 and -trickle 0 leave those parts out. -orders N adds the scale
// run (scale.go): the store's costs at 10,000 orders and at N.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// trackPlans loads pg_stat_statements with planning counted, for the
// run's report of statements PostgreSQL plans anew on every call, and the
// time statements wait for blocks timed, for the scale run's (a clock read
// costs 36 ns here: pg_test_timing).
const trackPlans = "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on -c track_io_timing=on"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	var p Plan
	var conc string
	flag.IntVar(&p.Burst, "burst", 100_000, "unpaid orders whose payment windows end in the same second")
	flag.IntVar(&p.Trickle, "trickle", 600, "deadlines spread over 30 seconds")
	flag.DurationVar(&p.Duration, "duration", 5*time.Second, "how long each operation runs at each concurrency")
	flag.StringVar(&conc, "c", "1,16,64", "concurrencies")
	var ops string
	flag.StringVar(&ops, "ops", "", "only these operations (comma-separated names, as in the table; \"none\" for none); empty: all")
	flag.IntVar(&p.PGPool, "pgpool", 0, "the services' PostgreSQL pool size (pool_max_conns; 0: their default)")
	flag.BoolVar(&p.Floor, "floor", true, "also run GetOrder and AdjustOrderPrice on the floor server: the same SQL and lock, nothing else")
	orders := flag.Int("orders", 0, "also measure how costs grow with the data: the store's operations at 10,000 orders and at this many, seeded by COPY (0: not)")
	cold := flag.Bool("scale-cold", false, "with -scale-reuse: measure the database as the OS's cache holds it, not read in first (for a cold start, drop the cache before: sync; echo 3 > /proc/sys/vm/drop_caches)")
	reuse := flag.Bool("scale-reuse", false, "with -orders N: measure the scale database a run left (N orders seeded) once more, without seeding it, against 10,000 orders seeded afresh beside it")
	citus := flag.Bool("citus", false, "with -orders N: run the scale measure on a Citus cluster the bench starts (a coordinator and two workers), the tables distributed by store")
	pgOpts := flag.String("pgopts", "", "more options for the bench's PostgreSQL (\"-c shared_buffers=4GB\")")
	dir := flag.String("dir", filepath.Join(root, ".data", "bench"), "where the stack, the logs and the results go")
	flag.Parse()
	for _, c := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			return fmt.Errorf("bad concurrency %q", c)
		}
		p.Concurrency = append(p.Concurrency, n)
	}
	if ops != "" {
		p.Ops = strings.Split(ops, ",")
	}
	if *cold && !*reuse {
		return fmt.Errorf("-scale-cold measures a database a run left: give -scale-reuse (and -orders N) with it")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	// Its own PostgreSQL and Redis, fsync on, apart from make up's and the tests'.
	const pgPort, redisPort, citusPorts = "55436", "56386", "55446 55447 55448"
	stack := func(arg string) error {
		cmd := exec.CommandContext(ctx, filepath.Join(root, "internal/devenv/stack.sh"), arg)
		cmd.Env = append(os.Environ(), "SOUK_DATA_DIR="+filepath.Join(*dir, "stack"), "SOUK_PG_PORT="+pgPort, "SOUK_REDIS_PORT="+redisPort,
			"SOUK_PG_OPTS=-c max_connections=300 "+trackPlans+" "+*pgOpts,
			"SOUK_CLUSTER_PORTS=", // no Redis Cluster: stopping must leave the tests' alone
			"SOUK_CITUS_PORTS="+citusPorts, "SOUK_PG_OPTS_CITUS=-c max_connections=300 "+strings.Replace(trackPlans, "=pg_stat_statements", "=citus,pg_stat_statements", 1)+" "+*pgOpts)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		return cmd.Run()
	}
	if *citus { // before any server starts: it may upgrade PostgreSQL (stack.sh install_citus)
		if err := stack("install-citus"); err != nil {
			return err
		}
	}
	if err := stack("start"); err != nil {
		return err
	}
	scaleURL := "postgres://postgres@127.0.0.1:" + pgPort + "/postgres?sslmode=disable"
	if *citus {
		if *orders == 0 {
			return fmt.Errorf("-citus measures the scale run: give -orders N")
		}
		if err := stack("citus"); err != nil {
			return err
		}
		scaleURL = "postgres://postgres@127.0.0.1:" + strings.Fields(citusPorts)[0] + "/postgres?sslmode=disable"
	}
	defer func() { _ = stack("stop") }()
	t := Target{
		Root:      root,
		Dir:       *dir,
		AdminURL:  "postgres://postgres@127.0.0.1:" + pgPort + "/postgres?sslmode=disable",
		RedisAddr: "127.0.0.1:" + redisPort,
		Prefix:    "souk:",
		Log:       os.Stderr,
	}
	res, err := Run(ctx, t, p)
	if err != nil {
		return err
	}
	out := filepath.Join(*dir, "results.md")
	text := res.Markdown()
	if *orders > 0 {
		how := Seed
		if *reuse {
			how = ReuseWarm
			if *cold {
				how = ReuseAsIs
			}
		}
		sc, err := RunScale(ctx, scaleURL, *orders, 10*time.Second, how, *citus, os.Stderr)
		if err != nil {
			return fmt.Errorf("scale: %w", err)
		}
		text += sc.Markdown()
	}
	fmt.Print(text)
	if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
		return err
	}
	fmt.Println("\nwritten to", out)
	return nil
}
