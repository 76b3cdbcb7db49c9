// Package deadline runs the orders' deadlines. Postgres holds each open
// deadline (the truth); Redis holds the near ones (due within the horizon)
// in time buckets: a deadline is a member of the hash of the quarter second
// it falls due in, and the bucket's marker key expires at that quarter
// second's end. An expired-key listener claims the expired bucket's
// members and fires them, many orders per transaction; a sweeper fires
// what notifications miss (they are fire-and-forget), and every replica
// arms the deadlines the horizon reaches, ahead of time. Firing is a
// conditional transition, so firing twice, from two replicas or two paths,
// changes the order once.
//
// Redis finds expired keys by sampling (or when they are read), so a
// marker may outlive its time by seconds among many keys; every replica
// reads the markers whose time has come, which makes Redis expire them and
// notify at once. A bucket holds its deadlines in a hash (a compact
// listpack while small): about 30 bytes a deadline, against some 180 for a
// key of its own.
package deadline

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/postgres"
)

// Store is the part of the record the scheduler needs.
type Store interface {
	FireDeadline(ctx context.Context, id string, kind order.DeadlineKind, now time.Time, pol order.Policy, skipLocked bool) (*order.Order, time.Time, error)
	FireDeadlines(ctx context.Context, ds []postgres.Deadline, now time.Time, pol order.Policy) (postgres.Fired, error)
	DueDeadlines(ctx context.Context, now time.Time, after postgres.Deadline, limit int) ([]postgres.Deadline, error)
	OpenDeadlines(ctx context.Context, before time.Time, fn func([]postgres.Deadline) error) error
}

// Config tunes a Scheduler.
type Config struct {
	// Listen turns the expired-key listener on; with it off only the sweeper fires.
	Listen bool
	// SweepInterval is how often the sweeper looks for due deadlines.
	SweepInterval time.Duration
	// Batch is how many deadlines one transaction fires at most (default 1,000).
	Batch int
	// Workers is how many batches of the listener's a replica fires at
	// once (default 2: one is written while the next is read and changed).
	Workers int
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
	// sweepGrace: the sweeper fires only deadlines due at least this long ago.
	sweepGrace time.Duration
	failures   atomic.Int64
	mu         sync.Mutex
	reported   map[postgres.Deadline]time.Time
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

// grain is the width of a bucket: deadlines due within the same quarter
// second share a hash and a marker.
const grain = 250 * time.Millisecond

// bucketOf numbers the bucket a deadline due at t falls in: the one whose
// end is the first multiple of grain at or after t.
func bucketOf(t time.Time) int64 {
	ms, g := t.UnixMilli(), grain.Milliseconds()
	return (ms + g - 1) / g
}

func bucketEnd(b int64) time.Time { return time.UnixMilli(b * grain.Milliseconds()) }

// bucketFor is the bucket a deadline due at due is armed in now: its own,
// or, for one due in less than a grain (or past), the first that ends a
// grain from now, so that the marker never expires before the member
// reaches its hash.
func (s *Scheduler) bucketFor(due time.Time) int64 {
	return max(bucketOf(due), bucketOf(s.now().Add(grain)))
}

func (s *Scheduler) markerKey(b int64) string  { return s.prefix + "dt:" + strconv.FormatInt(b, 10) }
func (s *Scheduler) membersKey(b int64) string { return s.prefix + "dl:" + strconv.FormatInt(b, 10) }

// bucketGrace is how long a bucket's hash outlives its marker: long enough
// for a listener to claim it, short enough that the hash of a bucket
// nobody claimed (every replica down) does not stay; the sweeper fires its
// deadlines.
const bucketGrace = 10 * time.Minute

// kindCodes shortens the deadline kinds in the members' names.
var kindCodes = map[order.DeadlineKind]byte{
	order.DeadlinePayment: 'p', order.DeadlineVerification: 'v', order.DeadlineProcessing: 'g',
	order.DeadlineCancelAnswer: 'a', order.DeadlineShipBy: 's', order.DeadlineProtection: 't',
	order.DeadlineDisputeAnswer: 'd', order.DeadlineOffer: 'o', order.DeadlineRemindPayment: 'P',
	order.DeadlineRemindCancelAnswer: 'A', order.DeadlineRemindShipBy: 'S', order.DeadlineRemindDisputeAnswer: 'D',
	order.DeadlinePart: 'b', order.DeadlineRemindPart: 'B',
}

var kindOfCode = func() map[byte]order.DeadlineKind {
	m := map[byte]order.DeadlineKind{}
	for k, c := range kindCodes {
		m[c] = k
	}
	return m
}()

// member names a deadline in its bucket: the order's id in 22 characters
// of base64, then the kind's code (or "~" and the kind, for a kind without
// one).
func member(orderID string, kind order.DeadlineKind) string {
	u, err := uuid.Parse(orderID)
	if err != nil {
		return "~" + orderID + "~" + string(kind)
	}
	id := base64.RawURLEncoding.EncodeToString(u[:])
	if c, ok := kindCodes[kind]; ok {
		return id + string(c)
	}
	return id + "~" + string(kind)
}

func parseMember(m string) (postgres.Deadline, bool) {
	if len(m) < 23 {
		return postgres.Deadline{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(m[:22])
	if err != nil || len(raw) != 16 {
		return postgres.Deadline{}, false
	}
	id := uuid.UUID(raw).String()
	if m[22] == '~' {
		return postgres.Deadline{OrderID: id, Kind: order.DeadlineKind(m[23:])}, len(m) > 23
	}
	kind, ok := kindOfCode[m[22]]
	return postgres.Deadline{OrderID: id, Kind: kind}, ok && len(m) == 23
}

// arming collects the Redis writes of a set of deadline changes, by bucket.
type arming struct {
	add map[int64][]any
	del map[int64][]string
}

func (a *arming) put(b int64, m string) {
	if a.add == nil {
		a.add = map[int64][]any{}
	}
	a.add[b] = append(a.add[b], m, "")
}

func (a *arming) drop(b int64, m string) {
	if a.del == nil {
		a.del = map[int64][]string{}
	}
	a.del[b] = append(a.del[b], m)
}

// queue queues the writes in p: per bucket touched, the members added
// (HSET), the hash's and the marker's expiry, the members removed (HDEL).
func (s *Scheduler) queue(ctx context.Context, p redis.Pipeliner, a *arming) {
	for b, ms := range a.add {
		end := bucketEnd(b)
		p.HSet(ctx, s.membersKey(b), ms...)
		p.PExpireAt(ctx, s.membersKey(b), end.Add(bucketGrace))
		p.Do(ctx, "SET", s.markerKey(b), "1", "PXAT", end.UnixMilli())
	}
	for b, ms := range a.del {
		p.HDel(ctx, s.membersKey(b), ms...)
	}
}

// Arm makes Redis match the change of the orders' deadlines: a deadline
// opened (or moved) within the horizon joins its bucket, one closed (or
// moved) leaves it; deadlines that did not change cost no Redis command.
// An order's earlier deadlines are its PriorDeadlines (none for a new
// order). Failure is logged, not returned: the sweeper fires the deadline
// without its member.
func (s *Scheduler) Arm(ctx context.Context, orders ...*order.Order) {
	var a arming
	for _, o := range orders {
		prior, cur := o.PriorDeadlines(), o.Deadlines()
		for kind, due := range prior {
			if now, ok := cur[kind]; ok && now.Equal(due) {
				continue
			}
			if s.near(due) {
				a.drop(bucketOf(due), member(o.ID(), kind))
			}
		}
		for kind, due := range cur {
			if was, ok := prior[kind]; ok && was.Equal(due) {
				continue
			}
			if s.near(due) {
				a.put(s.bucketFor(due), member(o.ID(), kind))
			}
		}
	}
	if a.add == nil && a.del == nil {
		return
	}
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error { s.queue(ctx, p, &a); return nil }); err != nil {
		s.log.WarnContext(ctx, "arm deadlines", "orders", len(orders), "err", err)
	}
}

// RearmAll arms every open deadline in Postgres within the horizon, for a
// Redis that lost its keys or missed them while the services were down,
// and for the deadlines the horizon reached since.
func (s *Scheduler) RearmAll(ctx context.Context) (int, error) {
	n := 0
	var before time.Time
	if s.horizon > 0 {
		before = s.now().Add(s.horizon)
	}
	err := s.store.OpenDeadlines(ctx, before, func(ds []postgres.Deadline) error {
		var a arming
		for _, d := range ds {
			a.put(s.bucketFor(d.DueAt), member(d.OrderID, d.Kind))
		}
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error { s.queue(ctx, p, &a); return nil })
		n += len(ds)
		return err
	})
	if err == nil {
		// Armed: a Redis found without this key has lost its data since.
		err = s.rdb.Set(ctx, s.armedKey(), "1", 0).Err()
	}
	if err != nil {
		return n, fmt.Errorf("re-arm deadlines: %w", err)
	}
	return n, nil
}

// armedKey is set, without a TTL, once the deadlines are armed.
func (s *Scheduler) armedKey() string { return s.prefix + "deadlines:armed" }

// lossCheck is how often a replica checks that Redis still holds its
// deadlines' keys.
const lossCheck = time.Second

// watchLoss re-arms every deadline within the horizon at once when Redis
// lost its data (a restart without persistence, a failover to an empty
// replica): its keys would otherwise be missing until the next re-arm, half
// a horizon later, and only the sweeper would fire them, a sweep late. The
// sign is armedKey gone. On a Redis Cluster the key lives on one primary,
// so it tells of that primary's loss only.
func (s *Scheduler) watchLoss(ctx context.Context) {
	every(ctx, lossCheck, func() {
		n, err := s.rdb.Exists(ctx, s.armedKey()).Result()
		if err != nil || n > 0 {
			return
		}
		s.log.WarnContext(ctx, "Redis lost the deadlines' keys; re-arming them now")
		if _, err := s.RearmAll(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "re-arm deadlines", "err", err)
		}
	})
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

// done re-arms what the fired deadlines changed, in one pipeline, and
// reports them.
func (s *Scheduler) done(ctx context.Context, fs []postgres.FiredDeadline, path string) {
	if len(fs) == 0 {
		return
	}
	now := s.now()
	orders := make([]*order.Order, 0, len(fs))
	seen := make(map[*order.Order]bool, len(fs))
	var maxLag time.Duration
	for _, f := range fs {
		lag := now.Sub(f.DueAt)
		maxLag = max(maxLag, lag)
		s.log.DebugContext(ctx, "deadline fired", "order_id", f.OrderID, "kind", f.Kind, "by", path, "lag_ms", lag.Milliseconds(), "status", f.Order.Status())
		if s.firedDeadline != nil {
			s.firedDeadline(f.Kind, path, lag)
		}
		if !seen[f.Order] {
			seen[f.Order] = true
			orders = append(orders, f.Order)
		}
		if path == PathListener {
			// Its member left Redis with the claimed bucket: nothing to remove.
			f.Order.ForgetPriorDeadline(f.Kind)
		}
	}
	s.log.InfoContext(ctx, "deadlines fired", "count", len(fs), "orders", len(orders), "by", path, "max_lag_ms", maxLag.Milliseconds())
	s.Arm(ctx, orders...)
	if s.fired != nil {
		for _, o := range orders {
			s.fired(o)
		}
	}
}

// fireBatch fires ds, many orders per transaction, and returns the
// deadlines of orders another transaction held. Should the batch fail as a
// whole (a change that breaks a constraint), its deadlines are fired one
// by one, so that the failing one is reported and the others still fire.
func (s *Scheduler) fireBatch(ctx context.Context, ds []postgres.Deadline, path string) (fired int, busy []postgres.Deadline, err error) {
	res, err := s.store.FireDeadlines(ctx, ds, s.now(), s.policy)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		for _, d := range ds {
			o, due, err := s.store.FireDeadline(ctx, d.OrderID, d.Kind, s.now(), s.policy, true)
			switch {
			case err != nil && ctx.Err() != nil:
				return fired, busy, ctx.Err()
			case err != nil:
				s.report(ctx, d, err)
			case o != nil:
				s.done(ctx, []postgres.FiredDeadline{{Deadline: postgres.Deadline{OrderID: d.OrderID, Kind: d.Kind, DueAt: due}, Order: o}}, path)
				fired++
			}
		}
		return fired, nil, nil
	}
	for _, f := range res.Failed {
		s.report(ctx, f.Deadline, f.Err)
	}
	s.done(ctx, res.Fired, path)
	// A deadline claimed before the database's clock says it is due (this
	// replica's clock runs ahead) is tried again like one whose order was
	// held, and left to the sweeper after that.
	return len(res.Fired), append(res.Busy, res.Early...), nil
}

// Sweep fires every deadline that is due, many orders per transaction, and
// returns how many it fired. A deadline that cannot be fired (an unknown
// kind written by a newer version, a constraint the change breaks) is
// reported and skipped: it never holds up the others. Orders another
// transaction holds are skipped too; the next sweep, or their holder's
// change, takes them. With the listener on, the sweeper leaves it the
// deadlines due within the last sweep interval (at most a minute): it
// takes what the listener missed, not what it is still working through.
func (s *Scheduler) Sweep(ctx context.Context, batch int) (int, error) {
	total := 0
	now := s.now().Add(-s.sweepGrace)
	var after postgres.Deadline
	for {
		ds, err := s.store.DueDeadlines(ctx, now, after, batch)
		if err != nil {
			return total, fmt.Errorf("sweep deadlines: %w", err)
		}
		if len(ds) > 0 {
			n, _, err := s.fireBatch(ctx, ds, PathSweeper)
			total += n
			if err != nil {
				return total, err
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

// Run re-arms every deadline within the horizon, then listens for expired
// buckets (if cfg.Listen) and sweeps every cfg.SweepInterval until ctx
// ends.
func (s *Scheduler) Run(ctx context.Context, cfg Config) error {
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	if n, err := s.RearmAll(ctx); err != nil {
		s.log.WarnContext(ctx, "re-arm deadlines", "err", err)
	} else {
		s.log.InfoContext(ctx, "deadlines re-armed", "count", n)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Listen {
		s.sweepGrace = min(cfg.SweepInterval, time.Minute)
	}
	if cfg.Listen {
		q := &queue{wake: make(chan struct{}, 1)}
		for range cfg.Workers {
			go s.fireQueued(ctx, q, cfg.Batch)
		}
		go s.listen(ctx, q)
		go s.poke(ctx)
	}
	if s.horizon > 0 {
		go s.armAhead(ctx)
	}
	go s.watchLoss(ctx)
	t := time.NewTicker(cfg.SweepInterval)
	defer t.Stop()
	for {
		if _, err := s.Sweep(ctx, cfg.Batch); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "sweep", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// queue holds the deadlines the listener claimed, until fired.
type queue struct {
	mu    sync.Mutex
	items []queued
	wake  chan struct{}
}

type queued struct {
	d     postgres.Deadline
	tries int
}

func (q *queue) push(items ...queued) {
	q.mu.Lock()
	q.items = append(q.items, items...)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take takes up to n deadlines; if more wait, it wakes another worker.
func (q *queue) take(n int) []queued {
	q.mu.Lock()
	defer q.mu.Unlock()
	n = min(n, len(q.items))
	out := slices.Clone(q.items[:n])
	q.items = q.items[n:]
	if len(q.items) == 0 {
		q.items = nil
	} else {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	return out
}

// How a deadline of an order another transaction holds (a payment, say)
// is tried again: every busyRetry, busyTries times; then it is the
// sweeper's.
const (
	busyRetry = 100 * time.Millisecond
	busyTries = 30
)

// fireQueued fires the claimed deadlines, up to batch per transaction.
func (s *Scheduler) fireQueued(ctx context.Context, q *queue, batch int) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		}
		for ctx.Err() == nil {
			items := q.take(batch)
			if len(items) == 0 {
				break
			}
			ds := make([]postgres.Deadline, len(items))
			tries := make(map[postgres.Deadline]int, len(items))
			for i, it := range items {
				ds[i] = it.d
				tries[it.d] = it.tries
			}
			_, busy, err := s.fireBatch(ctx, ds, PathListener)
			if err != nil {
				if ctx.Err() == nil {
					s.log.ErrorContext(ctx, "expired-key listener", "err", err)
				}
				continue
			}
			var again []queued
			for _, d := range busy {
				key := postgres.Deadline{OrderID: d.OrderID, Kind: d.Kind}
				if n := tries[key] + 1; n < busyTries {
					again = append(again, queued{d: key, tries: n})
				}
			}
			if len(again) > 0 {
				time.AfterFunc(busyRetry, func() { q.push(again...) })
			}
		}
	}
}

// claim takes an expired bucket's deadlines: the first replica to claim
// it gets them, the others nothing.
func (s *Scheduler) claim(ctx context.Context, b int64) ([]queued, error) {
	var keys *redis.StringSliceCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		keys = p.HKeys(ctx, s.membersKey(b))
		p.Del(ctx, s.membersKey(b))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim deadline bucket %d: %w", b, err)
	}
	out := make([]queued, 0, len(keys.Val()))
	for _, m := range keys.Val() {
		if d, ok := parseMember(m); ok {
			out = append(out, queued{d: d})
		}
	}
	return out, nil
}

// poke reads, every grain, the markers whose time has just come, which
// makes Redis expire them (and notify) now rather than when its sampling
// finds them. Markers that are gone cost a cheap miss.
func (s *Scheduler) poke(ctx context.Context) {
	every(ctx, grain, func() {
		cur := s.now().UnixMilli() / grain.Milliseconds()
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Exists(ctx, s.markerKey(cur-1))
			p.Exists(ctx, s.markerKey(cur))
			return nil
		})
		if err != nil && ctx.Err() == nil {
			s.log.DebugContext(ctx, "read due deadline markers", "err", err)
		}
	})
}

// every calls fn every d until ctx ends.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// armAhead arms, every half horizon, the keys of the deadlines the horizon
// now reaches: each gets its key at least half a horizon before it is due.
// Every replica does it; setting a key twice is harmless.
func (s *Scheduler) armAhead(ctx context.Context) {
	every(ctx, s.horizon/2, func() {
		if _, err := s.RearmAll(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "arm the next deadlines", "err", err)
		}
	})
}

// listen fires deadlines as their keys expire. A Redis Cluster notifies
// expirations on the node where the key lived, so it listens on every
// primary, following the topology: a primary added, or a replica promoted
// by a failover, gets a listener within clusterPoll.
func (s *Scheduler) listen(ctx context.Context, q *queue) {
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		s.listenCluster(ctx, c, q)
	case *redis.Client:
		s.listenNode(ctx, c, q)
	default:
		s.log.WarnContext(ctx, "no expired-key listener for this Redis client; the sweeper alone fires deadlines")
	}
}

// clusterPoll is how often the listener looks at the cluster's primaries.
const clusterPoll = 5 * time.Second

func (s *Scheduler) listenCluster(ctx context.Context, c *redis.ClusterClient, q *queue) {
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
				go s.listenNode(nodeCtx, node, q)
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

// listenNode claims the deadlines of the buckets whose markers expire on
// one Redis node, for fireQueued.
func (s *Scheduler) listenNode(ctx context.Context, rdb *redis.Client, q *queue) {
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
			rest, ok := strings.CutPrefix(msg.Payload, s.prefix+"dt:")
			if !ok {
				continue
			}
			b, err := strconv.ParseInt(rest, 10, 64)
			if err != nil {
				continue
			}
			items, err := s.claim(ctx, b)
			if err != nil {
				if ctx.Err() == nil {
					s.log.ErrorContext(ctx, "expired-key listener", "err", err)
				}
				continue
			}
			if len(items) > 0 {
				q.push(items...)
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
