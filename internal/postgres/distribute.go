package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// How Souk's tables live on Citus: every table an order or a store owns
// is distributed by seller_id and co-located with orders (an order, its
// children and its store's products are on one shard); small tables every
// node joins against are reference tables (a copy on each node). The
// rest (the event relay's queue and places, idempotency keys, the
// simulated provider, consumer groups) stay on the coordinator: they are
// written and read there, never joined on a worker.
var citusTables = []struct {
	name string
	// reference: a reference table; otherwise distributed by seller_id,
	// with orders.
	reference bool
}{
	// Referenced tables before the tables whose foreign keys name them.
	{"store_keys", true}, {"coupons", true}, {"coupon_grants", true}, {"coupon_redemptions", true},
	{"orders", false}, {"products", false},
	{"order_deadlines", false}, {"order_events", false}, {"order_messages", false}, {"payment_attempts", false},
	{"refunds", false}, {"order_coupons", false}, {"stock_reservations", false},
}

// OnCitus reports whether the database is a Citus coordinator (the citus
// extension is installed in it).
func (db *DB) OnCitus(ctx context.Context) (bool, error) {
	var on bool
	err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')`).Scan(&on)
	return on, err
}

// distribute makes each table Citus should hold distributed or replicated
// that is not yet, moving its rows (a single-node database migrated onto
// Citus) into shards. It does nothing on plain PostgreSQL. Replicas
// starting together take turns on an advisory lock; a table one of them
// distributed is left alone by the next. Its DDL locks tables that others
// use (the reference tables' foreign keys, the colocation group), so it
// can lose a deadlock, local or distributed: it is then run again from the
// start (TestDistributeOutlivesADeadlock).
//
// The orders start a colocation group of their own (colocate_with
// 'none'), which the store's other tables join: Citus's default puts a new
// table in the group of any table with the same shard count and
// distribution column type, another Souk's in another schema or another
// application's, and creating it locks theirs (CI's Citus run lost a
// distributed deadlock there while other tests' schemas came and went).
func (db *DB) distribute(ctx context.Context) error {
	if !db.citus { // the citus extension is an operator's to create, before Souk opens the database
		return nil
	}
	return retryRace(ctx, func() error {
		return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error { return distributeIn(ctx, tx) })
	})
}

// distributeIn is distribute's transaction.
func distributeIn(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('souk-distribute', 0))`); err != nil {
		return err
	}
	for _, t := range citusTables {
		// A table with a foreign key to a reference table was made a
		// "Citus local table" (partmethod 'n', not replicated) when
		// that table became one; it still has to become a reference
		// table itself.
		var done bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = $1::regclass
			AND CASE WHEN $2 THEN repmodel = 't' ELSE partmethod = 'h' END)`, t.name, t.reference).Scan(&done); err != nil {
			return fmt.Errorf("distribute %s: %w", t.name, err)
		}
		if done {
			continue
		}
		q := `SELECT create_distributed_table($1, 'seller_id', colocate_with => 'orders')`
		switch {
		case t.reference:
			q = `SELECT create_reference_table($1)`
		case t.name == "orders":
			q = `SELECT create_distributed_table($1, 'seller_id', colocate_with => 'none')`
		}
		if _, err := tx.Exec(ctx, q, t.name); err != nil {
			return fmt.Errorf("distribute %s: %w", t.name, err)
		}
	}
	return nil
}

// sameStore is the condition that keeps a join of two tables distributed
// by store on one shard, or a table's read on its store's shard (" AND
// col = store", store another table's seller_id or a parameter naming the
// store) on Citus, which needs it to push the join down to the shards, and
// nothing on plain PostgreSQL, where the ids alone join the rows: there
// the condition would make the planner estimate a merge join on seller_id
// by probing the ends of the store index, hundreds of blocks a plan for a
// big store with recent changes (TestScaleSmoke saw a store's page touch
// 1,000 blocks at 10,000 orders and 4,800 at 40,000).
func (db *DB) sameStore(col, store string) string {
	if !db.citus {
		return ""
	}
	return " AND " + col + " = " + store
}
