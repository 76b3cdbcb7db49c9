// Package payment is the edge between Souk and a payment provider: the
// Provider interface a real provider implements, the catalogue of decline
// codes with their advice, the signing of provider events, and Simulated,
// the default provider, in test mode with documented test cards and accounts.
package payment

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/souk-dev/souk/internal/order"
)

// Errors a provider returns.
var (
	// ErrTransient means the provider could not decide (a processing error,
	// an outage, a time-out); the same request may succeed later.
	ErrTransient = errors.New("payment provider unavailable")
	// ErrWrongCode means a verification code was wrong.
	ErrWrongCode = errors.New("wrong verification code")
	// ErrRefused means the provider refused an operation for good (a refund
	// above what was paid, a capture of a voided payment).
	ErrRefused = errors.New("refused by the payment provider")
)

// Card is a payment card as the buyer entered it. It is passed to the
// provider and never stored or logged; String and LogValue hide it.
type Card struct {
	Number   string
	ExpMonth int
	ExpYear  int
	CVC      string
}

// String shows the card's brand and last four digits only, so that a card
// that ends up in a message gives nothing away.
func (c Card) String() string { return Brand(c.Number) + " ending " + Last4(c.Number) }

// LogValue keeps the card number out of structured logs.
func (c Card) LogValue() slog.Value { return slog.StringValue(c.String()) }

// PaymentRequest asks the provider to pay an amount.
type PaymentRequest struct {
	// Key is the idempotency key: the provider pays a key once and answers
	// every repeat with the first answer. Souk uses the attempt's id.
	Key     string
	OrderID string
	Amount  order.Money
	Method  order.Method
	// Card is set for card payments; Account for wallets and bank transfers.
	Card    Card
	Account string
}

// RefundRequest asks the provider to pay back part or all of a payment.
type RefundRequest struct {
	// Key is the idempotency key; Souk uses the refund's id.
	Key        string
	PaymentRef string
	Amount     order.Money
}

// Provider takes payments and refunds them. Declines are results, not
// errors; an error means no decision was made (ErrTransient) or the request
// was refused for good (ErrRefused).
type Provider interface {
	// Pay authorizes (cards) or takes (other methods) a payment, or asks
	// for verification, or starts an asynchronous one whose outcome the
	// provider reports later as a signed event.
	Pay(ctx context.Context, req PaymentRequest) (order.Result, error)
	// Verify completes a payment that requires verification.
	Verify(ctx context.Context, key, code string) (order.Result, error)
	// Lookup returns the answer the provider gave to key, if it got the request.
	Lookup(ctx context.Context, key string) (order.Result, bool, error)
	// Capture takes the money of an authorized card payment.
	Capture(ctx context.Context, ref string) error
	// Void cancels an authorization that Souk could not record.
	Void(ctx context.Context, ref string) error
	// Refund pays money back and returns the refund's reference.
	Refund(ctx context.Context, req RefundRequest) (string, error)
}

// declines is the catalogue of decline codes: what to tell the buyer, what
// they can do, and whether trying again can succeed.
var declines = map[string]order.Decline{
	"do_not_honor":       {Message: "The card was declined.", Advice: "Use another payment method or contact your bank."},
	"incorrect_cvc":      {Message: "The security code is incorrect.", Advice: "Check the CVC and try again.", Retryable: true},
	"insufficient_funds": {Message: "The card has insufficient funds.", Advice: "Use another payment method."},
	"expired_card":       {Message: "The card has expired.", Advice: "Use another card."},
	"bank_restriction":   {Message: "The bank restricted this payment.", Advice: "Contact your bank or use another payment method."},
	"processing_error":   {Message: "The payment could not be processed.", Advice: "Try again in a moment.", Retryable: true},
	"wallet_rejected":    {Message: "The wallet rejected the payment.", Advice: "Check the wallet app or use another payment method."},
	"transfer_failed":    {Message: "The bank transfer failed.", Advice: "Check the account details or use another payment method.", Retryable: true},
	"pay_later_declined": {Message: "The pay-later provider did not approve the purchase.", Advice: "Use another payment method."},
	"pay_later_limit":    {Message: "The purchase is above your pay-later spending limit.", Advice: "Pay part of your orders another way, or use another payment method."},
}

// DeclineFor returns the decline of a code, with its message and advice.
func DeclineFor(code string) order.Decline {
	d, ok := declines[code]
	if !ok {
		d = declines["do_not_honor"]
	}
	d.Code = code
	return d
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

// MaskAccount hides most of a wallet or bank account: "al***@wallet.test",
// "****0001".
func MaskAccount(account string) string {
	if name, domain, ok := strings.Cut(account, "@"); ok {
		return name[:min(2, len(name))] + "***@" + domain
	}
	if len(account) <= 4 {
		return "****"
	}
	return "****" + account[len(account)-4:]
}
