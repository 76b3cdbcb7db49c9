package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/souk-dev/souk/internal/payment"
	"github.com/souk-dev/souk/internal/testenv"
)

// captureGate wraps the simulated provider's captures: the first capture
// of every payment fails before it reaches the provider (as a broken
// connection), so the payment worker takes it over; each later capture
// waits up to a second for another one of the same payment, so that two
// replicas capturing at once meet at the provider, and the most captures
// of one payment ever in flight together is counted.
type captureGate struct {
	payment.Provider
	mu       sync.Mutex
	calls    map[string]int
	inFlight map[string]int
	arrived  map[string]chan struct{}
	most     atomic.Int32
}

func newCaptureGate(p payment.Provider, shared *captureGate) *captureGate {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.calls == nil {
		shared.calls, shared.inFlight, shared.arrived = map[string]int{}, map[string]int{}, map[string]chan struct{}{}
	}
	shared.Provider = p
	return shared
}

func (g *captureGate) Capture(ctx context.Context, ref string) error {
	g.mu.Lock()
	g.calls[ref]++
	if g.calls[ref] == 1 {
		g.mu.Unlock()
		return fmt.Errorf("%w: connection refused", payment.ErrTransient)
	}
	g.inFlight[ref]++
	if n := int32(g.inFlight[ref]); n > g.most.Load() {
		g.most.Store(n)
	}
	ch, waiting := g.arrived[ref]
	if waiting {
		close(ch)
		delete(g.arrived, ref)
	} else {
		ch = make(chan struct{})
		g.arrived[ref] = ch
	}
	g.mu.Unlock()
	if !waiting {
		select {
		case <-ch:
		case <-time.After(time.Second):
		}
	}
	err := g.Provider.Capture(ctx, ref)
	g.mu.Lock()
	g.inFlight[ref]--
	g.mu.Unlock()
	return err
}

// Money safety, round two, point 1: a capture refused as "already
// captured" is not a capture refused for good. The provider's record of the
// payment decides, and replicas never capture one payment at once.
func TestCaptureRefusalIsCheckedWithTheProvider(t *testing.T) {
	t.Run("lost capture answer", func(t *testing.T) {
		s := startSystem(t, 1, nil)
		captured := s.capturedRecord(t)
		lamp := s.product("store-x", "Lamp", 1000, 100, 10)
		o := s.checkout("alice", 1, lamp)[0]
		// The provider takes the money, but its answer to the capture is
		// lost; the worker's next capture is refused as already captured.
		resp := s.pay(t, "alice", o, "4000000000000259", "capture-lost-1")
		if resp.Order.Status != paidStatus || captured(resp.Attempt.Id) {
			t.Fatalf("after a capture whose answer was lost: %s, recorded as captured", resp.Order.Status)
		}
		testenv.Eventually(t, 20*time.Second, "the worker settles the capture", func() bool {
			got := s.order("alice", o.Id)
			if got.Status != paidStatus {
				t.Fatalf("the order went to %s (decline %v) while its money is captured", got.Status, got.LastDecline)
			}
			return captured(got.PaymentAttempts[0].Id)
		})
		s.moneyOf(t, s.order("alice", o.Id))
	})
	t.Run("two replicas", func(t *testing.T) {
		var gate captureGate
		s := startSystemWith(t, 2, options{provider: func(p *payment.Simulated) payment.Provider { return newCaptureGate(p, &gate) }})
		captured := s.capturedRecord(t)
		lamp := s.product("store-x", "Lamp", 1000, 100, 10)
		orders := s.checkout("alice", 1, lamp)
		orders = append(orders, s.checkout("alice", 1, lamp)...)
		for i, o := range orders {
			if resp := s.pay(t, "alice", o, "4242424242424242", fmt.Sprint("two-replicas-", i)); resp.Order.Status != paidStatus {
				t.Fatalf("pay: %s", resp.Order.Status)
			}
		}
		for _, o := range orders {
			testenv.Eventually(t, 20*time.Second, "the workers capture "+o.Id, func() bool {
				got := s.order("alice", o.Id)
				if got.Status != paidStatus {
					t.Fatalf("the order went to %s (decline %v) while its money is captured", got.Status, got.LastDecline)
				}
				return captured(got.PaymentAttempts[0].Id)
			})
			s.moneyOf(t, s.order("alice", o.Id))
		}
		if most := gate.most.Load(); most != 1 {
			t.Fatalf("%d captures of one payment were in flight at once, want 1", most)
		}
	})
}

// capturedRecord returns a check of whether Souk recorded an attempt's capture.
func (s *system) capturedRecord(t *testing.T) func(attemptID string) bool {
	t.Helper()
	db := s.db(t)
	return func(attemptID string) bool {
		var captured bool
		if err := db.QueryRow(context.Background(), `SELECT captured FROM payment_attempts WHERE id = $1`, attemptID).Scan(&captured); err != nil {
			t.Fatal(err)
		}
		return captured
	}
}
