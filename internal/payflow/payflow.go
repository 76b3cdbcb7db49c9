// Package payflow is the payment flow of an order as one application
// service: claim the idempotency key, check the caller owns the order, take
// the order's lock, open an attempt, call the provider, record its answer
// under the version fence, capture or void. The buyer-svc handlers and the
// payment worker (captures, reconciliation, refunds) both call it, so each
// rule of money safety lives in one place.
package payflow

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/souk-dev/souk/internal/lock"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/payment"
	"github.com/souk-dev/souk/internal/postgres"
)

const (
	// LockWait is how long a payment waits for another operation on the
	// order (a price adjustment, a retry of itself) to let go of the lock.
	LockWait = 2 * time.Second
	// DefaultProviderTimeout bounds the provider call and the write-back,
	// which run on even if the buyer hangs up: an open attempt must be closed.
	DefaultProviderTimeout = 30 * time.Second
)

// Config is what a Service runs on.
type Config struct {
	DB       *postgres.DB
	Locker   *lock.Locker
	Provider payment.Provider
	Log      *slog.Logger
	Now      func() time.Time
	Policy   order.Policy
	// ProviderTimeout bounds a provider call with its write-back
	// (DefaultProviderTimeout when zero). Reconciliation leaves an attempt
	// to the call that made it for this long and half as long again: a call
	// still in flight may yet land at the provider, and a "not found" before
	// it ends would fail a payment that is then taken.
	ProviderTimeout time.Duration
	// FingerprintKey keys the hashes that tell a retry from a reused
	// idempotency key, so that no fingerprint reveals a card's details.
	FingerprintKey []byte
	// Changed is called with every order the flow changed (to arm its deadlines).
	Changed func(context.Context, *order.Order)
	// Answered is called with every answer of the provider to a payment
	// (paying, verifying, or reported later): its outcome ("succeeded",
	// "declined", …, "no_answer", "refused") and decline code.
	Answered func(outcome, declineCode string)
	// Quote fixes a new exchange-rate quote (from the store's currency to
	// the buyer's) for an order whose quote expired before its payment.
	Quote func(ctx context.Context, base, currency string, now time.Time) (order.Quote, error)
}

// Service runs payments, captures, reconciliation and refunds.
type Service struct {
	cfg Config
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Changed == nil {
		cfg.Changed = func(context.Context, *order.Order) {}
	}
	if cfg.Answered == nil {
		cfg.Answered = func(string, string) {}
	}
	if cfg.ProviderTimeout <= 0 {
		cfg.ProviderTimeout = DefaultProviderTimeout
	}
	return &Service{cfg: cfg}
}

// Method is how a buyer pays, as the provider needs it. The card is passed
// to the provider and never stored or logged.
type Method struct {
	Kind    order.Method
	Card    payment.Card
	Account string
}

// summary identifies the method for fingerprints (which hash it).
func (m Method) summary() string {
	if m.Kind == order.MethodCard {
		return fmt.Sprintf("card:%s:%s:%02d/%d", payment.Brand(m.Card.Number), payment.Last4(m.Card.Number), m.Card.ExpMonth, m.Card.ExpYear)
	}
	return string(m.Kind) + ":" + m.Account
}

// Fingerprint is a keyed hash of a request's parameters, to store with its
// idempotency key: it tells a retry from a reused key and reveals nothing.
func (s *Service) Fingerprint(parts ...string) string {
	mac := hmac.New(sha256.New, s.cfg.FingerprintKey)
	mac.Write([]byte(strings.Join(parts, "|")))
	return "hmac:" + hex.EncodeToString(mac.Sum(nil))
}

// PayRequest asks to pay one order with what the buyer saw as its total.
type PayRequest struct {
	BuyerID  string
	OrderID  string
	Expected order.Money
	Method   Method
	// Key is the buyer's idempotency key.
	Key string
}

func (r PayRequest) parts() []string {
	return []string{r.OrderID, fmt.Sprint(r.Expected.Amount), r.Expected.Currency, r.Method.summary()}
}

// Pay makes, or for a repeated key resumes or replays, the payment of one
// order. A definite decline is an answer, not an error; an ambiguous one
// (the provider timed out) leaves the payment being checked.
func (s *Service) Pay(ctx context.Context, req PayRequest) (*order.Order, order.Attempt, error) {
	// The key is claimed and the order's buyer read in one round trip.
	owner, err := s.cfg.DB.ClaimIdempotencyKeyFor(ctx, "buyer:"+req.BuyerID, req.Key,
		s.Fingerprint(append([]string{"pay"}, req.parts()...)...), s.cfg.Now(), req.OrderID)
	if err != nil {
		return nil, order.Attempt{}, err
	}
	if owner != req.BuyerID {
		return nil, order.Attempt{}, order.NotYours(req.OrderID)
	}
	return s.pay(ctx, req)
}

// OrderTotal is one order of PayMany with the total the buyer saw.
type OrderTotal struct {
	OrderID  string
	Expected order.Money
}

// Outcome is what became of one order of PayMany.
type Outcome struct {
	Order   *order.Order
	Attempt order.Attempt
	Err     error
}

// PayMany pays several orders with one method and one key, each on its own:
// one order's refusal does not stop the others.
func (s *Service) PayMany(ctx context.Context, buyer, key string, m Method, orders []OrderTotal) ([]Outcome, error) {
	parts := []string{"pay-orders", m.summary()}
	seen := map[string]bool{}
	for _, ot := range orders {
		if seen[ot.OrderID] {
			return nil, fmt.Errorf("%w: order %s appears twice", order.ErrInvalid, ot.OrderID)
		}
		seen[ot.OrderID] = true
		parts = append(parts, fmt.Sprintf("%s:%d:%s", ot.OrderID, ot.Expected.Amount, ot.Expected.Currency))
	}
	if err := s.ClaimKey(ctx, buyer, key, parts...); err != nil {
		return nil, err
	}
	out := make([]Outcome, len(orders))
	for i, ot := range orders {
		var o *order.Order
		var a order.Attempt
		err := s.owned(ctx, buyer, ot.OrderID)
		if err == nil {
			o, a, err = s.pay(ctx, PayRequest{BuyerID: buyer, OrderID: ot.OrderID, Expected: ot.Expected, Method: m, Key: key})
		}
		out[i] = Outcome{Order: o, Attempt: a, Err: err}
	}
	return out, nil
}

// ClaimKey records a buyer's idempotency key with a keyed hash of the
// request's parts; the same key with other parts is refused.
func (s *Service) ClaimKey(ctx context.Context, buyer, key string, parts ...string) error {
	_, err := s.cfg.DB.ClaimIdempotencyKey(ctx, "buyer:"+buyer, key, s.Fingerprint(parts...), s.cfg.Now())
	return err
}

// owned checks that an order is the buyer's; another buyer's order is not
// found. It runs before the lock, so a stranger holding an order id can
// never make its owner wait or fail.
func (s *Service) owned(ctx context.Context, buyer, orderID string) error {
	owner, _, err := s.cfg.DB.Parties(ctx, orderID)
	if err == nil && owner != buyer {
		err = order.NotYours(orderID)
	}
	return err
}

// update applies fn to an order (of buyer, unless buyer is "") and reports the change.
func (s *Service) update(ctx context.Context, buyer, orderID string, fn func(*order.Order) error) (*order.Order, error) {
	o, err := s.cfg.DB.Update(ctx, orderID, func(o *order.Order) error {
		if buyer != "" {
			if err := o.CheckParty(order.PartyBuyer, buyer); err != nil {
				return err
			}
		}
		return fn(o)
	})
	if err != nil {
		return nil, err
	}
	s.cfg.Changed(ctx, o)
	return o, nil
}

// requote fixes a new quote for an order whose quote expired (unless
// another request did meanwhile).
func (s *Service) requote(ctx context.Context, buyer, orderID string) error {
	o, err := s.cfg.DB.Get(ctx, orderID)
	if err != nil {
		return err
	}
	old := o.Quote()
	if old == nil || s.cfg.Quote == nil {
		return order.ErrQuoteExpired
	}
	q, err := s.cfg.Quote(ctx, old.Base, old.Currency, s.cfg.Now())
	if err != nil {
		return err
	}
	_, err = s.update(ctx, buyer, orderID, func(o *order.Order) error {
		if !o.QuoteExpired(s.cfg.Now()) {
			return nil
		}
		return o.Requote(s.cfg.Now(), q)
	})
	return err
}

// errReplay says a payment request repeats an earlier one with its key.
var errReplay = errors.New("replayed payment request")

// pay runs a payment whose key is claimed, for the order's own buyer.
func (s *Service) pay(ctx context.Context, req PayRequest) (*order.Order, order.Attempt, error) {
	lk, err := s.cfg.Locker.Obtain(ctx, req.OrderID, LockWait)
	if err != nil {
		return nil, order.Attempt{}, err
	}
	defer lk.Release(ctx)

	attempt := newAttempt(req, s.Fingerprint(req.parts()...))
	replay := false
	begin := func(o *order.Order) error {
		if prev, ok := o.AttemptByKey(req.Key); ok && prev.Fingerprint == attempt.Fingerprint {
			attempt, replay = prev, true
			return errReplay
		}
		return o.BeginPayment(s.cfg.Now(), req.Expected, attempt)
	}
	o, err := s.update(ctx, req.BuyerID, req.OrderID, begin)
	if errors.Is(err, order.ErrQuoteExpired) {
		// Quoted again in a change of its own (the buyer sees the new
		// total whatever happens next), then paid if the buyer expected
		// it: otherwise TOTAL_CHANGED names it.
		if err = s.requote(ctx, req.BuyerID, req.OrderID); err == nil {
			o, err = s.update(ctx, req.BuyerID, req.OrderID, begin)
		}
	}
	if errors.Is(err, errReplay) {
		o, err = s.cfg.DB.Get(ctx, req.OrderID)
	}
	if err != nil {
		return nil, order.Attempt{}, err
	}
	attempt, _ = o.Attempt(attempt.ID)
	// A replayed attempt is answered as it stands, unless the provider's
	// answer to it was never recorded (the call was cut off, or timed out):
	// then it is driven again, which the provider answers from its ledger
	// without paying twice.
	if replay && !(attempt.Status == order.AttemptProcessing && attempt.ProviderRef == "") {
		return o, attempt, nil
	}

	// From here on the attempt is open and must be closed, whether or not
	// the buyer is still waiting.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ProviderTimeout)
	defer cancel()
	res, err := s.cfg.Provider.Pay(ctx, payment.PaymentRequest{
		Key: attempt.ID, OrderID: req.OrderID, Amount: attempt.Amount, Method: req.Method.Kind, Card: req.Method.Card, Account: req.Method.Account,
	})
	switch {
	case errors.Is(err, payment.ErrRefused):
		s.cfg.Answered("refused", "processing_error")
		s.cfg.Log.WarnContext(ctx, "payment provider refused the payment", "order_id", req.OrderID, "attempt_id", attempt.ID, "err", err)
		return s.closeAttempt(ctx, req.OrderID, attempt.ID, payment.DeclineFor("processing_error"))
	case err != nil:
		// No definite answer: the provider may have taken the money. The
		// attempt stays open, the buyer sees the payment being checked, and
		// reconciliation asks the provider what became of it.
		s.cfg.Log.WarnContext(ctx, "payment provider gave no answer; the payment is being checked", "order_id", req.OrderID, "attempt_id", attempt.ID, "err", err)
		res = order.Result{Kind: order.ResultProcessing}
		s.cfg.Answered("no_answer", "")
	default:
		s.cfg.Answered(string(res.Kind), res.Decline.Code)
	}
	return s.record(ctx, req.OrderID, attempt.ID, res)
}

func newAttempt(req PayRequest, fingerprint string) order.Attempt {
	a := order.Attempt{ID: uuid.NewString(), IdempotencyKey: req.Key, Method: req.Method.Kind, Fingerprint: fingerprint}
	if req.Method.Kind == order.MethodCard {
		a.CardBrand, a.CardLast4 = payment.Brand(req.Method.Card.Number), payment.Last4(req.Method.Card.Number)
	} else {
		a.Account = payment.MaskAccount(req.Method.Account)
	}
	return a
}

// errFenced says the order stopped waiting for the answer being recorded.
var errFenced = errors.New("order changed during the payment")

// record writes the provider's answer back under the fence: the attempt is
// still the open one and the amount to pay unchanged (order.AwaitsAnswer).
// Neither the order's version (a message or a reminder moves it) nor the
// lock (lost with Redis's data, while the domain still refuses every change
// of the amount during an open attempt) is the fence: voiding a good
// authorization for either leaves the buyer a hold that looks like a double
// charge. Past the fence it settles the answer with what the order has
// become (settleFenced). A success not yet captured is then captured.
func (s *Service) record(ctx context.Context, orderID, attemptID string, res order.Result) (*order.Order, order.Attempt, error) {
	o, err := s.update(ctx, "", orderID, func(o *order.Order) error {
		if !o.AwaitsAnswer(attemptID) {
			return errFenced
		}
		return o.ApplyResult(s.cfg.Now(), attemptID, res, s.cfg.Policy)
	})
	if errors.Is(err, errFenced) {
		o, err = s.settleFenced(ctx, orderID, attemptID, res)
	}
	if err != nil {
		return nil, order.Attempt{}, err
	}
	if a, _ := o.Attempt(attemptID); a.AwaitsCapture() && o.Pays(a.ID) {
		o = s.capture(ctx, o, a, 0)
	}
	a, _ := o.Attempt(attemptID)
	return o, a, nil
}

// settleFenced records an answer that came back after the order changed or
// the lock was lost. If the attempt already holds this very payment (a
// retry that took the lock recorded it), nothing is done: voiding it would
// leave a paid order without money. An authorization the order no longer
// waits for is voided; anything else is recorded as it is (a success on a
// cancelled order is owed back).
func (s *Service) settleFenced(ctx context.Context, orderID, attemptID string, res order.Result) (*order.Order, error) {
	o, err := s.cfg.DB.Get(ctx, orderID)
	if err != nil {
		return nil, err
	}
	a, ok := o.Attempt(attemptID)
	if ok && res.ProviderRef != "" && a.ProviderRef == res.ProviderRef && a.Status == order.AttemptSucceeded {
		return o, nil
	}
	if res.Kind == order.ResultSucceeded && !res.Captured && a.Open() {
		verr := s.cfg.Provider.Void(ctx, res.ProviderRef)
		if verr == nil {
			o, _, err = s.closeAttempt(ctx, orderID, attemptID, order.DeclineVoided)
			return o, err
		}
		// Not voided: record the authorization, so that it is captured or owed back.
		s.cfg.Log.WarnContext(ctx, "void authorization", "order_id", orderID, "ref", res.ProviderRef, "err", verr)
	}
	o, err = s.update(ctx, "", orderID, func(o *order.Order) error {
		return o.ApplyResult(s.cfg.Now(), attemptID, res, s.cfg.Policy)
	})
	if errors.Is(err, order.ErrAlreadyFinal) {
		return s.cfg.DB.Get(ctx, orderID)
	}
	return o, err
}

// closeAttempt fails an open attempt with d and answers with it. An
// attempt the order closed meanwhile (it was cancelled) is answered as it is.
func (s *Service) closeAttempt(ctx context.Context, orderID, attemptID string, d order.Decline) (*order.Order, order.Attempt, error) {
	o, err := s.update(ctx, "", orderID, func(o *order.Order) error { return o.FailPayment(s.cfg.Now(), attemptID, d) })
	if errors.Is(err, order.ErrIllegalTransition) {
		o, err = s.cfg.DB.Get(ctx, orderID)
	}
	if err != nil {
		return nil, order.Attempt{}, err
	}
	a, _ := o.Attempt(attemptID)
	return o, a, nil
}

// capture takes the money of the authorization that paid o and records
// the outcome: captured; refused for good (the order waits for payment
// again, or is cancelled past its window); or not reached, in which case
// the worker tries again later, backing off per attempt from retryBase (0:
// the first try of the call that authorized it, which the worker follows
// up). It returns the order as it now stands.
func (s *Service) capture(ctx context.Context, o *order.Order, a order.Attempt, retryBase time.Duration) *order.Order {
	err := s.cfg.Provider.Capture(ctx, a.ProviderRef)
	var fn func(*order.Order) error
	now := s.cfg.Now()
	switch {
	case err == nil:
		fn = func(o *order.Order) error { return o.MarkCaptured(now, a.ID) }
	case errors.Is(err, payment.ErrRefused):
		// A refusal is not final by itself: a capture whose first answer
		// was lost, or another worker's, is refused as "already captured".
		// The provider's own record of the payment decides.
		res, found, lerr := s.cfg.Provider.Lookup(ctx, a.ID)
		switch {
		case lerr == nil && found && res.Kind == order.ResultSucceeded && res.Captured:
			fn = func(o *order.Order) error { return o.MarkCaptured(now, a.ID) }
		case lerr == nil && found && (res.Kind == order.ResultFailed || res.Kind == order.ResultDeclined):
			s.cfg.Log.WarnContext(ctx, "capture refused; the order waits for payment again", "order_id", o.ID(), "attempt_id", a.ID, "err", err)
			fn = func(o *order.Order) error { return o.CaptureRefused(now, a.ID, order.DeclineCaptureRefused) }
		default:
			// The refusal cannot be explained yet: try again later.
			s.cfg.Log.ErrorContext(ctx, "capture refused but the payment is not voided; will retry", "order_id", o.ID(), "attempt_id", a.ID,
				"err", err, "lookup_err", lerr, "found", found, "provider_result", string(res.Kind))
			fn = func(o *order.Order) error {
				return o.CaptureRetryLater(now, a.ID, now.Add(backoff(max(retryBase, order.CaptureGrace), a.CaptureTries+1)))
			}
		}
	case retryBase > 0:
		s.cfg.Log.WarnContext(ctx, "capture; will retry", "order_id", o.ID(), "attempt_id", a.ID, "tries", a.CaptureTries+1, "err", err)
		fn = func(o *order.Order) error {
			return o.CaptureRetryLater(now, a.ID, now.Add(backoff(retryBase, a.CaptureTries+1)))
		}
	default:
		s.cfg.Log.WarnContext(ctx, "capture; the worker will retry", "order_id", o.ID(), "attempt_id", a.ID, "err", err)
		return o
	}
	changed, uerr := s.update(ctx, "", o.ID(), fn)
	switch {
	case uerr == nil:
		return changed
	case errors.Is(uerr, order.ErrAlreadyFinal), errors.Is(uerr, order.ErrIllegalTransition):
	default:
		s.cfg.Log.ErrorContext(ctx, "record capture", "order_id", o.ID(), "attempt_id", a.ID, "err", uerr)
	}
	if fresh, gerr := s.cfg.DB.Get(ctx, o.ID()); gerr == nil {
		return fresh
	}
	return o
}

// Verify gives the provider the buyer's one-time code for an attempt.
func (s *Service) Verify(ctx context.Context, buyer, orderID, attemptID, code string) (*order.Order, order.Attempt, error) {
	if err := s.owned(ctx, buyer, orderID); err != nil {
		return nil, order.Attempt{}, err
	}
	lk, err := s.cfg.Locker.Obtain(ctx, orderID, LockWait)
	if err != nil {
		return nil, order.Attempt{}, err
	}
	defer lk.Release(ctx)
	o, err := s.cfg.DB.Get(ctx, orderID)
	if err != nil {
		return nil, order.Attempt{}, err
	}
	if _, err := o.RequireVerification(attemptID); err != nil {
		return nil, order.Attempt{}, err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ProviderTimeout)
	defer cancel()
	res, err := s.cfg.Provider.Verify(ctx, attemptID, code)
	switch {
	case errors.Is(err, payment.ErrWrongCode):
		o, err = s.update(ctx, buyer, orderID, func(o *order.Order) error {
			return o.WrongVerificationCode(s.cfg.Now(), attemptID, s.cfg.Policy)
		})
		if err != nil {
			return nil, order.Attempt{}, err
		}
		a, _ := o.Attempt(attemptID)
		return o, a, nil
	case errors.Is(err, payment.ErrTransient):
		// The code may or may not have reached the provider; sending it
		// again is safe (the provider answers a verified payment as it is).
		s.cfg.Log.WarnContext(ctx, "payment provider", "order_id", orderID, "err", err)
		return nil, order.Attempt{}, fmt.Errorf("%w: try the code again in a moment", err)
	case err != nil:
		return nil, order.Attempt{}, err
	}
	s.cfg.Answered(string(res.Kind), res.Decline.Code)
	return s.record(ctx, orderID, attemptID, res)
}

// RecordEvent records what the provider reported of a payment in a signed
// event (the caller checked its signature), once per event id: an event
// seen before, or an outcome the attempt already has, changes nothing. An
// authorization is captured; only a capture makes the order shippable.
func (s *Service) RecordEvent(ctx context.Context, ev payment.Event) error {
	if seen, err := s.cfg.DB.ProviderEventSeen(ctx, ev.ID); err != nil || seen {
		return err
	}
	orderID, attemptID := ev.Data.OrderID, ev.Data.AttemptID
	res, answers := ev.Result()
	var o *order.Order
	var err error
	if answers {
		o, err = s.update(ctx, "", orderID, func(o *order.Order) error {
			if res.Captured {
				// A capture reported for an attempt that already succeeded.
				if a, ok := o.Attempt(attemptID); ok && a.Status == order.AttemptSucceeded {
					return o.MarkCaptured(s.cfg.Now(), attemptID)
				}
			}
			return o.ApplyResult(s.cfg.Now(), attemptID, res, s.cfg.Policy)
		})
	}
	switch {
	case errors.Is(err, order.ErrAlreadyFinal):
		err = nil
	case err == nil && answers:
		s.cfg.Answered(string(res.Kind), res.Decline.Code)
	}
	if err != nil {
		return err
	}
	if err := s.cfg.DB.ProviderEventHandled(ctx, ev.ID, string(ev.Type), orderID, s.cfg.Now()); err != nil {
		return err
	}
	if o == nil {
		return nil
	}
	if a, _ := o.Attempt(attemptID); a.AwaitsCapture() && o.Pays(a.ID) {
		s.capture(ctx, o, a, 0)
	}
	return nil
}
