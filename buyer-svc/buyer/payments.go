package buyer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/payment"
	"github.com/souk-dev/souk/internal/protoconv"
	"github.com/souk-dev/souk/internal/server"
)

const (
	// payLockWait is how long a payment waits for another operation on the
	// order (a price adjustment, a retry of itself) to let go of the lock.
	payLockWait = 2 * time.Second
	// providerTimeout bounds the provider call and the write-back, which
	// run on even if the buyer hangs up: an open attempt must be closed.
	providerTimeout = 30 * time.Second
)

// payMethod is how the buyer pays, as the provider needs it.
type payMethod struct {
	method  order.Method
	card    payment.Card
	account string
}

// methodOf reads the request's payment method (protovalidate made sure one is set).
func methodOf(card *buyerv1.Card, wallet *buyerv1.Wallet, bank *buyerv1.BankTransfer) payMethod {
	switch {
	case wallet != nil:
		return payMethod{method: order.MethodWallet, account: wallet.Account}
	case bank != nil:
		return payMethod{method: order.MethodBankTransfer, account: bank.AccountNumber}
	}
	return payMethod{method: order.MethodCard, card: payment.Card{
		Number: card.GetNumber(), ExpMonth: int(card.GetExpMonth()), ExpYear: int(card.GetExpYear()), CVC: card.GetCvc(),
	}}
}

// summary identifies the method without its secrets, for fingerprints.
func (m payMethod) summary() string {
	if m.method == order.MethodCard {
		return fmt.Sprintf("card:%s:%s:%02d/%d", payment.Brand(m.card.Number), payment.Last4(m.card.Number), m.card.ExpMonth, m.card.ExpYear)
	}
	return string(m.method) + ":" + payment.MaskAccount(m.account)
}

func (m payMethod) attempt(key, orderID string, expected order.Money) order.Attempt {
	a := order.Attempt{
		ID: uuid.NewString(), IdempotencyKey: key, Method: m.method,
		Fingerprint: fmt.Sprintf("%s|%d|%s|%s", orderID, expected.Amount, expected.Currency, m.summary()),
	}
	if m.method == order.MethodCard {
		a.CardBrand, a.CardLast4 = payment.Brand(m.card.Number), payment.Last4(m.card.Number)
	} else {
		a.Account = payment.MaskAccount(m.account)
	}
	return a
}

// PayOrder pays one order.
func (s *buyerService) PayOrder(ctx context.Context, req *buyerv1.PayOrderRequest) (*buyerv1.PayOrderResponse, error) {
	buyer := buyerID(ctx)
	m := methodOf(req.GetCard(), req.GetWallet(), req.GetBankTransfer())
	expected := protoconv.FromMoney(req.ExpectedTotal)
	fp := fmt.Sprintf("pay|%s|%d|%s|%s", req.OrderId, expected.Amount, expected.Currency, m.summary())
	if err := s.deps.DB.ClaimIdempotencyKey(ctx, "buyer:"+buyer, req.IdempotencyKey, fp, s.deps.Now()); err != nil {
		return nil, err
	}
	o, a, err := s.pay(ctx, buyer, req.OrderId, expected, m, req.IdempotencyKey)
	if err != nil {
		return nil, err
	}
	return &buyerv1.PayOrderResponse{Order: protoconv.Order(o, true), Attempt: protoconv.Attempt(a)}, nil
}

// PayOrders pays several orders one after the other, each on its own.
func (s *buyerService) PayOrders(ctx context.Context, req *buyerv1.PayOrdersRequest) (*buyerv1.PayOrdersResponse, error) {
	buyer := buyerID(ctx)
	m := methodOf(req.GetCard(), req.GetWallet(), req.GetBankTransfer())
	parts := []string{"pay-orders", m.summary()}
	seen := map[string]bool{}
	for _, op := range req.Orders {
		if seen[op.OrderId] {
			return nil, fmt.Errorf("%w: order %s appears twice", order.ErrInvalid, op.OrderId)
		}
		seen[op.OrderId] = true
		parts = append(parts, fmt.Sprintf("%s:%d:%s", op.OrderId, op.ExpectedTotal.AmountMinor, op.ExpectedTotal.Currency))
	}
	if err := s.deps.DB.ClaimIdempotencyKey(ctx, "buyer:"+buyer, req.IdempotencyKey, strings.Join(parts, "|"), s.deps.Now()); err != nil {
		return nil, err
	}
	resp := &buyerv1.PayOrdersResponse{}
	for _, op := range req.Orders {
		r := &buyerv1.OrderPaymentResult{OrderId: op.OrderId}
		o, a, err := s.pay(ctx, buyer, op.OrderId, protoconv.FromMoney(op.ExpectedTotal), m, req.IdempotencyKey)
		if err != nil {
			st := status.Convert(server.ToStatus(ctx, s.deps.Log, err))
			r.ErrorCode, r.ErrorMessage = code.Code_name[int32(st.Code())], st.Message()
		} else {
			r.Order, r.Attempt = protoconv.Order(o, true), protoconv.Attempt(a)
		}
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}

// pay makes (or, for a repeated key, resumes or replays) the payment of one
// order. It holds the order's lock across the provider call, and the
// version read when the attempt opened is the fencing token of the
// write-back: if the order changed meanwhile, or the lock was lost, an
// authorization is voided.
func (s *buyerService) pay(ctx context.Context, buyer, orderID string, expected order.Money, m payMethod, key string) (*order.Order, order.Attempt, error) {
	lk, err := s.deps.Locker.Obtain(ctx, orderID, payLockWait)
	if err != nil {
		return nil, order.Attempt{}, err
	}
	defer lk.Release(ctx)

	attempt := m.attempt(key, orderID, expected)
	replay := false
	o, err := s.update(ctx, buyer, orderID, func(o *order.Order) error {
		if prev, ok := o.AttemptByKey(key); ok && prev.Fingerprint == attempt.Fingerprint {
			attempt, replay = prev, true
			return errReplay
		}
		return o.BeginPayment(s.deps.Now(), expected, attempt)
	})
	if errors.Is(err, errReplay) {
		o, err = s.deps.DB.Get(ctx, orderID)
	}
	if err != nil {
		return nil, order.Attempt{}, err
	}
	// A replayed attempt is answered as it stands, unless it is a
	// synchronous call that was cut off before its answer was recorded (the
	// service stopped): then it is driven again, which the provider answers
	// from its ledger without paying twice.
	if replay && !(attempt.Status == order.AttemptProcessing && o.Status() == order.StatusPendingPayment) {
		return o, attempt, nil
	}

	// The attempt as stored, with the amount it opened for.
	attempt, _ = o.Attempt(attempt.ID)

	// From here on the attempt is open and must be closed, whether or not
	// the buyer is still waiting.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), providerTimeout)
	defer cancel()
	fence := o.Version()
	res, err := s.provider.Pay(ctx, payment.PaymentRequest{
		Key: attempt.ID, OrderID: orderID, Amount: attempt.Amount, Method: m.method, Card: m.card, Account: m.account,
	})
	if s.crashAfterAuthorize && err == nil && res.Kind == order.ResultSucceeded {
		s.deps.Log.Error("fault injection: exiting between authorization and commit", "order_id", orderID)
		os.Exit(3)
	}
	if err != nil {
		s.deps.Log.WarnContext(ctx, "payment provider", "order_id", orderID, "attempt_id", attempt.ID, "err", err)
		return s.closeAttempt(ctx, buyer, orderID, attempt.ID, payment.DeclineFor("processing_error"))
	}
	return s.record(ctx, buyer, orderID, attempt.ID, fence, lk.Lost, res)
}

// errReplay says a payment request repeats an earlier one with its key.
var errReplay = errors.New("replayed payment request")

// record writes the provider's answer back under the fence. If the order
// changed meanwhile (its payment window passed, say), an authorization is
// voided and the attempt fails; money already taken is recorded on the
// cancelled order, which owes it back.
func (s *buyerService) record(ctx context.Context, buyer, orderID, attemptID string, fence int64, lost func() bool, res order.Result) (*order.Order, order.Attempt, error) {
	o, err := s.update(ctx, buyer, orderID, func(o *order.Order) error {
		if o.Version() != fence || lost() {
			return fmt.Errorf("%w: order %s changed during the payment", order.ErrConflict, orderID)
		}
		return o.ApplyResult(s.deps.Now(), attemptID, res, s.deps.Config.Policy)
	})
	if errors.Is(err, order.ErrConflict) && res.Kind == order.ResultSucceeded {
		if !res.Captured {
			if verr := s.provider.Void(ctx, res.ProviderRef); verr != nil {
				s.deps.Log.ErrorContext(ctx, "void authorization", "order_id", orderID, "ref", res.ProviderRef, "err", verr)
			}
			return s.closeAttempt(ctx, buyer, orderID, attemptID, order.DeclineVoided)
		}
		o, err = s.update(ctx, buyer, orderID, func(o *order.Order) error {
			return o.ApplyResult(s.deps.Now(), attemptID, res, s.deps.Config.Policy)
		})
	}
	if err != nil {
		return nil, order.Attempt{}, err
	}
	if res.Kind == order.ResultSucceeded && !res.Captured {
		s.capture(ctx, orderID, attemptID, res.ProviderRef)
	}
	a, _ := o.Attempt(attemptID)
	return o, a, nil
}

// closeAttempt fails an open attempt with d and answers with it. An
// attempt the order closed meanwhile (it was cancelled) is answered as it is.
func (s *buyerService) closeAttempt(ctx context.Context, buyer, orderID, attemptID string, d order.Decline) (*order.Order, order.Attempt, error) {
	o, err := s.update(ctx, buyer, orderID, func(o *order.Order) error { return o.FailPayment(s.deps.Now(), attemptID, d) })
	if errors.Is(err, order.ErrIllegalTransition) {
		o, err = s.deps.DB.Get(ctx, orderID)
	}
	if err != nil {
		return nil, order.Attempt{}, err
	}
	a, _ := o.Attempt(attemptID)
	return o, a, nil
}

// capture takes the money of an authorized payment and records it; if the
// provider cannot be reached, the worker captures it later.
func (s *buyerService) capture(ctx context.Context, orderID, attemptID, ref string) {
	if err := s.provider.Capture(ctx, ref); err != nil {
		s.deps.Log.WarnContext(ctx, "capture; the worker will retry", "order_id", orderID, "attempt_id", attemptID, "err", err)
		return
	}
	_, err := s.deps.DB.Update(ctx, orderID, func(o *order.Order) error { return o.MarkCaptured(s.deps.Now(), attemptID) })
	if err != nil && !errors.Is(err, order.ErrAlreadyFinal) {
		s.deps.Log.ErrorContext(ctx, "record capture", "order_id", orderID, "attempt_id", attemptID, "err", err)
	}
}

// VerifyPayment gives the provider the buyer's one-time code.
func (s *buyerService) VerifyPayment(ctx context.Context, req *buyerv1.VerifyPaymentRequest) (*buyerv1.VerifyPaymentResponse, error) {
	buyer := buyerID(ctx)
	lk, err := s.deps.Locker.Obtain(ctx, req.OrderId, payLockWait)
	if err != nil {
		return nil, err
	}
	defer lk.Release(ctx)
	o, err := s.deps.DB.Get(ctx, req.OrderId)
	if err != nil {
		return nil, err
	}
	if err := ownedBy(o, buyer); err != nil {
		return nil, err
	}
	if _, err := o.RequireVerification(req.AttemptId); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), providerTimeout)
	defer cancel()
	var a order.Attempt
	res, err := s.provider.Verify(ctx, req.AttemptId, req.Code)
	switch {
	case errors.Is(err, payment.ErrWrongCode):
		o, err = s.update(ctx, buyer, req.OrderId, func(o *order.Order) error {
			return o.WrongVerificationCode(s.deps.Now(), req.AttemptId, s.deps.Config.Policy)
		})
		if err == nil {
			a, _ = o.Attempt(req.AttemptId)
		}
	case errors.Is(err, payment.ErrTransient):
		s.deps.Log.WarnContext(ctx, "payment provider", "order_id", req.OrderId, "err", err)
		return nil, status.Error(codes.Unavailable, "the payment provider is unavailable; try the code again in a moment")
	case err != nil:
		return nil, err
	default:
		o, a, err = s.record(ctx, buyer, req.OrderId, req.AttemptId, o.Version(), lk.Lost, res)
	}
	if err != nil {
		return nil, err
	}
	return &buyerv1.VerifyPaymentResponse{Order: protoconv.Order(o, true), Attempt: protoconv.Attempt(a)}, nil
}

// ListRefunds pages the caller's refunds.
func (s *buyerService) ListRefunds(ctx context.Context, req *buyerv1.ListRefundsRequest) (*buyerv1.ListRefundsResponse, error) {
	size := int(req.PageSize)
	if size == 0 {
		size = 20
	}
	rs, next, err := s.deps.DB.ListRefunds(ctx, buyerID(ctx), size, req.PageToken)
	if err != nil {
		return nil, err
	}
	resp := &buyerv1.ListRefundsResponse{NextPageToken: next}
	for _, r := range rs {
		resp.Refunds = append(resp.Refunds, protoconv.Refund(r.OrderID, r.Refund))
	}
	return resp, nil
}

// callbackService implements ProviderCallbackService: the provider's
// signed reports of asynchronous outcomes.
type callbackService struct {
	buyerv1.UnimplementedProviderCallbackServiceServer
	svc *buyerService
}

var outcomes = map[string]order.ResultKind{
	"succeeded": order.ResultSucceeded,
	"declined":  order.ResultDeclined,
	"failed":    order.ResultFailed,
}

// ReportPaymentEvent checks an event's signature and records its outcome.
// An event for an attempt that already has its outcome is acknowledged.
func (c *callbackService) ReportPaymentEvent(ctx context.Context, req *buyerv1.ReportPaymentEventRequest) (*buyerv1.ReportPaymentEventResponse, error) {
	s := c.svc
	ev := payment.Event{OrderID: req.OrderId, AttemptID: req.AttemptId, ProviderRef: req.ProviderRef, Outcome: req.Outcome,
		DeclineCode: req.DeclineCode, Timestamp: req.Timestamp, Signature: req.Signature}
	if err := ev.Verify(s.webhookSecret, s.deps.Now()); err != nil {
		return nil, err
	}
	res := order.Result{Kind: outcomes[req.Outcome], ProviderRef: req.ProviderRef, Captured: req.Outcome == "succeeded"}
	if res.Kind != order.ResultSucceeded {
		res.Decline = payment.DeclineFor(req.DeclineCode)
	}
	o, err := s.deps.DB.Update(ctx, req.OrderId, func(o *order.Order) error {
		return o.ApplyResult(s.deps.Now(), req.AttemptId, res, s.deps.Config.Policy)
	})
	switch {
	case errors.Is(err, order.ErrAlreadyFinal):
	case err != nil:
		return nil, err
	default:
		s.deps.Log.InfoContext(ctx, "provider event recorded", "order_id", req.OrderId, "attempt_id", req.AttemptId, "outcome", req.Outcome)
		s.deps.Changed(ctx, o)
	}
	return &buyerv1.ReportPaymentEventResponse{}, nil
}
