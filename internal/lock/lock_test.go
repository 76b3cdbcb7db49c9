package lock_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/souk-dev/souk/internal/lock"
	"github.com/souk-dev/souk/internal/testenv"
)

// TestLock, on a single Redis and on a Redis Cluster: one holder at a time
// per order, a waiter gets the lock when the holder lets go, a short TTL is
// kept alive by refreshing, and orders on every slot lock independently.
func TestLock(t *testing.T) {
	for _, r := range testenv.Redises(t) {
		t.Run(r.Name, func(t *testing.T) {
			ctx := context.Background()
			l := lock.New(r.Client, r.Prefix, 300*time.Millisecond)
			id := uuid.NewString()
			held, err := l.Obtain(ctx, id, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Obtain(ctx, id, 50*time.Millisecond); !errors.Is(err, lock.ErrBusy) {
				t.Fatalf("a second holder: %v", err)
			}
			time.Sleep(time.Second) // three TTLs: refreshing keeps it
			if held.Lost() {
				t.Fatal("the held lock was lost")
			}
			if _, err := l.Obtain(ctx, id, 0); !errors.Is(err, lock.ErrBusy) {
				t.Fatalf("after the TTL: %v", err)
			}
			go func() { time.Sleep(100 * time.Millisecond); held.Release(ctx) }()
			next, err := l.Obtain(ctx, id, 2*time.Second)
			if err != nil {
				t.Fatalf("the waiter: %v", err)
			}
			next.Release(ctx)

			// Many orders (spread over every slot), eight workers each: one
			// holder at a time per order.
			var wg sync.WaitGroup
			var overlaps atomic.Int32
			for range 20 {
				id := uuid.NewString()
				var inside atomic.Int32
				for range 8 {
					wg.Go(func() {
						lk, err := l.Obtain(ctx, id, 3*time.Second)
						if err != nil {
							t.Error(err)
							return
						}
						if inside.Add(1) > 1 {
							overlaps.Add(1)
						}
						time.Sleep(2 * time.Millisecond)
						inside.Add(-1)
						lk.Release(ctx)
					})
				}
			}
			wg.Wait()
			if overlaps.Load() > 0 {
				t.Fatalf("%d overlapping holders", overlaps.Load())
			}
		})
	}
}
