// Package events serves the order event feed that the relay publishes to a
// Redis stream: watches from a cursor (the buyer's, the store's, every
// order's) and consumer groups for the marketplace's own services.
//
// Each process runs one Hub: a single reader of the stream that hands each
// new entry to the watches it concerns, through a bounded buffer per watch.
// The Hub never waits for a watch. A watch whose buffer fills up goes back
// to reading the stream itself from its last place, and joins the live
// entries again when it has caught up; a watcher that takes nothing for
// Config.Stall is cut off with RESOURCE_EXHAUSTED and watches again from
// its last cursor.
//
// A cursor is an entry's place in the stream (stream_seq). Places are
// handed out without gaps, so a watch that resumes after place n must find
// place n+1 first: if it was trimmed, the cursor is OUT_OF_RANGE.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/order"
)

// Config tunes a Hub.
type Config struct {
	// Stream is the Redis stream's key.
	Stream string
	// Heartbeat is how often an idle watch hears that nothing happened.
	Heartbeat time.Duration
	// Stall is how long a watcher may take nothing before it is cut off.
	Stall time.Duration
	// Buffer is how many live events a watch holds for its watcher.
	Buffer int
	// ClaimAfter is how long an event a group's consumer took stays
	// unacknowledged before another consumer of the group gets it.
	ClaimAfter time.Duration
	// PerCaller bounds the watches one caller (a token's role and
	// subject) has open on a replica at once, and PerReplica all of them;
	// one more is RESOURCE_EXHAUSTED (zero: 20 and 10,000).
	PerCaller, PerReplica int
}

// Event is an order event as the stream carries it.
type Event struct {
	// Cursor is the event's place in the stream.
	Cursor   int64
	ID       string
	OrderID  string
	BuyerID  string
	SellerID string
	Currency string
	// Status and Version are the order's after the event.
	Status  order.Status
	Version int64
	order.Event
}

// Item is what a watch sends: an event, or a heartbeat saying the feed was
// read up to Cursor.
type Item struct {
	Event  *Event
	Cursor int64
}

// Filter narrows a watch; empty fields do not narrow.
type Filter struct {
	BuyerID  string
	SellerID string
	OrderID  string
	// Kinds are event kinds; one ending in ".*" takes every kind it begins.
	Kinds []string
}

// check refuses a filter that names a kind no event has (a typo would
// leave the watch silent for ever): INVALID_ARGUMENT naming the field.
func (f Filter) check() error {
	for i, k := range f.Kinds {
		if order.IsEventKindFilter(k) {
			continue
		}
		field := fmt.Sprintf("filter.kinds[%d]", i)
		st := status.New(codes.InvalidArgument, fmt.Sprintf("%s: %q is not a kind of order event (see order.EventKinds)", field, k))
		if d, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: field, Description: fmt.Sprintf("%q is not a kind of order event", k)}}}); err == nil {
			st = d
		}
		return st.Err()
	}
	return nil
}

func (f Filter) match(e *Event) bool {
	if (f.BuyerID != "" && e.BuyerID != f.BuyerID) || (f.SellerID != "" && e.SellerID != f.SellerID) ||
		(f.OrderID != "" && e.OrderID != f.OrderID) {
		return false
	}
	if len(f.Kinds) == 0 {
		return true
	}
	for _, k := range f.Kinds {
		if k == e.Kind || (strings.HasSuffix(k, ".*") && strings.HasPrefix(e.Kind, k[:len(k)-1])) {
			return true
		}
	}
	return false
}

// ParseCursor reads a cursor: "" is -1 (from now on), else a place.
func ParseCursor(s string) (int64, error) {
	if s == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, status.Errorf(codes.InvalidArgument, "cursor %q is not a cursor of the event feed", s)
	}
	return n, nil
}

// entryID is the stream id of place n (the relay adds "<n>-1").
func entryID(n int64) string { return strconv.FormatInt(n, 10) + "-1" }

// place reads the place an entry's id carries ("<n>-1", as the relay adds it).
func place(id string) (int64, error) {
	seq, _, ok := strings.Cut(id, "-")
	n, err := strconv.ParseInt(seq, 10, 64)
	if !ok || err != nil {
		return 0, fmt.Errorf("entry %s: not an event's id", id)
	}
	return n, nil
}

// Parse reads a stream entry.
func Parse(m redis.XMessage) (*Event, error) {
	cursor, err := place(m.ID)
	if err != nil {
		return nil, err
	}
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	e := &Event{ID: str("event_id"), OrderID: str("order_id"), BuyerID: str("buyer_id"), SellerID: str("seller_id"),
		Currency: str("currency"), Status: order.Status(str("status"))}
	e.Kind, e.Actor, e.Note = str("kind"), str("actor"), str("note")
	var errs []error
	num := func(k string) int64 {
		n, err := strconv.ParseInt(str(k), 10, 64)
		errs = append(errs, err)
		return n
	}
	e.Sequence, e.Version = num("sequence"), num("version")
	e.Cursor = cursor
	e.OccurredAt, err = time.Parse(time.RFC3339Nano, str("occurred_at"))
	errs = append(errs, err)
	if a := str("adjustment"); a != "" {
		e.Adjustment = &order.PriceAdjustment{}
		errs = append(errs, json.Unmarshal([]byte(a), e.Adjustment))
	}
	if d := str("detail"); d != "" {
		e.Detail = &order.Detail{}
		errs = append(errs, json.Unmarshal([]byte(d), e.Detail))
	}
	if e.OrderID == "" || e.Kind == "" {
		errs = append(errs, errors.New("no order or kind"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("entry %s: %w", m.ID, err)
	}
	return e, nil
}

// Hub reads the stream once for all the process's watches, and not at all
// while none is open.
type Hub struct {
	rdb redis.UniversalClient
	cfg Config
	log *slog.Logger

	ready    chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	mu       sync.Mutex
	pos      int64 // the last place read and handed out
	subs     map[*sub]struct{}
	// idle says the Hub stopped reading when its last watch ended: pos is
	// where it stopped, not the stream's end. The next watch moves pos to
	// the stream's end and wakes the Hub.
	idle bool
	wake chan struct{}
	// positions, if set, keeps the consumer groups' positions.
	positions GroupPositions
	// open counts the watches open per caller, and all of them.
	open    map[string]int
	openAll int
	// replayed counts the entries watches read to catch up.
	replayed atomic.Int64
	// liveRead counts the entries the Hub read for its live watches.
	liveRead atomic.Int64
}

// admit checks a watch's filter and counts the watch of ctx's caller in,
// or refuses it past the bounds; the returned func counts it out.
func (h *Hub) admit(ctx context.Context, f Filter) (func(), error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	p, _ := auth.FromContext(ctx)
	caller := string(p.Role) + ":" + p.Subject
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.openAll >= h.cfg.PerReplica:
		return nil, status.Errorf(codes.ResourceExhausted, "this replica serves %d watches already: watch again in a moment", h.cfg.PerReplica)
	case h.open[caller] >= h.cfg.PerCaller:
		return nil, status.Errorf(codes.ResourceExhausted, "you have %d watches open already: end one, or filter one watch instead of opening many", h.cfg.PerCaller)
	}
	if h.open == nil {
		h.open = map[string]int{}
	}
	h.open[caller]++
	h.openAll++
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.openAll--
		if h.open[caller]--; h.open[caller] == 0 {
			delete(h.open, caller)
		}
	}, nil
}

// sub is one watch's live feed.
type sub struct {
	f    Filter
	ch   chan *Event
	over chan struct{} // closed when ch overflowed and the Hub dropped the watch
}

// NewHub returns a Hub; Run makes it read. The Hub owns rdb (its blocking
// reads hold connections): Stop closes it.
func NewHub(rdb redis.UniversalClient, cfg Config, log *slog.Logger) *Hub {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 256
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.Stall <= 0 {
		cfg.Stall = 30 * time.Second
	}
	if cfg.ClaimAfter <= 0 {
		cfg.ClaimAfter = time.Minute
	}
	if cfg.PerCaller <= 0 {
		cfg.PerCaller = 20
	}
	if cfg.PerReplica <= 0 {
		cfg.PerReplica = 10000
	}
	return &Hub{rdb: rdb, cfg: cfg, log: log, ready: make(chan struct{}), stop: make(chan struct{}), subs: map[*sub]struct{}{},
		wake: make(chan struct{}, 1)}
}

// errStopping ends the watches of a replica that is stopping.
var errStopping = status.Error(codes.Unavailable, "the server is stopping: watch again from the last cursor")

// Stop ends every watch with UNAVAILABLE and the Hub's reading, at once
// (it closes the Hub's Redis client, which interrupts blocking reads).
func (h *Hub) Stop() {
	h.stopOnce.Do(func() {
		close(h.stop)
		_ = h.rdb.Close()
	})
}

// ended turns the error a watch ends with into errStopping if the Hub stopped.
func (h *Hub) ended(err error) error {
	select {
	case <-h.stop:
		return errStopping
	default:
		return err
	}
}

// Run reads the stream until ctx ends, starting after its last entry.
func (h *Hub) Run(ctx context.Context) {
	wait := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	for {
		end, err := h.end(ctx)
		if err == nil {
			h.pos = end
			break
		}
		if ctx.Err() != nil || !wait(time.Second) {
			return
		}
		h.log.WarnContext(ctx, "event feed: read the stream", "err", err)
	}
	close(h.ready)
	for ctx.Err() == nil && h.ended(nil) == nil {
		if h.rest() {
			select {
			case <-h.wake:
			case <-h.stop:
			case <-ctx.Done():
			}
			continue
		}
		res, err := h.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{h.cfg.Stream, entryID(h.pos)}, Count: 500, Block: 2 * time.Second}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				h.log.WarnContext(ctx, "event feed: read the stream", "err", err)
				wait(time.Second)
			}
			continue
		}
		for _, s := range res {
			h.liveRead.Add(int64(len(s.Messages)))
			h.hand(ctx, s.Messages)
		}
	}
}

// rest makes the Hub idle if no watch is open: a replica nobody watches
// reads nothing (each event would otherwise wake a read in every replica
// of both services, and be parsed there, for no one).
func (h *Hub) rest() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.idle = len(h.subs) == 0
	return h.idle
}

// end returns the place of the stream's newest entry (0 if it has none).
func (h *Hub) end(ctx context.Context) (int64, error) {
	top, err := h.rdb.XRevRangeN(ctx, h.cfg.Stream, "+", "-", 1).Result()
	if err != nil || len(top) == 0 {
		return 0, err
	}
	return place(top[0].ID)
}

// hand gives new entries to the watches they concern; a watch whose buffer
// is full is dropped, to catch up from the stream itself.
func (h *Hub) hand(ctx context.Context, msgs []redis.XMessage) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range msgs {
		e, err := Parse(m)
		if err != nil {
			h.log.ErrorContext(ctx, "event feed: skip an entry", "err", err)
			continue
		}
		if e.Cursor <= h.pos {
			continue
		}
		h.pos = e.Cursor
		for s := range h.subs {
			if !s.f.match(e) {
				continue
			}
			select {
			case s.ch <- e:
			default:
				close(s.over)
				delete(h.subs, s)
			}
		}
	}
}

// subscribe adds a live feed for f, and returns the place up to which the
// stream was read before it: the feed has the entries after it.
func (h *Hub) subscribe(ctx context.Context, f Filter) (*sub, int64, error) {
	select {
	case <-h.ready:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	case <-h.stop:
		return nil, 0, errStopping
	case <-time.After(5 * time.Second):
		return nil, 0, status.Error(codes.Unavailable, "the event feed is not reachable; try again")
	}
	s := &sub{f: f, ch: make(chan *Event, h.cfg.Buffer), over: make(chan struct{})}
	var end int64
	for read := false; ; read = true {
		h.mu.Lock()
		if !h.idle || read {
			if h.idle {
				// The Hub stopped reading at pos, maybe long ago: the live
				// feed begins at the stream's end as read since it went idle.
				// (A stream Redis lost and the relay is refilling reads as
				// empty: the Hub then reads on from where it stopped, and the
				// watch may first get events from before it began, each once
				// and in order.)
				h.pos, h.idle = max(h.pos, end), false
				select {
				case h.wake <- struct{}{}:
				default:
				}
			}
			h.subs[s] = struct{}{}
			pos := h.pos
			h.mu.Unlock()
			return s, pos, nil
		}
		h.mu.Unlock()
		var err error
		if end, err = h.end(ctx); err != nil {
			return nil, 0, status.Errorf(codes.Unavailable, "read the event feed: %v", err)
		}
	}
}

func (h *Hub) unsubscribe(s *sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, s)
}

// readTo returns how far the feed was read for s: the Hub's place if s has
// nothing waiting (everything before it was handed to s and taken), else -1.
func (h *Hub) readTo(s *sub) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(s.ch) > 0 {
		return -1
	}
	return h.pos
}

// Watch sends the events matching f after place after (-1: from now on),
// then live ones, with heartbeats, until ctx ends or send fails. A watcher
// that takes nothing for Config.Stall is cut off with RESOURCE_EXHAUSTED.
func (h *Hub) Watch(ctx context.Context, f Filter, after int64, send func(Item) error) error {
	done, err := h.admit(ctx, f)
	if err != nil {
		return err
	}
	defer done()
	return h.ended(h.watch(ctx, f, after, send))
}

func (h *Hub) watch(ctx context.Context, f Filter, after int64, send func(Item) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := newWriter(ctx, h.cfg, send)
	last, began := after, false
	beat := time.NewTicker(h.cfg.Heartbeat)
	defer beat.Stop()
	for {
		s, pos, err := h.subscribe(ctx, f)
		if err != nil {
			return err
		}
		if last < 0 {
			last = pos
		}
		if !began {
			// Every watch begins with a heartbeat at its cursor, resumed
			// or not; a cursor past the feed's end is refused.
			began = true
			if err := h.checkCursor(ctx, last, pos); err != nil {
				h.unsubscribe(s)
				return err
			}
			if err := w.put(Item{Cursor: last}); err != nil {
				h.unsubscribe(s)
				return err
			}
		}
		if last < pos {
			if last, err = h.catchUp(ctx, f, last, pos, w); err != nil {
				h.unsubscribe(s)
				return err
			}
		}
		if err := h.live(ctx, s, &last, beat, w); err != nil {
			h.unsubscribe(s)
			return err
		}
		// The watch fell behind and was dropped: catch up from the stream.
	}
}

// live sends s's live events until it overflows (nil) or something fails.
func (h *Hub) live(ctx context.Context, s *sub, last *int64, beat *time.Ticker, w *writer) error {
	sent := time.Now()
	for {
		select {
		case e := <-s.ch:
			if e.Cursor <= *last {
				continue
			}
			if err := w.put(Item{Event: e}); err != nil {
				return err
			}
			*last, sent = e.Cursor, time.Now()
		case <-s.over:
			return nil
		case <-h.stop:
			return errStopping
		case <-beat.C:
			if time.Since(sent) < h.cfg.Heartbeat/2 {
				continue
			}
			at := max(*last, h.readTo(s))
			if err := w.put(Item{Cursor: at}); err != nil {
				return err
			}
			sent = time.Now()
		case err := <-w.errc:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// catchUp sends the events matching f from place from (excluded) to place
// to (included), and returns to. A watch of one party (a buyer's or a
// store's) reads that party's index of places and only its entries, so its
// replay costs what the party's events cost, not the whole stream's; the
// places before the index began (published by a relay that kept none) are
// scanned.
func (h *Hub) catchUp(ctx context.Context, f Filter, from, to int64, w *writer) (int64, error) {
	key := f.index(h.cfg.Stream)
	if key == "" {
		return h.scan(ctx, f, from, to, w)
	}
	start, err := h.rdb.HGet(ctx, IndexStartKey(h.cfg.Stream), "from").Int64()
	switch {
	case errors.Is(err, redis.Nil):
		return h.scan(ctx, f, from, to, w)
	case err != nil:
		return from, status.Errorf(codes.Unavailable, "read the event feed: %v", err)
	case from+1 < start:
		if from, err = h.scan(ctx, f, from, min(to, start-1), w); err != nil || from >= to {
			return from, err
		}
	}
	return h.indexed(ctx, f, key, from, to, w)
}

// scan sends the events matching f from place from (excluded) to place to
// (included), reading every entry between them.
func (h *Hub) scan(ctx context.Context, f Filter, from, to int64, w *writer) (int64, error) {
	cur := from
	for cur < to {
		msgs, err := h.rdb.XRangeN(ctx, h.cfg.Stream, "("+entryID(cur), entryID(to), replayBatch).Result()
		if err != nil {
			return cur, status.Errorf(codes.Unavailable, "read the event feed: %v", err)
		}
		if len(msgs) == 0 {
			return cur, h.gone(ctx, cur)
		}
		h.replayed.Add(int64(len(msgs)))
		for i, m := range msgs {
			e, err := Parse(m)
			if err != nil {
				h.log.ErrorContext(ctx, "event feed: skip an entry", "err", err)
				continue
			}
			if i == 0 && cur > 0 && e.Cursor != cur+1 {
				return cur, h.gone(ctx, cur)
			}
			if f.match(e) {
				if err := w.put(Item{Event: e}); err != nil {
					return cur, err
				}
			}
			cur = e.Cursor
		}
	}
	return cur, nil
}

// replayBatch is how many entries (or indexed places) one read of a replay takes.
const replayBatch = 500

// indexed sends the events matching f from place from (excluded) to place
// to (included), reading the places of the party's index key and only
// their entries. The relay indexes an event in the script that adds it, so
// every entry up to to is in the index; an entry the stream no longer has
// was trimmed, and the cursor is OUT_OF_RANGE as in a scan.
func (h *Hub) indexed(ctx context.Context, f Filter, key string, from, to int64, w *writer) (int64, error) {
	if from > 0 {
		head, err := h.rdb.XRangeN(ctx, h.cfg.Stream, "-", "+", 1).Result()
		if err != nil {
			return from, status.Errorf(codes.Unavailable, "read the event feed: %v", err)
		}
		if e, perr := parseFirst(head); perr != nil || e.Cursor > from+1 {
			return from, h.gone(ctx, from)
		}
	}
	cur := from
	for cur < to {
		places, err := h.rdb.ZRangeByScore(ctx, key, &redis.ZRangeBy{
			Min: "(" + strconv.FormatInt(cur, 10), Max: strconv.FormatInt(to, 10), Count: replayBatch}).Result()
		if err != nil {
			return cur, status.Errorf(codes.Unavailable, "read the event feed: %v", err)
		}
		if len(places) == 0 {
			return to, nil
		}
		pipe := h.rdb.Pipeline()
		reads := make([]*redis.XMessageSliceCmd, len(places))
		for i, p := range places {
			reads[i] = pipe.XRangeN(ctx, h.cfg.Stream, p+"-1", p+"-1", 1)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return cur, status.Errorf(codes.Unavailable, "read the event feed: %v", err)
		}
		h.replayed.Add(int64(len(places)))
		for _, r := range reads {
			e, err := parseFirst(r.Val())
			if err != nil {
				// Trimmed since the index was read.
				return cur, h.gone(ctx, cur)
			}
			if f.match(e) {
				if err := w.put(Item{Event: e}); err != nil {
					return cur, err
				}
			}
			cur = e.Cursor
		}
		if len(places) < replayBatch {
			return to, nil
		}
	}
	return to, nil
}

// Replayed is how many stream entries the Hub's watches have read to catch
// up since it started (an entry read by two watches counts twice).
func (h *Hub) Replayed() int64 { return h.replayed.Load() }

// Live is how many stream entries the Hub has read for its live watches
// since it started: none while no watch is open.
func (h *Hub) Live() int64 { return h.liveRead.Load() }

// IndexKey is the key of the index of a party's places in stream: a sorted
// set of places, scored by place, that the relay keeps beside the stream,
// in the stream's hash slot (its name carries the stream's hash tag, or
// the stream's name as one). role is "b" for a buyer, "s" for a store.
func IndexKey(stream, role, id string) string { return slotted(stream) + ":" + role + ":" + id }

// IndexStartKey is a hash of the places the indexes cover: from its field
// "from" on (those before were published without them, by an older relay,
// and are scanned) to its field "to".
func IndexStartKey(stream string) string { return slotted(stream) + ":indexed-from" }

// slotted is stream followed by its hash tag, if it has none of its own:
// a key it begins is in the stream's hash slot (Redis Cluster runs the
// relay's script only on keys of one slot).
func slotted(stream string) string {
	if i := strings.IndexByte(stream, '{'); i >= 0 {
		if j := strings.IndexByte(stream[i+1:], '}'); j > 0 {
			return stream
		}
	}
	return stream + "{" + stream + "}"
}

// index is the index key a watch with f reads, if f names a party.
func (f Filter) index(stream string) string {
	switch {
	case f.SellerID != "":
		return IndexKey(stream, "s", f.SellerID)
	case f.BuyerID != "":
		return IndexKey(stream, "b", f.BuyerID)
	}
	return ""
}

// checkCursor refuses, before the watch begins, a cursor whose next place
// the stream no longer has (OUT_OF_RANGE, as catchUp would find later) and
// a cursor beyond the newest place of the stream (a cursor from a restored
// backup or a reset store): its watcher would wait for places that were
// handed out again, and miss them. pos is how far this replica read;
// another may be ahead of it, so the stream itself decides.
func (h *Hub) checkCursor(ctx context.Context, cursor, pos int64) error {
	if cursor < pos && cursor > 0 {
		next, err := h.rdb.XRangeN(ctx, h.cfg.Stream, "("+entryID(cursor), "+", 1).Result()
		if err != nil {
			return status.Errorf(codes.Unavailable, "read the event feed: %v", err)
		}
		if e, perr := parseFirst(next); perr != nil || e.Cursor != cursor+1 {
			return h.gone(ctx, cursor)
		}
	}
	if cursor <= pos {
		return nil
	}
	end, err := h.end(ctx)
	if err != nil {
		return status.Errorf(codes.Unavailable, "read the event feed: %v", err)
	}
	if end == 0 {
		return status.Error(codes.Unavailable, "the event feed is being refilled; watch again from the same cursor")
	}
	if cursor > end {
		return status.Errorf(codes.OutOfRange, "cursor %d is past the end of the event feed (its newest place is %d): read the order list again, then watch from now on (no cursor)", cursor, end)
	}
	return nil
}

// parseFirst parses the first of msgs.
func parseFirst(msgs []redis.XMessage) (*Event, error) {
	if len(msgs) == 0 {
		return nil, errors.New("no entry")
	}
	return Parse(msgs[0])
}

// gone explains why the events after place cur are not in the stream.
func (h *Hub) gone(ctx context.Context, cur int64) error {
	if n, err := h.rdb.XLen(ctx, h.cfg.Stream).Result(); err == nil && n == 0 {
		return status.Error(codes.Unavailable, "the event feed is being refilled; watch again from the same cursor")
	}
	return status.Errorf(codes.OutOfRange, "cursor %d is older than the event feed keeps: read the order list again, then watch from now on (no cursor)", cur)
}

// writer sends a watch's items from a goroutine of its own, so that a
// watcher that reads slowly holds up nothing but its own watch.
type writer struct {
	q     chan Item
	errc  chan error
	stall time.Duration
	ctx   context.Context
}

func newWriter(ctx context.Context, cfg Config, send func(Item) error) *writer {
	w := &writer{q: make(chan Item, 64), errc: make(chan error, 1), stall: cfg.Stall, ctx: ctx}
	go func() {
		for {
			select {
			case it := <-w.q:
				if err := send(it); err != nil {
					w.errc <- err
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return w
}

// errSlow cuts off a watcher that takes nothing for the stall time.
var errSlow = status.Error(codes.ResourceExhausted, "the watcher reads too slowly and fell behind: watch again from the last cursor received")

func (w *writer) put(it Item) error {
	select {
	case w.q <- it:
		return nil
	default:
	}
	t := time.NewTimer(w.stall)
	defer t.Stop()
	select {
	case w.q <- it:
		return nil
	case err := <-w.errc:
		return err
	case <-t.C:
		return errSlow
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
}
