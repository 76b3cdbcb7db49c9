package buyer

import (
	"context"
	"errors"
	"time"

	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/payment"
)

const (
	// maxBackoff caps the wait between two tries of a refund.
	maxBackoff = 10 * time.Minute
	// keyRetention is how long idempotency keys are kept (at least 24 hours
	// is promised).
	keyRetention = 30 * 24 * time.Hour
)

// runWorker carries out what payments leave to do later, every interval
// until ctx ends: refunds owed, captures the provider missed, and attempts
// a stopped service left open. Replicas may run it together: each step is
// a conditional change of the order under its row lock.
func (s *buyerService) runWorker(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var purged time.Time
	for {
		s.refundDue(ctx, interval)
		s.captureMissed(ctx)
		s.recoverStale(ctx)
		if now := s.deps.Now(); now.Sub(purged) > time.Hour {
			if _, err := s.deps.DB.ForgetIdempotencyKeys(ctx, now.Add(-keyRetention)); err != nil {
				s.logWorker(ctx, "forget old idempotency keys", err)
			}
			purged = now
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refundDue tries every refund whose time has come. A refund is started
// under its order's lock (so one worker has it), sent with its id as the
// idempotency key (so a retry never pays twice), and retried with
// exponential back-off while the provider is unavailable.
func (s *buyerService) refundDue(ctx context.Context, base time.Duration) {
	refs, err := s.deps.DB.DueRefunds(ctx, s.deps.Now(), 50)
	if err != nil {
		s.logWorker(ctx, "list due refunds", err)
		return
	}
	for _, ref := range refs {
		var r order.Refund
		var whole bool // an uncaptured payment paid back in full: void it
		_, err := s.deps.DB.Update(ctx, ref.OrderID, func(o *order.Order) error {
			var err error
			r, err = o.StartRefund(s.deps.Now(), ref.RefundID)
			a, _ := o.Attempt(r.AttemptID)
			whole = !a.Captured && a.Amount == r.Amount
			return err
		})
		if errors.Is(err, order.ErrNotDue) {
			continue
		} else if err != nil {
			s.logWorker(ctx, "start refund", err)
			continue
		}
		refundRef, perr := s.payBack(ctx, r, whole)
		_, err = s.deps.DB.Update(ctx, ref.OrderID, func(o *order.Order) error {
			now := s.deps.Now()
			switch {
			case perr == nil:
				return o.CompleteRefund(now, r.ID, refundRef)
			case errors.Is(perr, payment.ErrRefused):
				return o.FailRefund(now, r.ID, perr.Error())
			default:
				return o.RefundRetryLater(now, r.ID, now.Add(backoff(base, r.Tries)), perr.Error())
			}
		})
		if err != nil {
			s.logWorker(ctx, "record refund", err)
		}
		if perr != nil {
			s.deps.Log.WarnContext(ctx, "refund not made", "order_id", ref.OrderID, "refund_id", r.ID, "tries", r.Tries, "err", perr)
		}
	}
}

// payBack refunds a payment; one never captured and paid back in full
// (void) is voided instead, which releases the hold. If the provider's view
// differs (a capture or a void crossed this call), the other way is tried.
func (s *buyerService) payBack(ctx context.Context, r order.Refund, void bool) (string, error) {
	refund := func() (string, error) {
		return s.provider.Refund(ctx, payment.RefundRequest{Key: r.ID, PaymentRef: r.ProviderRef, Amount: r.Amount})
	}
	release := func() (string, error) { return "void:" + r.ProviderRef, s.provider.Void(ctx, r.ProviderRef) }
	first, second := refund, release
	if void {
		first, second = release, refund
	}
	ref, err := first()
	if errors.Is(err, payment.ErrRefused) {
		return second()
	}
	return ref, err
}

// backoff doubles from base with every try, up to maxBackoff.
func backoff(base time.Duration, tries int) time.Duration {
	d := base
	for i := 1; i < tries && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// captureMissed captures authorized payments whose capture failed.
func (s *buyerService) captureMissed(ctx context.Context) {
	refs, err := s.deps.DB.UncapturedAttempts(ctx, s.deps.Now().Add(-10*time.Second), 50)
	if err != nil {
		s.logWorker(ctx, "list uncaptured attempts", err)
		return
	}
	for _, ref := range refs {
		o, err := s.deps.DB.Get(ctx, ref.OrderID)
		if err != nil {
			s.logWorker(ctx, "load order", err)
			continue
		}
		if a, ok := o.Attempt(ref.AttemptID); ok {
			s.capture(ctx, ref.OrderID, ref.AttemptID, a.ProviderRef)
		}
	}
}

// recoverStale settles synchronous attempts that a stopped service left
// open: the provider's ledger says whether it got the request; if it did
// not, the attempt fails and the order can be paid again.
func (s *buyerService) recoverStale(ctx context.Context) {
	refs, err := s.deps.DB.StaleAttempts(ctx, s.deps.Now().Add(-2*s.deps.Config.LockTTL), 20)
	if err != nil {
		s.logWorker(ctx, "list stale attempts", err)
		return
	}
	for _, ref := range refs {
		lk, err := s.deps.Locker.Obtain(ctx, ref.OrderID, 0)
		if err != nil {
			continue // someone is working on the order
		}
		o, err := s.deps.DB.Get(ctx, ref.OrderID)
		if err == nil {
			res, found, lerr := s.provider.Lookup(ctx, ref.AttemptID)
			switch {
			case lerr != nil:
			case !found:
				_, _, err = s.closeAttempt(ctx, o.BuyerID(), ref.OrderID, ref.AttemptID, payment.DeclineFor("processing_error"))
			default:
				_, _, err = s.record(ctx, o.BuyerID(), ref.OrderID, ref.AttemptID, o.Version(), lk.Lost, res)
			}
		}
		if err != nil {
			s.logWorker(ctx, "recover attempt", err)
		}
		lk.Release(ctx)
	}
}

func (s *buyerService) logWorker(ctx context.Context, what string, err error) {
	if ctx.Err() == nil {
		s.deps.Log.ErrorContext(ctx, "payment worker: "+what, "err", err)
	}
}
