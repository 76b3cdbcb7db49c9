package order

import (
	"fmt"
	"math"
)

// MaxAmount is the largest amount of money Souk handles in one figure, in
// minor units. Keeping every price and total below it keeps sums of up to a
// thousand of them far from overflowing an int64.
const MaxAmount int64 = 1_000_000_000_000

// Money is an exact amount of a currency: integer minor units and an ISO 4217 code.
type Money struct {
	Amount   int64
	Currency string
}

// String formats the amount as minor units and currency, for messages.
func (m Money) String() string { return fmt.Sprintf("%d %s (minor units)", m.Amount, m.Currency) }

// mulAmount returns a*b, or an error if it leaves the range Souk handles.
func mulAmount(a, b int64) (int64, error) {
	if a < 0 || b < 0 {
		return 0, fmt.Errorf("%w: negative amount", ErrInvalid)
	}
	if a != 0 && b > math.MaxInt64/a {
		return 0, fmt.Errorf("%w: amount overflows", ErrInvalid)
	}
	if p := a * b; p <= MaxAmount {
		return p, nil
	}
	return 0, fmt.Errorf("%w: amount exceeds %d minor units", ErrInvalid, MaxAmount)
}

// addAmount returns a+b, or an error if it leaves the range Souk handles.
func addAmount(a, b int64) (int64, error) {
	if a < 0 || b < 0 {
		return 0, fmt.Errorf("%w: negative amount", ErrInvalid)
	}
	if s := a + b; s <= MaxAmount {
		return s, nil
	}
	return 0, fmt.Errorf("%w: amount exceeds %d minor units", ErrInvalid, MaxAmount)
}
