package postgres

import (
	"context"
	"fmt"
	"strconv"
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

// MaxOpenCases is how many open cancellation requests and disputes the
// statistics list, the soonest due first; the counts cover them all.
const MaxOpenCases = 50

// SellerStats are a store's figures.
type SellerStats struct {
	ByStatus            map[order.Status]int64
	Paid                int64
	SellerCancellations int64
	OpenCancellations   []OpenCase
	OpenDisputes        []OpenCase
	// OpenCancellationCount and OpenDisputeCount count every open case,
	// listed or not.
	OpenCancellationCount int64
	OpenDisputeCount      int64
	RefundsInFlight       int64
	RefundAmounts         []order.Money
	// StoreFunded is what the store's own coupons took off its paid
	// orders, per currency.
	StoreFunded []order.Money
	// Days are the last StatsDays days (UTC), oldest first, each present.
	Days []DayFigures
}

// StatsDays is how many days the daily figures cover.
const StatsDays = 30

// DayFigures are a store's orders placed and paid on one day (UTC), and
// what was paid, per currency.
type DayFigures struct {
	Date    time.Time
	Orders  int64
	Paid    int64
	Revenue []order.Money
}

// SellerStats computes a store's figures.
func (db *DB) SellerStats(ctx context.Context, sellerID string, now time.Time) (SellerStats, error) {
	st := SellerStats{ByStatus: map[order.Status]int64{}}
	rows, _ := db.pool.Query(ctx, `SELECT status, count(*) FROM orders WHERE seller_id = $1 GROUP BY status`, sellerID)
	var status string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&status, &n}, func() error { st.ByStatus[order.Status(status)] = n; return nil }); err != nil {
		return st, fmt.Errorf("orders by status: %w", err)
	}
	err := db.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE o.status = 'CANCELLED' AND o.cancelled_by = 'seller')
		FROM orders o WHERE o.seller_id = $1 AND o.paid_attempt_id IS NOT NULL`, sellerID).
		Scan(&st.Paid, &st.SellerCancellations)
	if err != nil {
		return st, fmt.Errorf("cancellations: %w", err)
	}
	openCases := func(where, detail, kind string, count *int64) ([]OpenCase, error) {
		if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM orders o WHERE o.seller_id = $1 AND `+where, sellerID).Scan(count); err != nil {
			return nil, err
		}
		rows, _ := db.pool.Query(ctx, `SELECT o.id::text, `+detail+`, coalesce(d.due_at, 'epoch'::timestamptz)
			FROM orders o LEFT JOIN order_deadlines d ON d.order_id = o.id`+db.sameStore("d.seller_id", "o.seller_id")+` AND d.kind = $2
			WHERE o.seller_id = $1 AND `+where+` ORDER BY d.due_at NULLS LAST, o.id LIMIT `+strconv.Itoa(MaxOpenCases), sellerID, kind)
		cases, err := pgx.CollectRows(rows, pgx.RowToStructByPos[OpenCase])
		for i := range cases {
			if cases[i].DueAt.Equal(time.Unix(0, 0)) {
				cases[i].DueAt = time.Time{}
			}
		}
		return cases, err
	}
	if st.OpenCancellations, err = openCases(`o.cancellation->>'Status' = 'OPEN'`, `o.cancellation->>'Reason'`,
		string(order.DeadlineCancelAnswer), &st.OpenCancellationCount); err != nil {
		return st, fmt.Errorf("open cancellation requests: %w", err)
	}
	if st.OpenDisputes, err = openCases(`o.status = 'DISPUTED'`, `o.dispute->>'Status'`,
		string(order.DeadlineDisputeAnswer), &st.OpenDisputeCount); err != nil {
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
	// From the store's coupons to the orders holding them, not through
	// every paid order.
	rows, _ = db.pool.Query(ctx, `SELECT o.currency, sum((d ->> 'amount')::bigint)::bigint
		FROM coupons c JOIN order_coupons oc ON oc.coupon_id = c.id JOIN orders o ON o.id = oc.order_id AND o.seller_id = oc.seller_id
		CROSS JOIN LATERAL jsonb_array_elements(o.items) i
		CROSS JOIN LATERAL jsonb_array_elements(coalesce(i -> 'discounts', '[]')) d
		WHERE c.seller_id = $1 AND oc.seller_id = $1 AND o.paid_attempt_id IS NOT NULL AND d ->> 'coupon_id' = c.id::text
		GROUP BY o.currency ORDER BY o.currency`, sellerID)
	_, err = pgx.ForEachRow(rows, []any{&cur, &sum}, func() error {
		st.StoreFunded = append(st.StoreFunded, order.Money{Amount: sum, Currency: cur})
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("store-funded discounts: %w", err)
	}
	if st.Days, err = db.days(ctx, sellerID, now); err != nil {
		return st, fmt.Errorf("daily figures: %w", err)
	}
	return st, nil
}

// days computes the daily figures of the StatsDays days up to now's.
func (db *DB) days(ctx context.Context, sellerID string, now time.Time) ([]DayFigures, error) {
	today := now.UTC().Truncate(24 * time.Hour)
	first := today.AddDate(0, 0, -(StatsDays - 1))
	days := make([]DayFigures, StatsDays)
	for i := range days {
		days[i].Date = first.AddDate(0, 0, i)
	}
	at := func(d time.Time) *DayFigures {
		i := int(d.Sub(first).Hours() / 24)
		if i < 0 || i >= len(days) {
			return nil
		}
		return &days[i]
	}
	rows, _ := db.pool.Query(ctx, `SELECT date_trunc('day', created_at AT TIME ZONE 'UTC'), count(*) FROM orders
		WHERE seller_id = $1 AND created_at >= $2 GROUP BY 1`, sellerID, first)
	var day time.Time
	var n, sum int64
	if _, err := pgx.ForEachRow(rows, []any{&day, &n}, func() error {
		if d := at(day); d != nil {
			d.Orders = n
		}
		return nil
	}); err != nil {
		return nil, err
	}
	// An order counts on the day of its last "paid" (a payment whose capture
	// was refused was paid again), for its total in the store's currency
	// (a foreign buyer was charged in theirs).
	rows, _ = db.pool.Query(ctx, `SELECT date_trunc('day', p.at AT TIME ZONE 'UTC'), o.currency, count(*), sum(o.total_minor)::bigint
		FROM (SELECT e.order_id, max(e.occurred_at) AS at FROM order_events e
		      WHERE e.seller_id = $1 AND e.kind = 'paid' AND e.occurred_at >= $2 GROUP BY e.order_id) p
		JOIN orders o ON o.id = p.order_id AND o.seller_id = $1 WHERE o.paid_attempt_id IS NOT NULL
		GROUP BY 1, 2 ORDER BY 2`, sellerID, first)
	var cur string
	_, err := pgx.ForEachRow(rows, []any{&day, &cur, &n, &sum}, func() error {
		if d := at(day); d != nil {
			d.Paid += n
			d.Revenue = append(d.Revenue, order.Money{Amount: sum, Currency: cur})
		}
		return nil
	})
	return days, err
}

// EscalatedDisputes returns one page of the orders whose disputes wait for
// the platform, longest waiting first, and the next page's token ("" on
// the last). The orders are read in one round trip.
func (db *DB) EscalatedDisputes(ctx context.Context, pageSize int, pageToken string) ([]*order.Order, string, error) {
	var f filter
	f.and("status = 'DISPUTED' AND dispute->>'Status' = 'ESCALATED'")
	if err := f.after(pageToken, "(updated_at, id) > (?, ?::uuid)"); err != nil {
		return nil, "", err
	}
	where, args := f.where("ORDER BY updated_at, id", pageSize+1)
	type key struct {
		ID        string
		UpdatedAt time.Time
	}
	rows, _ := db.pool.Query(ctx, `SELECT id::text, updated_at FROM orders `+where, args...)
	keys, err := pgx.CollectRows(rows, pgx.RowToStructByPos[key])
	if err != nil {
		return nil, "", fmt.Errorf("escalated disputes: %w", err)
	}
	keys, next := trimPage(keys, pageSize, func(k key) (time.Time, string) { return k.UpdatedAt, k.ID })
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	os, err := db.getMany(ctx, ids)
	return os, next, err
}

// State is what the operators' metrics read of the record.
type State struct {
	OpenDeadlines     map[string]int64
	RefundsPending    int64
	RefundsOverdue    int64
	RefundBacklog     int64
	RefundsFailed     int64
	CaptureBacklog    int64
	OutboxUnpublished int64
	OutboxLag         time.Duration
}

// State counts open deadlines by kind, refunds pending, overdue and due for
// a try, paid orders not captured yet, and the events not yet published
// with the age of the oldest, in one round trip.
func (db *DB) State(ctx context.Context) (State, error) {
	st := State{OpenDeadlines: map[string]int64{}}
	b := &pgx.Batch{}
	b.Queue(`SELECT kind, count(*) FROM order_deadlines GROUP BY kind`).Query(func(rows pgx.Rows) error {
		var kind string
		var n int64
		_, err := pgx.ForEachRow(rows, []any{&kind, &n}, func() error { st.OpenDeadlines[kind] = n; return nil })
		return err
	})
	b.Queue(`SELECT count(*), count(*) FILTER (WHERE due_at < now()), count(*) FILTER (WHERE next_try_at <= now())
		FROM refunds WHERE status IN ('PENDING', 'PROCESSING')`).QueryRow(func(r pgx.Row) error {
		return r.Scan(&st.RefundsPending, &st.RefundsOverdue, &st.RefundBacklog)
	})
	b.Queue(`SELECT count(*) FROM refunds WHERE status = 'FAILED'`).QueryRow(func(r pgx.Row) error { return r.Scan(&st.RefundsFailed) })
	// What the capture worker will capture: every payment an order keeps
	// (the one that paid it, or a part's) until it is captured; one the
	// order let go (cancelled, a late payment) has no next capture and is
	// voided by its refund.
	b.Queue(`SELECT count(*) FROM payment_attempts
		WHERE status = 'SUCCEEDED' AND NOT captured AND next_capture_at IS NOT NULL`).QueryRow(func(r pgx.Row) error { return r.Scan(&st.CaptureBacklog) })
	b.Queue(`SELECT count(*), coalesce(extract(epoch FROM now() - min(occurred_at)), 0)::float8 FROM (
		SELECT occurred_at FROM event_queue
		UNION ALL SELECT occurred_at FROM event_places WHERE seq > (SELECT sent_seq FROM event_relay WHERE id = 1)) u`).QueryRow(func(r pgx.Row) error {
		var secs float64
		err := r.Scan(&st.OutboxUnpublished, &secs)
		st.OutboxLag = time.Duration(secs * float64(time.Second))
		return err
	})
	if err := db.pool.SendBatch(ctx, b).Close(); err != nil {
		return st, fmt.Errorf("state: %w", err)
	}
	return st, nil
}
