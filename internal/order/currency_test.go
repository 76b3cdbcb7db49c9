package order_test

import (
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/souk-dev/souk/internal/order"
)

func rate(t *testing.T, s string) order.Rate {
	t.Helper()
	r, err := order.ParseRate(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestConvertRoundsOnceHalfEven: conversion is exact, then rounded once,
// half to even, to the target's ISO 4217 minor unit (JPY none, KWD three).
func TestConvertRoundsOnceHalfEven(t *testing.T) {
	for _, tc := range []struct {
		amount   int64
		from, to string
		rate     string
		want     int64
	}{
		{1000, "USD", "EUR", "0.9215", 922},    // 921.5 → 922 (even)
		{1000, "USD", "EUR", "0.9225", 922},    // 922.5 → 922 (even)
		{1001, "USD", "EUR", "0.5", 500},       // 500.5 → 500
		{1003, "USD", "EUR", "0.5", 502},       // 501.5 → 502
		{1999, "USD", "JPY", "157.3", 3144},    // 19.99 × 157.3 = 3144.427 yen
		{150, "USD", "JPY", "1", 2},            // 1.5 yen → 2
		{250, "USD", "JPY", "1", 2},            // 2.5 yen → 2
		{1000, "USD", "KWD", "0.30715", 3072},  // 3.0715 KWD → 3.072 (2 even)
		{1000, "USD", "KWD", "0.30725", 3072},  // 3.0725 → 3.072
		{3072, "KWD", "USD", "3.2557", 1000},   // 3.072 × 3.2557 = 10.0015 → 10.00
		{5000, "JPY", "USD", "0.006357", 3178}, // 5000 yen × 0.006357 = 31.785: 3178.5 cents → 3178
		{0, "USD", "EUR", "0.9", 0},
	} {
		if got := rate(t, tc.rate).Convert(tc.amount, tc.from, tc.to); got != tc.want {
			t.Errorf("%d %s at %s in %s: %d, want %d", tc.amount, tc.from, tc.rate, tc.to, got, tc.want)
		}
	}
	for _, bad := range []string{"", "0", "-1.2", "1e3", "1/3", "abc", "+2"} {
		if _, err := order.ParseRate(bad); err == nil {
			t.Errorf("rate %q was accepted", bad)
		}
	}
}

// TestConvertProperties: against an exact reference, for random amounts
// and rates between USD, JPY, EUR and KWD: the result is within half a
// minor unit of the exact value, ties go to even, and a total converted
// line by line is the sum of the lines (never a converted total).
func TestConvertProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	currencies := []string{"USD", "JPY", "EUR", "KWD"}
	for range 20000 {
		from, to := currencies[r.IntN(4)], currencies[r.IntN(4)]
		amount := r.Int64N(10_000_000)
		num := 1 + r.Int64N(2_000_000)
		rs := new(big.Rat).SetFrac64(num, 10_000).FloatString(4)
		rt := rate(t, rs)
		got := rt.Convert(amount, from, to)
		exact := new(big.Rat).SetInt64(amount)
		exact.Mul(exact, new(big.Rat).SetFrac64(num, 10_000))
		exact.Mul(exact, new(big.Rat).SetFrac(pow(order.Exponent(to)), pow(order.Exponent(from))))
		diff := new(big.Rat).Sub(new(big.Rat).SetInt64(got), exact)
		half := big.NewRat(1, 2)
		if new(big.Rat).Abs(diff).Cmp(half) > 0 {
			t.Fatalf("%d %s at %s in %s: %d is more than half a unit from %s", amount, from, rs, to, got, exact.FloatString(6))
		}
		if new(big.Rat).Abs(diff).Cmp(half) == 0 && got%2 != 0 {
			t.Fatalf("%d %s at %s in %s: the tie went to odd %d", amount, from, rs, to, got)
		}
	}
	// Lines converted one by one: the total is their sum, within half a
	// unit per line of the converted total.
	q := order.Quote{Base: "USD", Currency: "KWD", Rate: rate(t, "0.30745")}
	var lines, sum int64
	for range 50 {
		l := 1 + r.Int64N(100_000)
		lines += l
		sum += q.Convert(l)
	}
	if d := sum - q.Convert(lines); d > 25 || d < -25 {
		t.Fatalf("lines convert to %d, their total to %d", sum, q.Convert(lines))
	}
}

func pow(n int) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil) }
