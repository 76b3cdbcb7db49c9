package order_test

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/souk-dev/souk/internal/order"
)

func TestSchedules(t *testing.T) {
	day := 24 * time.Hour
	presaleEnds := t0.Add(10 * day)
	for _, tc := range []struct {
		name         string
		plan         order.Plan
		gross, total int64
		want         []order.Part
	}{
		{"a 30% deposit, the balance 7 days after the pre-sale", order.Plan{Kind: order.PlanDeposit, DepositPercent: 30, BalanceFrom: presaleEnds, BalanceWindow: 7 * day},
			10000, 10000, []order.Part{{Seq: 1, Kind: order.PartDeposit, Amount: 3000, DueAt: t0}, {Seq: 2, Kind: order.PartBalance, Amount: 7000, DueAt: presaleEnds.Add(7 * day)}}},
		{"a coupon is taken from the balance", order.Plan{Kind: order.PlanDeposit, DepositPercent: 30, BalanceWindow: 7 * day},
			10000, 8500, []order.Part{{Seq: 1, Kind: order.PartDeposit, Amount: 3000, DueAt: t0}, {Seq: 2, Kind: order.PartBalance, Amount: 5500, DueAt: t0.Add(7 * day)}}},
		{"a fixed deposit larger than what is left is all of it", order.Plan{Kind: order.PlanDeposit, DepositAmount: 5000, BalanceWindow: day},
			6000, 4000, []order.Part{{Seq: 1, Kind: order.PartDeposit, Amount: 4000, DueAt: t0}}},
		{"3 instalments, the last carrying the rounding", order.Plan{Kind: order.PlanInstalments, Parts: 3, Every: 30 * day},
			10000, 10000, []order.Part{{Seq: 1, Kind: order.PartInstalment, Amount: 3333, DueAt: t0}, {Seq: 2, Kind: order.PartInstalment, Amount: 3333, DueAt: t0.Add(30 * day)},
				{Seq: 3, Kind: order.PartInstalment, Amount: 3334, DueAt: t0.Add(60 * day)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.plan.Schedule(tc.gross, tc.total, t0)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%+v", got)
			}
			for i, p := range got {
				w := tc.want[i]
				w.Status = order.PartOpen
				if p != w {
					t.Fatalf("part %d: %+v, want %+v", i, p, w)
				}
			}
		})
	}
	for _, bad := range []order.Plan{
		{Kind: order.PlanDeposit, DepositPercent: 100, BalanceWindow: day},
		{Kind: order.PlanDeposit, DepositPercent: 10, DepositAmount: 5, BalanceWindow: day},
		{Kind: order.PlanDeposit, DepositPercent: 10},
		{Kind: order.PlanInstalments, Parts: 1, Every: day},
		{Kind: order.PlanInstalments, Parts: 13, Every: day},
		{Kind: order.PlanInstalments, Parts: 3},
		{Kind: "LAYAWAY"},
	} {
		if _, err := bad.Schedule(1000, 1000, t0); !errors.Is(err, order.ErrInvalid) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

// TestSchedulesAndRefundsAddUp: random plans split random totals into
// parts that sum exactly, none empty; refunds of random amounts in any
// order, drawn newest part first, never take a part below zero and never
// return more than was captured, and together return exactly what was
// charged.
func TestSchedulesAndRefundsAddUp(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 2))
	for n := range 5000 {
		var p order.Plan
		if r.IntN(2) == 0 {
			p = order.Plan{Kind: order.PlanDeposit, BalanceWindow: time.Hour}
			if r.IntN(2) == 0 {
				p.DepositPercent = 1 + r.Int64N(99)
			} else {
				p.DepositAmount = 1 + r.Int64N(20000)
			}
		} else {
			p = order.Plan{Kind: order.PlanInstalments, Parts: 2 + r.IntN(11), Every: time.Hour}
		}
		gross := 12 + r.Int64N(1_000_000)
		total := max(12, gross-r.Int64N(gross/2+1))
		parts, err := p.Schedule(gross, total, t0)
		if err != nil {
			t.Fatalf("case %d: %+v %d/%d: %v", n, p, gross, total, err)
		}
		var sum int64
		var paid []order.PaidPart
		for _, pt := range parts {
			if pt.Amount <= 0 {
				t.Fatalf("case %d: an empty part %+v", n, pt)
			}
			sum += pt.Amount
			paid = append(paid, order.PaidPart{Seq: pt.Seq, Captured: pt.Amount})
		}
		if sum != total {
			t.Fatalf("case %d: parts sum to %d, total %d", n, sum, total)
		}
		var back int64
		for back < total {
			amount := 1 + r.Int64N(total)
			draw, rest := order.Draw(paid, amount)
			var drawn int64
			oldest := len(paid) // the oldest part drawn on
			for i := range paid {
				if d := draw[paid[i].Seq]; d > 0 {
					paid[i].Refunded += d
					drawn += d
					if paid[i].Refunded > paid[i].Captured {
						t.Fatalf("case %d: part %d paid back %d of %d", n, paid[i].Seq, paid[i].Refunded, paid[i].Captured)
					}
					oldest = min(oldest, i)
				}
			}
			// Newest first: every part newer than the oldest drawn on is empty.
			for i := oldest + 1; i < len(paid); i++ {
				if paid[i].Refunded != paid[i].Captured {
					t.Fatalf("case %d: part %d drawn on while the newer part %d has %d left", n, paid[oldest].Seq, paid[i].Seq,
						paid[i].Captured-paid[i].Refunded)
				}
			}
			if drawn+rest != amount {
				t.Fatalf("case %d: drew %d and left %d of %d", n, drawn, rest, amount)
			}
			back += drawn
			if rest > 0 && back != total {
				t.Fatalf("case %d: %d left undrawn with only %d of %d back", n, rest, back, total)
			}
		}
		if back != total {
			t.Fatalf("case %d: %d back of %d charged", n, back, total)
		}
	}
}
