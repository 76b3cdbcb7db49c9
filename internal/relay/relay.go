// Package relay publishes the order events that every change writes to
// Postgres in its transaction (the outbox, order_events) to a Redis stream,
// each exactly once and in its order. Every replica runs a relay; one at a
// time works (a Postgres advisory lock), the others stand by.
//
// Each event first gets its place in the stream (moved from the queue of
// events without one to event_places), in a committed step of its own; it
// is then added under the entry id "<place>-1" and
// marked published. A relay that dies between adding and marking adds it
// again under the same id, which Redis refuses as not above the stream's
// last: no event is lost and none is added twice. Events are added by a
// script that first checks the stream still ends at or after the last event
// published: a Redis that lost its data gets every event of the retention
// period again, under the same ids, so consumers' cursors stay valid.
package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/souk-dev/souk/internal/events"
	"github.com/souk-dev/souk/internal/postgres"
)

// Config tunes a Relay.
type Config struct {
	// Stream is the Redis stream's key.
	Stream string
	// Retention is how long events stay in the stream (Postgres keeps them all).
	Retention time.Duration
	// Interval is how often the relay looks for new events.
	Interval time.Duration
	// Batch is how many events one round handles at most.
	Batch int
}

// Relay moves events from the outbox to the stream.
type Relay struct {
	db   *postgres.DB
	rdb  redis.UniversalClient
	cfg  Config
	now  func() time.Time
	log  *slog.Logger
	wake chan struct{}
	// moved counts the events taken from the queue since its last vacuum.
	moved atomic.Int64
}

// vacuumEvery is how many events leave the queue between the relay's
// vacuums of it. Autovacuum visits a database once a minute at most; until
// it does, every round's read of the queue walks the dead entries of all the
// events taken since (at 1,500 events a second, 500 index pages a round).
const vacuumEvery = 5000

// New returns a Relay.
func New(db *postgres.DB, rdb redis.UniversalClient, cfg Config, now func() time.Time, log *slog.Logger) *Relay {
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	return &Relay{db: db, rdb: rdb, cfg: cfg, now: now, log: log, wake: make(chan struct{}, 1)}
}

// A woken relay waits wakeDelay, to gather the commits that come together,
// and starts rounds at least minGap apart: under a stream of commits it
// works in batches, not a round (two transactions) per commit.
const (
	wakeDelay = 2 * time.Millisecond
	minGap    = 25 * time.Millisecond
)

// Wake makes the relay look for events now rather than at its next tick:
// a change of this replica was committed. (The relay at work may be
// another replica's; it finds the events at its tick.)
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run relays until ctx ends, and trims the stream by age once a minute.
func (r *Relay) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	var trimmed time.Time
	for {
		began := time.Now()
		if _, err := r.Round(ctx); err != nil && ctx.Err() == nil {
			r.log.WarnContext(ctx, "event relay", "err", err)
		}
		if time.Since(trimmed) > time.Minute {
			if err := r.Trim(ctx); err != nil && ctx.Err() == nil {
				r.log.WarnContext(ctx, "trim the event stream", "err", err)
			}
			trimmed = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.wake:
			time.Sleep(max(wakeDelay, minGap-time.Since(began)))
		}
	}
}

// Round sequences and publishes what is waiting, batch after batch, and
// returns how many events it published.
func (r *Relay) Round(ctx context.Context) (int, error) {
	total := 0
	for {
		moved, err := r.db.SequenceEvents(ctx, r.cfg.Batch)
		if err != nil {
			return total, err
		}
		if r.moved.Add(int64(moved)) >= vacuumEvery {
			r.moved.Store(0)
			if err := r.db.VacuumQueue(ctx); err != nil {
				r.log.WarnContext(ctx, "vacuuming the event queue", "err", err)
			}
		}
		n, err := r.db.PublishEvents(ctx, r.cfg.Batch, func(last int64, evs []postgres.OutboxEvent) error {
			return r.Publish(ctx, last, evs)
		})
		if errors.Is(err, errLost) {
			again, rerr := r.db.RepublishSince(ctx, r.now().Add(-r.cfg.Retention))
			if rerr != nil {
				return total, rerr
			}
			r.log.WarnContext(ctx, "the event stream lost its data; publishing the retention period again", "events", again)
			continue
		}
		total += n
		if err != nil || n < r.cfg.Batch {
			return total, err
		}
	}
}

// errLost says the stream ends before the last event published: Redis lost its data.
var errLost = errors.New("the event stream lost its data")

// addScript adds entries to the stream KEYS[1], skipping those already
// there, unless the stream ends before place ARGV[1] (the last published),
// which means it lost its data. ARGV[2] is JSON, an entry a pair:
// [[index of a party's index key in KEYS, …], [id, field, value, …]]. Each
// entry's place goes into its parties' indexes before the entry into the
// stream, so that an index has every place the stream has. KEYS[2] is a hash
// of the places the indexes cover, "from" and "to": a stream that grew past
// "to" without them (an older relay published meanwhile) moves "from" up to
// this batch. The indexes touched drop the places the
// stream no longer has and live ARGV[3] ms after their last entry (a
// party's index outlives its events by the retention period at most).
var addScript = redis.NewScript(`
local last = tonumber(ARGV[1])
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local topPlace = 0
if #top > 0 then topPlace = tonumber(string.match(top[1][1], '^(%d+)')) end
if last > 0 and topPlace < last then
  return redis.error_reply('SOUKLOST the stream ends before the last event published')
end
local entries = cjson.decode(ARGV[2])
if #entries == 0 then return 0 end
local first = tonumber(string.match(entries[1][2][1], '^(%d+)'))
local indexedTo = tonumber(redis.call('HGET', KEYS[2], 'to') or '0')
if topPlace > indexedTo or redis.call('HEXISTS', KEYS[2], 'from') == 0 then
  -- The first run, or places were added without their indexes (an older
  -- relay): the indexes cover the places from this batch's first on.
  redis.call('HSET', KEYS[2], 'from', first)
end
local added = 0
local place = first
for _, e in ipairs(entries) do
  place = tonumber(string.match(e[2][1], '^(%d+)'))
  for _, k in ipairs(e[1]) do
    redis.call('ZADD', KEYS[k], place, place)
  end
  local ok = redis.pcall('XADD', KEYS[1], unpack(e[2]))
  if type(ok) == 'table' and ok.err then
    if not string.find(ok.err, 'equal or smaller') then return ok end
  else
    added = added + 1
  end
end
redis.call('HSET', KEYS[2], 'to', math.max(place, indexedTo))
local head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
for k = 3, #KEYS do
  if #head > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', '(' .. string.match(head[1][1], '^(%d+)'))
  end
  redis.call('PEXPIRE', KEYS[k], ARGV[3])
end
return added`)

// Publish adds events to the stream in their order, and their places to
// their buyer's and store's indexes (events.IndexKey), unless the stream
// ends before place last (the last event published), which means Redis
// lost its data. An event already in the stream (a relay died before
// marking it) is skipped.
func (r *Relay) Publish(ctx context.Context, last int64, evs []postgres.OutboxEvent) error {
	keys := []string{r.cfg.Stream, events.IndexStartKey(r.cfg.Stream)}
	slot := map[string]int{}
	at := func(k string) int {
		if i, ok := slot[k]; ok {
			return i
		}
		keys = append(keys, k)
		slot[k] = len(keys) // Lua counts from 1
		return len(keys)
	}
	entries := make([][]any, len(evs))
	for i, e := range evs {
		parties := []int{at(events.IndexKey(r.cfg.Stream, "b", e.BuyerID)), at(events.IndexKey(r.cfg.Stream, "s", e.SellerID))}
		entries[i] = []any{parties, append([]any{EntryID(e.StreamSeq)}, fields(e)...)}
	}
	raw, err := json.Marshal(entries)
	if err != nil {
		return err
	}
	keep := r.cfg.Retention + time.Hour
	err = addScript.Run(ctx, r.rdb, keys, last, raw, keep.Milliseconds()).Err()
	if err != nil && strings.HasPrefix(err.Error(), "SOUKLOST") {
		return errLost
	}
	if err != nil {
		return fmt.Errorf("add to the event stream: %w", err)
	}
	return nil
}

// EntryID is the stream entry id of the event in stream place seq.
func EntryID(seq int64) string { return strconv.FormatInt(seq, 10) + "-1" }

// fields are an event as a stream entry, every value a string.
func fields(e postgres.OutboxEvent) []any {
	f := []any{"event_id", strconv.FormatInt(e.ID, 10), "order_id", e.OrderID, "buyer_id", e.BuyerID, "seller_id", e.SellerID,
		"sequence", strconv.FormatInt(e.Sequence, 10), "kind", e.Kind, "actor", e.Actor,
		"occurred_at", e.OccurredAt.UTC().Format(time.RFC3339Nano), "note", e.Note, "status", e.Status,
		"version", strconv.FormatInt(e.Version, 10), "currency", e.Currency}
	if e.Adjustment != nil {
		f = append(f, "adjustment", string(e.Adjustment))
	}
	if e.Detail != nil {
		f = append(f, "detail", string(e.Detail))
	}
	return f
}

// Trim drops the stream's entries older than the retention period.
func (r *Relay) Trim(ctx context.Context) error {
	seq, err := r.db.FirstSeqSince(ctx, r.now().Add(-r.cfg.Retention))
	if err != nil || seq == 0 {
		return err
	}
	if err := r.rdb.XTrimMinID(ctx, r.cfg.Stream, strconv.FormatInt(seq, 10)+"-0").Err(); err != nil {
		return err
	}
	// The places of trimmed events (a minute's worth, or after an upgrade
	// all of the past), in short transactions.
	for {
		n, err := r.db.DropPlacesBelow(ctx, seq, dropBatch)
		if err != nil || n < dropBatch {
			return err
		}
	}
}

// dropBatch is how many places of trimmed events one transaction drops.
const dropBatch = 10000
