package order_test

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/souk-dev/souk/internal/order"
)

// fixture returns an order in status with the payment history that status
// implies: no attempt while unpaid, one being checked while processing,
// one that succeeded afterwards.
func fixture(t *testing.T, status order.Status) order.Stored {
	st := newOrder(t).Stored()
	st.Status, st.History = status, nil
	a := attempt("k1")
	a.Amount = order.Money{Amount: 2800, Currency: "USD"}
	switch status {
	case order.StatusPendingPayment:
		return st
	case order.StatusPartiallyPaid:
		partlyPaid(&st)
		return st
	case order.StatusPaymentProcessing:
		a.Status = order.AttemptProcessing
	default:
		a.Status, a.ProviderRef, a.Captured = order.AttemptSucceeded, "p1", true
		st.PaidAttemptID = a.ID
	}
	st.Attempts = []order.Attempt{a}
	return st
}

// TestEveryStatusAndAction tries every action in every status. Each action
// has a setup that gives the order what the action needs besides its status
// (an open request, a dispute in the right stage), so that where the action
// is refused, the status alone refuses it: FAILED_PRECONDITION's
// ErrIllegalTransition, and the order unchanged.
func TestEveryStatusAndAction(t *testing.T) {
	pol := order.DefaultPolicy
	usd := func(n int64) order.Money { return order.Money{Amount: n, Currency: "USD"} }
	openRequest := func(st *order.Stored) {
		st.Cancellation = &order.CancellationRequest{Reason: "no_longer_needed", AttributeTo: order.PartyBuyer, Status: order.RequestOpen, RequestedAt: t0}
	}
	openOffer := func(st *order.Stored) {
		st.Offer = &order.Offer{Kind: order.OfferShippingFee, AmountMinor: 0, Currency: "USD", Status: order.OfferOpen, MadeAt: t0}
	}
	dispute := func(status order.DisputeStatus) func(*order.Stored) {
		return func(st *order.Stored) {
			st.Dispute = &order.Dispute{Reason: "damaged", RequestedAmount: usd(500), CounterAmount: usd(300), Status: status, OpenedAt: t0}
		}
	}
	paying, shipping, shippedOnly, disputedOnly := []order.Status{order.StatusPendingPayment},
		[]order.Status{order.StatusPaymentProcessing, order.StatusPartiallyPaid, order.StatusAwaitingShipment}, []order.Status{order.StatusShipped},
		[]order.Status{order.StatusDisputed}
	ev := order.Evidence{Text: "photo", Links: []string{"https://img.example/1.jpg"}}
	actions := []struct {
		name    string
		allowed []order.Status
		setup   func(*order.Stored)
		do      func(*order.Order) error
	}{
		{"cancel", paying, nil, func(o *order.Order) error { return o.Cancel(t0, "alice", "x") }},
		{"adjust price", paying, nil, func(o *order.Order) error {
			fee := usd(0)
			return o.AdjustPrice(t0, order.PriceChange{ShippingFee: &fee, Reason: "free shipping"})
		}},
		{"pay", []order.Status{order.StatusPendingPayment, order.StatusPartiallyPaid}, nil, func(o *order.Order) error {
			return o.BeginPayment(t0, o.Due(), attempt("k2"))
		}},
		{"make offer", paying, nil, func(o *order.Order) error { return o.MakeOffer(t0, order.OfferTotal, usd(100), "", pol) }},
		{"accept offer", paying, openOffer, func(o *order.Order) error { return o.AnswerOffer(t0, true, "") }},
		{"decline offer", paying, openOffer, func(o *order.Order) error { return o.AnswerOffer(t0, false, "no") }},
		{"ship", []order.Status{order.StatusAwaitingShipment}, nil, func(o *order.Order) error {
			return o.Ship(t0, order.Shipment{Carrier: "DHL", TrackingNumber: "JD01"}, pol)
		}},
		{"confirm receipt", shippedOnly, nil, func(o *order.Order) error { return o.ConfirmReceipt(t0) }},
		{"request cancellation", shipping, nil, func(o *order.Order) error { return o.RequestCancellation(t0, "no_longer_needed", "", pol) }},
		{"withdraw cancellation", shipping, openRequest, func(o *order.Order) error { return o.WithdrawCancellation(t0) }},
		{"accept cancellation", shipping, openRequest, func(o *order.Order) error { return o.AnswerCancellation(t0, true, "", pol) }},
		{"reject cancellation", shipping, openRequest, func(o *order.Order) error { return o.AnswerCancellation(t0, false, "packed", pol) }},
		{"cancel paid", shipping, nil, func(o *order.Order) error {
			return o.CancelPaid(t0, "system", order.ReasonShipByMissed, order.PartySeller, pol)
		}},
		{"extend protection", shippedOnly, nil, func(o *order.Order) error { return o.ExtendProtection(t0, 7, "customs", order.DefaultPolicy) }},
		{"ask for protection", shippedOnly, nil, func(o *order.Order) error { return o.AskProtectionExtension(t0, 7, "customs") }},
		{"open dispute", shippedOnly, nil, func(o *order.Order) error { return o.OpenDispute(t0, "damaged", usd(500), ev, pol) }},
		{"add evidence", disputedOnly, dispute(order.DisputeOpen), func(o *order.Order) error {
			return o.AddEvidence(t0, order.Evidence{Party: order.PartySeller, Text: "packing photo"})
		}},
		{"withdraw dispute", disputedOnly, dispute(order.DisputeOpen), func(o *order.Order) error { return o.WithdrawDispute(t0) }},
		{"accept dispute", disputedOnly, dispute(order.DisputeOpen), func(o *order.Order) error { return o.AcceptDispute(t0, pol) }},
		{"counter-offer", disputedOnly, dispute(order.DisputeOpen), func(o *order.Order) error { return o.CounterOffer(t0, usd(200), "", pol) }},
		{"reject dispute", disputedOnly, dispute(order.DisputeOpen), func(o *order.Order) error { return o.RejectDispute(t0, ev) }},
		{"take counter-offer", disputedOnly, dispute(order.DisputeCounterOffered), func(o *order.Order) error { return o.AnswerCounterOffer(t0, true, pol) }},
		{"refuse counter-offer", disputedOnly, dispute(order.DisputeCounterOffered), func(o *order.Order) error { return o.AnswerCounterOffer(t0, false, pol) }},
		{"decide dispute", disputedOnly, dispute(order.DisputeEscalated), func(o *order.Order) error { return o.DecideDispute(t0, "mod", usd(100), "half", pol) }},
	}
	for _, status := range order.Statuses {
		for _, a := range actions {
			t.Run(string(status)+"/"+a.name, func(t *testing.T) {
				st := fixture(t, status)
				if a.setup != nil {
					a.setup(&st)
				}
				o := order.UnmarshalFromDatabase(st)
				before := o.Stored()
				err := a.do(o)
				if slices.Contains(a.allowed, status) {
					if err != nil {
						t.Fatalf("allowed action failed: %v", err)
					}
					if reflect.DeepEqual(before, o.Stored()) {
						t.Fatal("the allowed action changed nothing")
					}
					for _, e := range o.NewEvents() {
						if !order.IsEventKindFilter(e.Kind) {
							t.Fatalf("the action recorded %q, which order.EventKinds does not list", e.Kind)
						}
					}
					return
				}
				if !errors.Is(err, order.ErrIllegalTransition) {
					t.Fatalf("err = %v, want ErrIllegalTransition", err)
				}
				if after := o.Stored(); !reflect.DeepEqual(before, after) {
					t.Fatalf("refused action changed the order:\n%+v\n%+v", before, after)
				}
			})
		}
	}
}

// partlyPaid gives a stored order (2800 USD) a deposit plan whose deposit
// of 800 an attempt paid, the balance due in a week.
func partlyPaid(st *order.Stored) {
	a := attempt("k0")
	a.Status, a.Amount, a.ProviderRef, a.Captured = order.AttemptSucceeded, order.Money{Amount: 800, Currency: "USD"}, "p0", true
	st.Attempts, st.PaidAttemptID = []order.Attempt{a}, ""
	st.Schedule = &order.Schedule{Plan: order.Plan{Kind: order.PlanDeposit, DepositAmount: 800, BalanceWindow: 7 * day},
		Parts: []order.Part{{Seq: 1, Kind: order.PartDeposit, Amount: 800, DueAt: t0, Status: order.PartPaid, AttemptID: a.ID, PaidAt: t0},
			{Seq: 2, Kind: order.PartBalance, Amount: 2000, DueAt: t0.Add(7 * day), Status: order.PartOpen}}}
	st.Deadlines = map[order.DeadlineKind]time.Time{order.DeadlinePart: t0.Add(7 * day)}
}
