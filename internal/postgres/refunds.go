package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/souk-dev/souk/internal/order"
)

const refundColumns = `id, attempt_id, amount_minor, currency, method, provider_ref, status, reason, due_at, tries,
	next_try_at, last_error, refund_ref, created_at, updated_at, completed_at, settled_by, settlement_note, fx`

// scanRefund reads refundColumns, then any extra columns into extra.
func scanRefund(row pgx.Row, extra ...any) (order.Refund, error) {
	var r order.Refund
	var method, status string
	var completed *time.Time
	err := row.Scan(append([]any{&r.ID, &r.AttemptID, &r.Amount.Amount, &r.Amount.Currency, &method, &r.ProviderRef, &status, &r.Reason,
		&r.DueAt, &r.Tries, &r.NextTryAt, &r.LastError, &r.RefundRef, &r.CreatedAt, &r.UpdatedAt, &completed, &r.SettledBy,
		&r.SettlementNote, &r.FX}, extra...)...)
	r.Method, r.Status = order.Method(method), order.RefundStatus(status)
	if completed != nil {
		r.CompletedAt = *completed
	}
	return r, err
}

// nameRefunds gives new refunds their ids (the provider's idempotency key).
func nameRefunds(rs []order.Refund) {
	for i := range rs {
		if rs[i].ID == "" {
			rs[i].ID = uuid.NewString()
		}
	}
}

// queueRefunds queues the insert of new refunds and the write-back of
// changed ones (all named by nameRefunds). Every refund change goes through
// its order's lock, so a plain upsert loses nothing.
func queueRefunds(b *pgx.Batch, s, old order.Stored) {
	for i := range s.Refunds {
		r := &s.Refunds[i]
		if slices.Contains(old.Refunds, *r) {
			continue
		}
		var completed *time.Time
		if !r.CompletedAt.IsZero() {
			completed = &r.CompletedAt
		}
		b.Queue(`INSERT INTO refunds (`+refundColumns+`, order_id, buyer_id, seller_id)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22)
			ON CONFLICT (id, seller_id) DO UPDATE SET status = EXCLUDED.status, tries = EXCLUDED.tries,
			next_try_at = EXCLUDED.next_try_at, last_error = EXCLUDED.last_error, refund_ref = EXCLUDED.refund_ref,
			updated_at = EXCLUDED.updated_at, completed_at = EXCLUDED.completed_at, settled_by = EXCLUDED.settled_by,
			settlement_note = EXCLUDED.settlement_note, fx = EXCLUDED.fx`,
			r.ID, r.AttemptID, r.Amount.Amount, r.Amount.Currency, string(r.Method), r.ProviderRef, string(r.Status), r.Reason,
			r.DueAt, r.Tries, r.NextTryAt, r.LastError, r.RefundRef, r.CreatedAt, r.UpdatedAt, completed, r.SettledBy,
			r.SettlementNote, r.FX, s.ID, s.BuyerID, s.SellerID)
	}
}

// RefundRef names a refund and its order.
type RefundRef struct {
	OrderID  string
	RefundID string
}

// DueRefunds returns up to limit refunds the worker may (re)try at now:
// owed ones whose back-off has passed, and ones whose worker's lease ran out.
func (db *DB) DueRefunds(ctx context.Context, now time.Time, limit int) ([]RefundRef, error) {
	rows, _ := db.pool.Query(ctx, `SELECT order_id::text, id::text FROM refunds
		WHERE status IN ('PENDING', 'PROCESSING') AND next_try_at <= $1 ORDER BY next_try_at LIMIT $2`, now, limit)
	refs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[RefundRef])
	if err != nil {
		return nil, fmt.Errorf("due refunds: %w", err)
	}
	return refs, nil
}

// FailedRefunds returns one page of the refunds the provider refused for
// good, oldest first, and the token of the next page ("" on the last).
func (db *DB) FailedRefunds(ctx context.Context, pageSize int, pageToken string) ([]BuyerRefund, string, error) {
	var f filter
	f.and("status = 'FAILED'")
	if err := f.after(pageToken, "(updated_at, id) > (?, ?::uuid)"); err != nil {
		return nil, "", err
	}
	where, args := f.where("ORDER BY updated_at, id", pageSize+1)
	out, err := db.refundsWhere(ctx, where, args)
	if err != nil {
		return nil, "", fmt.Errorf("failed refunds: %w", err)
	}
	out, next := trimPage(out, pageSize, func(r BuyerRefund) (time.Time, string) { return r.UpdatedAt, r.ID })
	return out, next, nil
}

// refundsWhere reads the refunds a filter's clause picks, with their orders.
func (db *DB) refundsWhere(ctx context.Context, where string, args []any) ([]BuyerRefund, error) {
	rows, _ := db.pool.Query(ctx, `SELECT `+refundColumns+`, order_id::text FROM refunds `+where, args...)
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (BuyerRefund, error) {
		var br BuyerRefund
		var err error
		br.Refund, err = scanRefund(r, &br.OrderID)
		return br, err
	})
}

// BuyerRefund is a refund with its order, for the buyer's list.
type BuyerRefund struct {
	OrderID string
	order.Refund
}

// ListRefunds returns one page of a buyer's refunds, newest first, and the
// token of the next page ("" on the last).
func (db *DB) ListRefunds(ctx context.Context, buyerID string, pageSize int, pageToken string) ([]BuyerRefund, string, error) {
	var f filter
	f.and("buyer_id = ?", buyerID)
	if err := f.after(pageToken, "(created_at, id) < (?, ?::uuid)"); err != nil {
		return nil, "", err
	}
	where, args := f.where("ORDER BY created_at DESC, id DESC", pageSize+1)
	out, err := db.refundsWhere(ctx, where, args)
	if err != nil {
		return nil, "", fmt.Errorf("list refunds: %w", err)
	}
	out, next := trimPage(out, pageSize, func(r BuyerRefund) (time.Time, string) { return r.CreatedAt, r.ID })
	return out, next, nil
}

// AttemptRef names a payment attempt and its order.
type AttemptRef struct {
	OrderID   string
	AttemptID string
}

// UncapturedAttempts returns up to limit payments that paid an order and
// are due for a capture at now, the longest waiting first. Each backs off
// on its own (NextCaptureAt), so failing ones do not starve the others.
func (db *DB) UncapturedAttempts(ctx context.Context, now time.Time, limit int) ([]AttemptRef, error) {
	return db.attemptRefs(ctx, `payment_attempts WHERE status = 'SUCCEEDED' AND NOT captured AND next_capture_at <= $1
		ORDER BY next_capture_at`, limit, now)
}

// UnansweredAttempts returns up to limit attempts without a provider
// answer since before: still PROCESSING, or CANCELED with their order
// before the answer came. The answer was lost (a time-out, a broken
// connection, a stopped service), so reconciliation asks the provider what
// became of them. Attempts failed as never received whose second look is
// due at now come with them.
func (db *DB) UnansweredAttempts(ctx context.Context, now, before time.Time, limit int) ([]AttemptRef, error) {
	return db.attemptRefs(ctx, `(SELECT order_id, id, updated_at AS at FROM payment_attempts
		WHERE provider_ref = '' AND (status = 'PROCESSING' OR status = 'CANCELED' AND decline_code = '') AND updated_at < $2
		UNION ALL SELECT order_id, id, recheck_at FROM payment_attempts WHERE recheck_at <= $1) a ORDER BY at`, limit, now, before)
}

func (db *DB) attemptRefs(ctx context.Context, fromOrder string, limit int, args ...any) ([]AttemptRef, error) {
	refs, err := read(ctx, func() ([]AttemptRef, error) {
		rows, _ := db.pool.Query(ctx, `SELECT order_id::text, id::text FROM `+fromOrder+`
			LIMIT `+fmt.Sprint(limit), args...)
		return pgx.CollectRows(rows, pgx.RowToStructByPos[AttemptRef])
	})
	if err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	return refs, nil
}

// ClaimIdempotencyKey records that key was first used, in scope, for a
// request with fingerprint; a key already used with another fingerprint is
// refused with order.ErrIdempotencyKeyReused.
// It reports whether this call made the claim (fresh), rather than finding
// the key claimed before.
func (db *DB) ClaimIdempotencyKey(ctx context.Context, scope, key, fingerprint string, now time.Time) (fresh bool, err error) {
	_, fresh, err = db.claimKey(ctx, scope, key, fingerprint, now, "")
	return fresh, err
}

// ClaimIdempotencyKeyFor claims a key as ClaimIdempotencyKey does and, in
// the same statement, returns the buyer of the order the request is for
// ("" when there is no such order): a payment's two first checks in one
// round trip.
func (db *DB) ClaimIdempotencyKeyFor(ctx context.Context, scope, key, fingerprint string, now time.Time, orderID string) (string, error) {
	buyer, _, err := db.claimKey(ctx, scope, key, fingerprint, now, orderID)
	return buyer, err
}

func (db *DB) claimKey(ctx context.Context, scope, key, fingerprint string, now time.Time, orderID string) (buyerID string, fresh bool, err error) {
	var stored, buyer *string
	var inserted *bool
	// The order's store routes the read of its buyer (an unknown order
	// has none, and no buyer).
	var id, seller *string
	if orderID != "" {
		ks, err := read(ctx, func() ([]orderKey, error) { return db.keysOf(ctx, "orders", []string{orderID}) })
		if err != nil {
			return "", false, fmt.Errorf("claim idempotency key: %w", err)
		}
		if len(ks) == 1 {
			id, seller = &ks[0].id, &ks[0].seller
		}
	}
	// A second try sees a row that a concurrent first use committed while
	// this statement's snapshot was already taken.
	for range 2 {
		err = db.pool.QueryRow(ctx, `WITH ins AS (
				INSERT INTO idempotency_keys (scope, key, fingerprint, created_at) VALUES ($1, $2, $3, $4)
				ON CONFLICT (scope, key) DO NOTHING RETURNING fingerprint)
			SELECT claim.fingerprint, claim.fresh, (SELECT buyer_id FROM orders WHERE id = $5::uuid AND seller_id = $6)
			FROM (SELECT 1) one LEFT JOIN LATERAL (
				SELECT fingerprint, true AS fresh FROM ins UNION ALL
				SELECT fingerprint, false FROM idempotency_keys WHERE scope = $1 AND key = $2 LIMIT 1) claim ON true`,
			scope, key, fingerprint, now, id, seller).Scan(&stored, &inserted, &buyer)
		if err != nil || stored != nil {
			break
		}
	}
	switch {
	case err != nil:
		return "", false, fmt.Errorf("claim idempotency key: %w", err)
	case stored == nil:
		return "", false, fmt.Errorf("claim idempotency key: %w", pgx.ErrNoRows)
	case *stored != fingerprint:
		return "", false, fmt.Errorf("%w: key %q was used for another request", order.ErrIdempotencyKeyReused, key)
	case buyer == nil:
		return "", *inserted, nil
	}
	return *buyer, *inserted, nil
}

// ForgetIdempotencyKeys deletes keys created before before; they are kept
// at least 24 hours (the service uses 30 days).
func (db *DB) ForgetIdempotencyKeys(ctx context.Context, before time.Time) (int64, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("forget idempotency keys: %w", err)
	}
	return tag.RowsAffected(), nil
}
