package events_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/souk-dev/souk/internal/events"
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

// add appends events as the relay does: place n under id "<n>-1".
func (s *stream) add(orderID, buyer, kind string, count int) {
	s.t.Helper()
	ctx := context.Background()
	pipe := s.rdb.Pipeline()
	for range count {
		s.n++
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: s.key, ID: strconv.FormatInt(s.n, 10) + "-1", Values: []any{
			"event_id", strconv.FormatInt(s.n, 10), "order_id", orderID, "buyer_id", buyer, "seller_id", "store-x",
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
			time.Sleep(200 * time.Millisecond) // the hub has read the stream
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
