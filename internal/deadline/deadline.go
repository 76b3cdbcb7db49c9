// Package deadline runs the orders' deadlines. Postgres holds each open
// deadline (the truth); Redis holds a key per deadline that expires when it
// is due. An expired-key listener fires deadlines promptly, a sweeper fires
// what notifications miss (they are fire-and-forget), and on start-up every
// key is re-armed from Postgres. Firing is a conditional transition, so
// firing twice, from two replicas or two paths, changes the order once.
package deadline

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/postgres"
)

// Store is the part of the record the scheduler needs.
type Store interface {
	FireDeadline(ctx context.Context, id string, kind order.DeadlineKind, now time.Time, pol order.Policy, skipLocked bool) (*order.Order, time.Time, error)
	DueDeadlines(ctx context.Context, now time.Time, after postgres.Deadline, limit int) ([]postgres.Deadline, error)
	OpenDeadlines(ctx context.Context, before time.Time, fn func([]postgres.Deadline) error) error
}

// Config tunes a Scheduler.
type Config struct {
	// Listen turns the expired-key listener on; with it off only the sweeper fires.
	Listen bool
	// SweepInterval is how often the sweeper looks for due deadlines.
	SweepInterval time.Duration
	// SweepBatch is how many deadlines one sweep transaction handles at most.
	SweepBatch int
}

// Scheduler arms, listens for and sweeps deadlines.
type Scheduler struct {
	rdb    redis.UniversalClient
	prefix string
	store  Store
	policy order.Policy
	now    func() time.Time
	log    *slog.Logger
	// fired, when set, is called with every order a deadline changed.
	fired func(*order.Order)
	// horizon: only deadlines due within it have Redis keys (0: all).
	horizon       time.Duration
	firedDeadline func(kind order.DeadlineKind, path string, lag time.Duration)

	// failures counts deadlines that could not be fired; reported holds
	// when each failing one was last logged, so that a deadline that fails
	// every sweep is reported once a minute, not flooded.
	failures atomic.Int64
	mu       sync.Mutex
	reported map[postgres.Deadline]time.Time
}

// New returns a Scheduler whose Redis keys start with prefix; pol holds the
// rules the deadlines' actions follow (refund due dates, for one).
func New(rdb redis.UniversalClient, prefix string, store Store, pol order.Policy, now func() time.Time, log *slog.Logger) *Scheduler {
	return &Scheduler{rdb: rdb, prefix: prefix, store: store, policy: pol, now: now, log: log, reported: map[postgres.Deadline]time.Time{}}
}

// SetHorizon makes Redis hold keys only for deadlines due within h (0:
// every deadline); Run arms the next ones every h/2, ahead of time. Redis
// memory then follows the near-term deadlines, not the 20-day windows.
func (s *Scheduler) SetHorizon(h time.Duration) { s.horizon = h }

// near reports whether a deadline due at due gets its key now.
func (s *Scheduler) near(due time.Time) bool {
	return s.horizon <= 0 || due.Sub(s.now()) <= s.horizon
}

// OnFired registers fn to be called with every order a deadline changed.
func (s *Scheduler) OnFired(fn func(*order.Order)) { s.fired = fn }

func (s *Scheduler) key(orderID string, kind order.DeadlineKind) string {
	return s.prefix + "deadline:{" + orderID + "}:" + string(kind)
}

func (s *Scheduler) parseKey(key string) (string, order.DeadlineKind, bool) {
	rest, ok := strings.CutPrefix(key, s.prefix+"deadline:{")
	if !ok {
		return "", "", false
	}
	id, kind, ok := strings.Cut(rest, "}:")
	return id, order.DeadlineKind(kind), ok
}

// Arm makes the order's Redis keys match its open deadlines: a key with the
// remaining time for each, none for the rest. Failure is logged, not
// returned: the sweeper fires the deadline without its key.
func (s *Scheduler) Arm(ctx context.Context, o *order.Order) {
	open := o.Deadlines()
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, kind := range order.DeadlineKinds {
			if due, ok := open[kind]; ok && s.near(due) {
				p.Set(ctx, s.key(o.ID(), kind), due.UnixMilli(), s.ttl(due))
			} else {
				p.Del(ctx, s.key(o.ID(), kind))
			}
		}
		return nil
	})
	if err != nil {
		s.log.WarnContext(ctx, "arm deadlines", "order_id", o.ID(), "err", err)
	}
}

// ttl is how long a key lives: until due, plus a little so that it never
// fires before the deadline is due by the service's clock.
func (s *Scheduler) ttl(due time.Time) time.Duration {
	return max(due.Sub(s.now()), 0) + 20*time.Millisecond
}

// RearmAll sets a key for every open deadline in Postgres within the
// horizon, for a Redis that lost its keys or missed them while the
// services were down, and for the deadlines the horizon reached since.
func (s *Scheduler) RearmAll(ctx context.Context) (int, error) {
	n := 0
	var before time.Time
	if s.horizon > 0 {
		before = s.now().Add(s.horizon)
	}
	err := s.store.OpenDeadlines(ctx, before, func(ds []postgres.Deadline) error {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, d := range ds {
				p.Set(ctx, s.key(d.OrderID, d.Kind), d.DueAt.UnixMilli(), s.ttl(d.DueAt))
			}
			return nil
		})
		n += len(ds)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("re-arm deadlines: %w", err)
	}
	return n, nil
}

// Fire carries out one deadline if it is due; one that is not (keys outlive
// their deadline by a little, so only clock skew between replicas does
// that) is left to the sweeper.
func (s *Scheduler) Fire(ctx context.Context, orderID string, kind order.DeadlineKind) error {
	now := s.now()
	o, due, err := s.store.FireDeadline(ctx, orderID, kind, now, s.policy, false)
	if err != nil {
		return fmt.Errorf("fire %s deadline of order %s: %w", kind, orderID, err)
	}
	if o != nil {
		s.done(ctx, o, kind, PathListener, now.Sub(due))
	}
	return nil
}

// The paths that fire deadlines, for the metrics.
const (
	PathListener = "listener"
	PathSweeper  = "sweeper"
)

// OnFiredDeadline is called with every deadline fired: its kind, the path
// that fired it and how late (fired − due).
func (s *Scheduler) OnFiredDeadline(fn func(kind order.DeadlineKind, path string, lag time.Duration)) {
	s.firedDeadline = fn
}

func (s *Scheduler) done(ctx context.Context, o *order.Order, kind order.DeadlineKind, path string, lag time.Duration) {
	s.log.InfoContext(ctx, "deadline fired", "order_id", o.ID(), "kind", kind, "by", path, "lag_ms", lag.Milliseconds(), "status", o.Status())
	s.Arm(ctx, o)
	if s.firedDeadline != nil {
		s.firedDeadline(kind, path, lag)
	}
	if s.fired != nil {
		s.fired(o)
	}
}

// Sweep fires every deadline that is due, each in its own transaction,
// and returns how many orders it changed. A deadline that cannot be fired
// (an unknown kind written by a newer version, a constraint the change
// breaks) is reported and skipped: it never holds up the others. Orders
// another transaction holds are skipped too; their holder re-arms them.
func (s *Scheduler) Sweep(ctx context.Context, batch int) (int, error) {
	total := 0
	now := s.now()
	var after postgres.Deadline
	for {
		ds, err := s.store.DueDeadlines(ctx, now, after, batch)
		if err != nil {
			return total, fmt.Errorf("sweep deadlines: %w", err)
		}
		for _, d := range ds {
			o, due, err := s.store.FireDeadline(ctx, d.OrderID, d.Kind, now, s.policy, true)
			if err != nil {
				if ctx.Err() != nil {
					return total, ctx.Err()
				}
				s.report(ctx, d, err)
				continue
			}
			if o != nil {
				s.done(ctx, o, d.Kind, PathSweeper, s.now().Sub(due))
				total++
			}
		}
		if len(ds) < batch {
			return total, nil
		}
		after = ds[len(ds)-1]
	}
}

// report logs a deadline that could not be fired, at most once a minute each.
func (s *Scheduler) report(ctx context.Context, d postgres.Deadline, err error) {
	s.failures.Add(1)
	now := time.Now()
	s.mu.Lock()
	last, seen := s.reported[d]
	if !seen || now.Sub(last) > time.Minute {
		s.reported[d] = now
	}
	if len(s.reported) > 10000 {
		clear(s.reported)
	}
	s.mu.Unlock()
	if !seen || now.Sub(last) > time.Minute {
		s.log.ErrorContext(ctx, "deadline cannot be fired; skipped", "order_id", d.OrderID, "kind", d.Kind, "due_at", d.DueAt, "err", err)
	}
}

// Failures returns how many times a deadline could not be fired.
func (s *Scheduler) Failures() int64 { return s.failures.Load() }

// Run re-arms every key, then listens for expired keys (if cfg.Listen) and
// sweeps every cfg.SweepInterval until ctx ends.
func (s *Scheduler) Run(ctx context.Context, cfg Config) error {
	if cfg.SweepBatch <= 0 {
		cfg.SweepBatch = 100
	}
	if n, err := s.RearmAll(ctx); err != nil {
		s.log.WarnContext(ctx, "re-arm deadlines", "err", err)
	} else {
		s.log.InfoContext(ctx, "deadlines re-armed", "count", n)
	}
	if cfg.Listen {
		go s.listen(ctx)
	}
	if s.horizon > 0 {
		go s.armAhead(ctx)
	}
	t := time.NewTicker(cfg.SweepInterval)
	defer t.Stop()
	for {
		if _, err := s.Sweep(ctx, cfg.SweepBatch); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "sweep", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// armAhead arms, every half horizon, the keys of the deadlines the horizon
// now reaches: each gets its key at least half a horizon before it is due.
// Every replica does it; setting a key twice is harmless.
func (s *Scheduler) armAhead(ctx context.Context) {
	t := time.NewTicker(s.horizon / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.RearmAll(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "arm the next deadlines", "err", err)
		}
	}
}

// listen fires deadlines as their keys expire. A Redis Cluster notifies
// expirations on the node where the key lived, so it listens on every
// primary, following the topology: a primary added, or a replica promoted
// by a failover, gets a listener within clusterPoll.
func (s *Scheduler) listen(ctx context.Context) {
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		s.listenCluster(ctx, c)
	case *redis.Client:
		s.listenNode(ctx, c)
	default:
		s.log.WarnContext(ctx, "no expired-key listener for this Redis client; the sweeper alone fires deadlines")
	}
}

// clusterPoll is how often the listener looks at the cluster's primaries.
const clusterPoll = 5 * time.Second

func (s *Scheduler) listenCluster(ctx context.Context, c *redis.ClusterClient) {
	running := map[string]context.CancelFunc{}
	defer func() {
		for _, stop := range running {
			stop()
		}
	}()
	t := time.NewTicker(clusterPoll)
	defer t.Stop()
	for {
		var mu sync.Mutex
		primaries := map[string]*redis.Client{}
		err := c.ForEachMaster(ctx, func(_ context.Context, node *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			primaries[node.Options().Addr] = node
			return nil
		})
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "list the cluster's primaries", "err", err)
		}
		for addr, node := range primaries {
			if _, ok := running[addr]; !ok {
				nodeCtx, stop := context.WithCancel(ctx)
				running[addr] = stop
				go s.listenNode(nodeCtx, node)
			}
		}
		for addr, stop := range running {
			if _, ok := primaries[addr]; !ok && err == nil {
				stop()
				delete(running, addr)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.ReloadState(ctx)
		}
	}
}

// listenNode fires deadlines as their keys expire on one Redis node.
func (s *Scheduler) listenNode(ctx context.Context, rdb *redis.Client) {
	if err := enableExpiryEvents(ctx, rdb); err != nil {
		s.log.WarnContext(ctx, "cannot enable expired-key notifications; the sweeper alone fires deadlines", "node", rdb.Options().Addr, "err", err)
	}
	channel := "__keyevent@" + strconv.Itoa(rdb.Options().DB) + "__:expired"
	// go-redis re-subscribes by itself after a dropped connection; what
	// expired meanwhile is the sweeper's.
	sub := rdb.Subscribe(ctx, channel)
	defer func() { _ = sub.Close() }()
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			id, kind, ok := s.parseKey(msg.Payload)
			if !ok {
				continue
			}
			if err := s.Fire(ctx, id, kind); err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "expired-key listener", "err", err)
			}
		}
	}
}

// enableExpiryEvents adds expired-key events to Redis's notify-keyspace-events
// setting, keeping whatever else is enabled.
func enableExpiryEvents(ctx context.Context, rdb *redis.Client) error {
	cur, err := rdb.ConfigGet(ctx, "notify-keyspace-events").Result()
	if err != nil {
		return err
	}
	flags := cur["notify-keyspace-events"]
	want := flags
	for _, f := range "Ex" {
		if !strings.ContainsRune(want, f) && !(f == 'x' && strings.ContainsRune(want, 'A')) {
			want += string(f)
		}
	}
	if want == flags {
		return nil
	}
	return rdb.ConfigSet(ctx, "notify-keyspace-events", want).Err()
}
