package payment

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/souk-dev/souk/internal/order"
)

// EventType says what happened to a payment at the provider.
type EventType string

// The provider's event types. Only a capture makes an order shippable: an
// authorization still has to be captured.
const (
	// EventAuthorized: the payment is authorized (the money is held, not
	// yet taken); Souk captures it.
	EventAuthorized EventType = "payment.authorized"
	// EventCaptured: the money is taken.
	EventCaptured EventType = "payment.captured"
	// EventDeclined: the bank or the provider declined the payment.
	EventDeclined EventType = "payment.declined"
	// EventFailed: the payment failed without a decline (a transfer that
	// bounced, a processing error).
	EventFailed EventType = "payment.failed"
	// EventRefunded: money was paid back. Souk records refunds from the
	// provider's answer to its own refund calls, so this one is only
	// acknowledged.
	EventRefunded EventType = "payment.refunded"
)

// Event is a provider's signed report of what happened to a payment,
// posted to Souk's webhook as JSON with its signature in SignatureHeader.
type Event struct {
	// ID names the event: the provider sends an event again with the same
	// ID until Souk acknowledges it, and Souk handles each ID once.
	ID   string    `json:"id"`
	Type EventType `json:"type"`
	// Created is when the provider made the event, in Unix seconds.
	Created int64     `json:"created"`
	Data    EventData `json:"data"`
}

// EventData is the payment an Event is about.
type EventData struct {
	OrderID string `json:"order_id"`
	// AttemptID is Souk's idempotency key of the payment at the provider.
	AttemptID   string `json:"attempt_id"`
	ProviderRef string `json:"provider_ref"`
	// DeclineCode is set for declined and failed payments.
	DeclineCode string `json:"decline_code,omitempty"`
}

// SignatureHeader carries an event's signature: "t=<unix seconds>,v1=<hex
// HMAC-SHA256 of "<t>.<raw body>">", as Stripe signs its webhooks. Several
// v1 values may be sent while the secret is rotated; one must match.
const SignatureHeader = "Souk-Signature"

// Errors of a posted event.
var (
	// ErrBadSignature means the signature is missing, does not match the
	// body, or is too old or too far in the future.
	ErrBadSignature = errors.New("invalid event signature")
	// ErrBadEvent means a correctly signed body is not an event Souk knows.
	ErrBadEvent = errors.New("invalid event")
)

// MaxEventAge is how far an event's signing time may be from Souk's clock;
// older ones are refused so that a captured event cannot be replayed later.
const MaxEventAge = 10 * time.Minute

func mac(secret []byte, t int64, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(t, 10) + "."))
	m.Write(body)
	return m.Sum(nil)
}

// Sign returns the SignatureHeader value of body signed at now.
func Sign(secret, body []byte, now time.Time) string {
	t := now.Unix()
	return fmt.Sprintf("t=%d,v1=%s", t, hex.EncodeToString(mac(secret, t, body)))
}

// VerifySignature checks a SignatureHeader value against the raw body.
func VerifySignature(secret, body []byte, header string, now time.Time) error {
	var t int64
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			t, _ = strconv.ParseInt(v, 10, 64)
		case "v1":
			if sig, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, sig)
			}
		}
	}
	if t <= 0 || len(sigs) == 0 {
		return fmt.Errorf("%w: %s needs t= and v1=", ErrBadSignature, SignatureHeader)
	}
	if age := now.Sub(time.Unix(t, 0)); age > MaxEventAge || age < -MaxEventAge {
		return fmt.Errorf("%w: signed %s ago, more than %s", ErrBadSignature, age.Round(time.Second), MaxEventAge)
	}
	want := mac(secret, t, body)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no signature matches the body", ErrBadSignature)
}

// ParseEvent verifies a posted event's signature over its raw body, then
// decodes and checks it.
func ParseEvent(secret, body []byte, header string, now time.Time) (Event, error) {
	if err := VerifySignature(secret, body, header, now); err != nil {
		return Event{}, err
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrBadEvent, err)
	}
	switch {
	case ev.ID == "" || len(ev.ID) > 100:
		return Event{}, fmt.Errorf("%w: id must be 1 to 100 characters", ErrBadEvent)
	case ev.Data.OrderID == "" || ev.Data.AttemptID == "" || ev.Data.ProviderRef == "":
		return Event{}, fmt.Errorf("%w: data needs order_id, attempt_id and provider_ref", ErrBadEvent)
	}
	if _, ok := ev.Result(); !ok && ev.Type != EventRefunded {
		return Event{}, fmt.Errorf("%w: unknown type %q", ErrBadEvent, ev.Type)
	}
	return ev, nil
}

// Result is what the event says of the payment, as the provider's answer to
// its attempt; false for an event that answers nothing (a refund).
func (e Event) Result() (order.Result, bool) {
	r := order.Result{ProviderRef: e.Data.ProviderRef}
	switch e.Type {
	case EventAuthorized:
		r.Kind = order.ResultSucceeded
	case EventCaptured:
		r.Kind, r.Captured = order.ResultSucceeded, true
	case EventDeclined:
		r.Kind, r.Decline = order.ResultDeclined, DeclineFor(e.Data.DeclineCode)
	case EventFailed:
		r.Kind, r.Decline = order.ResultFailed, DeclineFor(e.Data.DeclineCode)
	default:
		return order.Result{}, false
	}
	return r, true
}
