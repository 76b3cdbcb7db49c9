package order

import (
	"fmt"
	"slices"
	"time"
)

// PlanKind is how an order is paid in parts.
type PlanKind string

// The kinds of payment plan.
const (
	// PlanDeposit: a deposit now and the balance later (a pre-sale).
	PlanDeposit PlanKind = "DEPOSIT"
	// PlanInstalments: N equal parts, due every so many days.
	PlanInstalments PlanKind = "INSTALMENTS"
)

// Plan is how a product is sold in parts, as the store states it at
// checkout.
// It is kept as JSON with the product and with each order sold under it
// (durations in nanoseconds).
type Plan struct {
	Kind PlanKind `json:"kind"`
	// DepositAmount (minor units, at most the price) or DepositPercent
	// (1–99) of the full price, before coupons.
	DepositAmount  int64 `json:"deposit_amount,omitempty"`
	DepositPercent int64 `json:"deposit_percent,omitempty"`
	// BalanceFrom is the date the store sets (a pre-sale's end; zero: the
	// checkout); the balance is due BalanceWindow after it.
	BalanceFrom   time.Time     `json:"balance_from,omitzero"`
	BalanceWindow time.Duration `json:"balance_window_ns,omitempty"`
	// KeepDeposit: a balance never paid keeps the deposit (the store's
	// stated policy); by default the deposit is refunded.
	KeepDeposit bool `json:"keep_deposit,omitempty"`
	// Parts (2–12) of an instalment plan, due Every apart, the first at
	// checkout.
	Parts int           `json:"parts,omitempty"`
	Every time.Duration `json:"every_ns,omitempty"`
	// Grace is how long a part may stay unpaid after it is due before the
	// order is cancelled (balance_unpaid).
	Grace time.Duration `json:"grace_ns,omitempty"`
}

// Schedule is an order's payment plan: the plan as stated at checkout and
// the parts it was split into. It is kept with the order as JSON.
type Schedule struct {
	Plan  Plan   `json:"plan"`
	Parts []Part `json:"parts"`
}

func cloneSchedule(s *Schedule) *Schedule {
	if s == nil {
		return nil
	}
	c := *s
	c.Parts = slices.Clone(s.Parts)
	return &c
}

// PartKind is what a part of a schedule is.
type PartKind string

// The kinds of part.
const (
	PartDeposit    PartKind = "DEPOSIT"
	PartBalance    PartKind = "BALANCE"
	PartInstalment PartKind = "INSTALMENT"
)

// PartStatus is where a part stands.
type PartStatus string

// The statuses of a part.
const (
	PartOpen    PartStatus = "OPEN"
	PartPaid    PartStatus = "PAID"
	PartPastDue PartStatus = "PAST_DUE"
	PartVoid    PartStatus = "VOID"
)

// Part is one payment of an order's schedule.
type Part struct {
	Seq    int        `json:"seq"`
	Kind   PartKind   `json:"kind"`
	Amount int64      `json:"amount"`
	DueAt  time.Time  `json:"due_at"`
	Status PartStatus `json:"status"`
	// AttemptID is the payment attempt that paid the part, PaidAt when.
	AttemptID string    `json:"attempt_id,omitempty"`
	PaidAt    time.Time `json:"paid_at,omitzero"`
}

// Validate refuses a plan that makes no sense, naming the field.
func (p Plan) Validate() error {
	switch p.Kind {
	case PlanDeposit:
		switch {
		case (p.DepositAmount > 0) == (p.DepositPercent > 0):
			return invalid("plan.deposit", "a deposit is an amount or a percentage, one of them")
		case p.DepositAmount < 0 || p.DepositPercent < 0 || p.DepositPercent > 99:
			return invalid("plan.deposit", "a deposit percentage is 1 to 99")
		case p.BalanceWindow <= 0:
			return invalid("plan.balance_window", "the balance needs a window")
		}
	case PlanInstalments:
		switch {
		case p.Parts < 2 || p.Parts > 12:
			return invalid("plan.parts", "2 to 12 instalments")
		case p.Every <= 0:
			return invalid("plan.every", "instalments need the time between them")
		}
	default:
		return invalid("plan.kind", "%q is not a payment plan", p.Kind)
	}
	if p.Grace < 0 {
		return invalid("plan.grace", "the grace period cannot be negative")
	}
	return nil
}

// Schedule splits an order's total into the plan's parts at checkout
// (now), summing to total exactly. gross is the full price the deposit is
// figured on: coupons apply to the full price and are taken from the
// balance (total is what is left after them). Instalments are equal, the
// last carrying the rounding.
func (p Plan) Schedule(gross, total int64, now time.Time) ([]Part, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if total <= 0 || gross < total {
		return nil, fmt.Errorf("%w: a schedule needs a positive total within the full price", ErrInvalid)
	}
	if p.Kind == PlanDeposit {
		deposit := p.DepositAmount
		if p.DepositPercent > 0 {
			deposit = mulDiv(gross, p.DepositPercent, 100, true)
		}
		deposit = max(1, min(deposit, total))
		from := p.BalanceFrom
		if from.Before(now) {
			from = now
		}
		parts := []Part{{Seq: 1, Kind: PartDeposit, Amount: deposit, DueAt: now, Status: PartOpen}}
		if balance := total - deposit; balance > 0 {
			parts = append(parts, Part{Seq: 2, Kind: PartBalance, Amount: balance, DueAt: from.Add(p.BalanceWindow), Status: PartOpen})
		}
		return parts, nil
	}
	n := int64(p.Parts)
	if total < n {
		return nil, fmt.Errorf("%w: %d minor units cannot be paid in %d parts", ErrInvalid, total, n)
	}
	each := total / n
	parts := make([]Part, n)
	for i := range parts {
		parts[i] = Part{Seq: i + 1, Kind: PartInstalment, Amount: each, DueAt: now.Add(time.Duration(i) * p.Every), Status: PartOpen}
	}
	parts[n-1].Amount = total - each*(n-1)
	return parts, nil
}

// PaidPart is a part's payment as refunds draw on it: what it captured
// and what is refunded of it already.
type PaidPart struct {
	Seq      int
	Captured int64
	Refunded int64
}

// Draw says how much of amount each paid part pays back, the newest part
// first, none more than it has left; what no part has left is not drawn
// (the second result).
func Draw(parts []PaidPart, amount int64) (map[int]int64, int64) {
	out := map[int]int64{}
	for i := len(parts) - 1; i >= 0 && amount > 0; i-- {
		p := parts[i]
		take := min(amount, p.Captured-p.Refunded)
		if take <= 0 {
			continue
		}
		out[p.Seq] = take
		amount -= take
	}
	return out, amount
}
