package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// GroupPosition returns the place up to which consumer group name
// acknowledged every event, and whether the group is known.
func (db *DB) GroupPosition(ctx context.Context, name string) (int64, bool, error) {
	var pos int64
	err := db.pool.QueryRow(ctx, `SELECT acked_to FROM consumer_groups WHERE name = $1`, name).Scan(&pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("group position: %w", err)
	}
	return pos, true, nil
}

// SaveGroupPosition records that group name acknowledged every event up to
// place pos; a position never moves back.
func (db *DB) SaveGroupPosition(ctx context.Context, name string, pos int64) error {
	if _, err := db.pool.Exec(ctx, `INSERT INTO consumer_groups (name, acked_to, updated_at) VALUES ($1, $2, now())
		ON CONFLICT (name) DO UPDATE SET acked_to = greatest(consumer_groups.acked_to, EXCLUDED.acked_to), updated_at = now()`,
		name, pos); err != nil {
		return fmt.Errorf("save group position: %w", err)
	}
	return nil
}
