// Package testenv gives tests real PostgreSQL and Redis: a fresh, migrated
// database and a private Redis key prefix per test. `make test` starts both
// servers and sets SOUK_TEST_DATABASE_URL (an admin connection) and
// SOUK_TEST_REDIS_ADDR; without them the tests fail rather than skip.
package testenv

import (
	"context"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/events"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/postgres"
)

func env(tb testing.TB, name string) string {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		tb.Fatalf("%s is not set: run the tests with `make test`, which starts PostgreSQL and Redis", name)
	}
	return v
}

// AdminURL is the test PostgreSQL's superuser URL, for a test that makes
// its own databases.
func AdminURL(tb testing.TB) string { return env(tb, "SOUK_TEST_DATABASE_URL") }

// RedisAddr is the test Redis's address, for a test that hands it to
// processes of its own (with a prefix from Redis).
func RedisAddr(tb testing.TB) string { return env(tb, "SOUK_TEST_REDIS_ADDR") }

// DatabaseURL creates a fresh database for the test, migrated, dropped when
// the test ends, and returns its URL.
//
// With SOUK_TEST_ON_CITUS set (make test's second run of the store,
// deadline, relay and end-to-end tests), the database is a schema of its
// own on the test Citus cluster, its tables distributed by Migrate.
func DatabaseURL(tb testing.TB) string {
	tb.Helper()
	if OnCitus() {
		return CitusDatabaseURL(tb)
	}
	admin := env(tb, "SOUK_TEST_DATABASE_URL")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatalf("connect to test postgres: %v", err)
	}
	defer conn.Close(ctx)
	name := "souk_t_" + strings.ReplaceAll(uuid.NewString()[:18], "-", "")
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create database: %v", err)
	}
	tb.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatalf("parse SOUK_TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	dbURL := u.String()
	db, err := postgres.Open(ctx, dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return dbURL
}

// OnCitus reports whether the tests run on the test Citus cluster
// (SOUK_TEST_ON_CITUS).
func OnCitus() bool { return os.Getenv("SOUK_TEST_ON_CITUS") != "" }

// CitusDatabaseURL is DatabaseURL on Citus: a schema of the test's own on the
// coordinator, named first on the URL's search_path, migrated and
// distributed, dropped when the test ends. Its tables have 4 shards each,
// not Citus's 32: a test makes a dozen, and 384 shards a test is slow to
// make and drop.
func CitusDatabaseURL(tb testing.TB) string {
	tb.Helper()
	_, schema := Citus(tb)
	u, err := url.Parse(env(tb, "SOUK_TEST_CITUS_URL"))
	if err != nil {
		tb.Fatalf("parse SOUK_TEST_CITUS_URL: %v", err)
	}
	return migratedIn(tb, u, schema, "-c citus.shard_count=4")
}

// migratedIn returns u with schema first on its search_path (and options,
// if any), the schema migrated, and on Citus distributed.
func migratedIn(tb testing.TB, u *url.URL, schema, options string) string {
	tb.Helper()
	q := u.Query()
	q.Set("search_path", schema)
	if options != "" {
		q.Set("options", options)
	}
	// pgx reads a "+" in options as itself: spaces are written %20.
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	ctx := context.Background()
	db, err := postgres.Open(ctx, u.String())
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return u.String()
}

// OtherSchema makes a schema beside the one dbURL's tables are in, in the
// same database, migrates it and returns its URL; it is dropped when the
// test ends. Two Souks sharing one database in two schemas (as the Citus
// run's tests do) share its advisory locks and nothing else.
func OtherSchema(tb testing.TB, dbURL string) string {
	tb.Helper()
	_, schema := newSchema(tb, dbURL, "o_")
	u, err := url.Parse(dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	return migratedIn(tb, u, schema, "")
}

// DB returns an open store on a fresh database.
func DB(tb testing.TB) *postgres.DB {
	tb.Helper()
	db, err := postgres.Open(context.Background(), DatabaseURL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(db.Close)
	return db
}

// Redis returns a client of the test Redis and a key prefix no other test
// uses; the prefix's keys are deleted when the test ends. (Leftover keys
// with long TTLs would slow Redis's sampling of expired keys, and with it
// the expired-key events of later tests.)
func Redis(tb testing.TB) (*redis.Client, string) {
	tb.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: env(tb, "SOUK_TEST_REDIS_ADDR")})
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		tb.Fatalf("ping test redis: %v", err)
	}
	prefix := "souk-test:" + uuid.NewString()[:8] + ":"
	tb.Cleanup(func() {
		defer rdb.Close()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return rdb, prefix
}

// RedisCluster returns a client of the test Redis Cluster (three primaries,
// started by make test) and a key prefix no other test uses; the prefix's
// keys are deleted when the test ends.
func RedisCluster(tb testing.TB) (*redis.ClusterClient, string) {
	tb.Helper()
	addrs := strings.Split(env(tb, "SOUK_TEST_REDIS_CLUSTER"), ",")
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		tb.Fatalf("ping test redis cluster: %v", err)
	}
	prefix := "souk-test:" + uuid.NewString()[:8] + ":"
	tb.Cleanup(func() {
		defer rdb.Close()
		_ = rdb.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			iter := node.Scan(ctx, 0, prefix+"*", 1000).Iterator()
			for iter.Next(ctx) {
				rdb.Del(ctx, iter.Val())
			}
			return nil
		})
	})
	return rdb, prefix
}

// Redises are the test Redis and the test Redis Cluster, by name, for tests
// that run against both.
func Redises(tb testing.TB) []struct {
	Name   string
	Client redis.UniversalClient
	Prefix string
} {
	tb.Helper()
	single, p1 := Redis(tb)
	cluster, p2 := RedisCluster(tb)
	return []struct {
		Name   string
		Client redis.UniversalClient
		Prefix string
	}{{"single", single, p1}, {"cluster", cluster, p2}}
}

// Config returns a service configuration on a fresh database and a private
// Redis prefix, with deadlines swept every 200ms.
func Config(tb testing.TB) app.Config {
	tb.Helper()
	_, prefix := Redis(tb)
	return ConfigOn(DatabaseURL(tb), env(tb, "SOUK_TEST_REDIS_ADDR"), prefix)
}

// ConfigOn is Config on a given database and Redis (a test's private
// servers, which it may restart), with keys under prefix.
func ConfigOn(databaseURL, redisAddr, prefix string) app.Config {
	return app.Config{
		DatabaseURL:      databaseURL,
		RedisAddr:        redisAddr,
		RedisPrefix:      prefix,
		Env:              app.Development,
		JWTSecret:        app.DevJWTSecret,
		ServiceJWTSecret: app.DevServiceJWTSecret,
		AdminJWTSecret:   app.DevAdminJWTSecret,
		LogLevel:         slog.LevelWarn,
		Migrate:          true,
		PaymentWindow:    20 * 24 * time.Hour,
		Deadlines:        true,
		Listener:         true,
		SweepInterval:    200 * time.Millisecond,
		DeadlineHorizon:  time.Hour,
		LockTTL:          5 * time.Second,
		Relay:            true,
		RelayInterval:    100 * time.Millisecond,
		EventRetention:   7 * 24 * time.Hour,
		Watch:            events.Config{Heartbeat: time.Second, Stall: 5 * time.Second, Buffer: 256, ClaimAfter: 2 * time.Second},
		Policy:           order.DefaultPolicy,
	}
}

// Logger returns a logger that writes warnings and errors (or, with
// SOUK_TEST_LOG=debug, everything) into the test's log until the test ends.
func Logger(tb testing.TB) *slog.Logger {
	w := &testWriter{tb: tb}
	tb.Cleanup(func() { w.done.Store(true) })
	level := slog.LevelWarn
	if os.Getenv("SOUK_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	tb   testing.TB
	done atomic.Bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.tb.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// Eventually polls cond every 50ms until it holds or timeout passes.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	end := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(end) {
			tb.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Citus returns a pool on the test Citus cluster's coordinator (a
// coordinator and two workers, started by make test), in a schema of the
// test's own, dropped when the test ends.
func Citus(tb testing.TB) (*pgxpool.Pool, string) {
	tb.Helper()
	return newSchema(tb, env(tb, "SOUK_TEST_CITUS_URL"), "t_")
}

// newSchema makes a schema (prefix and eight random characters) in the
// database at dbURL, dropped when the test ends, and returns a pool on
// dbURL and the schema's name.
func newSchema(tb testing.TB, dbURL, prefix string) (*pgxpool.Pool, string) {
	tb.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	schema := prefix + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		_, _ = pool.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
		pool.Close()
	})
	return pool, schema
}
