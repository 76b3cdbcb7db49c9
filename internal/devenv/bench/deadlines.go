package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/souk-dev/souk/internal/deadline"
	"github.com/souk-dev/souk/internal/order"
)

// Deadlines is what a batch of deadlines measured.
type Deadlines struct {
	N            int
	Took         time.Duration // from due to the last fired
	P50, P99     time.Duration // lag, fired − due
	Bare         time.Duration // the same cancellations as bare batched SQL (the burst only)
	Paths        map[string][2]float64
	BytesPerDead float64 // Redis memory per armed deadline (the burst only)
}

// ids of the orders numbered from first.
func ids(first, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = benchID("o", first+i)
	}
	return out
}

// due sets the payment deadlines of the orders (and their payment_due_at)
// to dues (one for all, or one each), dropping their reminders, in
// order_deadlines and on the orders' rows.
func due(ctx context.Context, pool *pgxpool.Pool, ids []string, dues []time.Time) error {
	if len(dues) == 1 {
		one := dues[0]
		dues = make([]time.Time, len(ids))
		for i := range dues {
			dues[i] = one
		}
	}
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM order_deadlines WHERE order_id = ANY($1::uuid[]) AND kind <> 'payment'`, ids)
	b.Queue(`UPDATE order_deadlines d SET due_at = v.due FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, due)
		WHERE d.order_id = v.id AND d.kind = 'payment'`, ids, dues)
	b.Queue(`UPDATE orders o SET payment_due_at = v.due, deadlines = jsonb_build_object('payment', v.due)
		FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, due) WHERE o.id = v.id`, ids, dues)
	return pool.SendBatch(ctx, b).Close()
}

// scheduler arms deadlines in the services' Redis as their horizon's
// arming does; it fires nothing.
func (b *bench) scheduler() *deadline.Scheduler {
	s := deadline.New(b.rdb, b.t.Prefix, b.soukDB, order.DefaultPolicy, func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.SetHorizon(time.Hour)
	return s
}

// usedMemory is the memory Redis gives the services' keys (their prefix),
// not the whole instance's: under make test other tests share the Redis
// and free keys meanwhile (TestSmoke once saw -105 bytes per deadline).
func usedMemory(ctx context.Context, b *bench) (float64, error) {
	var total float64
	iter := b.rdb.Scan(ctx, 0, b.t.Prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		n, err := b.rdb.MemoryUsage(ctx, iter.Val(), 0).Result()
		if errors.Is(err, redis.Nil) { // gone since the scan
			continue
		} else if err != nil {
			return 0, err
		}
		total += float64(n)
	}
	return total, iter.Err()
}

// burst: the payment windows of Plan.Burst unpaid orders end in the same
// second; the services cancel them all. Before that, the same
// cancellations as bare batched SQL on the copy of the record.
func (b *bench) burst(ctx context.Context) error {
	n := b.p.Burst
	if n == 0 {
		return nil
	}
	orders := ids(b.pools.burst, n)
	for _, db := range []*pgxpool.Pool{b.soukPool, b.sqlPool} {
		d := b.soukDB
		if db == b.sqlPool {
			d = b.sqlDB
		}
		if err := makeOrders(ctx, d, b.pools.burst, n, time.Hour); err != nil {
			return err
		}
	}
	// Bare: due a second ago, cancelled 1,000 a transaction.
	if err := due(ctx, b.sqlPool, orders, []time.Time{time.Now().Add(-time.Second)}); err != nil {
		return err
	}
	start := time.Now()
	if err := bareCancel(ctx, b.sqlPool); err != nil {
		return err
	}
	res := &Deadlines{N: n, Bare: time.Since(start)}
	b.res.Burst = res
	// Souk: armed ahead as the horizon arms them, due together a little later.
	mem0, err := usedMemory(ctx, b)
	if err != nil {
		return err
	}
	at := time.Now().UTC().Truncate(time.Second).Add(5*time.Second + time.Duration(n/20)*time.Millisecond)
	if err := due(ctx, b.soukPool, orders, []time.Time{at}); err != nil {
		return err
	}
	armed, err := b.scheduler().RearmAll(ctx)
	if err != nil {
		return err
	}
	mem1, err := usedMemory(ctx, b)
	if err != nil {
		return err
	}
	if armed > 0 {
		res.BytesPerDead = (mem1 - mem0) / float64(armed)
	}
	if time.Now().After(at) {
		return fmt.Errorf("arming %d deadlines outlasted their lead; raise it", n)
	}
	return b.settle(ctx, res, orders, at, at)
}

// settle waits until every order's payment window, due from first to
// last, has fired and reads how late, and by which path. It asks whether
// any is still open by due time, which the index answers at once: nothing
// else falls due in those seconds. (Counting the orders' open deadlines by
// id cost PostgreSQL 285 ms for 100,000, five times a second: a quarter of
// a core taken from the burst it measured.)
func (b *bench) settle(ctx context.Context, res *Deadlines, orders []string, first, last time.Time) error {
	before, err := b.fired(ctx)
	if err != nil {
		return err
	}
	deadlineBy := time.Now().Add(10*time.Minute + time.Until(last))
	for {
		var open bool
		if err := b.soukPool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM order_deadlines WHERE due_at BETWEEN $1 AND $2 AND kind = 'payment')`,
			first.Add(-time.Second), last.Add(time.Second)).Scan(&open); err != nil {
			return err
		}
		if !open {
			break
		}
		if time.Now().After(deadlineBy) {
			var n int
			_ = b.soukPool.QueryRow(ctx, `SELECT count(*) FROM order_deadlines WHERE order_id = ANY($1::uuid[])`, orders).Scan(&n)
			return fmt.Errorf("%d of %d deadlines still open after 10 minutes", n, len(orders))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	var fired time.Time
	var p50, p99 float64
	if err := b.soukPool.QueryRow(ctx, `SELECT max(e.occurred_at),
		percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM e.occurred_at - o.payment_due_at)),
		percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM e.occurred_at - o.payment_due_at))
		FROM order_events e JOIN orders o ON o.id = e.order_id
		WHERE e.order_id = ANY($1::uuid[]) AND e.kind = 'cancelled'`, orders).Scan(&fired, &p50, &p99); err != nil {
		return err
	}
	res.Took = fired.Sub(first)
	res.P50, res.P99 = secs(p50), secs(p99)
	after, err := b.fired(ctx)
	if err != nil {
		return err
	}
	res.Paths = map[string][2]float64{}
	for path, v := range after {
		res.Paths[path] = [2]float64{v[0] - before[path][0], v[1] - before[path][1]}
	}
	return nil
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// bareCancel is the burst's cancellations as plain SQL, 1,000 orders a
// transaction: lock them, cancel them, record the event, drop their
// deadlines and give their stock back.
func bareCancel(ctx context.Context, pool *pgxpool.Pool) error {
	for {
		var n int
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			rows, _ := tx.Query(ctx, `SELECT id FROM orders WHERE id IN (SELECT order_id FROM order_deadlines
				WHERE due_at <= now() AND kind = 'payment' ORDER BY due_at LIMIT 1000) FOR UPDATE SKIP LOCKED`)
			locked, err := pgx.CollectRows(rows, pgx.RowTo[[16]byte])
			if err != nil || len(locked) == 0 {
				return err
			}
			n = len(locked)
			b := &pgx.Batch{}
			b.Queue(`UPDATE orders SET status = 'CANCELLED', version = version + 1, updated_at = now(), cancel_reason = 'payment_timeout',
				cancelled_by = 'buyer', deadlines = NULL WHERE id = ANY($1::uuid[])`, locked)
			b.Queue(`WITH e AS (INSERT INTO order_events (order_id, sequence, kind, actor, occurred_at, note, status_after, version_after, seller_id)
				SELECT id, 2, 'cancelled', 'system', now(), 'payment window ended', 'CANCELLED', 2, 'bench-store' FROM unnest($1::uuid[]) AS id
				RETURNING id, occurred_at)
				INSERT INTO event_queue SELECT id, occurred_at FROM e`, locked)
			b.Queue(`DELETE FROM order_deadlines WHERE order_id = ANY($1::uuid[])`, locked)
			b.Queue(`UPDATE products p SET stock = p.stock + v.q FROM (SELECT (items->0->>'product_id')::uuid AS id, count(*) AS q
				FROM orders WHERE id = ANY($1::uuid[]) GROUP BY 1) v WHERE p.id = v.id`, locked)
			return tx.SendBatch(ctx, b).Close()
		})
		if err != nil || n == 0 {
			return err
		}
	}
}

// trickle: Plan.Trickle payment windows end one after another over 30
// seconds (a tenth of it for a small plan), armed ahead as the horizon
// arms them.
func (b *bench) trickle(ctx context.Context) error {
	n := b.p.Trickle
	if n == 0 {
		return nil
	}
	span := 30 * time.Second
	if b.p.Duration < time.Second {
		span = 3 * time.Second
	}
	if err := makeOrders(ctx, b.soukDB, b.pools.trickle, n, time.Hour); err != nil {
		return err
	}
	orders := ids(b.pools.trickle, n)
	first := time.Now().UTC().Add(3 * time.Second)
	dues := make([]time.Time, n)
	for i := range dues {
		dues[i] = first.Add(span * time.Duration(i) / time.Duration(n))
	}
	if err := due(ctx, b.soukPool, orders, dues); err != nil {
		return err
	}
	if _, err := b.scheduler().RearmAll(ctx); err != nil {
		return err
	}
	res := &Deadlines{N: n}
	b.res.Trickle = res
	if err := b.settle(ctx, res, orders, dues[0], dues[n-1]); err != nil {
		return err
	}
	res.Took = 0 // the trickle's figure is its lag
	return nil
}
