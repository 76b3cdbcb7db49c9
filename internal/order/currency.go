package order

import (
	"fmt"
	"math/big"
	"strings"
	"time"
)

// exponents are the ISO 4217 minor-unit exponents that are not 2.
var exponents = map[string]int{
	"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0, "UGX": 0, "XOF": 0, "XAF": 0, "PYG": 0, "RWF": 0,
	"KWD": 3, "BHD": 3, "OMR": 3, "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3,
}

// Exponent is how many digits a currency's minor unit has (ISO 4217): 2
// for most, 0 for JPY, 3 for KWD.
func Exponent(currency string) int {
	if e, ok := exponents[currency]; ok {
		return e
	}
	return 2
}

// Rate is an exchange rate as an exact decimal: how many units (not minor
// units) of the quote currency one unit of the base buys. Never a float.
type Rate struct {
	r *big.Rat
	s string
}

// ParseRate reads a positive decimal such as "1.0842" or "157.3".
func ParseRate(s string) (Rate, error) {
	t := strings.TrimSpace(s)
	if t == "" || strings.ContainsAny(t, "eE/+-") {
		return Rate{}, fmt.Errorf("%w: rate %q is not a positive decimal", ErrInvalid, s)
	}
	r, ok := new(big.Rat).SetString(t)
	if !ok || r.Sign() <= 0 {
		return Rate{}, fmt.Errorf("%w: rate %q is not a positive decimal", ErrInvalid, s)
	}
	return Rate{r: r, s: t}, nil
}

// String is the rate as it was given.
func (r Rate) String() string { return r.s }

// IsZero reports whether the rate was never set.
func (r Rate) IsZero() bool { return r.r == nil }

// Convert converts an amount in minor units of from into minor units of
// to at the rate, rounded once, half to even, to to's minor unit.
func (r Rate) Convert(amount int64, from, to string) int64 {
	// amount / 10^e(from) × rate × 10^e(to), exactly.
	v := new(big.Rat).SetInt64(amount)
	v.Mul(v, r.r)
	v.Mul(v, new(big.Rat).SetFrac(pow10(Exponent(to)), pow10(Exponent(from))))
	return roundHalfEven(v)
}

func pow10(n int) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil) }

// roundHalfEven rounds a non-negative rational to the nearest integer,
// a half to the even one.
func roundHalfEven(v *big.Rat) int64 {
	q, m := new(big.Int).QuoRem(v.Num(), v.Denom(), new(big.Int))
	twice := new(big.Int).Mul(m, big.NewInt(2))
	switch twice.Cmp(v.Denom()) {
	case 1:
		q.Add(q, big.NewInt(1))
	case 0:
		if q.Bit(0) == 1 {
			q.Add(q, big.NewInt(1))
		}
	}
	return q.Int64()
}

// Quote is an exchange rate fixed for an order at checkout: the order's
// amounts in the buyer's currency come from it until it expires.
type Quote struct {
	ID string
	// Base is the store's price currency, Currency the buyer's.
	Base, Currency string
	Rate           Rate
	Source         string
	QuotedAt       time.Time
	ExpiresAt      time.Time
}

// Expired reports whether the quote can no longer price a payment at now.
func (q Quote) Expired(now time.Time) bool { return !now.Before(q.ExpiresAt) }

// Convert is amount (minor units of the base) in the buyer's currency.
func (q Quote) Convert(amount int64) int64 {
	if q.Base == q.Currency {
		return amount
	}
	return q.Rate.Convert(amount, q.Base, q.Currency)
}
