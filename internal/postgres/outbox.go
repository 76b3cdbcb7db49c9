package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// relayLock is the advisory lock key that makes one relay at a time hand
// out stream places and publish: the stream's order is theirs.
const relayLock = 0x50_55_4b_52 // "SOUKR"

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

// inRelayTx runs fn in a transaction holding the relay's advisory lock; if
// another relay holds it, fn does not run and ran is false.
func (db *DB) inRelayTx(ctx context.Context, fn func(pgx.Tx) error) (ran bool, err error) {
	err = db.tx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, relayLock).Scan(&ran); err != nil || !ran {
			return err
		}
		return fn(tx)
	})
	return ran, err
}

// SequenceEvents gives up to limit committed events without a stream place
// the next places, in the order of their ids, and commits. Events of one
// order commit in their sequence (each change holds the order's row), so
// they get their places in that order; an event committed late (its id
// taken long before) simply gets a later place: none is skipped. It
// returns how many it sequenced.
func (db *DB) SequenceEvents(ctx context.Context, limit int) (int, error) {
	n := 0
	_, err := db.inRelayTx(ctx, func(tx pgx.Tx) error {
		var last int64
		if err := tx.QueryRow(ctx, `SELECT last_seq FROM event_relay WHERE id = 1 FOR UPDATE`).Scan(&last); err != nil {
			return fmt.Errorf("relay state: %w", err)
		}
		// The limit is written in, as filter.where does, so that a generic
		// plan knows it. (PublishEvents' read is planned anew all the same,
		// by PostgreSQL's choice: a plan made for the stream place it is
		// given knows that few events follow and looks cheaper.)
		rows, _ := tx.Query(ctx, `SELECT id FROM order_events WHERE stream_seq IS NULL ORDER BY id LIMIT `+strconv.Itoa(limit))
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil || len(ids) == 0 {
			return err
		}
		b := &pgx.Batch{}
		b.Queue(`UPDATE order_events e SET stream_seq = $1 + v.n FROM unnest($2::bigint[]) WITH ORDINALITY AS v(id, n)
			WHERE e.id = v.id`, last, ids)
		b.Queue(`UPDATE event_relay SET last_seq = $1 WHERE id = 1`, last+int64(len(ids)))
		n = len(ids)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return 0, fmt.Errorf("sequence events: %w", err)
	}
	return n, nil
}

// PublishEvents hands up to limit sequenced, unpublished events to publish
// in stream order, with the stream place of the last event published before
// them, and marks them published if it returns nil. It returns how many it
// published; publish's error is returned as it is.
func (db *DB) PublishEvents(ctx context.Context, limit int, publish func(last int64, evs []OutboxEvent) error) (int, error) {
	n := 0
	var perr error
	_, err := db.inRelayTx(ctx, func(tx pgx.Tx) error {
		var last, sent int64
		if err := tx.QueryRow(ctx, `SELECT published_seq, sent_seq FROM event_relay WHERE id = 1 FOR UPDATE`).Scan(&last, &sent); err != nil {
			return fmt.Errorf("relay state: %w", err)
		}
		rows, _ := tx.Query(ctx, `SELECT e.id, e.stream_seq, e.order_id::text, o.buyer_id, o.seller_id, e.sequence, e.kind, e.actor,
			e.occurred_at, e.note, convert_to(e.adjustment::text, 'UTF8'), convert_to(e.detail::text, 'UTF8'), o.currency,
			e.status_after, e.version_after
			FROM order_events e JOIN orders o ON o.id = e.order_id
			WHERE e.stream_seq > $1 ORDER BY e.stream_seq LIMIT `+strconv.Itoa(limit), sent)
		evs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[OutboxEvent])
		if err != nil || len(evs) == 0 {
			return err
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
	_, err := db.inRelayTx(ctx, func(tx pgx.Tx) error {
		// published_seq 0: the stream is not checked against what it held
		// until the next publish.
		return tx.QueryRow(ctx, `WITH first AS (SELECT min(stream_seq) AS seq FROM order_events WHERE occurred_at >= $1),
			moved AS (UPDATE event_relay r SET published_seq = 0, sent_seq = coalesce((SELECT seq - 1 FROM first), r.sent_seq)
				WHERE id = 1 RETURNING sent_seq)
			SELECT count(*) FROM order_events WHERE stream_seq > (SELECT sent_seq FROM moved)`, since).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("republish events: %w", err)
	}
	return n, nil
}

// FirstSeqSince returns the stream place of the first event that occurred
// at or after since (0 if none): the stream is trimmed below it.
func (db *DB) FirstSeqSince(ctx context.Context, since time.Time) (int64, error) {
	var seq *int64
	if err := db.pool.QueryRow(ctx, `SELECT min(stream_seq) FROM order_events WHERE occurred_at >= $1`, since).Scan(&seq); err != nil {
		return 0, fmt.Errorf("first retained event: %w", err)
	}
	if seq == nil {
		return 0, nil
	}
	return *seq, nil
}
