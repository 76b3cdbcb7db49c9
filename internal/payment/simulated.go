package payment

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/souk-dev/souk/internal/order"
)

// TestCard is a card number the simulated provider answers in a fixed way.
type TestCard struct {
	Number  string
	Outcome string // "approve", a decline code, or "processing_error"
}

// TestCards are the simulated provider's documented cards (see README).
// Any other number is declined with do_not_honor.
var TestCards = []TestCard{
	{"4242424242424242", "approve"},
	{"5555555555554444", "approve"},
	{"2200000000000004", "approve"},
	{"4000000000000002", "do_not_honor"},
	{"4000000000000127", "incorrect_cvc"},
	{"4000000000009995", "insufficient_funds"},
	{"4000000000000069", "expired_card"},
	{"4000000000009987", "bank_restriction"},
	{"4000000000000119", "processing_error"},
}

// declineMessages explain each decline code to the buyer.
var declineMessages = map[string]string{
	"do_not_honor":       "The card was declined. Use another payment method or contact your bank.",
	"incorrect_cvc":      "The security code is incorrect. Check the CVC and try again.",
	"insufficient_funds": "The card has insufficient funds. Use another payment method.",
	"expired_card":       "The card has expired. Use another card.",
	"bank_restriction":   "The bank restricted this payment. Contact your bank or use another payment method.",
}

// Charge is a charge the simulated provider made.
type Charge struct {
	Ref         string
	Key         string
	Amount      order.Money
	Last4       string
	Description string
	Voided      bool
}

// Simulated is a payment provider in test mode: its answers depend only on
// the card number (TestCards), it charges each idempotency key once, and it
// keeps a ledger that tests can read.
type Simulated struct {
	now func() time.Time
	// Latency is how long each charge takes, as a real provider's network
	// round trip would; tests raise it to widen race windows.
	Latency time.Duration

	mu      sync.Mutex
	byKey   map[string]order.Outcome
	charges []Charge
}

// NewSimulated returns a simulated provider with an empty ledger.
func NewSimulated(now func() time.Time) *Simulated {
	return &Simulated{now: now, byKey: map[string]order.Outcome{}}
}

// Charge answers as the test card says. A key seen before gets the first answer again.
func (s *Simulated) Charge(ctx context.Context, req ChargeRequest) (order.Outcome, error) {
	if s.Latency > 0 {
		select {
		case <-time.After(s.Latency):
		case <-ctx.Done():
			return order.Outcome{}, fmt.Errorf("%w: %w", ErrTransient, ctx.Err())
		}
	}
	if err := ctx.Err(); err != nil {
		return order.Outcome{}, fmt.Errorf("%w: %w", ErrTransient, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if out, ok := s.byKey[req.IdempotencyKey]; ok {
		return out, nil
	}
	code := "do_not_honor"
	for _, tc := range TestCards {
		if tc.Number == req.Card.Number {
			code = tc.Outcome
		}
	}
	now := s.now()
	if code == "approve" && (req.Card.ExpYear < now.Year() || req.Card.ExpYear == now.Year() && req.Card.ExpMonth < int(now.Month())) {
		code = "expired_card"
	}
	var out order.Outcome
	switch code {
	case "processing_error":
		// Not remembered: a retry of a transient error may be tried again.
		return order.Outcome{}, fmt.Errorf("%w: processing_error", ErrTransient)
	case "approve":
		out = order.Outcome{Approved: true, ProviderRef: "ch_" + uuid.NewString()}
		s.charges = append(s.charges, Charge{Ref: out.ProviderRef, Key: req.IdempotencyKey, Amount: req.Amount, Last4: Last4(req.Card.Number), Description: req.Description})
	default:
		out = order.Outcome{ProviderRef: "ch_" + uuid.NewString(), Decline: order.Decline{Code: code, Message: declineMessages[code]}}
	}
	s.byKey[req.IdempotencyKey] = out
	return out, nil
}

// Void cancels an approved charge.
func (s *Simulated) Void(_ context.Context, ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.charges {
		if s.charges[i].Ref == ref {
			s.charges[i].Voided = true
			return nil
		}
	}
	return fmt.Errorf("void: no charge %s", ref)
}

// Charges returns a copy of the ledger.
func (s *Simulated) Charges() []Charge {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Charge(nil), s.charges...)
}
