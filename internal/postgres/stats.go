package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/souk-dev/souk/internal/order"
)

// OpenCase is an open cancellation request or dispute with its deadline
// (zero when none runs, as for an escalated dispute).
type OpenCase struct {
	OrderID string
	Detail  string
	DueAt   time.Time
}

// SellerStats are a store's figures.
type SellerStats struct {
	ByStatus            map[order.Status]int64
	Paid                int64
	SellerCancellations int64
	OpenCancellations   []OpenCase
	OpenDisputes        []OpenCase
	RefundsInFlight     int64
	RefundAmounts       []order.Money
}

// SellerStats computes a store's figures.
func (db *DB) SellerStats(ctx context.Context, sellerID string) (SellerStats, error) {
	st := SellerStats{ByStatus: map[order.Status]int64{}}
	rows, _ := db.pool.Query(ctx, `SELECT status, count(*) FROM orders WHERE seller_id = $1 GROUP BY status`, sellerID)
	var status string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&status, &n}, func() error { st.ByStatus[order.Status(status)] = n; return nil }); err != nil {
		return st, fmt.Errorf("orders by status: %w", err)
	}
	err := db.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE o.status = 'CANCELLED' AND o.cancelled_by = 'seller')
		FROM orders o WHERE o.seller_id = $1
		AND EXISTS (SELECT 1 FROM payment_attempts a WHERE a.order_id = o.id AND a.status = 'SUCCEEDED')`, sellerID).
		Scan(&st.Paid, &st.SellerCancellations)
	if err != nil {
		return st, fmt.Errorf("cancellations: %w", err)
	}
	openCases := func(where, detail, kind string) ([]OpenCase, error) {
		rows, _ := db.pool.Query(ctx, `SELECT o.id::text, `+detail+`, coalesce(d.due_at, 'epoch'::timestamptz)
			FROM orders o LEFT JOIN order_deadlines d ON d.order_id = o.id AND d.kind = $2
			WHERE o.seller_id = $1 AND `+where+` ORDER BY d.due_at NULLS LAST, o.id`, sellerID, kind)
		cases, err := pgx.CollectRows(rows, pgx.RowToStructByPos[OpenCase])
		for i := range cases {
			if cases[i].DueAt.Equal(time.Unix(0, 0)) {
				cases[i].DueAt = time.Time{}
			}
		}
		return cases, err
	}
	if st.OpenCancellations, err = openCases(`o.cancellation->>'Status' = 'OPEN'`, `o.cancellation->>'Reason'`, string(order.DeadlineCancelAnswer)); err != nil {
		return st, fmt.Errorf("open cancellation requests: %w", err)
	}
	if st.OpenDisputes, err = openCases(`o.status = 'DISPUTED'`, `o.dispute->>'Status'`, string(order.DeadlineDisputeAnswer)); err != nil {
		return st, fmt.Errorf("open disputes: %w", err)
	}
	rows, _ = db.pool.Query(ctx, `SELECT currency, count(*), sum(amount_minor)::bigint FROM refunds
		WHERE seller_id = $1 AND status IN ('PENDING', 'PROCESSING') GROUP BY currency ORDER BY currency`, sellerID)
	var cur string
	var count, sum int64
	_, err = pgx.ForEachRow(rows, []any{&cur, &count, &sum}, func() error {
		st.RefundsInFlight += count
		st.RefundAmounts = append(st.RefundAmounts, order.Money{Amount: sum, Currency: cur})
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("refunds in flight: %w", err)
	}
	return st, nil
}

// EscalatedDisputes returns up to limit orders whose disputes wait for the
// platform, longest waiting first.
func (db *DB) EscalatedDisputes(ctx context.Context, limit int) ([]*order.Order, error) {
	rows, _ := db.pool.Query(ctx, `SELECT id::text FROM orders WHERE status = 'DISPUTED' AND dispute->>'Status' = 'ESCALATED'
		ORDER BY updated_at LIMIT $1`, limit)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("escalated disputes: %w", err)
	}
	out := make([]*order.Order, 0, len(ids))
	for _, id := range ids {
		o, err := db.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}
