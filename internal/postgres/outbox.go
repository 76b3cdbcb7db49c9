package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// relayTurn is a relay's turn to hand out stream places and publish (the
// stream's order is theirs), one relay at a time: an advisory lock that
// another relay holds makes it give up at once (a replica standing by), and
// then the relay's state row, held to the end of the transaction. The lock
// is the schema's, not the database's: Souks in two schemas of one database
// (the Citus run's tests) relay apart. The row is the guard that does not
// depend on the key: relays that do not share one (an older Souk's relay in
// a rolling upgrade, whose key was the database's) take turns on it, never
// reading the queue together and giving an event two places. It returns
// the relay's state as the turn began.
const relayTurn = `SELECT published_seq, sent_seq FROM event_relay
	WHERE id = 1 AND pg_try_advisory_xact_lock(hashtextextended('souk-relay:' || current_schema(), 0))
	FOR UPDATE`

// OutboxEvent is a history event on its way to the event stream.
type OutboxEvent struct {
	ID         int64
	StreamSeq  int64
	OrderID    string
	BuyerID    string
	SellerID   string
	Sequence   int64
	Kind       string
	Actor      string
	OccurredAt time.Time
	Note       string
	Adjustment []byte // JSON, or nil
	Detail     []byte // JSON, or nil
	Currency   string
	Status     string
	Version    int64
}

// relayPlans is how the relay's statements are planned: on generic plans,
// with no table scanned. The relay reads and writes a batch at a time by
// keys (the places' seq, the events' id, the orders' key, the queue's rows
// by ctid), so each of its plans walks an index whatever the tables hold.
// Left to choose, PostgreSQL priced the generic plan of a batch of 500
// places joined to 20,000 events as a hash of every event (10 ms for 100
// places), and the custom plan of the handful of places above the last
// sent (a constant there) as an index walk: cheaper, so the read of the
// next places was planned anew on most rounds (TestRelayIsNotReplanned;
// TestSmoke under CI's load saw 723 plans in 1,295 calls). The queue's heap is mostly dead rows until a vacuum, so
// PostgreSQL, seeing few live rows, would read and sort all of it rather
// than walk its key (1,000 buffers a round in make bench, against the
// index's few).
//
// On Citus the plans stay PostgreSQL's choice, with no table scanned: Citus
// cannot make a generic plan of the read of the next places (places on the
// coordinator joined to events on the workers: "could not create
// distributed plan").
func (db *DB) relayPlans() string {
	if db.citus {
		return `SET LOCAL enable_seqscan = off`
	}
	return `SELECT set_config('plan_cache_mode', 'force_generic_plan', true), set_config('enable_seqscan', 'off', true)`
}

// relayState is the relay's state row: the stream place of the last event
// the stream is known to hold (0: not checked since a republish) and of the
// last event sent to it.
type relayState struct {
	published, sent int64
}

// inRelayTx runs fn in a transaction holding the relay's turn (relayTurn),
// with the relay's state as the turn began; if another relay has the turn,
// fn does not run and ran is false. A transaction that loses a deadlock
// (with a relay that took its turn otherwise) runs again.
//
// The relay's statements run under relayPlans.
func (db *DB) inRelayTx(ctx context.Context, fn func(pgx.Tx, relayState) error) (ran bool, err error) {
	err = db.inTx(ctx, func(tx pgx.Tx) error {
		ran = false // a retried transaction asks again
		var st relayState
		b := &pgx.Batch{}
		b.Queue(db.relayPlans())
		b.Queue(relayTurn).QueryRow(func(r pgx.Row) error { return r.Scan(&st.published, &st.sent) })
		if err := tx.SendBatch(ctx, b).Close(); errors.Is(err, pgx.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		ran = true
		return fn(tx, st)
	})
	return ran, err
}

// SequenceEvents moves up to limit committed events from the queue of
// events without a stream place to the next places, in the order of their
// ids, and commits. Events of one order commit in their sequence (each
// change holds the order's row), so they get their places in that order; an
// event committed late (its id taken long before) simply gets a later
// place: none is skipped. It returns how many it sequenced.
func (db *DB) SequenceEvents(ctx context.Context, limit int) (int, error) {
	n := 0
	_, err := db.inRelayTx(ctx, func(tx pgx.Tx, _ relayState) error {
		// The queue is read by its key, never scanned (relayPlans). The
		// rows read are deleted where they are (by ctid), with no second
		// search. The limit is written in, as filter.where does, so that a
		// generic plan knows it.
		var (
			tids []pgtype.TID
			ids  []int64
			at   []time.Time
		)
		b := &pgx.Batch{}
		b.Queue(`SELECT ctid, event_id, occurred_at FROM event_queue ORDER BY event_id LIMIT ` + strconv.Itoa(limit)).Query(func(rows pgx.Rows) error {
			var tid pgtype.TID
			var id int64
			var t time.Time
			_, err := pgx.ForEachRow(rows, []any{&tid, &id, &t}, func() error {
				tids, ids, at = append(tids, tid), append(ids, id), append(at, t)
				return nil
			})
			return err
		})
		if err := tx.SendBatch(ctx, b).Close(); err != nil || len(ids) == 0 {
			return err
		}
		n = len(ids)
		b = &pgx.Batch{}
		b.Queue(`DELETE FROM event_queue WHERE ctid = ANY($1::tid[])`, tids)
		b.Queue(`WITH r AS (UPDATE event_relay SET last_seq = last_seq + $3 WHERE id = 1 RETURNING last_seq - $3 AS last)
			INSERT INTO event_places (seq, event_id, occurred_at)
			SELECT (SELECT last FROM r) + v.n, v.id, v.at FROM unnest($1::bigint[], $2::timestamptz[]) WITH ORDINALITY AS v(id, at, n)`,
			ids, at, n)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return 0, fmt.Errorf("sequence events: %w", err)
	}
	return n, nil
}

// VacuumQueue vacuums the queue of events without a place, unless a
// vacuum of it is already running.
func (db *DB) VacuumQueue(ctx context.Context) error {
	if _, err := db.pool.Exec(ctx, `VACUUM (SKIP_LOCKED) event_queue`); err != nil {
		return fmt.Errorf("vacuum the event queue: %w", err)
	}
	return nil
}

// PublishEvents hands up to limit sequenced, unpublished events to publish
// in stream order, with the stream place of the last event published before
// them, and marks them published if it returns nil. It returns how many it
// published; publish's error is returned as it is.
func (db *DB) PublishEvents(ctx context.Context, limit int, publish func(last int64, evs []OutboxEvent) error) (int, error) {
	n := 0
	var perr error
	_, err := db.inRelayTx(ctx, func(tx pgx.Tx, st relayState) error {
		last, sent := st.published, st.sent
		// The next places first, then their events and orders: an event's
		// key is (id, seller_id), so a join of places with events by id
		// alone is not known to find one event each, and a plan costed
		// before the limit would be planned anew on every call.
		rows, _ := tx.Query(ctx, `WITH p AS MATERIALIZED (SELECT seq, event_id FROM event_places WHERE seq > $1 ORDER BY seq LIMIT `+
			strconv.Itoa(limit)+`)
			SELECT e.id, p.seq, e.order_id::text, o.buyer_id, o.seller_id, e.sequence, e.kind, e.actor,
			e.occurred_at, e.note, convert_to(e.adjustment::text, 'UTF8'), convert_to(e.detail::text, 'UTF8'), o.currency,
			e.status_after, e.version_after
			FROM p JOIN order_events e ON e.id = p.event_id
			JOIN orders o ON o.id = e.order_id AND o.seller_id = e.seller_id
			ORDER BY p.seq`, sent)
		evs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[OutboxEvent])
		if err != nil {
			return err
		}
		// Places above the last sent are consecutive (SequenceEvents
		// numbers them so, and only published ones are dropped). A place
		// the join left out is an event this snapshot cannot see yet: on
		// Citus a change commits on the coordinator (its queue row) before
		// the worker holding its order (the event row), and a worker that
		// failed in between commits when Citus recovers it. Only the places
		// before it are published; it is awaited, never skipped.
		for i, e := range evs {
			if e.StreamSeq != sent+1+int64(i) {
				evs = evs[:i]
				break
			}
		}
		if len(evs) == 0 {
			return nil
		}
		if perr = publish(last, evs); perr != nil {
			return perr
		}
		n = len(evs)
		top := evs[len(evs)-1].StreamSeq
		_, err = tx.Exec(ctx, `UPDATE event_relay SET published_seq = $1, sent_seq = $1 WHERE id = 1`, top)
		return err
	})
	if perr != nil {
		return 0, perr
	}
	if err != nil {
		return 0, fmt.Errorf("publish events: %w", err)
	}
	return n, nil
}

// RepublishSince makes every event from the first that occurred since on
// to be published again, in its place: the stream lost them (Redis lost
// its data). It returns how many that is.
func (db *DB) RepublishSince(ctx context.Context, since time.Time) (int64, error) {
	var n int64
	_, err := db.inRelayTx(ctx, func(tx pgx.Tx, _ relayState) error {
		// published_seq 0: the stream is not checked against what it held
		// until the next publish.
		return tx.QueryRow(ctx, `WITH first AS (`+firstSince+`),
			moved AS (UPDATE event_relay r SET published_seq = 0, sent_seq = coalesce((SELECT seq - 1 FROM first), r.sent_seq)
				WHERE id = 1 RETURNING sent_seq)
			SELECT count(*) FROM event_places WHERE seq > (SELECT sent_seq FROM moved)`, since).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("republish events: %w", err)
	}
	return n, nil
}

// firstSince reads the stream place of the first event that occurred at
// or after $1. Places follow the events' order closely, and those of
// events trimmed from the stream are dropped, so the scan of places in
// order stops at once.
const firstSince = `SELECT seq FROM event_places WHERE occurred_at >= $1 ORDER BY seq LIMIT 1`

// FirstSeqSince returns the stream place of the first event that occurred
// at or after since (0 if none): the stream is trimmed below it.
func (db *DB) FirstSeqSince(ctx context.Context, since time.Time) (int64, error) {
	var seq int64
	err := db.pool.QueryRow(ctx, firstSince, since).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("first retained event: %w", err)
	}
	return seq, nil
}

// DropPlacesBelow drops up to limit places below seq that are published:
// their events were trimmed from the stream. It returns how many it
// dropped.
func (db *DB) DropPlacesBelow(ctx context.Context, seq int64, limit int) (int64, error) {
	var n int64
	// Under the relay's lock, so that a republish never reads places
	// half dropped.
	_, err := db.inRelayTx(ctx, func(tx pgx.Tx, st relayState) error {
		tag, err := tx.Exec(ctx, `DELETE FROM event_places WHERE seq IN (SELECT seq FROM event_places
			WHERE seq < least($1::bigint, $2::bigint) ORDER BY seq LIMIT `+strconv.Itoa(limit)+`)`, seq, st.sent+1)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("drop trimmed places: %w", err)
	}
	return n, nil
}
