package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/souk-dev/souk/internal/postgres"
	"github.com/souk-dev/souk/internal/testenv"
)

// TestReadsAreNotReplanned reads one order ten times on one connection and
// finds that PostgreSQL planned the order's statement once, generically,
// rather than anew for every read: an "id = ANY($1)" statement's generic
// plan looks dearer than a one-id custom plan, so by default PostgreSQL
// plans it again on every execution (it cost the reads over half of
// PostgreSQL's time in make bench).
func TestReadsAreNotReplanned(t *testing.T) {
	url := testenv.DatabaseURL(t)
	db, err := postgres.Open(context.Background(), url+sep(url)+"pool_max_conns=1")
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
	var generic, custom int64
	err = db.Pool().QueryRow(context.Background(), `SELECT generic_plans, custom_plans FROM pg_prepared_statements
		WHERE statement LIKE '%FROM orders WHERE id = ANY%'`).Scan(&generic, &custom)
	if err != nil {
		t.Fatal(err)
	}
	if custom != 0 || generic < 10 {
		t.Fatalf("the order's read was planned %d times for itself and ran %d times on a generic plan; want 0 and at least 10", custom, generic)
	}

	// A URL that asks for PostgreSQL's own choice gets it.
	auto, err := postgres.Open(context.Background(), url+sep(url)+"plan_cache_mode=auto")
	if err != nil {
		t.Fatal(err)
	}
	defer auto.Close()
	var mode string
	if err := auto.Pool().QueryRow(context.Background(), `SHOW plan_cache_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "auto" {
		t.Fatalf("plan_cache_mode = %q with plan_cache_mode=auto in the URL", mode)
	}
}

func sep(url string) string {
	if strings.Contains(url, "?") {
		return "&"
	}
	return "?"
}
