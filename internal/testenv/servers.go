package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// PostgresServer is a private PostgreSQL server of one test, which the test may
// stop, crash and start again (the shared one of `make test` must stay up
// for the other tests).
type PostgresServer struct {
	tb   testing.TB
	bin  string
	dir  string
	port int
	// opts are server options added to Start's (-c name=value ...).
	opts string
	// URL is an admin connection to its postgres database.
	URL string
}

// RedisServer is a private Redis server of one test; stopping it loses its data.
type RedisServer struct {
	tb   testing.TB
	port int
	cmd  *exec.Cmd
	done chan struct{}
	// Addr is its address.
	Addr string
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// asPostgres runs a PostgreSQL binary, as the postgres user when the test
// runs as root (PostgreSQL refuses root).
func asPostgres(name string, args ...string) *exec.Cmd {
	if os.Geteuid() != 0 {
		return exec.Command(name, args...)
	}
	cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	cmd.Dir = "/"
	return cmd
}

// StartPostgres initialises and starts a private PostgreSQL (the binaries
// under /usr/lib/postgresql, or SOUK_PG_BIN), stopped when the test ends.
func StartPostgres(tb testing.TB) *PostgresServer { return startPostgres(tb, "") }

func startPostgres(tb testing.TB, opts string) *PostgresServer {
	tb.Helper()
	bin := os.Getenv("SOUK_PG_BIN")
	if bin == "" {
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		sort.Strings(dirs)
		if len(dirs) == 0 {
			tb.Fatal("PostgreSQL binaries not found (set SOUK_PG_BIN)")
		}
		bin = dirs[len(dirs)-1]
	}
	base, err := os.MkdirTemp("", "souk-pg-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(base) })
	dir := filepath.Join(base, "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			tb.Fatalf("running as root needs the postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chmod(base, 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			tb.Fatal(err)
		}
	}
	if out, err := asPostgres(filepath.Join(bin, "initdb"), "-D", dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions").CombinedOutput(); err != nil {
		tb.Fatalf("initdb: %v\n%s", err, out)
	}
	pg := &PostgresServer{tb: tb, bin: bin, dir: dir, port: freePort(tb), opts: opts}
	pg.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.port)
	pg.Start()
	tb.Cleanup(func() { pg.stop("immediate") })
	return pg
}

// Start starts the server and waits until it accepts connections. Commits
// are synchronous, so a crash loses no committed transaction; fsync is off,
// as the operating system outlives a killed server.
func (pg *PostgresServer) Start() {
	pg.tb.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off %s", pg.port, pg.dir, pg.opts)
	if out, err := asPostgres(filepath.Join(pg.bin, "pg_ctl"), "-D", pg.dir, "-l", filepath.Join(pg.dir, "server.log"), "-w", "-t", "60", "-o", opts, "start").CombinedOutput(); err != nil {
		pg.tb.Fatalf("start postgres: %v\n%s", err, out)
	}
	Eventually(pg.tb, 20*time.Second, "postgres accepts connections", func() bool {
		c, err := pgx.Connect(context.Background(), pg.URL)
		if err != nil {
			return false
		}
		c.Close(context.Background())
		return true
	})
}

// Stop shuts the server down at once, as a crash or a failover does:
// connections are cut and transactions in flight roll back.
func (pg *PostgresServer) Stop() {
	pg.tb.Helper()
	if err := pg.stop("immediate"); err != nil {
		pg.tb.Fatalf("stop postgres: %v", err)
	}
}

func (pg *PostgresServer) stop(mode string) error {
	out, err := asPostgres(filepath.Join(pg.bin, "pg_ctl"), "-D", pg.dir, "-m", mode, "-w", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// Database creates a database on the server and returns its URL.
func (pg *PostgresServer) Database(name string) string {
	pg.tb.Helper()
	c, err := pgx.Connect(context.Background(), pg.URL)
	if err != nil {
		pg.tb.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		pg.tb.Fatal(err)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.port, name)
}

// StartRedis starts a private Redis without persistence (redis-server on
// the PATH), stopped when the test ends.
func StartRedis(tb testing.TB) *RedisServer {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Fatal("redis-server not found: `make test` installs it")
	}
	r := &RedisServer{tb: tb, port: freePort(tb)}
	r.Addr = fmt.Sprintf("127.0.0.1:%d", r.port)
	r.Start()
	tb.Cleanup(r.kill)
	return r
}

// Start starts the server, empty, and waits until it answers.
func (r *RedisServer) Start() {
	r.tb.Helper()
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--notify-keyspace-events", "Ex", "--dir", os.TempDir())
	if err := r.cmd.Start(); err != nil {
		r.tb.Fatal(err)
	}
	r.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(r.cmd, r.done)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer rdb.Close()
	Eventually(r.tb, 10*time.Second, "redis answers", func() bool { return rdb.Ping(context.Background()).Err() == nil })
}

// Stop kills the server: its data is lost, as in a restart without persistence.
func (r *RedisServer) Stop() { r.kill() }

func (r *RedisServer) kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// CitusCluster is a private Citus cluster of one test: a coordinator and
// two workers, each a PostgresServer the test may stop and start again.
type CitusCluster struct {
	Coordinator *PostgresServer
	Workers     []*PostgresServer
	// URL is the coordinator's database, with citus in it and the
	// workers added.
	URL string
}

// StartCitus starts a private Citus cluster (the extension make test
// installs) with a database of the given name on every node, stopped when
// the test ends. Distributed tables made there have shards shards each.
func StartCitus(tb testing.TB, name string, shards int) *CitusCluster {
	tb.Helper()
	// Citus's maintenance daemon recovers prepared transactions a failed
	// node left behind every few seconds (the default is a minute).
	const opts = "-c shared_preload_libraries=citus -c max_prepared_transactions=200 -c citus.recover_2pc_interval=2s"
	c := &CitusCluster{Coordinator: startPostgres(tb, opts)}
	for range 2 {
		c.Workers = append(c.Workers, startPostgres(tb, opts))
	}
	ctx := context.Background()
	for _, n := range append([]*PostgresServer{c.Coordinator}, c.Workers...) {
		url := n.Database(name)
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			tb.Fatal(err)
		}
		_, err = conn.Exec(ctx, "CREATE EXTENSION citus")
		_ = conn.Close(ctx)
		if err != nil {
			tb.Fatalf("citus: %v", err)
		}
		if n == c.Coordinator {
			c.URL = url
		}
	}
	conn, err := pgx.Connect(ctx, c.URL)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT citus_set_coordinator_host('127.0.0.1', $1)`, c.Coordinator.port); err != nil {
		tb.Fatalf("citus coordinator: %v", err)
	}
	for _, w := range c.Workers {
		if _, err := conn.Exec(ctx, `SELECT citus_add_node('127.0.0.1', $1)`, w.port); err != nil {
			tb.Fatalf("citus worker: %v", err)
		}
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s SET citus.shard_count = %d", name, shards)); err != nil {
		tb.Fatal(err)
	}
	return c
}
