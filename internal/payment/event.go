package payment

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Event is a provider's report of an asynchronous payment's outcome.
type Event struct {
	OrderID     string `json:"order_id"`
	AttemptID   string `json:"attempt_id"`
	ProviderRef string `json:"provider_ref"`
	// Outcome is "succeeded", "declined" or "failed".
	Outcome     string `json:"outcome"`
	DeclineCode string `json:"decline_code"`
	// Timestamp is when the event was signed, in Unix seconds (a string in
	// JSON, as the gateway writes int64s).
	Timestamp int64  `json:"timestamp,string"`
	Signature string `json:"signature"`
}

// ErrBadSignature means an event's signature or timestamp is not acceptable.
var ErrBadSignature = errors.New("invalid event signature")

// MaxEventAge is how old a signed event may be; older ones are refused so
// that a captured event cannot be replayed much later.
const MaxEventAge = 10 * time.Minute

func (e Event) payload() []byte {
	return []byte(strings.Join([]string{strconv.FormatInt(e.Timestamp, 10), e.OrderID, e.AttemptID, e.ProviderRef, e.Outcome, e.DeclineCode}, "."))
}

// Sign sets the event's timestamp to now and its signature to the hex
// HMAC-SHA256 of its fields under secret.
func (e *Event) Sign(secret []byte, now time.Time) {
	e.Timestamp = now.Unix()
	m := hmac.New(sha256.New, secret)
	m.Write(e.payload())
	e.Signature = hex.EncodeToString(m.Sum(nil))
}

// Verify checks the event's signature under secret and that it is recent.
func (e Event) Verify(secret []byte, now time.Time) error {
	m := hmac.New(sha256.New, secret)
	m.Write(e.payload())
	sig, err := hex.DecodeString(e.Signature)
	if err != nil || !hmac.Equal(sig, m.Sum(nil)) {
		return ErrBadSignature
	}
	if age := now.Sub(time.Unix(e.Timestamp, 0)); age > MaxEventAge || age < -MaxEventAge {
		return ErrBadSignature
	}
	return nil
}
