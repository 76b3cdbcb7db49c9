package postgres

import "context"

// OrderTableColumns names the columns orderTable maps, for the tests.
func OrderTableColumns() []string {
	var out []string
	for _, c := range orderTable {
		out = append(out, c.name)
	}
	return out
}

// MigrateUndistributed migrates the database's tables as on plain
// PostgreSQL, leaving their distribution (on Citus) to Distribute.
func (db *DB) MigrateUndistributed(ctx context.Context) error {
	citus := db.citus
	db.citus = false
	defer func() { db.citus = citus }()
	return db.Migrate(ctx)
}

// Distribute is the last step of Migrate on Citus.
func (db *DB) Distribute(ctx context.Context) error { return db.distribute(ctx) }
