package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/souk-dev/souk/internal/postgres"
	"github.com/souk-dev/souk/internal/testenv"
)

// TestCitusRoutesByStore (#25, the engine): make test's Citus cluster (a
// coordinator and two workers, built by ../shared/citus/install.sh) has
// both workers active; a table distributed by seller_id routes one store's
// query to one shard (a single-task router plan) and fans a query of every
// store out to all shards; a transaction touching two stores (on two
// workers) commits atomically, and one that fails rolls back on both.
func TestCitusRoutesByStore(t *testing.T) {
	pool, schema := testenv.Citus(t)
	ctx := context.Background()
	var workers int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM citus_get_active_worker_nodes()`).Scan(&workers); err != nil || workers != 2 {
		t.Fatalf("%d active workers (%v), want 2", workers, err)
	}
	table := schema + ".probe"
	for _, q := range []string{
		`CREATE TABLE ` + table + ` (seller_id text NOT NULL, id bigint NOT NULL, total bigint NOT NULL, PRIMARY KEY (seller_id, id))`,
		`SELECT create_distributed_table('` + table + `', 'seller_id')`,
		`INSERT INTO ` + table + ` SELECT 'store-' || (g % 50), g, 100 FROM generate_series(1, 1000) g`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	plan := func(q string) string {
		rows, _ := pool.Query(ctx, "EXPLAIN "+q)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(lines, "\n")
	}
	if p := plan(`SELECT * FROM ` + table + ` WHERE seller_id = 'store-7' ORDER BY id LIMIT 20`); !strings.Contains(p, "Task Count: 1\n") {
		t.Fatalf("one store's page is not a single-task router plan:\n%s", p)
	}
	var shards int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = $1::regclass`, table).Scan(&shards); err != nil {
		t.Fatal(err)
	}
	if p := plan(`SELECT count(*) FROM ` + table); !strings.Contains(p, fmt.Sprintf("Task Count: %d", shards)) {
		t.Fatalf("a count of every store does not fan out to its %d shards:\n%s", shards, p)
	}
	// Two stores, on two workers (a store per shard group: pick two whose
	// shards live on different nodes).
	var a, b string
	if err := pool.QueryRow(ctx, `SELECT s1, s2 FROM
		(SELECT 'store-' || g AS s1, (SELECT nodeport FROM pg_dist_shard_placement p JOIN pg_dist_shard d USING (shardid)
			WHERE d.logicalrelid = $1::regclass AND get_shard_id_for_distribution_column($1::regclass, 'store-' || g) = d.shardid) AS n1
		 FROM generate_series(0, 49) g) x,
		(SELECT 'store-' || g AS s2, (SELECT nodeport FROM pg_dist_shard_placement p JOIN pg_dist_shard d USING (shardid)
			WHERE d.logicalrelid = $1::regclass AND get_shard_id_for_distribution_column($1::regclass, 'store-' || g) = d.shardid) AS n2
		 FROM generate_series(0, 49) g) y
		WHERE n1 <> n2 LIMIT 1`, table).Scan(&a, &b); err != nil {
		t.Fatalf("two stores on two workers: %v", err)
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE `+table+` SET total = total - 10 WHERE seller_id = $1`, a); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE `+table+` SET total = total + 10 WHERE seller_id = $1`, b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE `+table+` SET total = 0 WHERE seller_id = $1`, a); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE `+table+` SET total = 1 / 0 WHERE seller_id = $1`, b)
		return err // division by zero: the whole transaction rolls back
	})
	var sumA, sumB, total int64
	if err := pool.QueryRow(ctx, `SELECT sum(total) FILTER (WHERE seller_id = $1), sum(total) FILTER (WHERE seller_id = $2), sum(total) FROM `+table,
		a, b).Scan(&sumA, &sumB, &total); err != nil {
		t.Fatal(err)
	}
	if sumA != 20*90 || sumB != 20*110 || total != 1000*100 {
		t.Fatalf("after a two-store transaction and a failed one: %s %d, %s %d, all %d", a, sumA, b, sumB, total)
	}
}

// TestCitusWorkerLostIsTransient (#25): a Citus worker that goes away in
// the middle of a transaction (a crash, a restart) fails the transaction
// with errors Citus reports as SQLSTATE XX000 ("failure on connection
// marked as essential", a remote error with no state) as well as 08006.
// Each is a fault a retry gets past, not a bug: Transient says so, and the
// services answer UNAVAILABLE rather than INTERNAL. Both places a
// transaction meets the loss are tried: its next statement and its commit.
func TestCitusWorkerLostIsTransient(t *testing.T) {
	cluster := testenv.StartCitus(t, "souk", 2)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, cluster.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for _, q := range []string{
		`CREATE TABLE probe (seller_id text NOT NULL, id bigint NOT NULL, n bigint NOT NULL, PRIMARY KEY (id, seller_id))`,
		`SELECT create_distributed_table('probe', 'seller_id')`,
		`INSERT INTO probe SELECT 'store-' || i, i, 0 FROM generate_series(1, 20) i`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// workerOf is the worker holding a store's shard.
	workerOf := func(store string) *testenv.PostgresServer {
		var port int
		if err := pool.QueryRow(ctx, `SELECT nodeport FROM citus_shards
			WHERE shardid = get_shard_id_for_distribution_column('probe', $1::text)`, store).Scan(&port); err != nil {
			t.Fatal(err)
		}
		for _, w := range cluster.Workers {
			if strings.Contains(w.URL, fmt.Sprintf(":%d/", port)) {
				return w
			}
		}
		t.Fatalf("no worker on port %d", port)
		return nil
	}
	for _, c := range []struct {
		name string
		// last runs once the worker is down; its error is judged.
		last func(tx pgx.Tx, store string) error
	}{
		{"the next statement", func(tx pgx.Tx, store string) error {
			_, err := tx.Exec(ctx, `UPDATE probe SET n = n + 1 WHERE seller_id = $1 AND id = $2`, store, 1)
			return err
		}},
		{"a statement on every shard", func(tx pgx.Tx, _ string) error {
			_, err := tx.Exec(ctx, `UPDATE probe SET n = n + 1`)
			return err
		}},
		{"a read on every shard", func(tx pgx.Tx, _ string) error {
			var n int64
			return tx.QueryRow(ctx, `SELECT sum(n) FROM probe`).Scan(&n)
		}},
		{"the commit", func(tx pgx.Tx, _ string) error { return tx.Commit(ctx) }},
		{"the commit of a one-worker transaction", func(tx pgx.Tx, _ string) error { return tx.Commit(ctx) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Two stores on two workers make the commit a two-phase one;
			// a transaction on one worker commits in one.
			oneWorker := strings.Contains(c.name, "one-worker")
			var stores []string
			seen := map[*testenv.PostgresServer]bool{}
			for i := 1; len(stores) < 2 && i <= 20; i++ {
				s := fmt.Sprintf("store-%d", i)
				if w := workerOf(s); !seen[w] {
					seen[w] = true
					stores = append(stores, s)
				}
			}
			if len(stores) != 2 {
				t.Fatal("every store is on one worker")
			}
			lost := workerOf(stores[1])
			tx, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback(ctx) }()
			for _, s := range stores {
				if oneWorker && s != stores[1] {
					continue
				}
				if _, err := tx.Exec(ctx, `UPDATE probe SET n = n + 1 WHERE seller_id = $1`, s); err != nil {
					t.Fatal(err)
				}
			}
			lost.Stop()
			defer lost.Start()
			err = c.last(tx, stores[1])
			if err == nil {
				t.Fatal("the transaction went on with its worker gone")
			}
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) {
				t.Logf("%q %q where=%q", pgErr.Code, pgErr.Message, pgErr.Where)
			}
			if !postgres.Transient(err) {
				t.Errorf("%v: not transient", err)
			}
		})
	}
}

// TestOpenLimitsTheExecutorPoolOnCitus: on Citus every connection Open makes
// lets a statement open one connection to a worker
// (citus.max_adaptive_executor_pool_size = 1: make bench -citus measured a
// buyer's page at c=16 at 889 ms without it, 155 ms with it), unless the
// URL gives the setting; on plain PostgreSQL nothing is set.
func TestOpenLimitsTheExecutorPoolOnCitus(t *testing.T) {
	url := testenv.CitusDatabaseURL(t)
	cases := []struct{ name, url, want string }{
		{"on Citus", url, "1"},
		{"on Citus, the URL's own", url + "&citus.max_adaptive_executor_pool_size=4", "4"},
	}
	if !testenv.OnCitus() {
		cases = append(cases, struct{ name, url, want string }{"on plain PostgreSQL", testenv.DatabaseURL(t), ""})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			db, err := postgres.Open(ctx, c.url)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			// Three connections at once: each was made with the setting.
			var conns []*pgxpool.Conn
			defer func() {
				for _, c := range conns {
					c.Release()
				}
			}()
			for range 3 {
				conn, err := db.Pool().Acquire(ctx)
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, conn)
				var got string
				if err := conn.QueryRow(ctx, `SELECT coalesce(current_setting('citus.max_adaptive_executor_pool_size', true), '')`).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != c.want {
					t.Fatalf("connection %d: citus.max_adaptive_executor_pool_size %q, want %q", len(conns), got, c.want)
				}
			}
		})
	}
}

// TestCitusSchemasAreNotColocated: Souk's orders start a colocation group
// of their own, which its other tables join; left to Citus's default they
// joined every table of the database with the same shard count and
// distribution type (another Souk's schema, another application's tables),
// and distributing them locked those: CI's deadline test on Citus lost a
// distributed deadlock in "distribute orders" while other tests' schemas
// were made and dropped.
func TestCitusSchemasAreNotColocated(t *testing.T) {
	pool, _ := testenv.Citus(t)
	ctx := context.Background()
	var groups []int
	for range 2 {
		u, err := url.Parse(testenv.CitusDatabaseURL(t))
		if err != nil {
			t.Fatal(err)
		}
		schema := u.Query().Get("search_path")
		var orders, others int
		if err := pool.QueryRow(ctx, `SELECT colocationid,
			(SELECT count(*) FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid JOIN pg_namespace n ON n.oid = c.relnamespace
			 WHERE n.nspname = $1 AND p.partmethod = 'h' AND p.colocationid <> d.colocationid)
			FROM pg_dist_partition d WHERE logicalrelid = ($1 || '.orders')::regclass`, schema).Scan(&orders, &others); err != nil {
			t.Fatal(err)
		}
		if others != 0 {
			t.Errorf("%s: %d distributed tables not co-located with its orders", schema, others)
		}
		groups = append(groups, orders)
	}
	if groups[0] == groups[1] {
		t.Errorf("two schemas' orders share colocation group %d", groups[0])
	}
}

// TestDistributeOutlivesADeadlock: a migration's distribution that loses a
// deadlock (PostgreSQL's detector aborts its transaction) is run again
// from the start, as Souk's other transactions are, rather than failing
// the migration (and the replica's start). The deadlock is made here on
// purpose: a session holds the products table while distribution holds
// store_keys and waits for it, then asks for store_keys.
func TestDistributeOutlivesADeadlock(t *testing.T) {
	pool, schema := testenv.Citus(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := postgres.Open(ctx, os.Getenv("SOUK_TEST_CITUS_URL")+"&search_path="+schema+"&options=-c%20citus.shard_count%3D4")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.MigrateUndistributed(ctx); err != nil {
		t.Fatal(err)
	}
	holder, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	// The holder never runs the deadlock check first: distribution does,
	// and loses.
	for _, q := range []string{`SET LOCAL deadlock_timeout = '30s'`, `LOCK TABLE ` + schema + `.products IN ACCESS EXCLUSIVE MODE`} {
		if _, err := holder.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- db.Distribute(ctx) }()
	for waiting := false; !waiting; {
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE relation = $1::regclass AND NOT granted)`,
			schema+".products").Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			t.Fatalf("distribution ended (%v) without waiting for products: no deadlock to make", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	// Distribution holds store_keys (it made it a reference table): the
	// holder's asking for it closes the cycle, and getting it shows that
	// distribution's transaction was aborted.
	var held bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE relation = $1::regclass AND granted
		AND mode IN ('ExclusiveLock', 'ShareRowExclusiveLock', 'ShareLock', 'AccessExclusiveLock'))`, schema+".store_keys").Scan(&held); err != nil || !held {
		t.Fatalf("distribution waits for products without holding store_keys (%v): no deadlock to make", err)
	}
	if _, err := holder.Exec(ctx, `LOCK TABLE `+schema+`.store_keys IN ROW EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("distribution after losing a deadlock: %v", err)
	}
	var distributed int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1`, schema).Scan(&distributed); err != nil || distributed != 13 {
		t.Errorf("%d tables distributed (%v), want 13", distributed, err)
	}
}
