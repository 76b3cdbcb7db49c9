package postgres

import (
	"context"
	"fmt"
	"time"
)

// ProviderEventSeen reports whether the provider's event id was handled.
func (db *DB) ProviderEventSeen(ctx context.Context, id string) (bool, error) {
	var seen bool
	if err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM provider_events WHERE id = $1)`, id).Scan(&seen); err != nil {
		return false, fmt.Errorf("provider event seen: %w", err)
	}
	return seen, nil
}

// ProviderEventHandled records that the provider's event id was handled.
func (db *DB) ProviderEventHandled(ctx context.Context, id, typ, orderID string, now time.Time) error {
	if _, err := db.pool.Exec(ctx, `INSERT INTO provider_events (id, type, order_id, received_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO NOTHING`, id, typ, orderID, now); err != nil {
		return fmt.Errorf("record provider event: %w", err)
	}
	return nil
}

// ForgetProviderEvents deletes the events handled before before.
func (db *DB) ForgetProviderEvents(ctx context.Context, before time.Time) (int64, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM provider_events WHERE received_at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("forget provider events: %w", err)
	}
	return tag.RowsAffected(), nil
}
