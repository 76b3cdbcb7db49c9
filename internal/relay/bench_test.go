package relay_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/souk-dev/souk/internal/relay"
	"github.com/souk-dev/souk/internal/testenv"
)

// BenchmarkRelay measures the relay's throughput (events/s from the outbox
// to the stream, sequenced and marked published) next to the bare rate of
// the same Redis taking the same entries by XADD, 500 a pipeline, in the
// same run: the relay's share of what Redis alone allows.
func BenchmarkRelay(b *testing.B) {
	db := testenv.DB(b)
	rdb, prefix := testenv.Redis(b)
	ctx := context.Background()
	const events = 20000
	ids := newOrders(b, db, 20)
	// The outbox rows, as 20 orders' conversations would write them.
	if _, err := db.Pool().Exec(ctx, `WITH e AS (INSERT INTO order_events (order_id, sequence, kind, actor, occurred_at, note, detail, status_after,
			version_after, seller_id)
		SELECT o.id, 1 + g, 'message_sent', 'buyer:alice', now(), 'm', '{"text":"hello there, is it still available?"}', 'PENDING_PAYMENT', 1 + g, 'store-x'
		FROM unnest($1::uuid[]) AS o(id), generate_series(1, $2::int) AS g RETURNING id, occurred_at)
		INSERT INTO event_queue SELECT id, occurred_at FROM e`, ids, events/len(ids)); err != nil {
		b.Fatal(err)
	}
	var relayRate, bareRate float64
	for i := 0; b.Loop(); i++ {
		if i > 0 {
			if _, err := db.Pool().Exec(ctx, `WITH p AS (DELETE FROM event_places RETURNING event_id, occurred_at)
				INSERT INTO event_queue SELECT event_id, occurred_at FROM p`); err != nil {
				b.Fatal(err)
			}
			if _, err := db.Pool().Exec(ctx, `UPDATE event_relay SET last_seq = 0, published_seq = 0, sent_seq = 0`); err != nil {
				b.Fatal(err)
			}
		}
		stream := prefix + "events-" + strconv.Itoa(i)
		r := relay.New(db, rdb, relay.Config{Stream: stream, Retention: time.Hour, Interval: time.Second}, time.Now, quiet)
		start := time.Now()
		n, err := r.Round(ctx)
		if err != nil || n < events {
			b.Fatalf("relayed %d: %v", n, err)
		}
		relayRate = float64(n) / time.Since(start).Seconds()

		entries, err := rdb.XRange(ctx, stream, "-", "+").Result()
		if err != nil {
			b.Fatal(err)
		}
		bare := stream + "-bare"
		start = time.Now()
		for j := 0; j < len(entries); j += 500 {
			pipe := rdb.Pipeline()
			for _, e := range entries[j:min(j+500, len(entries))] {
				pipe.XAdd(ctx, &redis.XAddArgs{Stream: bare, ID: e.ID, Values: e.Values})
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
		bareRate = float64(len(entries)) / time.Since(start).Seconds()
		rdb.Del(ctx, stream, bare)
	}
	b.ReportMetric(relayRate, "relay-events/s")
	b.ReportMetric(bareRate, "bare-xadd/s")
	b.ReportMetric(relayRate/bareRate, "relay/bare")
}
