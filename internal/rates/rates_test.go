package rates_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/rates"
)

func TestTableAndQuoter(t *testing.T) {
	ctx := context.Background()
	tb := rates.Builtin()
	r, err := tb.Rate(ctx, "USD", "EUR")
	if err != nil || r.String() != "0.921500000000" {
		t.Fatalf("USD to EUR: %v %v", r, err)
	}
	// A cross rate: EUR to JPY is 157.30 / 0.9215, to twelve places.
	r, err = tb.Rate(ctx, "EUR", "JPY")
	if err != nil || r.String() != "170.699945740640" {
		t.Fatalf("EUR to JPY: %v %v", r, err)
	}
	if got := r.Convert(1000, "EUR", "JPY"); got != 1707 { // 10.00 EUR
		t.Fatalf("10 EUR in JPY: %d", got)
	}
	if _, err := tb.Rate(ctx, "USD", "XXX"); !errors.Is(err, rates.ErrUnknownCurrency) {
		t.Fatalf("an unknown currency: %v", err)
	}
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	q, err := rates.Quoter{Source: tb, TTL: 24 * time.Hour}.Quote(ctx, "USD", "EUR", now)
	if err != nil || q.Base != "USD" || q.Currency != "EUR" || q.Source != tb.Name() || !q.ExpiresAt.Equal(now.Add(24*time.Hour)) || q.ID == "" {
		t.Fatalf("quote %+v %v", q, err)
	}
	if q.Expired(now.Add(23*time.Hour)) || !q.Expired(now.Add(24*time.Hour)) {
		t.Fatal("a quote holds for its TTL, and no longer")
	}
	if got := q.Convert(1999); got != 1842 { // 19.99 × 0.9215 = 18.421...
		t.Fatalf("19.99 USD in EUR: %d", got)
	}
	// A test changes a rate: later quotes follow, an earlier one does not.
	if err := tb.Set("EUR", "0.95"); err != nil {
		t.Fatal(err)
	}
	q2, _ := rates.Quoter{Source: tb, TTL: time.Hour}.Quote(ctx, "USD", "EUR", now)
	if q2.Convert(1999) != 1899 || q.Convert(1999) != 1842 {
		t.Fatalf("after the change: %d and %d", q2.Convert(1999), q.Convert(1999))
	}
	same, _ := rates.Quoter{Source: tb, TTL: time.Hour}.Quote(ctx, "USD", "USD", now)
	if same.Convert(1234) != 1234 {
		t.Fatal("a quote of one currency converts nothing")
	}
	var _ order.Rate = r
}
