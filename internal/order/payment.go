package order

import (
	"fmt"
	"time"

	"github.com/souk-dev/souk/internal/bankday"
)

// Method is how a buyer pays.
type Method string

// The payment methods.
const (
	MethodCard         Method = "card"
	MethodWallet       Method = "wallet"
	MethodBankTransfer Method = "bank_transfer"
	// MethodPayLater is buy now, pay later: the provider pays the whole
	// amount at once and collects instalments from the buyer itself.
	MethodPayLater Method = "pay_later"
)

// AttemptStatus is where a payment attempt stands, as in a payment intent.
type AttemptStatus string

// The statuses of a payment attempt.
const (
	AttemptRequiresVerification AttemptStatus = "REQUIRES_VERIFICATION"
	AttemptProcessing           AttemptStatus = "PROCESSING"
	AttemptSucceeded            AttemptStatus = "SUCCEEDED"
	AttemptDeclined             AttemptStatus = "DECLINED"
	AttemptFailed               AttemptStatus = "FAILED"
	AttemptCanceled             AttemptStatus = "CANCELED"
)

// Decline explains why a payment did not go through: a machine-readable
// code, a message and advice for the buyer, and whether a retry can succeed.
type Decline struct {
	Code      string
	Message   string
	Advice    string
	Retryable bool
}

// Declines Souk itself gives to attempts that end without a provider decision.
var (
	DeclineVerificationFailed  = Decline{Code: "verification_failed", Message: "Too many wrong verification codes.", Advice: "Start the payment again to get a new code.", Retryable: true}
	DeclineVerificationExpired = Decline{Code: "verification_expired", Message: "The payment was not verified in time.", Advice: "Start the payment again to get a new code.", Retryable: true}
	DeclineProcessingTimeout   = Decline{Code: "processing_timeout", Message: "The payment provider did not confirm the payment in time.", Advice: "Try again or use another payment method.", Retryable: true}
	DeclineProcessingError     = Decline{Code: "processing_error", Message: "The payment could not be processed.", Advice: "Try again in a moment.", Retryable: true}
	DeclineVoided              = Decline{Code: "voided", Message: "The payment was cancelled because the order changed while it was made.", Advice: "Check the order's total and pay again.", Retryable: true}
	DeclineNotReceived         = Decline{Code: "not_received", Message: "The payment provider never received the payment.", Advice: "Nothing was charged; pay again.", Retryable: true}
	DeclineCaptureRefused      = Decline{Code: "capture_refused", Message: "The payment was approved but the money could not be taken (the authorization expired or was cancelled).", Advice: "Pay again; nothing was charged.", Retryable: true}
)

// CaptureGrace is how long the call that authorized a payment has to capture
// it before the payment worker does.
const CaptureGrace = 10 * time.Second

// Attempt is one try at paying an order. It keeps a card's brand and last
// four digits only, and a masked account for other methods.
type Attempt struct {
	ID             string
	IdempotencyKey string
	// Fingerprint identifies the request's parameters (amount, method, card
	// brand, last four, expiry, account) so that a reused idempotency key
	// can be told apart from a retry. It never contains a card number.
	Fingerprint          string
	Status               AttemptStatus
	Amount               Money
	Method               Method
	CardBrand            string
	CardLast4            string
	Account              string
	Decline              Decline
	ProviderRef          string
	VerificationFailures int
	// Captured is set once the provider has taken the money.
	Captured bool
	// CaptureTries counts the worker's failed captures; NextCaptureAt is
	// when it may try again (each attempt backs off on its own).
	CaptureTries  int
	NextCaptureAt time.Time
	// RecheckAt is set on an attempt failed because the provider had no
	// record of it: a request still on its way may land after all, so the
	// provider is asked once more then (RecordLateAnswer).
	RecheckAt time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Open reports whether the attempt still waits for the provider or the buyer.
func (a Attempt) Open() bool {
	return a.Status == AttemptProcessing || a.Status == AttemptRequiresVerification
}

// AwaitsCapture reports whether the attempt holds an authorization whose
// money is not taken yet.
func (a Attempt) AwaitsCapture() bool {
	return a.Status == AttemptSucceeded && !a.Captured
}

// ResultKind is the provider's answer to an attempt.
type ResultKind string

// The provider's answers.
const (
	ResultSucceeded            ResultKind = "succeeded"
	ResultDeclined             ResultKind = "declined"
	ResultFailed               ResultKind = "failed"
	ResultRequiresVerification ResultKind = "requires_verification"
	ResultProcessing           ResultKind = "processing"
)

// Result is what the payment provider answered for an attempt.
type Result struct {
	Kind        ResultKind
	ProviderRef string
	// Decline is set for declined and failed results.
	Decline Decline
	// Captured is set when the money is already taken (no separate capture).
	Captured bool
}

// Policy holds the rules of payments and refunds that are configuration,
// not code: how long verification and asynchronous processing may take and
// when refunds are due.
type Policy struct {
	VerificationTTL         time.Duration
	ProcessingTimeout       time.Duration
	MaxVerificationFailures int
	RefundBankingDays       int
	Calendar                bankday.Calendar
	// HandlingDay is the length of one of the seller's handling days: the
	// ship-by deadline is HandlingDays of them after payment.
	HandlingDay time.Duration
	// CancelAnswerWindow is how long a seller has to answer a cancellation request.
	CancelAnswerWindow time.Duration
	// ProtectionDay is the length of one day of buyer protection: an order
	// is protected for its ProtectionDays of them after shipping.
	ProtectionDay time.Duration
	// DisputeAnswerWindow is how long the other side has to answer in a dispute.
	DisputeAnswerWindow time.Duration
	// RefundLease is how long a refund worker has to finish a refund it
	// started before another may take it over (a worker that died).
	RefundLease time.Duration
	// OfferTTL is how long a buyer's offer waits for the seller's answer.
	OfferTTL time.Duration
}

// DefaultPolicy is the policy with Souk's defaults and no holidays.
var DefaultPolicy = Policy{
	VerificationTTL: 5 * time.Minute, ProcessingTimeout: 72 * time.Hour, MaxVerificationFailures: 3, RefundBankingDays: 15,
	HandlingDay: 24 * time.Hour, CancelAnswerWindow: 72 * time.Hour, ProtectionDay: 24 * time.Hour,
	DisputeAnswerWindow: 5 * 24 * time.Hour, RefundLease: 2 * time.Minute, OfferTTL: 48 * time.Hour,
}

// openAttempt returns the attempt still waiting for the provider or the buyer, if any.
func (o *Order) openAttempt() *Attempt {
	for i := range o.attempts {
		if o.attempts[i].Open() {
			return &o.attempts[i]
		}
	}
	return nil
}

func (o *Order) attempt(id string) *Attempt {
	for i := range o.attempts {
		if o.attempts[i].ID == id {
			return &o.attempts[i]
		}
	}
	return nil
}

// AttemptByKey returns the attempt made with an idempotency key, if any.
func (o *Order) AttemptByKey(key string) (Attempt, bool) {
	for _, a := range o.attempts {
		if a.IdempotencyKey == key {
			return a, true
		}
	}
	return Attempt{}, false
}

// Attempt returns the attempt with the given id.
func (o *Order) Attempt(id string) (Attempt, bool) {
	if a := o.attempt(id); a != nil {
		return *a, true
	}
	return Attempt{}, false
}

// BeginPayment opens a payment attempt for what the order is due (its
// total, in the buyer's currency when it has a quote). It is refused when
// the buyer expected another total (so nobody is charged an amount they
// did not see), when the quote expired (quote again first), when another
// attempt is open, and when the order is not waiting for payment.
func (o *Order) BeginPayment(now time.Time, expected Money, a Attempt) error {
	if prev, ok := o.AttemptByKey(a.IdempotencyKey); ok && prev.Fingerprint != a.Fingerprint {
		return fmt.Errorf("%w: key %q", ErrIdempotencyKeyReused, a.IdempotencyKey)
	}
	if o.status != StatusPendingPayment && o.status != StatusPartiallyPaid {
		return o.illegal("pay")
	}
	if o.openAttempt() != nil {
		return fmt.Errorf("%w: another payment attempt is open", ErrPaymentInProgress)
	}
	if o.QuoteExpired(now) {
		return fmt.Errorf("%w: quoted until %s", ErrQuoteExpired, o.quote.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if due := o.Due(); expected != due {
		return &TotalChangedError{Expected: expected, Total: due}
	}
	a.Status, a.Amount, a.CreatedAt, a.UpdatedAt = AttemptProcessing, o.Due(), now, now
	o.attempts = append(o.attempts, a)
	o.updatedAt = now
	return nil
}

// AwaitsAnswer reports whether the order still waits for the provider's
// answer to an attempt: the attempt is open and the order's total is the
// amount it was made for. A payment's answer is recorded under this fence,
// not under the order's version: a message, a reminder or an offer that
// lapses moves the version without touching what the payment depends on.
func (o *Order) AwaitsAnswer(attemptID string) bool {
	a := o.attempt(attemptID)
	return a != nil && a.Open() && a.Amount == o.Due() &&
		(o.status == StatusPendingPayment || o.status == StatusPaymentProcessing || o.status == StatusPartiallyPaid)
}

// ApplyResult records the provider's answer for an attempt: a success pays
// the order; a decline or failure leaves it waiting for payment with the
// decline visible and its payment window as it was; a verification request
// or an asynchronous "processing" keeps the attempt open with a deadline.
// A success for an attempt whose order was cancelled meanwhile is refunded.
// An answer for an attempt that already has its outcome returns
// ErrAlreadyFinal and changes nothing.
func (o *Order) ApplyResult(now time.Time, attemptID string, r Result, pol Policy) error {
	a := o.attempt(attemptID)
	if a == nil {
		return fmt.Errorf("%w: no payment attempt %s on order %s", ErrNotFound, attemptID, o.id)
	}
	if !a.Open() {
		// The order stopped waiting for this attempt (it was cancelled, or
		// Souk gave up on it); money taken anyway is owed back. A decline
		// was the provider's own answer and stays.
		if r.Kind != ResultSucceeded || (a.Status != AttemptCanceled && a.Status != AttemptFailed) {
			return fmt.Errorf("%w: attempt %s is %s", ErrAlreadyFinal, a.ID, a.Status)
		}
		reason := "late_payment"
		if o.status == StatusCancelled {
			reason = "payment_after_cancellation"
		}
		a.Status, a.ProviderRef, a.Captured, a.UpdatedAt = AttemptSucceeded, r.ProviderRef, r.Captured, now
		o.record(now, reason, "system", fmt.Sprintf("%s paid after the order stopped waiting for it", a.Amount), nil)
		o.oweRefund(now, *a, reason, pol)
		return nil
	}
	a.UpdatedAt = now
	if r.ProviderRef != "" {
		a.ProviderRef = r.ProviderRef
	}
	switch r.Kind {
	case ResultSucceeded:
		a.Status, a.Captured, a.NextCaptureAt = AttemptSucceeded, r.Captured, now.Add(CaptureGrace)
		o.closeOffer(now, OfferLapsed, "the order was paid")
		o.lastDecline = Decline{}
		o.closeAttemptDeadlines()
		delete(o.deadlines, DeadlinePayment)
		if o.payPart(now, a) {
			o.consumeCoupons(now)
			return nil
		}
		o.status = StatusAwaitingShipment
		o.paidAttemptID = a.ID
		o.deadlines[DeadlineShipBy] = now.Add(time.Duration(max(o.handlingDays, 1)) * pol.HandlingDay)
		// The history is the seller's to read too: it names the method only.
		o.record(now, "paid", "buyer:"+o.buyerID, fmt.Sprintf("%s by %s", a.Amount, a.Method), nil)
		o.paymentDetail(*a)
		o.consumeCoupons(now)
	case ResultDeclined, ResultFailed:
		a.Status, a.Decline = AttemptDeclined, r.Decline
		kind := "payment_declined"
		if r.Kind == ResultFailed {
			a.Status, kind = AttemptFailed, "payment_failed"
		}
		o.reopen(now, kind, r.Decline)
	case ResultRequiresVerification:
		a.Status = AttemptRequiresVerification
		o.status = o.unpaidStatus() // it was being checked if the first answer was lost
		delete(o.deadlines, DeadlineProcessing)
		o.deadlines[DeadlineVerification] = now.Add(pol.VerificationTTL)
		o.record(now, "verification_required", "system", "the payment needs a one-time code", nil)
	case ResultProcessing:
		if o.status == StatusPaymentProcessing && a.Status == AttemptProcessing {
			return nil // already being checked; a reference may have arrived
		}
		a.Status = AttemptProcessing
		o.status = StatusPaymentProcessing
		delete(o.deadlines, DeadlineVerification)
		o.deadlines[DeadlineProcessing] = now.Add(pol.ProcessingTimeout)
		o.record(now, "payment_processing", "system", "the payment is being checked", nil)
	default:
		return fmt.Errorf("%w: unknown provider result %q", ErrInvalid, r.Kind)
	}
	return nil
}

// reopen records a failed attempt: the order waits for payment again, in
// its payment window; if the window has passed meanwhile (the payment was
// being checked when it ended), the order is cancelled now.
func (o *Order) reopen(now time.Time, kind string, d Decline) {
	o.lastDecline = d
	o.status = o.unpaidStatus()
	o.closeAttemptDeadlines()
	partly := o.status == StatusPartiallyPaid
	if partly {
		o.armPart()
	} else if now.Before(o.paymentDueAt) {
		o.deadlines[DeadlinePayment] = o.paymentDueAt
	}
	// The history and the event feed are the seller's to read too: why a
	// payment did not go through (insufficient funds, a bank's refusal) is
	// the buyer's business, shown on the attempt and as last_decline.
	note := "the payment was declined"
	if kind != "payment_declined" {
		note = "the payment did not go through"
	}
	o.record(now, kind, "system", note, nil)
	// A part whose grace ended while it was being paid has its deadline
	// due already (armPart): firing it cancels the order.
	if !partly && !now.Before(o.paymentDueAt) {
		o.cancel(now, "system", ReasonPaymentTimeout, PartyBuyer)
	}
}

func (o *Order) closeAttemptDeadlines() {
	delete(o.deadlines, DeadlineVerification)
	delete(o.deadlines, DeadlineProcessing)
}

// FailPayment closes an open attempt as failed without a provider decision
// (the provider could not be reached, or the charge was voided); the order
// waits for payment again.
func (o *Order) FailPayment(now time.Time, attemptID string, d Decline) error {
	a := o.attempt(attemptID)
	if a == nil || !a.Open() {
		return fmt.Errorf("%w: payment attempt %s is not open", ErrIllegalTransition, attemptID)
	}
	a.Status, a.Decline, a.UpdatedAt = AttemptFailed, d, now
	o.reopen(now, "payment_failed", d)
	return nil
}

// WrongVerificationCode counts a wrong one-time code; too many fail the attempt.
func (o *Order) WrongVerificationCode(now time.Time, attemptID string, pol Policy) error {
	a := o.attempt(attemptID)
	if a == nil || a.Status != AttemptRequiresVerification {
		return fmt.Errorf("%w: payment attempt %s does not require verification", ErrIllegalTransition, attemptID)
	}
	a.VerificationFailures++
	a.UpdatedAt = now
	if a.VerificationFailures >= pol.MaxVerificationFailures {
		a.Status, a.Decline = AttemptFailed, DeclineVerificationFailed
		o.reopen(now, "payment_failed", DeclineVerificationFailed)
		return nil
	}
	o.record(now, "verification_code_wrong", "buyer:"+o.buyerID, fmt.Sprintf("wrong code %d of %d", a.VerificationFailures, pol.MaxVerificationFailures), nil)
	return nil
}

// RequireVerification checks that an attempt is waiting for its one-time code.
func (o *Order) RequireVerification(attemptID string) (Attempt, error) {
	a := o.attempt(attemptID)
	if a == nil {
		return Attempt{}, fmt.Errorf("%w: no payment attempt %s on order %s", ErrNotFound, attemptID, o.id)
	}
	if a.Status != AttemptRequiresVerification {
		return Attempt{}, fmt.Errorf("%w: payment attempt %s is %s, not waiting for a code", ErrIllegalTransition, attemptID, a.Status)
	}
	return *a, nil
}

// FailUnreceived closes an open attempt that the provider has no record
// of, long after its call ended: the order waits for payment again, and the
// provider is asked once more at recheckAt, in case the request lands late.
func (o *Order) FailUnreceived(now time.Time, attemptID string, recheckAt time.Time) error {
	if err := o.FailPayment(now, attemptID, DeclineNotReceived); err != nil {
		return err
	}
	o.attempt(attemptID).RecheckAt = recheckAt
	return nil
}

// RecordLateAnswer records what reconciliation learnt from the provider
// about an attempt the order stopped waiting for before any answer came (it
// was cancelled while the answer was unknown, or failed as never received
// and due for its second look): money taken is owed back (as by
// ApplyResult); anything else is kept on the attempt, so that it is not
// asked about again. found is false when the provider never got it.
func (o *Order) RecordLateAnswer(now time.Time, attemptID string, r Result, found bool, pol Policy) error {
	a := o.attempt(attemptID)
	recheck := a != nil && a.Status == AttemptFailed && !a.RecheckAt.IsZero()
	if a == nil || !recheck && (a.Status != AttemptCanceled || a.ProviderRef != "" || a.Decline.Code != "") {
		return fmt.Errorf("%w: attempt %s has its answer", ErrAlreadyFinal, attemptID)
	}
	a.RecheckAt = time.Time{}
	switch {
	case found && r.Kind == ResultSucceeded:
		return o.ApplyResult(now, attemptID, r, pol)
	case recheck:
		// Still not paid: the attempt keeps its decline. A payment the
		// provider is still deciding is settled by its event.
		a.ProviderRef = r.ProviderRef
	case found && (r.Kind == ResultDeclined || r.Kind == ResultFailed):
		a.ProviderRef, a.Decline = r.ProviderRef, r.Decline
	case found && r.ProviderRef != "":
		// Still deciding at the provider: its event settles the attempt.
		a.ProviderRef = r.ProviderRef
	default:
		a.Decline = DeclineNotReceived
	}
	a.UpdatedAt = now
	return nil
}

// ClaimCapture claims the capture of a succeeded, uncaptured attempt for
// one worker until now+lease, and returns the attempt: a capture not yet due
// (another worker holds it, or it backs off) is ErrNotDue.
func (o *Order) ClaimCapture(now time.Time, attemptID string, lease time.Duration) (Attempt, error) {
	a := o.attempt(attemptID)
	if a == nil || !a.AwaitsCapture() {
		return Attempt{}, fmt.Errorf("%w: attempt %s is not waiting for its capture", ErrIllegalTransition, attemptID)
	}
	if now.Before(a.NextCaptureAt) {
		return Attempt{}, fmt.Errorf("%w: the capture of attempt %s is due at %s", ErrNotDue, attemptID, a.NextCaptureAt)
	}
	a.NextCaptureAt, a.UpdatedAt = now.Add(lease), now
	return *a, nil
}

// CaptureRetryLater records a capture that did not go through (the provider
// could not be reached) and when to try again.
func (o *Order) CaptureRetryLater(now time.Time, attemptID string, at time.Time) error {
	a := o.attempt(attemptID)
	if a == nil || !a.AwaitsCapture() {
		return fmt.Errorf("%w: attempt %s is not waiting for its capture", ErrIllegalTransition, attemptID)
	}
	a.CaptureTries++
	a.NextCaptureAt, a.UpdatedAt = at, now
	return nil
}

// CaptureRefused records that the provider refused for good to take the
// money of the attempt that paid the order (its authorization expired or
// was voided): nothing was charged, so the order waits for payment again,
// with d for the buyer to see, or is cancelled if its window has passed.
// The deposit a cancelled order kept (its balance went unpaid) was never
// taken either: the order keeps nothing.
func (o *Order) CaptureRefused(now time.Time, attemptID string, d Decline) error {
	a := o.attempt(attemptID)
	kept := a != nil && o.status == StatusCancelled && o.keeps(ReasonBalanceUnpaid, a.ID)
	if a == nil || !a.AwaitsCapture() ||
		!kept && (!o.Pays(a.ID) || o.status != StatusAwaitingShipment && o.status != StatusPartiallyPaid) {
		return fmt.Errorf("%w: attempt %s is not an uncaptured payment of a paid order", ErrIllegalTransition, attemptID)
	}
	a.Status, a.Decline, a.UpdatedAt = AttemptFailed, d, now
	if kept {
		o.record(now, "payment_failed", "system", fmt.Sprintf("the kept deposit (%s) could not be captured: %s", a.Amount, d.Message), nil)
		return nil
	}
	o.paidAttemptID = ""
	o.unpayPart(a.ID)
	delete(o.deadlines, DeadlineShipBy)
	o.closeCancellation(now, RequestWithdrawn, "the payment was not captured")
	o.reopen(now, "payment_failed", d)
	return nil
}

// MarkCaptured records that the provider took the money of a succeeded attempt.
func (o *Order) MarkCaptured(now time.Time, attemptID string) error {
	a := o.attempt(attemptID)
	if a == nil || a.Status != AttemptSucceeded {
		return fmt.Errorf("%w: attempt %s has not succeeded", ErrIllegalTransition, attemptID)
	}
	if a.Captured {
		return fmt.Errorf("%w: attempt %s is captured", ErrAlreadyFinal, attemptID)
	}
	a.Captured, a.UpdatedAt = true, now
	return nil
}
