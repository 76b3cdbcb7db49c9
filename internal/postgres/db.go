// Package postgres keeps Souk's record in PostgreSQL: products and stock
// reservations, orders with their deadlines, payment attempts and history.
// Every change is one transaction that reads the order FOR UPDATE, applies a
// domain method and writes the result back with its version increased.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"

	"github.com/souk-dev/souk/internal/order"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a pool of connections to Souk's database.
type DB struct {
	pool   *pgxpool.Pool
	unpaid UnpaidLimits
	// citus: the database is a Citus coordinator.
	citus bool
	// routes finds the store holding a row named by id alone.
	routes routes
}

// Traced makes Open trace every query (a span each, the SQL without its
// arguments).
func Traced(cfg *pgxpool.Config) {
	cfg.ConnConfig.Tracer = otelpgx.NewTracer(otelpgx.WithTrimSQLInSpanName())
}

// Open connects to the database at url and checks that it answers; opts
// adjust the pool's configuration (Traced).
func Open(ctx context.Context, url string, opts ...func(*pgxpool.Config)) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	for _, o := range opts {
		o(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping database: %w", err)
	}
	db := &DB{pool: pool}
	if db.citus, err = db.OnCitus(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	if _, set := cfg.ConnConfig.RuntimeParams[citusPoolSize]; db.citus && !set {
		// Anew, each connection with the setting (unless the URL gives one).
		pool.Close()
		cfg.ConnConfig.RuntimeParams[citusPoolSize] = "1"
		if db.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
	}
	return db, nil
}

// citusPoolSize is how many connections to a worker a statement of one of
// Souk's connections may open on Citus; Souk sets it to 1. A fan-out (a
// buyer's page: a task on every shard) otherwise opens more connections
// to each worker as its tasks wait, and a session keeps one per worker
// when the statement ends (citus.max_cached_conns_per_worker): every page
// paid for opening and closing connections, on every worker. make bench
// -citus measured a buyer's page at 16 at once at 713 ms at 10,000
// orders (17 ms alone); over one connection per worker, its 16 shards
// take their turns at a fraction of a millisecond each. Citus describes
// the setting for this case: "a higher degree of concurrency when
// concurrent multi-shard queries open too many connections to a worker".
const citusPoolSize = "citus.max_adaptive_executor_pool_size"

// Close closes every connection.
func (db *DB) Close() { db.pool.Close() }

// Pool returns the underlying pool, for tests that inspect the tables.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Migrate brings the schema up to date, and on Citus distributes the
// tables (distribute). Replicas starting together are safe:
// the migrator holds an advisory lock while it works.
func (db *DB) Migrate(ctx context.Context) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	m, err := migrate.NewMigrator(ctx, conn.Conn(), "souk_schema_version")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := m.LoadMigrations(sub); err != nil {
		return fmt.Errorf("migrate: load: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := db.distribute(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// txTries is how often a transaction that lost a deadlock or a
// serialization check is run before the loss is reported (as ABORTED).
const txTries = 4

// inTx runs fn in a transaction, committing if it returns nil and rolling
// back otherwise. A transaction Postgres aborted to break a deadlock or a
// serialization conflict is run again from the start (fn must only read and
// write through tx); if it keeps losing, the error wraps order.ErrConflict.
func (db *DB) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return retryRace(ctx, func() error { return db.tx(ctx, fn) })
}

// retryRace runs a transaction (fn), again from the start while Postgres
// aborts it to break a deadlock or a serialization conflict.
func retryRace(ctx context.Context, fn func() error) error {
	for try := 1; ; try++ {
		err := fn()
		if !lostRace(err) {
			return err
		}
		if try == txTries || ctx.Err() != nil {
			return fmt.Errorf("%w: %w", order.ErrConflict, err)
		}
		time.Sleep(time.Duration(try) * time.Duration(1+rand.IntN(10)) * time.Millisecond)
	}
}

// isUnique reports whether err is a unique violation of the named
// constraint. Citus names the shard's index, with the shard's number, and
// in the message alone.
func isUnique(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && strings.Contains(pgErr.ConstraintName+" "+pgErr.Message, constraint)
}

// lostRace reports whether Postgres aborted a transaction to break a
// deadlock (40P01) or a serialization conflict (40001).
func lostRace(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// reads is how often an idempotent read is tried while the database cannot
// be reached (a restart, a failover).
const readTries = 3

// read runs an idempotent read, again after a short pause when the
// connection failed before or while it ran.
func read[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	for try := 1; ; try++ {
		v, err := fn()
		if err == nil || try == readTries || !Transient(err) || ctx.Err() != nil {
			return v, err
		}
		time.Sleep(time.Duration(try) * 100 * time.Millisecond)
	}
}

// Transient reports whether err says the database could not be reached or
// went away (refused or reset connections, a server shutting down or
// starting up, too many connections): the same call may succeed later.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code[:2] == "08", // connection exception
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", // shutdown, crash, cannot connect now
			pgErr.Code == "53300", // too many connections
			citusLostNode(pgErr):
			return true
		}
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false // the caller's own deadline, not the database's fault
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || pgconn.SafeToRetry(err) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// citusLostNode reports whether err is Citus losing its connection to a
// worker that crashed or restarted, which it reports under states that
// otherwise mean a bug or a disk's fault:
//   - I/O error (58030): rows an INSERT ... SELECT copies to a shard could
//     not be sent ("failed to COPY to shard", "failed to complete COPY");
//   - internal error (XX000): a transaction whose connection to a node it
//     wrote failed ("failure on connection marked as essential"), a
//     one-worker transaction's COMMIT whose connection failed ("could not
//     commit transaction for shard"; Citus commits such a transaction in
//     one phase, so its outcome is unknown, as a COMMIT's whose connection
//     broke on one PostgreSQL; Souk has no deferred constraint or commit
//     trigger, the other way to that message), a copy
//     that found no node of a shard up, and a node's answer that libpq
//     made up itself because the connection broke, which has no state of
//     its own to pass on ("while executing command on" the node).
//
// A node's own errors keep their state, so only libpq's words are matched.
func citusLostNode(e *pgconn.PgError) bool {
	switch e.Code {
	case "58030":
		return strings.HasPrefix(e.Message, "failed to COPY to shard ") || strings.HasPrefix(e.Message, "failed to complete COPY on ")
	case "XX000":
	default:
		return false
	}
	if strings.HasPrefix(e.Message, "failure on connection marked as essential") || e.Message == "could not connect to any active placements" ||
		strings.HasPrefix(e.Message, "could not commit transaction for shard ") {
		return true
	}
	if !strings.HasPrefix(e.Where, "while executing command on ") {
		return false
	}
	for _, m := range []string{"SSL SYSCALL error", "SSL connection has been closed", "server closed the connection unexpectedly",
		"connection not open", "could not receive data from server", "could not send data to server", "no connection to the server"} {
		if strings.Contains(e.Message, m) {
			return true
		}
	}
	return false
}

func (db *DB) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if db.citus {
		if _, err := tx.Exec(ctx, sequentialSQL); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// pipelined is a connection held for a transaction sent as pipelines
// (BEGIN queued with the first, COMMIT with the last), so that it takes
// as few round trips as its reads allow; pgx's own transactions send
// BEGIN and COMMIT each alone.
type pipelined struct {
	conn *pgxpool.Conn
	// committed is set once COMMIT succeeded; until then, release rolls
	// the transaction back.
	committed bool
}

func (db *DB) pipelined(ctx context.Context) (*pipelined, error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	return &pipelined{conn: conn}, nil
}

// begin is pipelined with a batch that opens the transaction: BEGIN
// travels with what is queued after it.
func (db *DB) begin(ctx context.Context) (*pipelined, *pgx.Batch, error) {
	tx, err := db.pipelined(ctx)
	if err != nil {
		return nil, nil, err
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	if db.citus {
		b.Queue(sequentialSQL)
	}
	return tx, b, nil
}

// sequentialSQL makes a Citus transaction run a statement that reaches
// several shards over one connection per node: Citus refuses to write a
// reference table (a coupon, a redemption) after a statement that fanned
// out over several connections in the same transaction (the orders of a
// checkout, of other stores, that share a coupon).
const sequentialSQL = "SET LOCAL citus.multi_shard_modify_mode TO 'sequential'"

// queueCommit queues the COMMIT, which fails the batch unless PostgreSQL
// committed (it answers COMMIT in a failed transaction with ROLLBACK).
func (p *pipelined) queueCommit(b *pgx.Batch) {
	b.Queue("COMMIT").Exec(func(tag pgconn.CommandTag) error {
		if tag.String() != "COMMIT" {
			return fmt.Errorf("commit: %s", tag)
		}
		p.committed = true
		return nil
	})
}

// release gives the connection back, rolled back first unless committed:
// it never goes back to the pool mid-transaction.
func (p *pipelined) release(ctx context.Context) {
	defer p.conn.Release()
	if p.committed {
		return
	}
	// Not ctx: a cancelled request must still give the connection back clean.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := p.conn.Exec(rctx, "ROLLBACK"); err != nil {
		_ = p.conn.Conn().Close(rctx)
	}
}

// isNoRows reports whether err says a query found nothing.
func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
