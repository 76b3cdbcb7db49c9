package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/souk-dev/souk/internal/order"
)

// Request names a client's request that must change an order at most once
// (a mobile app retries what it could not see answered): Scope is who made
// it and through which call, ID the client's request id, Fingerprint a
// keyed hash of its parameters.
type Request struct {
	Scope, ID, Fingerprint string
}

type requestKey struct{}

// WithRequest makes the order changes made with ctx (Update, UpdateSeen)
// record r in their transaction, and answer a repeat of r with ErrReplayed
// and the order as it stands instead of changing it again. An empty ID
// records nothing.
func WithRequest(ctx context.Context, r Request) context.Context {
	if r.ID == "" {
		return ctx
	}
	return context.WithValue(ctx, requestKey{}, r)
}

func requestOf(ctx context.Context) (Request, bool) {
	r, ok := ctx.Value(requestKey{}).(Request)
	return r, ok
}

// ErrReplayed says a request was already applied: the order returned with
// it is the order as it stands, not changed again.
var ErrReplayed = errors.New("request already applied")

// queueRequest queues the record of ctx's request, if any, for order id.
func queueRequest(ctx context.Context, b *pgx.Batch, orderID string, now time.Time) {
	if r, ok := requestOf(ctx); ok {
		b.Queue(`INSERT INTO request_ids (scope, id, fingerprint, order_id, created_at) VALUES ($1, $2, $3, $4, $5)`,
			r.Scope, r.ID, r.Fingerprint, orderID, now)
	}
}

// isRequestRepeat reports whether err is the record of a request failing
// because the request was recorded before (a retry racing the first).
func isRequestRepeat(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.ConstraintName == "request_ids_pkey"
}

// replayed answers a request seen before: ErrReplayed with the order as it
// stands, or ErrIdempotencyKeyReused if the id came with other parameters.
// It returns found false for a request not seen.
func (db *DB) replayed(ctx context.Context, id string) (*order.Order, bool, error) {
	r, ok := requestOf(ctx)
	if !ok {
		return nil, false, nil
	}
	var fingerprint string
	err := db.pool.QueryRow(ctx, `SELECT fingerprint FROM request_ids WHERE scope = $1 AND id = $2`, r.Scope, r.ID).Scan(&fingerprint)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("look up request %q: %w", r.ID, err)
	case fingerprint != r.Fingerprint:
		return nil, true, fmt.Errorf("%w: request_id %q came with other parameters", order.ErrIdempotencyKeyReused, r.ID)
	}
	o, err := db.Get(ctx, id)
	if err != nil {
		return nil, true, err
	}
	return o, true, ErrReplayed
}

// ForgetRequests deletes the requests recorded before before.
func (db *DB) ForgetRequests(ctx context.Context, before time.Time) (int64, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM request_ids WHERE created_at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("forget requests: %w", err)
	}
	return tag.RowsAffected(), nil
}
