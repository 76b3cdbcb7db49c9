// Package rates quotes exchange rates for orders a buyer pays in another
// currency than the store's: a Source says what a unit of one currency
// buys of another, as an exact decimal, and a Quoter fixes it for a while.
package rates

import (
	"context"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/souk-dev/souk/internal/order"
)

// Source gives the rate from base to quote now, and names itself.
type Source interface {
	Rate(ctx context.Context, base, quote string) (order.Rate, error)
	Name() string
}

// ErrUnknownCurrency is a currency a source has no rate for.
var ErrUnknownCurrency = fmt.Errorf("%w: no exchange rate for the currency", order.ErrInvalid)

// Table is a source of fixed rates, each against one currency (the
// anchor): the rate between two others is the quotient of theirs, exact
// to twelve decimal places. Set changes a rate, for tests.
type Table struct {
	name   string
	anchor string
	mu     sync.RWMutex
	perOne map[string]*big.Rat // units of the currency one anchor unit buys
}

// NewTable returns a table named name whose rates say what one unit of
// anchor buys of each currency ("EUR": "0.92" against USD).
func NewTable(name, anchor string, perOne map[string]string) (*Table, error) {
	t := &Table{name: name, anchor: anchor, perOne: map[string]*big.Rat{anchor: big.NewRat(1, 1)}}
	for c, s := range perOne {
		if err := t.Set(c, s); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Builtin is the development table: rates against USD of the currencies
// Souk accepts, of a day in late 2026, rounded. Not for production.
func Builtin() *Table {
	t, err := NewTable("souk-builtin-2026-11", "USD", map[string]string{
		"EUR": "0.9215", "GBP": "0.7864", "CNY": "7.2410", "JPY": "157.30", "RUB": "98.50", "BRL": "5.6120", "KRW": "1389.40",
		"INR": "84.310", "TRY": "34.720", "PLN": "4.0130", "MXN": "20.180", "CAD": "1.3870", "AUD": "1.5290", "CHF": "0.8810",
		"SEK": "10.7950", "AED": "3.6725", "SAR": "3.7500", "ILS": "3.7120", "UAH": "41.520", "KZT": "497.60", "KWD": "0.30745",
	})
	if err != nil {
		panic(err) // the literal above parses
	}
	return t
}

// Set makes one anchor unit buy rate of currency.
func (t *Table) Set(currency, rate string) error {
	r, ok := new(big.Rat).SetString(rate)
	if !ok || r.Sign() <= 0 {
		return fmt.Errorf("%w: rate %q of %s", order.ErrInvalid, rate, currency)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.perOne[currency] = r
	return nil
}

// Name names the table.
func (t *Table) Name() string { return t.name }

// Rate is what one unit of base buys of quote.
func (t *Table) Rate(_ context.Context, base, quote string) (order.Rate, error) {
	t.mu.RLock()
	b, q := t.perOne[base], t.perOne[quote]
	t.mu.RUnlock()
	if b == nil || q == nil {
		return order.Rate{}, fmt.Errorf("%w: %s to %s", ErrUnknownCurrency, base, quote)
	}
	return order.ParseRate(new(big.Rat).Quo(q, b).FloatString(12))
}

// Quoter fixes rates for a while: a quote from it prices an order until
// it expires.
type Quoter struct {
	Source Source
	// TTL is how long a quote holds (SOUK_QUOTE_TTL, 24 hours by default).
	TTL time.Duration
}

// Quote fixes the rate from base (the store's currency) to currency (the
// buyer's) at now. The same currency needs no rate: its quote is 1.
func (q Quoter) Quote(ctx context.Context, base, currency string, now time.Time) (order.Quote, error) {
	out := order.Quote{ID: uuid.NewString(), Base: base, Currency: currency, Source: q.Source.Name(), QuotedAt: now, ExpiresAt: now.Add(q.TTL)}
	if base == currency {
		out.Rate, _ = order.ParseRate("1")
		return out, nil
	}
	r, err := q.Source.Rate(ctx, base, currency)
	if err != nil {
		return order.Quote{}, err
	}
	out.Rate = r
	return out, nil
}
