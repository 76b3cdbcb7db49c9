// Package payment is the edge between Souk and a payment provider: the
// Provider interface a real provider implements, and Simulated, the default,
// a provider in test mode with documented test cards.
package payment

import (
	"context"
	"errors"
	"log/slog"

	"github.com/souk-dev/souk/internal/order"
)

// ErrTransient means the provider could not decide (a processing error, a
// time-out); the same request may succeed later.
var ErrTransient = errors.New("payment provider unavailable")

// Card is a payment card as the buyer entered it. It is passed to the
// provider and never stored or logged; String hides it.
type Card struct {
	Number   string
	ExpMonth int
	ExpYear  int
	CVC      string
}

// String shows the card's brand and last four digits only, so that a card
// that ends up in a log line gives nothing away.
func (c Card) String() string { return Brand(c.Number) + " ending " + Last4(c.Number) }

// LogValue keeps the card number out of structured logs.
func (c Card) LogValue() slog.Value { return slog.StringValue(c.String()) }

// ChargeRequest asks the provider to charge a card.
type ChargeRequest struct {
	// IdempotencyKey makes retries safe: the provider charges a key once.
	IdempotencyKey string
	Amount         order.Money
	Card           Card
	// Description appears on the buyer's statement.
	Description string
}

// Provider charges cards and voids charges.
type Provider interface {
	// Charge charges the card. A decline is a result (Approved false), not an
	// error; an error means the outcome is unknown (ErrTransient).
	Charge(ctx context.Context, req ChargeRequest) (order.Outcome, error)
	// Void cancels an approved charge that Souk could not record.
	Void(ctx context.Context, ref string) error
}

// Brand names the card network from the number's prefix.
func Brand(number string) string {
	if len(number) < 4 {
		return "card"
	}
	p2, p4 := number[:2], number[:4]
	switch {
	case number[0] == '4':
		return "visa"
	case p2 >= "51" && p2 <= "55", p4 >= "2221" && p4 <= "2720":
		return "mastercard"
	case p4 >= "2200" && p4 <= "2204":
		return "mir"
	case p2 == "34", p2 == "37":
		return "amex"
	case p2 == "62":
		return "unionpay"
	}
	return "card"
}

// Last4 returns the last four digits of a card number.
func Last4(number string) string {
	if len(number) < 4 {
		return number
	}
	return number[len(number)-4:]
}
