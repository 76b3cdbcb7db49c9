package order

import (
	"fmt"
	"time"
)

// AttemptStatus is where a payment attempt stands.
type AttemptStatus string

// The statuses of a payment attempt.
const (
	AttemptProcessing AttemptStatus = "PROCESSING"
	AttemptSucceeded  AttemptStatus = "SUCCEEDED"
	AttemptDeclined   AttemptStatus = "DECLINED"
	AttemptFailed     AttemptStatus = "FAILED"
)

// Decline is why a payment was refused: a machine-readable code and a message.
type Decline struct {
	Code    string
	Message string
}

// Attempt is one try at paying an order. It keeps the card's brand and last
// four digits only.
type Attempt struct {
	ID             string
	IdempotencyKey string
	// Fingerprint identifies the request's parameters (amount, card brand,
	// last four, expiry) so that a reused idempotency key can be told apart
	// from a retry. It never contains the card number.
	Fingerprint string
	Status      AttemptStatus
	Amount      Money
	Method      string
	CardBrand   string
	CardLast4   string
	Decline     Decline
	ProviderRef string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Outcome is what the payment provider answered to a charge.
type Outcome struct {
	Approved    bool
	ProviderRef string
	// Decline is set when the provider refused the payment.
	Decline Decline
}

// openAttempt returns the attempt still waiting for the provider, if any.
func (o *Order) openAttempt() *Attempt {
	for i := range o.attempts {
		if o.attempts[i].Status == AttemptProcessing {
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
	for _, a := range o.attempts {
		if a.ID == id {
			return a, true
		}
	}
	return Attempt{}, false
}

// BeginPayment opens a payment attempt for the order's current total. It is
// refused when the buyer expected another total (so nobody is charged an
// amount they did not see), when another attempt is open, and when the
// order is not waiting for payment.
func (o *Order) BeginPayment(now time.Time, expected Money, a Attempt) error {
	if prev, ok := o.AttemptByKey(a.IdempotencyKey); ok && prev.Fingerprint != a.Fingerprint {
		return fmt.Errorf("%w: key %q", ErrIdempotencyKeyReused, a.IdempotencyKey)
	}
	if o.status != StatusPendingPayment {
		return o.illegal("pay")
	}
	if o.openAttempt() != nil {
		return fmt.Errorf("%w: another payment attempt is open", ErrPaymentInProgress)
	}
	if total := o.Total(); expected != total {
		return fmt.Errorf("%w: you expected %s but the order's total is now %s", ErrTotalMismatch, expected, total)
	}
	a.Status, a.Amount, a.CreatedAt, a.UpdatedAt = AttemptProcessing, o.Total(), now, now
	o.attempts = append(o.attempts, a)
	o.updatedAt = now
	return nil
}

// CompletePayment records the provider's outcome for an open attempt: an
// approval pays the order, a decline leaves it waiting for payment with the
// decline visible and its payment window as it was.
func (o *Order) CompletePayment(now time.Time, attemptID string, out Outcome) error {
	a := o.openAttempt()
	if a == nil || a.ID != attemptID {
		return fmt.Errorf("%w: payment attempt %s is not open", ErrIllegalTransition, attemptID)
	}
	a.UpdatedAt, a.ProviderRef = now, out.ProviderRef
	if !out.Approved {
		a.Status, a.Decline = AttemptDeclined, out.Decline
		o.lastDecline = out.Decline
		o.record(now, "payment_declined", "buyer:"+o.buyerID, out.Decline.Code+": "+out.Decline.Message, nil)
		return nil
	}
	a.Status = AttemptSucceeded
	o.status = StatusAwaitingShipment
	o.lastDecline = Decline{}
	delete(o.deadlines, DeadlinePayment)
	o.record(now, "paid", "buyer:"+o.buyerID, fmt.Sprintf("%s %s ending %s", a.Amount, a.CardBrand, a.CardLast4), nil)
	return nil
}

// FailPayment closes an open attempt whose outcome is unknown or void (the
// provider failed, or the charge was voided); the order waits for payment again.
func (o *Order) FailPayment(now time.Time, attemptID string, d Decline) error {
	a := o.openAttempt()
	if a == nil || a.ID != attemptID {
		return fmt.Errorf("%w: payment attempt %s is not open", ErrIllegalTransition, attemptID)
	}
	a.Status, a.Decline, a.UpdatedAt = AttemptFailed, d, now
	o.lastDecline = d
	o.record(now, "payment_failed", "system", d.Code+": "+d.Message, nil)
	return nil
}
