package events_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/events"
	"github.com/souk-dev/souk/internal/postgres"
	"github.com/souk-dev/souk/internal/relay"
	"github.com/souk-dev/souk/internal/testenv"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// stream is a test's event stream and a hub reading it.
type stream struct {
	t   *testing.T
	rdb redis.UniversalClient
	key string
	hub *events.Hub
	n   int64
}

func newStream(t *testing.T, cfg events.Config) *stream {
	rdb, prefix := testenv.Redis(t)
	return newStreamOn(t, rdb, prefix, cfg)
}

// newStreamOn is newStream on a given Redis (a cluster, say).
func newStreamOn(t *testing.T, rdb redis.UniversalClient, prefix string, cfg events.Config) *stream {
	cfg.Stream = prefix + "events"
	s := &stream{t: t, rdb: rdb, key: cfg.Stream, hub: events.NewHub(rdb, cfg, quiet)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.hub.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// add appends events of store-x as the relay does: place n under id
// "<n>-1", indexed by buyer and store.
func (s *stream) add(orderID, buyer, kind string, count int) {
	s.t.Helper()
	s.addOf("store-x", orderID, buyer, kind, count)
}

// addOf is add for a given store, through the relay's own Publish.
func (s *stream) addOf(store, orderID, buyer, kind string, count int) {
	s.t.Helper()
	pub := relay.New(nil, s.rdb, relay.Config{Stream: s.key, Retention: time.Hour}, time.Now, quiet)
	for count > 0 {
		evs := make([]postgres.OutboxEvent, min(count, 500))
		for i := range evs {
			s.n++
			evs[i] = postgres.OutboxEvent{ID: s.n, StreamSeq: s.n, OrderID: orderID, BuyerID: buyer, SellerID: store,
				Sequence: s.n, Kind: kind, Actor: "system", OccurredAt: time.Now(), Status: "PENDING_PAYMENT", Version: 1, Currency: "USD"}
		}
		if err := pub.Publish(context.Background(), 0, evs); err != nil {
			s.t.Fatal(err)
		}
		count -= len(evs)
	}
}

// addUnindexed appends events as a relay that kept no indexes did.
func (s *stream) addUnindexed(store, orderID, buyer, kind string, count int) {
	s.t.Helper()
	ctx := context.Background()
	pipe := s.rdb.Pipeline()
	for range count {
		s.n++
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: s.key, ID: strconv.FormatInt(s.n, 10) + "-1", Values: []any{
			"event_id", strconv.FormatInt(s.n, 10), "order_id", orderID, "buyer_id", buyer, "seller_id", store,
			"sequence", strconv.FormatInt(s.n, 10), "kind", kind, "actor", "system", "occurred_at", time.Now().UTC().Format(time.RFC3339Nano),
			"note", "", "status", "PENDING_PAYMENT", "version", "1", "currency", "USD"}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		s.t.Fatal(err)
	}
}

// collector is a watcher that keeps what it is sent.
type collector struct {
	mu     sync.Mutex
	events []*events.Event
	beats  []int64
	delay  time.Duration
}

func (c *collector) send(it events.Item) error {
	time.Sleep(c.delay)
	c.mu.Lock()
	defer c.mu.Unlock()
	if it.Event != nil {
		c.events = append(c.events, it.Event)
	} else {
		c.beats = append(c.beats, it.Cursor)
	}
	return nil
}

func (c *collector) count() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events), len(c.beats)
}

// watch runs a watch in the background and returns how it ended.
func (s *stream) watch(f events.Filter, after int64, send func(events.Item) error) (<-chan error, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	s.t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- s.hub.Watch(ctx, f, after, send) }()
	return done, cancel
}

// TestSlowWatcherIsCutOff: a watcher that takes nothing is cut off with
// RESOURCE_EXHAUSTED after the stall time, while another watcher, whose
// small buffer overflows again and again, gets every event exactly once
// and in order, and the writer is never held up.
func TestSlowWatcherIsCutOff(t *testing.T) {
	s := newStream(t, events.Config{Heartbeat: time.Hour, Stall: 500 * time.Millisecond, Buffer: 2})
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	began := make(chan struct{}, 1)
	slow, _ := s.watch(events.Filter{}, -1, func(it events.Item) error {
		if it.Event == nil {
			began <- struct{}{}
			return nil
		}
		<-stuck
		return nil
	})
	<-began
	fast := &collector{delay: 100 * time.Microsecond}
	fastDone, _ := s.watch(events.Filter{}, 0, fast.send)
	start := time.Now()
	for range 20 {
		s.add("o-1", "alice", "message_sent", 50)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("adding 1000 events took %s with a stuck watcher", took)
	}
	select {
	case err := <-slow:
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("the stuck watcher ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck watcher was not cut off")
	}
	testenv.Eventually(t, 10*time.Second, "the other watcher got every event", func() bool {
		n, _ := fast.count()
		return n >= 1000
	})
	time.Sleep(100 * time.Millisecond)
	fast.mu.Lock()
	defer fast.mu.Unlock()
	if len(fast.events) != 1000 {
		t.Fatalf("%d events, want 1000", len(fast.events))
	}
	for i, e := range fast.events {
		if e.Cursor != int64(i+1) {
			t.Fatalf("event %d has cursor %d", i, e.Cursor)
		}
	}
	select {
	case err := <-fastDone:
		t.Fatalf("the other watch ended: %v", err)
	default:
	}
}

// TestFiltersAndHeartbeats: a watch gets only its buyer's events of the
// kinds asked ("reminder.*" takes every reminder); its heartbeats say how
// far the feed was read, past the events it left out, so that resuming
// from a heartbeat's cursor starts after them.
func TestFiltersAndHeartbeats(t *testing.T) {
	for _, r := range testenv.Redises(t) {
		t.Run(r.Name, func(t *testing.T) {
			s := newStreamOn(t, r.Client, r.Prefix, events.Config{Heartbeat: 200 * time.Millisecond, Stall: time.Second})
			c := &collector{}
			s.watch(events.Filter{BuyerID: "alice", Kinds: []string{"reminder.*", "paid"}}, -1, c.send)
			testenv.Eventually(t, 5*time.Second, "the watch began", func() bool { _, b := c.count(); return b > 0 })
			s.add("o-1", "alice", "reminder.payment", 1)
			s.add("o-1", "alice", "message_sent", 1)
			s.add("o-2", "bob", "reminder.payment", 1)
			s.add("o-1", "alice", "paid", 1)
			s.add("o-1", "alice", "reminders", 1)
			s.add("o-3", "bob", "paid", 3)
			testenv.Eventually(t, 5*time.Second, "a heartbeat after the events", func() bool {
				c.mu.Lock()
				defer c.mu.Unlock()
				return len(c.beats) > 0 && c.beats[len(c.beats)-1] == s.n
			})
			c.mu.Lock()
			var got []string
			for _, e := range c.events {
				got = append(got, fmt.Sprintf("%d %s", e.Cursor, e.Kind))
			}
			c.mu.Unlock()
			if fmt.Sprint(got) != "[1 reminder.payment 4 paid]" {
				t.Fatalf("got %v", got)
			}

			// From the heartbeat's cursor: nothing old, then what comes.
			again := &collector{}
			s.watch(events.Filter{BuyerID: "alice"}, s.n, again.send)
			s.add("o-1", "alice", "shipped", 1)
			testenv.Eventually(t, 5*time.Second, "the new event", func() bool { n, _ := again.count(); return n == 1 })
			if again.events[0].Kind != "shipped" {
				t.Fatalf("resumed with %s", again.events[0].Kind)
			}
		})
	}
}

// TestCursorOutOfRange: a cursor whose next event the stream no longer has
// is OUT_OF_RANGE; an emptied stream (Redis lost its data and the relay has
// not refilled it yet) is UNAVAILABLE; "0" takes what is kept.
func TestCursorOutOfRange(t *testing.T) {
	for _, r := range testenv.Redises(t) {
		t.Run(r.Name, func(t *testing.T) {
			s := newStreamOn(t, r.Client, r.Prefix, events.Config{Heartbeat: time.Second, Stall: time.Second})
			s.add("o-1", "alice", "message_sent", 10)
			if err := s.rdb.XTrimMinID(context.Background(), s.key, "5-0").Err(); err != nil {
				t.Fatal(err)
			}
			c := &collector{}
			done, _ := s.watch(events.Filter{}, 2, c.send)
			if err := <-done; status.Code(err) != codes.OutOfRange {
				t.Fatalf("cursor 2 of a stream from 5: %v", err)
			}
			fine := &collector{}
			s.watch(events.Filter{}, 4, fine.send)
			all := &collector{}
			s.watch(events.Filter{}, 0, all.send)
			testenv.Eventually(t, 5*time.Second, "the kept events", func() bool {
				a, _ := fine.count()
				b, _ := all.count()
				return a == 6 && b == 6
			})
			if err := s.rdb.Del(context.Background(), s.key).Err(); err != nil {
				t.Fatal(err)
			}
			done, _ = s.watch(events.Filter{}, 5, (&collector{}).send)
			if err := <-done; status.Code(err) != codes.Unavailable {
				t.Fatalf("an emptied stream: %v", err)
			}
		})
	}
}

// Round two, points 9 and 16: a cursor past the feed's end is OUT_OF_RANGE
// (the watcher would otherwise wait for places handed out again, and miss
// them), and every watch, resumed or not, begins with a heartbeat at its
// cursor before the events it missed.
func TestCursorPastTheEndAndFirstHeartbeat(t *testing.T) {
	s := newStream(t, events.Config{Heartbeat: time.Second, Stall: time.Second})
	s.add("o-1", "alice", "message_sent", 5)
	done, _ := s.watch(events.Filter{}, 9000000000, (&collector{}).send)
	select {
	case err := <-done:
		if status.Code(err) != codes.OutOfRange {
			t.Fatalf("a cursor past the end: %v, want OUT_OF_RANGE", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a watch from a cursor past the end is still waiting, deaf")
	}
	var mu sync.Mutex
	var items []events.Item
	s.watch(events.Filter{}, 2, func(it events.Item) error { mu.Lock(); items = append(items, it); mu.Unlock(); return nil })
	testenv.Eventually(t, 5*time.Second, "the missed events", func() bool { mu.Lock(); defer mu.Unlock(); return len(items) >= 4 })
	mu.Lock()
	defer mu.Unlock()
	if items[0].Event != nil || items[0].Cursor != 2 {
		t.Fatalf("a resumed watch began with %+v, want a heartbeat at cursor 2", items[0])
	}
	for i, it := range items[1:4] {
		if it.Event == nil || it.Event.Cursor != int64(3+i) {
			t.Fatalf("item %d: %+v, want event %d", i+1, it, 3+i)
		}
	}
	// The end itself is a fine cursor.
	at := &collector{}
	s.watch(events.Filter{}, s.n, at.send)
	testenv.Eventually(t, 5*time.Second, "a watch from the end begins", func() bool { _, b := at.count(); return b > 0 })
}

// Round two, point 10: a consumer group Redis lost (a restart without
// persistence) is made again from its last acknowledged place, kept in
// PostgreSQL, not from the stream's end: the events the relay publishes
// again under their ids reach it again, so every event arrives at least
// once.
func TestConsumerGroupSurvivesARedisLoss(t *testing.T) {
	s := newStream(t, events.Config{Heartbeat: 200 * time.Millisecond, Stall: time.Second, ClaimAfter: time.Minute})
	s.hub.SetGroupPositions(testenv.DB(t))
	s.add("o-1", "alice", "message_sent", 5)
	ctx := context.Background()
	first := &collector{}
	_, stop := s.watchGroup("billing", "c1", 0, first.send)
	testenv.Eventually(t, 5*time.Second, "the group's first five", func() bool { n, _ := first.count(); return n == 5 })
	stop()
	if _, err := s.hub.Ack(ctx, "billing", []int64{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	// Redis loses everything; the relay publishes the kept events again,
	// under the same ids, and three more happen.
	if err := s.rdb.Del(ctx, s.key).Err(); err != nil {
		t.Fatal(err)
	}
	s.n = 0
	s.add("o-1", "alice", "message_sent", 8)
	again := &collector{}
	s.watchGroup("billing", "c1", -1, again.send) // "-1": a new group would start at the end
	testenv.Eventually(t, 5*time.Second, "events 4 to 8 again", func() bool { n, _ := again.count(); return n == 5 })
	again.mu.Lock()
	defer again.mu.Unlock()
	for i, e := range again.events {
		if e.Cursor != int64(4+i) {
			t.Fatalf("event %d is place %d, want %d", i, e.Cursor, 4+i)
		}
	}
}

// watchGroup runs a group watch in the background.
func (s *stream) watchGroup(group, consumer string, start int64, send func(events.Item) error) (<-chan error, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	s.t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- s.hub.WatchGroup(ctx, events.Filter{}, group, consumer, start, send) }()
	return done, func() { cancel(); <-done }
}

// Round two, point 16: a filter naming a kind no event has is refused
// (INVALID_ARGUMENT naming the field), not a watch that stays silent; kinds
// and families that exist are fine.
func TestUnknownKindsAreRefused(t *testing.T) {
	s := newStream(t, events.Config{Heartbeat: time.Second, Stall: time.Second})
	for _, kinds := range [][]string{{"payed"}, {"paid", "reminders.*"}, {"nothing.*"}} {
		err := s.hub.Watch(context.Background(), events.Filter{Kinds: kinds}, -1, func(events.Item) error { return nil })
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "filter.kinds[") {
			t.Fatalf("kinds %v: %v, want INVALID_ARGUMENT naming the field", kinds, err)
		}
	}
	c := &collector{}
	s.watch(events.Filter{Kinds: []string{"paid", "reminder.*"}}, -1, c.send)
	testenv.Eventually(t, 5*time.Second, "a watch of known kinds begins", func() bool { _, b := c.count(); return b > 0 })
}

// Round two, point 11: watches are bounded per caller and per replica
// (RESOURCE_EXHAUSTED beyond), and a watch that ends gives its place back.
func TestWatchesAreBounded(t *testing.T) {
	s := newStream(t, events.Config{Heartbeat: time.Second, Stall: time.Second, PerCaller: 2, PerReplica: 3})
	as := func(subject string) context.Context {
		return auth.WithPrincipal(context.Background(), auth.Principal{Role: auth.RoleBuyer, Subject: subject})
	}
	open := func(ctx context.Context) (chan error, context.CancelFunc) {
		ctx, cancel := context.WithCancel(ctx)
		t.Cleanup(cancel)
		began := make(chan struct{}, 1)
		done := make(chan error, 1)
		go func() {
			done <- s.hub.Watch(ctx, events.Filter{}, -1, func(events.Item) error {
				select {
				case began <- struct{}{}:
				default:
				}
				return nil
			})
		}()
		select {
		case <-began:
		case err := <-done:
			done <- err
		case <-time.After(5 * time.Second):
			t.Fatal("a watch neither began nor ended")
		}
		return done, cancel
	}
	refused := func(done chan error) bool {
		select {
		case err := <-done:
			return status.Code(err) == codes.ResourceExhausted
		case <-time.After(200 * time.Millisecond):
			return false
		}
	}
	_, endFirst := open(as("mallory"))
	open(as("mallory"))
	if d, _ := open(as("mallory")); !refused(d) {
		t.Fatal("a third watch of one caller was not refused")
	}
	open(as("alice"))
	if d, _ := open(as("bob")); !refused(d) {
		t.Fatal("a fourth watch on the replica was not refused")
	}
	endFirst()
	testenv.Eventually(t, 5*time.Second, "the ended watch's place is free", func() bool {
		d, cancel := open(as("bob"))
		defer cancel()
		return !refused(d)
	})
}

// Round two, point 11: a party's replay reads that party's entries only
// (its index), not the whole stream: a store's and a buyer's watch from
// cursor 0 among thousands of other events read what they are sent; a
// watch of every order reads them all; places an older relay published
// without indexes are scanned, then the index takes over; and the index
// follows the stream's trimming. On a single Redis and on the Cluster (the
// indexes live in the stream's hash slot).
func TestReplayCostsWhatThePartysEventsCost(t *testing.T) {
	for _, r := range testenv.Redises(t) {
		t.Run(r.Name, func(t *testing.T) {
			s := newStreamOn(t, r.Client, r.Prefix, events.Config{Heartbeat: time.Second, Stall: 5 * time.Second})
			s.addUnindexed("store-a", "o-old", "bob", "message_sent", 2)
			s.addUnindexed("store-b", "o-x", "carol", "message_sent", 300)
			s.addOf("store-a", "o-1", "alice", "order_placed", 2)
			s.addOf("store-b", "o-2", "carol", "message_sent", 3000)
			s.addOf("store-a", "o-3", "bob", "paid", 2)
			s.addOf("store-b", "o-4", "carol", "message_sent", 1000)

			replay := func(f events.Filter, after int64, want int) (places []int64, read int64) {
				t.Helper()
				before := s.hub.Replayed()
				c := &collector{}
				_, cancel := s.watch(f, after, c.send)
				defer cancel()
				testenv.Eventually(t, 10*time.Second, fmt.Sprintf("%d events of %+v", want, f), func() bool { n, _ := c.count(); return n >= want })
				c.mu.Lock()
				defer c.mu.Unlock()
				for _, e := range c.events {
					places = append(places, e.Cursor)
				}
				return places, s.hub.Replayed() - before
			}
			// From after the unindexed places: the index alone.
			got, read := replay(events.Filter{SellerID: "store-a"}, 302, 4)
			if fmt.Sprint(got) != "[303 304 3305 3306]" || read != 4 {
				t.Fatalf("store-a's replay: places %v, %d entries read; want [303 304 3305 3306] and 4", got, read)
			}
			got, read = replay(events.Filter{BuyerID: "bob"}, 302, 2)
			if fmt.Sprint(got) != "[3305 3306]" || read != 2 {
				t.Fatalf("bob's replay: places %v, %d entries read; want [3305 3306] and 2", got, read)
			}
			// From 0: the 302 places published without indexes are scanned.
			got, read = replay(events.Filter{SellerID: "store-a"}, 0, 6)
			if fmt.Sprint(got) != "[1 2 303 304 3305 3306]" || read != 302+4 {
				t.Fatalf("store-a's replay from 0: places %v, %d entries read; want [1 2 303 304 3305 3306] and 306", got, read)
			}
			// Every order's watch reads every entry.
			if _, read = replay(events.Filter{}, 302, 4004); read != 4004 {
				t.Fatalf("a watch of every order read %d entries, want 4004", read)
			}

			// Trimmed places leave the indexes at the next publish, and an
			// index lives on after its last event by the retention at most.
			ctx := context.Background()
			if err := s.rdb.XTrimMinID(ctx, s.key, "3306-0").Err(); err != nil {
				t.Fatal(err)
			}
			s.addOf("store-a", "o-5", "alice", "paid", 1)
			key := events.IndexKey(s.key, "s", "store-a")
			if places, err := s.rdb.ZRange(ctx, key, 0, -1).Result(); err != nil || fmt.Sprint(places) != "[3306 4307]" {
				t.Fatalf("store-a's index after the trim: %v %v, want [3306 4307]", places, err)
			}
			if ttl, err := s.rdb.PTTL(ctx, key).Result(); err != nil || ttl <= time.Hour || ttl > 2*time.Hour {
				t.Fatalf("store-a's index lives %v (%v), want the retention and an hour", ttl, err)
			}
			// A cursor the index still reaches but the stream trimmed is
			// OUT_OF_RANGE, as in a scan.
			done, _ := s.watch(events.Filter{SellerID: "store-a"}, 303, (&collector{}).send)
			if err := <-done; status.Code(err) != codes.OutOfRange {
				t.Fatalf("store-a from a trimmed cursor: %v, want OUT_OF_RANGE", err)
			}
		})
	}
}

// A replica with no watch open does not read the stream: every event would
// otherwise cost each replica of both services a read of it (a blocking
// read woken, its reply parsed) whether anyone watches or not. A watch
// that begins while the Hub is idle starts from the stream's end as it is
// then (not from where the Hub stopped reading), misses nothing added
// after, and a watch resumed from a cursor gets what it missed.
func TestHubReadsOnlyWhileWatched(t *testing.T) {
	s := newStream(t, events.Config{Heartbeat: time.Hour, Stall: time.Minute})
	s.add("o-1", "alice", "message_sent", 100)
	time.Sleep(300 * time.Millisecond) // a Hub that reads would have read them
	if n := s.hub.Live(); n != 0 {
		t.Fatalf("the Hub read %d entries with no watch open", n)
	}
	now := &collector{}
	_, stop := s.watch(events.Filter{}, -1, now.send)
	testenv.Eventually(t, 5*time.Second, "the watch began", func() bool { _, b := now.count(); return b > 0 })
	s.add("o-2", "bob", "paid", 5)
	testenv.Eventually(t, 5*time.Second, "the live events", func() bool { n, _ := now.count(); return n >= 5 })
	now.mu.Lock()
	if len(now.events) != 5 || now.beats[0] != 100 {
		t.Fatalf("a watch from now on got %d events after its first heartbeat at %d, want 5 after 100", len(now.events), now.beats[0])
	}
	for i, e := range now.events {
		if e.Cursor != int64(101+i) || e.OrderID != "o-2" {
			t.Fatalf("live event %d: cursor %d of %s, want %d of o-2", i, e.Cursor, e.OrderID, 101+i)
		}
	}
	now.mu.Unlock()
	stop()
	s.add("o-2", "bob", "shipped", 1) // wakes a read that was waiting when the watch ended
	time.Sleep(300 * time.Millisecond)
	read := s.hub.Live()
	if read < 5 {
		t.Fatalf("the Hub read %d entries for its watch, want at least 5", read)
	}
	s.add("o-3", "carol", "message_sent", 50)
	time.Sleep(300 * time.Millisecond)
	if n := s.hub.Live(); n != read {
		t.Fatalf("the Hub read %d more entries after its last watch ended", n-read)
	}
	resumed := &collector{}
	s.watch(events.Filter{}, 104, resumed.send)
	s.add("o-4", "dave", "paid", 2)
	testenv.Eventually(t, 5*time.Second, "the missed and the live events", func() bool { n, _ := resumed.count(); return n >= 54 })
	resumed.mu.Lock()
	defer resumed.mu.Unlock()
	for i, e := range resumed.events {
		if e.Cursor != int64(105+i) {
			t.Fatalf("resumed event %d: cursor %d, want %d (each once, in order)", i, e.Cursor, 105+i)
		}
	}
	if len(resumed.events) != 54 {
		t.Fatalf("a watch resumed from 104 got %d events, want 54 (105-158)", len(resumed.events))
	}
}
