package relay_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/postgres"
	"github.com/souk-dev/souk/internal/relay"
	"github.com/souk-dev/souk/internal/testenv"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newOrders(t testing.TB, db *postgres.DB, n int) []string {
	t.Helper()
	var os []*order.Order
	var ids []string
	for range n {
		o, err := order.New(order.NewOrderParams{ID: uuid.NewString(), CheckoutID: uuid.NewString(), BuyerID: "alice", SellerID: "store-x",
			Currency: "USD", Items: []order.Item{{ProductID: uuid.NewString(), Quantity: 1, UnitPrice: 100}}, HandlingDays: 3,
			PaymentWindow: time.Hour, Now: time.Now().UTC().Truncate(time.Microsecond)})
		if err != nil {
			t.Fatal(err)
		}
		os, ids = append(os, o), append(ids, o.ID())
	}
	if err := db.CreateOrders(context.Background(), os); err != nil {
		t.Fatal(err)
	}
	return ids
}

// message writes one event on an order (a message of its conversation).
func message(db *postgres.DB, id string) error {
	_, err := db.Update(context.Background(), id, func(o *order.Order) error {
		_, err := o.SendMessage(time.Now().UTC().Truncate(time.Microsecond), uuid.NewString(), order.PartyBuyer, "hello", nil)
		return err
	})
	return err
}

// checkStream compares the stream with order_events row by row: every
// event once, each order's events in their sequence, nothing else.
func checkStream(t *testing.T, db *postgres.DB, rdb redis.UniversalClient, stream string) int {
	t.Helper()
	ctx := context.Background()
	entries, err := rdb.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	lastSeq := map[string]int64{}
	for _, e := range entries {
		id := e.Values["event_id"].(string)
		if seen[id] {
			t.Fatalf("event %s is in the stream twice", id)
		}
		seen[id] = true
		oid := e.Values["order_id"].(string)
		seq, _ := strconv.ParseInt(e.Values["sequence"].(string), 10, 64)
		if seq != lastSeq[oid]+1 {
			t.Fatalf("order %s: event %d follows %d in the stream", oid, seq, lastSeq[oid])
		}
		lastSeq[oid] = seq
	}
	rows, err := db.Pool().Query(ctx, `SELECT id::text FROM order_events`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		if !seen[id] {
			t.Fatalf("event %s is committed but not in the stream", id)
		}
		n++
	}
	if n != len(entries) {
		t.Fatalf("%d events committed, %d in the stream", n, len(entries))
	}
	return n
}

// An event whose id was taken early but whose transaction commits late is
// published all the same: the relay does not follow the highest id it saw.
func TestLateCommitIsNotLost(t *testing.T) {
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	ids := newOrders(t, db, 2)
	r := relay.New(db, rdb, relay.Config{Stream: prefix + "events", Retention: time.Hour, Interval: time.Second}, time.Now, quiet)

	// A change of the first order takes its event id, and stays open.
	tx, err := db.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT 1 FROM orders WHERE id = $1 AND seller_id = $2 FOR UPDATE`, ids[0], "store-x"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `WITH e AS (INSERT INTO order_events (order_id, sequence, kind, actor, occurred_at, status_after, version_after, seller_id)
		VALUES ($1, 2, 'late', 'system', now(), 'PENDING_PAYMENT', 2, 'store-x') RETURNING id, occurred_at)
		INSERT INTO event_queue SELECT id, occurred_at FROM e`, ids[0]); err != nil {
		t.Fatal(err)
	}
	// Later changes of the other order commit first and are published.
	for range 5 {
		if err := message(db, ids[1]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Round(ctx); err != nil {
		t.Fatal(err)
	}
	// Created, one per order, and the five messages.
	if n, _ := rdb.XLen(ctx, prefix+"events").Result(); n != 7 {
		t.Fatalf("%d events in the stream before the late commit, want 7", n)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if n := checkStream(t, db, rdb, prefix+"events"); n != 8 {
		t.Fatalf("%d events, want 8", n)
	}
}

// Two Souks in two schemas of one database (as the Citus run's tests are)
// each relay their own events: one at work does not stop the other. The
// relay's lock was one key in the whole database, and a relay at work in
// another schema made this one's rounds do nothing (TestTrimDropsManyPlaces
// failed so once in CI's Citus run, beside the end-to-end tests' relays).
func TestRelaysOfTwoSchemasDoNotStopEachOther(t *testing.T) {
	ctx := context.Background()
	url := testenv.DatabaseURL(t)
	a, b := openDB(t, url), openDB(t, testenv.OtherSchema(t, url))
	rdb, prefix := testenv.Redis(t)
	newOrders(t, a, 1)
	if n, err := a.SequenceEvents(ctx, 10); err != nil || n != 1 {
		t.Fatalf("sequenced %d (%v), want 1", n, err)
	}
	// The first schema's relay at work, in its transaction.
	publishing, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		_, err := a.PublishEvents(ctx, 10, func(int64, []postgres.OutboxEvent) error {
			close(publishing)
			<-release
			return nil
		})
		done <- err
	}()
	<-publishing
	newOrders(t, b, 2)
	n, err := relay.New(b, rdb, relay.Config{Stream: prefix + "events", Retention: time.Hour, Interval: time.Second}, time.Now, quiet).Round(ctx)
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err != nil || n != 2 {
		t.Fatalf("the second schema's relay published %d events (%v) while the first's worked, want 2", n, err)
	}
}

// A relay takes its turn on the relay's state row before it reads the
// queue, so that two relays that do not share an advisory lock (a replica
// of an older Souk, whose key was another, in a rolling upgrade) never give
// one event two places. Here the other relay is a transaction doing what
// the older relay did: it takes queued events (deleting them), and gives
// them places only after this relay has read the queue too.
func TestRelayTakesTurnsOnItsStateRow(t *testing.T) {
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	newOrders(t, db, 3)
	tx, err := db.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE taken ON COMMIT DROP AS
		WITH d AS (DELETE FROM event_queue RETURNING event_id, occurred_at) SELECT * FROM d`); err != nil {
		t.Fatal(err)
	}
	r := relay.New(db, rdb, relay.Config{Stream: prefix + "events", Retention: time.Hour, Interval: time.Second}, time.Now, quiet)
	done := make(chan error, 1)
	go func() {
		_, err := r.Round(ctx)
		done <- err
	}()
	time.Sleep(300 * time.Millisecond) // the round waits for the other relay
	_, err = tx.Exec(ctx, `WITH r AS (UPDATE event_relay SET last_seq = last_seq + (SELECT count(*) FROM taken) WHERE id = 1
			RETURNING last_seq - (SELECT count(*) FROM taken) AS last)
		INSERT INTO event_places (seq, event_id, occurred_at)
		SELECT (SELECT last FROM r) + row_number() OVER (ORDER BY event_id), event_id, occurred_at FROM taken`)
	if err == nil {
		err = tx.Commit(ctx)
	}
	var pgErr *pgconn.PgError
	if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "40P01") { // a deadlock's loser is the other relay: it would try again
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := r.Round(ctx); err != nil {
		t.Fatal(err)
	}
	var twice int
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM (SELECT event_id FROM event_places GROUP BY 1 HAVING count(*) > 1) d`).Scan(&twice); err != nil {
		t.Fatal(err)
	}
	if twice > 0 {
		t.Fatalf("%d events have two places", twice)
	}
	if n := checkStream(t, db, rdb, prefix+"events"); n != 3 {
		t.Fatalf("%d events, want 3", n)
	}
}

func openDB(t *testing.T, url string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// On Citus a change's transaction commits on the coordinator (its event's
// queue row) before it commits on the worker holding the order (the event
// row): another session may see the queue row first, for as long as the
// worker takes to commit, or until Citus recovers a worker that failed
// between the two. The relay gives such an event its place, then meets a
// place whose event it cannot see: it publishes the places before it and
// waits, and publishes it, in its place, once it commits. Here the worker's
// late commit is an open transaction holding the event row, and the
// coordinator's early one a queue row committed apart.
func TestEventSeenAfterItsPlaceIsNotLost(t *testing.T) {
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	ids := newOrders(t, db, 2)
	stream := prefix + "events"
	r := relay.New(db, rdb, relay.Config{Stream: stream, Retention: time.Hour, Interval: time.Second}, time.Now, quiet)
	if _, err := r.Round(ctx); err != nil { // the orders' created events
		t.Fatal(err)
	}
	worker, err := db.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = worker.Rollback(ctx) }()
	var id int64
	var at time.Time
	if err := worker.QueryRow(ctx, `INSERT INTO order_events (order_id, sequence, kind, actor, occurred_at, status_after, version_after, seller_id)
		VALUES ($1, 2, 'late', 'system', now(), 'PENDING_PAYMENT', 2, 'store-x') RETURNING id, occurred_at`, ids[0]).Scan(&id, &at); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool().Exec(ctx, `INSERT INTO event_queue (event_id, occurred_at) VALUES ($1, $2)`, id, at); err != nil {
		t.Fatal(err)
	}
	// Changes after it commit everywhere; the relay places them all.
	for range 3 {
		if err := message(db, ids[1]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.XLen(ctx, stream).Result(); n != 2 {
		t.Fatalf("%d events in the stream while a placed event is not visible, want the 2 placed before it", n)
	}
	if err := worker.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if n := checkStream(t, db, rdb, stream); n != 6 {
		t.Fatalf("%d events, want 6", n)
	}
}

// A relay that dies after adding events and before marking them, two
// relays at once, and a Redis that restarts with its data lost while events
// wait: afterwards every committed event is in the stream once, each order's
// in its sequence, and the entry ids (consumers' cursors) never change.
func TestRelayFaults(t *testing.T) {
	db := testenv.DB(t)
	rd := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rd.Addr, MaxRetries: -1})
	defer rdb.Close()
	ctx := context.Background()
	stream := "souk:events"
	ids := newOrders(t, db, 20)
	cfg := relay.Config{Stream: stream, Retention: time.Hour, Interval: 20 * time.Millisecond, Batch: 7}
	r := relay.New(db, rdb, cfg, time.Now, quiet)

	// Dies between adding and marking: the events are in the stream, not marked.
	for _, id := range ids[:5] {
		if err := message(db, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.SequenceEvents(ctx, 100); err != nil {
		t.Fatal(err)
	}
	crash := errors.New("killed")
	if _, err := db.PublishEvents(ctx, 100, func(last int64, evs []postgres.OutboxEvent) error {
		if err := r.Publish(ctx, last, evs); err != nil {
			return err
		}
		return crash
	}); !errors.Is(err, crash) {
		t.Fatalf("publish: %v", err)
	}
	if _, err := r.Round(ctx); err != nil {
		t.Fatal(err)
	}
	checkStream(t, db, rdb, stream)
	first, _ := rdb.XRange(ctx, stream, "-", "+").Result()

	// Two relays at once while 20 writers change 20 orders; Redis restarts
	// empty in the middle.
	rctx, stop := context.WithCancel(ctx)
	var relays sync.WaitGroup
	for range 2 {
		relays.Go(func() { relay.New(db, rdb, cfg, time.Now, quiet).Run(rctx) })
	}
	var writers sync.WaitGroup
	errs := make(chan error, 1000)
	for w, id := range ids {
		writers.Go(func() {
			for i := range 10 {
				if err := message(db, id); err != nil {
					errs <- fmt.Errorf("writer %d, event %d: %w", w, i, err)
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	rd.Stop()
	time.Sleep(200 * time.Millisecond)
	rd.Start()
	writers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "every event is published", func() bool {
		var left int
		_ = db.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM event_queue) + (SELECT count(*) FROM event_places WHERE seq > (SELECT sent_seq FROM event_relay))`).Scan(&left)
		return left == 0
	})
	stop()
	relays.Wait()
	if n := checkStream(t, db, rdb, stream); n != 20+5+200 {
		t.Fatalf("%d events, want %d", n, 20+5+200)
	}
	// The events published before the restart are back under their ids.
	again, _ := rdb.XRange(ctx, stream, "-", first[len(first)-1].ID).Result()
	if len(again) != len(first) {
		t.Fatalf("%d entries up to %s after the restart, %d before", len(again), first[len(first)-1].ID, len(first))
	}
	for i := range first {
		if again[i].ID != first[i].ID || again[i].Values["event_id"] != first[i].Values["event_id"] {
			t.Fatalf("entry %d was %s (event %v), is %s (event %v)", i, first[i].ID, first[i].Values["event_id"], again[i].ID, again[i].Values["event_id"])
		}
	}
	// A consumer group created now receives every event once.
	if err := rdb.XGroupCreate(ctx, stream, "audit", "0").Err(); err != nil {
		t.Fatal(err)
	}
	got := 0
	for {
		res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "audit", Consumer: "c1", Streams: []string{stream, ">"}, Count: 100, Block: -1}).Result()
		if errors.Is(err, redis.Nil) || len(res) == 0 || len(res[0].Messages) == 0 {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got += len(res[0].Messages)
	}
	if got != 225 {
		t.Fatalf("the consumer group received %d events, want 225", got)
	}
}

// The relay gives events their places without writing the event rows:
// each row is the one the change wrote (same physical place, same
// inserting transaction), so it was written once.
func TestRelayLeavesEventRowsAlone(t *testing.T) {
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	ids := newOrders(t, db, 2)
	for range 3 {
		if err := message(db, ids[0]); err != nil {
			t.Fatal(err)
		}
	}
	rows := func() map[string]string {
		rows, _ := db.Pool().Query(ctx, `SELECT id::text, ctid::text || '/' || xmin::text FROM order_events`)
		m := map[string]string{}
		var id, at string
		if _, err := pgx.ForEachRow(rows, []any{&id, &at}, func() error { m[id] = at; return nil }); err != nil {
			t.Fatal(err)
		}
		return m
	}
	before := rows()
	r := relay.New(db, rdb, relay.Config{Stream: prefix + "events", Retention: time.Hour, Interval: time.Second}, time.Now, quiet)
	if _, err := r.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if n := checkStream(t, db, rdb, prefix+"events"); n != 5 {
		t.Fatalf("%d events, want 5", n)
	}
	after := rows()
	for id, at := range before {
		if after[id] != at {
			t.Errorf("event %s was written again by the relay: %s, then %s", id, at, after[id])
		}
	}
	var queued int
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM event_queue`).Scan(&queued); err != nil || queued != 0 {
		t.Errorf("%d events still queued after the round (%v)", queued, err)
	}
	// The relay vacuums the queue as it goes (outside any transaction).
	if err := db.VacuumQueue(ctx); err != nil {
		t.Error(err)
	}
}

// Trimming the stream to the retention period drops the places of the
// events trimmed, and keeps the rest: a later republish starts from them.
func TestTrimDropsTrimmedPlaces(t *testing.T) {
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	ids := newOrders(t, db, 2)
	// The orders were placed three hours ago, and their conversation is now.
	for _, sql := range []string{`UPDATE order_events SET occurred_at = now() - interval '3 hours'`,
		`UPDATE event_queue SET occurred_at = now() - interval '3 hours'`} {
		if _, err := db.Pool().Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if err := message(db, ids[1]); err != nil {
			t.Fatal(err)
		}
	}
	stream := prefix + "events"
	r := relay.New(db, rdb, relay.Config{Stream: stream, Retention: time.Hour, Interval: time.Second}, time.Now, quiet)
	if _, err := r.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Trim(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.XLen(ctx, stream).Result(); err != nil || n != 3 {
		t.Fatalf("%d entries in the stream after the trim, want the 3 messages (%v)", n, err)
	}
	var first, n int64
	if err := db.Pool().QueryRow(ctx, `SELECT min(seq), count(*) FROM event_places`).Scan(&first, &n); err != nil {
		t.Fatal(err)
	}
	if first != 3 || n != 3 {
		t.Errorf("places %d from %d after the trim, want 3 from 3", n, first)
	}
	// The stream loses its data: the retention period comes back under the
	// same ids.
	if err := rdb.Del(ctx, stream).Err(); err != nil {
		t.Fatal(err)
	}
	if err := message(db, ids[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Round(ctx); err != nil {
		t.Fatal(err)
	}
	entries, err := rdb.XRange(ctx, stream, "-", "+").Result()
	if err != nil || len(entries) != 4 || entries[0].ID != "3-1" || entries[3].ID != "6-1" {
		t.Fatalf("after the loss the stream holds %d entries (%v), want 3-1 … 6-1", len(entries), err)
	}
}

// A trim drops all the places of trimmed events, however many (after an
// upgrade, every place of the past), not one batch of them.
func TestTrimDropsManyPlaces(t *testing.T) {
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	const old = 25000
	for _, sql := range []string{
		`INSERT INTO event_places (seq, event_id, occurred_at) SELECT g, g, now() - interval '3 hours' FROM generate_series(1, 25000) AS g`,
		`UPDATE event_relay SET last_seq = 25000, sent_seq = 25000, published_seq = 0`,
	} {
		if _, err := db.Pool().Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	newOrders(t, db, 2)
	r := relay.New(db, rdb, relay.Config{Stream: prefix + "events", Retention: time.Hour, Interval: time.Second}, time.Now, quiet)
	if _, err := r.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Trim(ctx); err != nil {
		t.Fatal(err)
	}
	var first, n int64
	if err := db.Pool().QueryRow(ctx, `SELECT min(seq), count(*) FROM event_places`).Scan(&first, &n); err != nil {
		t.Fatal(err)
	}
	if first != old+1 || n != 2 {
		t.Errorf("places %d from %d after the trim, want the 2 orders' from %d", n, first, old+1)
	}
}
