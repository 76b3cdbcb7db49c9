// Package lock holds per-order locks in Redis for the long steps of a
// mutation (a payment's call to the provider), so that competing changes wait
// or are refused instead of racing it. A lock is never the only guard: the
// order's Postgres version is the fencing token.
package lock

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bsm/redislock"
	"github.com/redis/go-redis/v9"

	"github.com/souk-dev/souk/internal/order"
)

// ErrBusy means another operation holds the order's lock.
var ErrBusy = fmt.Errorf("%w: another operation on this order is in progress, try again", order.ErrConflict)

// errWaited ends a wait for a lock.
var errWaited = errors.New("waited for the lock")

// Locker obtains order locks.
type Locker struct {
	client *redislock.Client
	prefix string
	ttl    time.Duration
}

// New returns a Locker whose keys start with prefix and live for ttl unless
// refreshed.
func New(rdb redis.UniversalClient, prefix string, ttl time.Duration) *Locker {
	return &Locker{client: redislock.New(rdb), prefix: prefix, ttl: ttl}
}

// Lock is a held order lock, refreshed in the background until released.
type Lock struct {
	lock   *redislock.Lock
	lost   atomic.Bool
	cancel context.CancelFunc
	done   chan struct{}
}

// Key returns the Redis key of an order's lock; the hash tag keeps an
// order's keys on one Redis Cluster slot.
func (l *Locker) Key(orderID string) string { return l.prefix + "lock:{" + orderID + "}" }

// Obtain takes the order's lock, waiting up to wait (and no longer) for a
// holder to let go; wait 0 tries once.
func (l *Locker) Obtain(ctx context.Context, orderID string, wait time.Duration) (*Lock, error) {
	opts := &redislock.Options{RetryStrategy: redislock.NoRetry()}
	if wait > 0 {
		opts.RetryStrategy = redislock.ExponentialBackoff(5*time.Millisecond, 100*time.Millisecond)
	}
	// The retries stop at this deadline; a try needs a moment of its own.
	wctx, cancel := context.WithTimeout(ctx, wait+time.Second)
	defer cancel()
	if wait > 0 {
		var cancelWait context.CancelFunc
		wctx, cancelWait = context.WithTimeoutCause(wctx, wait, errWaited)
		defer cancelWait()
	}
	rl, err := l.client.Obtain(wctx, l.Key(orderID), l.ttl, opts)
	if errors.Is(err, redislock.ErrNotObtained) || errors.Is(context.Cause(wctx), errWaited) && ctx.Err() == nil {
		return nil, ErrBusy
	} else if err != nil {
		return nil, fmt.Errorf("obtain lock: %w", err)
	}
	rctx, stop := context.WithCancel(context.Background())
	lk := &Lock{lock: rl, cancel: stop, done: make(chan struct{})}
	go lk.refresh(rctx, l.ttl)
	return lk, nil
}

func (lk *Lock) refresh(ctx context.Context, ttl time.Duration) {
	defer close(lk.done)
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := lk.lock.Refresh(ctx, ttl, nil); err != nil && ctx.Err() == nil {
				lk.lost.Store(true)
				return
			}
		}
	}
}

// Lost reports whether the lock could not be refreshed and may have passed
// to someone else.
func (lk *Lock) Lost() bool { return lk.lost.Load() }

// Release stops refreshing and gives the lock up.
func (lk *Lock) Release(ctx context.Context) {
	lk.cancel()
	<-lk.done
	_ = lk.lock.Release(context.WithoutCancel(ctx))
}
