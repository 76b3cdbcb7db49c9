package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/souk-dev/souk/internal/postgres"
	"github.com/souk-dev/souk/internal/testenv"
)

// TestReadsAreNotReplanned reads one order ten times on one connection and
// finds that PostgreSQL settled on a generic plan of the order's statement
// after its first five custom ones, rather than planning it anew for every
// read (as it did for "id = ANY($1)" with one id, which cost the reads over
// half of PostgreSQL's time in make bench).
func TestReadsAreNotReplanned(t *testing.T) {
	db, err := postgres.Open(context.Background(), testenv.DatabaseURL(t), func(c *pgxpool.Config) { c.MaxConns = 1 })
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := mustProduct(t, db, "store-p", 5)
	o := mustOrder(t, db, p, "alice", t0)
	for range 10 {
		if _, err := db.Get(context.Background(), o.ID()); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := db.Pool().Query(context.Background(), `SELECT generic_plans, custom_plans FROM pg_prepared_statements
		WHERE generic_plans + custom_plans = 10
		AND (statement LIKE '%FROM orders WHERE id %' OR statement LIKE '%FROM payment_attempts WHERE order_id %')`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var generic, custom int64
		if err := rows.Scan(&generic, &custom); err != nil {
			t.Fatal(err)
		}
		if custom > 5 || generic < 5 {
			t.Errorf("a statement of the order's read was planned %d times for itself and ran %d times on a generic plan; want at most 5 and at least 5", custom, generic)
		}
		n++
	}
	if rows.Err() != nil || n != 2 {
		t.Fatalf("found %d of the read's two statements (%v)", n, rows.Err())
	}
}
