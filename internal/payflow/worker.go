package payflow

import (
	"context"
	"errors"
	"time"

	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/payment"
	"github.com/souk-dev/souk/internal/postgres"
)

const (
	// maxBackoff caps the wait between two tries of a refund or a capture.
	maxBackoff = 10 * time.Minute
	// keyRetention is how long idempotency keys are kept (at least 24 hours
	// is promised).
	keyRetention = 30 * 24 * time.Hour
	// workBatch is how many items of each kind one round of the worker takes.
	workBatch = 50
	// recordTries is how often the worker tries to record what the
	// provider did while the database cannot be reached.
	recordTries = 8
)

// RunWorker carries out what payments leave to do later, every interval
// until ctx ends: refunds owed, captures that did not go through, and
// attempts whose provider answer was lost. Replicas may run it together:
// each step is a conditional change of the order under its row lock.
func (s *Service) RunWorker(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var purged time.Time
	for {
		s.RefundDue(ctx, interval)
		s.CaptureDue(ctx, interval)
		s.Reconcile(ctx)
		if now := s.cfg.Now(); now.Sub(purged) > time.Hour {
			if _, err := s.cfg.DB.ForgetIdempotencyKeys(ctx, now.Add(-keyRetention)); err != nil {
				s.logWorker(ctx, "forget old idempotency keys", err)
			}
			if _, err := s.cfg.DB.ForgetProviderEvents(ctx, now.Add(-keyRetention)); err != nil {
				s.logWorker(ctx, "forget old provider events", err)
			}
			if _, err := s.cfg.DB.ForgetRequests(ctx, now.Add(-keyRetention)); err != nil {
				s.logWorker(ctx, "forget old request ids", err)
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

// RefundDue tries every refund whose time has come. A refund is started
// under its order's row lock (so one worker has it), sent with its id as
// the idempotency key (so a retry never pays twice), and retried with
// exponential back-off while the provider is unavailable.
func (s *Service) RefundDue(ctx context.Context, base time.Duration) {
	refs, err := s.cfg.DB.DueRefunds(ctx, s.cfg.Now(), workBatch)
	if err != nil {
		s.logWorker(ctx, "list due refunds", err)
		return
	}
	for _, ref := range refs {
		var r order.Refund
		var whole bool // an uncaptured payment paid back in full: void it
		var storeCurrency string
		_, err := s.cfg.DB.Update(ctx, ref.OrderID, func(o *order.Order) error {
			var err error
			storeCurrency = o.Currency()
			r, err = o.StartRefund(s.cfg.Now(), ref.RefundID, s.cfg.Policy)
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
		today := s.todaysRate(ctx, r, storeCurrency, perr)
		// The outcome is recorded even if the database blinks meanwhile
		// (a restart, a failover): left unrecorded, the refund would wait
		// for its lease to run out.
		for try := 1; ; try++ {
			_, err = s.cfg.DB.Update(ctx, ref.OrderID, func(o *order.Order) error {
				now := s.cfg.Now()
				switch {
				case perr == nil:
					return o.CompleteRefund(now, r.ID, refundRef, today)
				case errors.Is(perr, payment.ErrRefused):
					return o.FailRefund(now, r.ID, perr.Error())
				default:
					return o.RefundRetryLater(now, r.ID, now.Add(backoff(base, r.Tries)), perr.Error())
				}
			})
			if err == nil || try == recordTries || !postgres.Transient(err) || ctx.Err() != nil {
				break
			}
			time.Sleep(time.Duration(try) * 500 * time.Millisecond)
		}
		if err != nil {
			s.logWorker(ctx, "record refund", err)
		}
		if perr != nil {
			s.cfg.Log.WarnContext(ctx, "refund not made", "order_id", ref.OrderID, "refund_id", r.ID, "tries", r.Tries, "err", perr)
		}
	}
}

// payBack refunds a payment; one never captured and paid back in full
// (void) is voided instead, which releases the hold. If the provider's view
// differs (a capture or a void crossed this call), the other way is tried.
func (s *Service) payBack(ctx context.Context, r order.Refund, void bool) (string, error) {
	refund := func() (string, error) {
		return s.cfg.Provider.Refund(ctx, payment.RefundRequest{Key: r.ID, PaymentRef: r.ProviderRef, Amount: r.Amount})
	}
	release := func() (string, error) { return "void:" + r.ProviderRef, s.cfg.Provider.Void(ctx, r.ProviderRef) }
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

// CaptureDue captures the payments whose capture is due: the call that
// authorized them could not, or is gone. Each failing one backs off on its
// own, from base; one refused for good sends its order back to waiting for
// payment.
func (s *Service) CaptureDue(ctx context.Context, base time.Duration) {
	refs, err := s.cfg.DB.UncapturedAttempts(ctx, s.cfg.Now(), workBatch)
	if err != nil {
		s.logWorker(ctx, "list uncaptured attempts", err)
		return
	}
	for _, ref := range refs {
		// The capture is claimed under the order's row lock before the
		// provider is called, so that one replica captures an attempt at a
		// time; a replica that dies mid-capture lets its lease run out.
		var a order.Attempt
		o, err := s.update(ctx, "", ref.OrderID, func(o *order.Order) error {
			var err error
			a, err = o.ClaimCapture(s.cfg.Now(), ref.AttemptID, s.captureLease())
			return err
		})
		switch {
		case errors.Is(err, order.ErrNotDue), errors.Is(err, order.ErrIllegalTransition):
			continue
		case err != nil:
			s.logWorker(ctx, "claim capture", err)
			continue
		}
		s.capture(ctx, o, a, base)
	}
}

// Reconcile settles attempts whose provider answer was lost (a time-out, a
// broken connection, a service that stopped mid-call): the provider's
// ledger says what it did with the attempt's key. If it never got the
// request, the attempt fails and the order can be paid again; the provider
// is asked once more later, and a payment that landed after all is owed
// back.
func (s *Service) Reconcile(ctx context.Context) {
	// Only attempts older than any call still running: a lock is no guide
	// (Redis may have lost it while the call goes on).
	now := s.cfg.Now()
	refs, err := s.cfg.DB.UnansweredAttempts(ctx, now, now.Add(-s.reconcileAfter()), 20)
	if err != nil {
		s.logWorker(ctx, "list unanswered attempts", err)
		return
	}
	for _, ref := range refs {
		if err := s.reconcile(ctx, ref.OrderID, ref.AttemptID); err != nil {
			s.logWorker(ctx, "reconcile attempt", err)
		}
	}
}

func (s *Service) reconcile(ctx context.Context, orderID, attemptID string) error {
	lk, err := s.cfg.Locker.Obtain(ctx, orderID, 0)
	if err != nil {
		return nil // a call is working on the order
	}
	defer lk.Release(ctx)
	o, err := s.cfg.DB.Get(ctx, orderID)
	if err != nil {
		return err
	}
	a, ok := o.Attempt(attemptID)
	late := a.Status == order.AttemptCanceled || !a.RecheckAt.IsZero()
	if !ok || a.ProviderRef != "" && a.RecheckAt.IsZero() || a.Status != order.AttemptProcessing && !late {
		return nil
	}
	res, found, err := s.cfg.Provider.Lookup(ctx, attemptID)
	switch {
	case err != nil:
		return nil // the provider is unreachable: next round
	case late:
		// The order stopped waiting before the answer came (it was
		// cancelled, or the provider had no record of the payment the first
		// time it was asked): money taken is owed back.
		_, err = s.update(ctx, "", orderID, func(o *order.Order) error {
			return o.RecordLateAnswer(s.cfg.Now(), attemptID, res, found, s.cfg.Policy)
		})
		if errors.Is(err, order.ErrAlreadyFinal) {
			err = nil
		}
	case !found:
		_, err = s.update(ctx, "", orderID, func(o *order.Order) error {
			now := s.cfg.Now()
			return o.FailUnreceived(now, attemptID, now.Add(2*s.reconcileAfter()))
		})
		if errors.Is(err, order.ErrIllegalTransition) {
			err = nil
		}
	default:
		_, _, err = s.record(ctx, orderID, attemptID, res)
	}
	return err
}

// captureLease is how long a worker that claimed a capture has to record
// its outcome before another may try: it outlasts the provider call, so
// that two workers never capture one payment at once.
func (s *Service) captureLease() time.Duration { return 2 * s.cfg.ProviderTimeout }

// reconcileAfter is how long an attempt without an answer is left to the
// call that made it: the call's time-out (past which nothing it sent can be
// recorded) and half as much again for clocks and the network.
func (s *Service) reconcileAfter() time.Duration { return s.cfg.ProviderTimeout * 3 / 2 }

func (s *Service) logWorker(ctx context.Context, what string, err error) {
	if ctx.Err() == nil {
		s.cfg.Log.ErrorContext(ctx, "payment worker: "+what, "err", err)
	}
}

// todaysRate is the rate a refund paid in the buyer's currency was paid
// at, from theirs to the store's, for the platform's record of the
// difference; nil for a refund in the store's currency, one not paid, or
// when no rate can be had now (the refund is recorded without it).
func (s *Service) todaysRate(ctx context.Context, r order.Refund, storeCurrency string, perr error) *order.Quote {
	if perr != nil || r.FX.Currency == "" || storeCurrency == "" || s.cfg.Quote == nil {
		return nil
	}
	q, err := s.cfg.Quote(ctx, r.Amount.Currency, storeCurrency, s.cfg.Now())
	if err != nil {
		s.cfg.Log.WarnContext(ctx, "refund: no exchange rate for the record", "refund_id", r.ID, "err", err)
		return nil
	}
	return &q
}
