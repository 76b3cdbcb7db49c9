package order_test

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/souk-dev/souk/internal/order"
)

const day = 24 * time.Hour

// depositOrder is a pre-sale of 2 × 10.00 + 3.00 shipping (23.00) with a
// 30% deposit, the balance due 7 days after checkout, 2 days' grace.
func depositOrder(t *testing.T, keep bool, quote *order.Quote) *order.Order {
	t.Helper()
	o, err := order.New(order.NewOrderParams{ID: "o1", CheckoutID: "c1", BuyerID: "alice", SellerID: "store-x", Currency: "USD",
		Items: []order.Item{line("p1", 1000, 2)}, ShippingFee: 300, HandlingDays: 2, PaymentWindow: 20 * day, Now: t0, Quote: quote,
		Plan: &order.Plan{Kind: order.PlanDeposit, DepositPercent: 30, BalanceWindow: 7 * day, Grace: 2 * day, KeepDeposit: keep}})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func pay(t *testing.T, o *order.Order, at time.Time, key string, kind order.ResultKind) {
	t.Helper()
	must(t, o.BeginPayment(at, o.Due(), attempt(key)))
	r := order.Result{Kind: kind, ProviderRef: "p-" + key, Captured: true}
	if kind == order.ResultDeclined {
		r.Decline = order.Decline{Code: "insufficient_funds", Retryable: true}
	}
	must(t, o.ApplyResult(at, "a-"+key, r, order.DefaultPolicy))
}

func partStatuses(o *order.Order) []order.PartStatus {
	var out []order.PartStatus
	for _, p := range o.Schedule().Parts {
		out = append(out, p.Status)
	}
	return out
}

// TestDepositOrder: the deposit is paid, the order cannot ship, the balance
// is declined (the order still waits, partially paid), then paid, and the
// order ships; the parts are in the history and ship-by starts at the
// last payment.
func TestDepositOrder(t *testing.T) {
	pol := order.DefaultPolicy
	o := depositOrder(t, false, nil)
	parts := o.Schedule().Parts
	if len(parts) != 2 || parts[0].Amount != 690 || parts[1].Amount != 1610 || !parts[1].DueAt.Equal(t0.Add(7*day)) {
		t.Fatalf("schedule %+v, want 690 now and 1610 in 7 days", parts)
	}
	if due := o.Due(); due.Amount != 690 {
		t.Fatalf("due %v, want the deposit", due)
	}
	pay(t, o, t0.Add(time.Hour), "dep", order.ResultSucceeded)
	if o.Status() != order.StatusPartiallyPaid || o.Due().Amount != 1610 || o.Paid().Amount != 690 {
		t.Fatalf("after the deposit: %s, due %v, paid %v", o.Status(), o.Due(), o.Paid())
	}
	if d := o.Deadlines(); !d[order.DeadlinePart].Equal(t0.Add(7*day)) || !d[order.DeadlineRemindPart].Equal(t0.Add(6*day)) ||
		!d[order.DeadlineShipBy].IsZero() || !d[order.DeadlinePayment].IsZero() {
		t.Fatalf("deadlines %v, want the balance's and its reminder only", d)
	}
	if err := o.Ship(t0.Add(2*time.Hour), order.Shipment{Carrier: "DHL", TrackingNumber: "1"}, pol); !errors.Is(err, order.ErrIllegalTransition) ||
		!strings.Contains(err.Error(), "690 USD (minor units) is paid so far; ship once every part is paid") {
		t.Fatalf("shipping a partially paid order: %v", err)
	}
	if err := o.Cancel(t0.Add(2*time.Hour), "alice", "changed my mind"); !errors.Is(err, order.ErrIllegalTransition) {
		t.Fatalf("a buyer cancelled a partly paid order outright: %v", err)
	}
	must(t, o.FireDeadline(t0.Add(6*day), order.DeadlineRemindPart, pol))
	if k := kinds(o); k[len(k)-1] != "reminder.part_due" {
		t.Fatalf("history %v, want the balance reminder", k)
	}
	pay(t, o, t0.Add(6*day), "bal1", order.ResultDeclined)
	if o.Status() != order.StatusPartiallyPaid || o.Deadlines()[order.DeadlinePart].IsZero() || o.LastDecline().Code != "insufficient_funds" {
		t.Fatalf("after the decline: %s, deadlines %v", o.Status(), o.Deadlines())
	}
	pay(t, o, t0.Add(6*day+time.Hour), "bal2", order.ResultSucceeded)
	if o.Status() != order.StatusAwaitingShipment || o.Paid().Amount != 2300 || o.PaidAttemptID() != "a-bal2" {
		t.Fatalf("after the balance: %s, paid %v by %s", o.Status(), o.Paid(), o.PaidAttemptID())
	}
	if got := partStatuses(o); got[0] != order.PartPaid || got[1] != order.PartPaid {
		t.Fatalf("parts %v", got)
	}
	if d := o.Deadlines(); !d[order.DeadlineShipBy].Equal(t0.Add(6*day+time.Hour+2*pol.HandlingDay)) || !d[order.DeadlinePart].IsZero() {
		t.Fatalf("deadlines %v, want ship-by from the balance's payment", d)
	}
	must(t, o.Ship(t0.Add(7*day), order.Shipment{Carrier: "DHL", TrackingNumber: "1"}, pol))
}

// TestUnpaidBalance: a balance never paid is past due when it falls due,
// and when its grace ends the order is cancelled (balance_unpaid), the
// deposit kept or refunded as the product stated.
func TestUnpaidBalance(t *testing.T) {
	pol := order.DefaultPolicy
	for _, keep := range []bool{false, true} {
		o := depositOrder(t, keep, nil)
		pay(t, o, t0, "dep", order.ResultSucceeded)
		if err := o.FireDeadline(t0.Add(7*day-time.Second), order.DeadlinePart, pol); !errors.Is(err, order.ErrNotDue) {
			t.Fatalf("fired early: %v", err)
		}
		must(t, o.FireDeadline(t0.Add(7*day), order.DeadlinePart, pol))
		if got := partStatuses(o); o.Status() != order.StatusPartiallyPaid || got[1] != order.PartPastDue ||
			!o.Deadlines()[order.DeadlinePart].Equal(t0.Add(9*day)) {
			t.Fatalf("when due: %s %v %v", o.Status(), got, o.Deadlines())
		}
		must(t, o.FireDeadline(t0.Add(9*day), order.DeadlinePart, pol))
		if o.Status() != order.StatusCancelled || o.CancelReason() != order.ReasonBalanceUnpaid || o.CancelledBy() != order.PartyBuyer {
			t.Fatalf("after the grace: %s %s", o.Status(), o.CancelReason())
		}
		refunds := refundedPerAttempt(o)
		if keep && (len(o.Refunds()) != 0 || !contains(kinds(o), "deposit_kept")) || !keep && refunds["a-dep"] != 690 {
			t.Fatalf("keep=%v: refunds %v, history %v", keep, refunds, kinds(o))
		}
		if !o.ReleasesStock() || len(o.Deadlines()) != 0 {
			t.Fatalf("stock not released or deadlines left: %v", o.Deadlines())
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestPartPaidDuringGrace: a payment being checked when the grace ends
// holds the cancellation; its failure then cancels at once (the part's
// deadline is due), its success pays the part.
func TestPartPaidDuringGrace(t *testing.T) {
	pol := order.DefaultPolicy
	o := depositOrder(t, false, nil)
	pay(t, o, t0, "dep", order.ResultSucceeded)
	must(t, o.FireDeadline(t0.Add(7*day), order.DeadlinePart, pol))
	pay(t, o, t0.Add(9*day-time.Minute), "bal", order.ResultProcessing)
	if o.Status() != order.StatusPaymentProcessing {
		t.Fatalf("status %s", o.Status())
	}
	must(t, o.FireDeadline(t0.Add(9*day), order.DeadlinePart, pol))
	if o.Status() != order.StatusPaymentProcessing {
		t.Fatalf("cancelled while the provider checks the balance: %s", o.Status())
	}
	must(t, o.ApplyResult(t0.Add(9*day+time.Hour), "a-bal", order.Result{Kind: order.ResultDeclined, Decline: order.Decline{Code: "x"}}, pol))
	if o.Status() != order.StatusPartiallyPaid || !o.Deadlines()[order.DeadlinePart].Equal(t0.Add(9*day)) {
		t.Fatalf("after the late decline: %s %v, want the part's deadline due", o.Status(), o.Deadlines())
	}
	must(t, o.FireDeadline(t0.Add(9*day+time.Hour), order.DeadlinePart, pol))
	if o.Status() != order.StatusCancelled || refundedPerAttempt(o)["a-dep"] != 690 {
		t.Fatalf("status %s, refunds %v", o.Status(), refundedPerAttempt(o))
	}
}

// TestSellerCancelsAPartlyPaidOrder: a cancellation that is the seller's
// fault refunds every part, a deposit a plan keeps included.
func TestSellerCancelsAPartlyPaidOrder(t *testing.T) {
	pol := order.DefaultPolicy
	o, err := order.New(order.NewOrderParams{ID: "o1", CheckoutID: "c1", BuyerID: "alice", SellerID: "store-x", Currency: "USD",
		Items: []order.Item{line("p1", 1000, 1)}, PaymentWindow: 20 * day, Now: t0,
		Plan: &order.Plan{Kind: order.PlanInstalments, Parts: 3, Every: 10 * day, Grace: day}})
	must(t, err)
	if got := []int64{o.Schedule().Parts[0].Amount, o.Schedule().Parts[1].Amount, o.Schedule().Parts[2].Amount}; got[0] != 333 || got[2] != 334 {
		t.Fatalf("instalments %v, want 333 333 334", got)
	}
	pay(t, o, t0, "i1", order.ResultSucceeded)
	pay(t, o, t0.Add(time.Hour), "i2", order.ResultSucceeded) // paid early
	if o.Status() != order.StatusPartiallyPaid || !o.Deadlines()[order.DeadlinePart].Equal(t0.Add(20*day)) {
		t.Fatalf("after two parts: %s %v", o.Status(), o.Deadlines())
	}
	must(t, o.CancelPaid(t0.Add(2*time.Hour), "seller:store-x", "out_of_stock", order.PartySeller, pol))
	if r := refundedPerAttempt(o); r["a-i1"] != 333 || r["a-i2"] != 333 || len(o.Refunds()) != 2 {
		t.Fatalf("refunds %v", r)
	}
	if got := partStatuses(o); got[2] != order.PartVoid {
		t.Fatalf("parts %v, want the third void", got)
	}
}

// TestDisputeDrawsOnTheParts: a dispute refund comes from the newest part
// first, then the older ones, never more than each captured.
func TestDisputeDrawsOnTheParts(t *testing.T) {
	pol := order.DefaultPolicy
	o := depositOrder(t, false, nil)
	pay(t, o, t0, "dep", order.ResultSucceeded)
	pay(t, o, t0.Add(day), "bal", order.ResultSucceeded)
	must(t, o.Ship(t0.Add(day), order.Shipment{Carrier: "DHL", TrackingNumber: "1"}, pol))
	must(t, o.OpenDispute(t0.Add(2*day), "damaged", usdM(2000), order.Evidence{Text: "broken"}, pol))
	must(t, o.AcceptDispute(t0.Add(2*day), pol))
	if r := refundedPerAttempt(o); r["a-bal"] != 1610 || r["a-dep"] != 390 {
		t.Fatalf("refunds %v, want 1610 from the balance and 390 from the deposit", r)
	}
	if o.Status() != order.StatusCompleted {
		t.Fatalf("status %s", o.Status())
	}
}

// TestForeignDepositOrder: a EUR buyer's parts are converted one by one,
// the last taking what the presented total leaves, so they sum to it.
func TestForeignDepositOrder(t *testing.T) {
	o := depositOrder(t, false, eurQuote(t, "0.9215", t0))
	dues := o.PartsDue()
	dep, bal := dues[0], dues[1]
	if dep.Currency != "EUR" || dep.Amount+bal.Amount != o.Presented().Total || o.Due() != dep {
		t.Fatalf("parts %v + %v, presented total %d", dep, bal, o.Presented().Total)
	}
	pay(t, o, t0, "dep", order.ResultSucceeded)
	if o.Paid() != dep || o.Due() != bal {
		t.Fatalf("paid %v due %v", o.Paid(), o.Due())
	}
}

// TestPartRefundsNeverExceedWhatWasCharged: random plans, paid in full,
// refunded by random item refunds and a dispute in any order: the
// refunds never pass what each part captured, and a refund of all that is
// left returns exactly what was charged; in a foreign currency, the store
// is debited exactly what it was credited.
func TestPartRefundsNeverExceedWhatWasCharged(t *testing.T) {
	pol := order.DefaultPolicy
	r := rand.New(rand.NewPCG(7, 9))
	for n := range 500 {
		plan := &order.Plan{Kind: order.PlanInstalments, Parts: 2 + r.IntN(5), Every: day}
		if r.IntN(2) == 0 {
			plan = &order.Plan{Kind: order.PlanDeposit, DepositPercent: 1 + r.Int64N(99), BalanceWindow: day}
		}
		var quote *order.Quote
		if r.IntN(2) == 0 {
			quote = eurQuote(t, "0.9215", t0)
		}
		o, err := order.New(order.NewOrderParams{ID: "o1", CheckoutID: "c1", BuyerID: "alice", SellerID: "s", Currency: "USD",
			Items:       []order.Item{line("p1", 100+r.Int64N(5000), 1+r.Int64N(4)), line("p2", 100+r.Int64N(5000), 1+r.Int64N(4))},
			ShippingFee: r.Int64N(1000), PaymentWindow: 20 * day, Now: t0, Quote: quote, Plan: plan})
		must(t, err)
		for i := 0; o.Status() != order.StatusAwaitingShipment; i++ {
			pay(t, o, t0, string(rune('a'+i)), order.ResultSucceeded)
		}
		charged := o.Paid().Amount
		if quote == nil && charged != o.Total().Amount || quote != nil && charged != o.Presented().Total {
			t.Fatalf("case %d: charged %d for %v / %d", n, charged, o.Total(), o.Presented().Total)
		}
		if r.IntN(2) == 0 {
			_, err := o.RefundItems(t0, map[string]int64{"p1": 1}, "missing", pol)
			must(t, err)
		}
		must(t, o.Ship(t0, order.Shipment{Carrier: "DHL", TrackingNumber: "1"}, pol))
		left := charged
		for _, a := range refundedPerAttempt(o) {
			left -= a
		}
		must(t, o.OpenDispute(t0, "damaged", order.Money{Amount: left, Currency: o.Due().Currency}, order.Evidence{Text: "x"}, pol))
		must(t, o.AcceptDispute(t0, pol))
		var back int64
		per := refundedPerAttempt(o)
		for _, a := range o.Attempts() {
			if per[a.ID] > a.Amount.Amount {
				t.Fatalf("case %d: attempt %s paid back %d of %d", n, a.ID, per[a.ID], a.Amount.Amount)
			}
			back += per[a.ID]
		}
		if back != charged {
			t.Fatalf("case %d: %d back of %d charged", n, back, charged)
		}
		var debits int64
		for _, r := range o.Refunds() {
			debits += r.FX.Debit
		}
		if quote != nil && debits != o.Total().Amount {
			t.Fatalf("case %d: the store gave back %d of the %d it was credited", n, debits, o.Total().Amount)
		}
		if err := o.OpenDispute(t0, "again", usdM(1), order.Evidence{Text: "x"}, pol); err == nil {
			t.Fatalf("case %d: a refund past what was charged was accepted", n)
		}
	}
}

// TestAdjustPriceReschedules: a seller's new price splits the plan again
// before anything is paid.
func TestAdjustPriceReschedules(t *testing.T) {
	o := depositOrder(t, false, nil)
	must(t, o.AdjustPrice(t0, order.PriceChange{UnitPrices: map[string]order.Money{"p1": usdM(500)}, Reason: "discount"}))
	if p := o.Schedule().Parts; p[0].Amount != 390 || p[1].Amount != 910 || !p[1].DueAt.Equal(t0.Add(7*day)) {
		t.Fatalf("schedule %+v, want 390 + 910 due as before", p)
	}
}

// TestRefundFX: a refund in the buyer's currency debits the store its
// share of what the payment credited it; paid at a rate that moved, the
// platform's difference is recorded. Refunds of a whole payment debit the
// store exactly what it was credited.
func TestRefundFX(t *testing.T) {
	pol := order.DefaultPolicy
	o, err := order.New(order.NewOrderParams{ID: "o1", CheckoutID: "c1", BuyerID: "alice", SellerID: "s", Currency: "USD",
		Items: []order.Item{line("p1", 1999, 2)}, ShippingFee: 499, PaymentWindow: 20 * day, Now: t0, Quote: eurQuote(t, "0.9215", t0)})
	must(t, err)
	pay(t, o, t0, "k1", order.ResultSucceeded) // 4144 EUR for 4497 USD
	if o.Paid().Amount != 4144 {
		t.Fatalf("paid %v", o.Paid())
	}
	if _, err := o.RefundItems(t0, map[string]int64{"p1": 1}, "broken", pol); err != nil {
		t.Fatal(err)
	}
	r := o.Refunds()[0]
	// 1842 EUR of 4144 paid back: 1842 × 4497 / 4144 = 1998.94 → 1999 USD.
	if r.Amount.Amount != 1842 || r.FX.Currency != "USD" || r.FX.Debit != 1999 {
		t.Fatalf("refund %v, fx %+v", r.Amount, r.FX)
	}
	today := &order.Quote{Base: "EUR", Currency: "USD", Rate: rate(t, "1.111111111111"), QuotedAt: t0, ExpiresAt: t0.Add(day)}
	_, err = o.StartRefund(t0, r.ID, pol)
	must(t, err)
	must(t, o.CompleteRefund(t0, r.ID, "re_1", today))
	// 1842 EUR at 1.1111 USD = 2046.67 → 2047: the platform pays 48 more than the store gives back.
	if fx := o.Refunds()[0].FX; fx.Cost != 2047 || fx.Difference != -48 || fx.Rate != "1.111111111111" {
		t.Fatalf("fx %+v", fx)
	}
	must(t, o.Ship(t0, order.Shipment{Carrier: "DHL", TrackingNumber: "1"}, pol))
	must(t, o.OpenDispute(t0, "damaged", order.Money{Amount: 4144 - 1842, Currency: "EUR"}, order.Evidence{Text: "x"}, pol))
	must(t, o.AcceptDispute(t0, pol))
	var debits int64
	for _, r := range o.Refunds() {
		debits += r.FX.Debit
	}
	if debits != 4497 {
		t.Fatalf("the store was debited %d in all for a payment that credited it 4497", debits)
	}
}

// TestKeptDepositIsCaptured: a deposit the order keeps when its balance
// goes unpaid is still the marketplace's to capture if its capture had not
// gone through by then (the provider out of reach, a worker backing off).
// Cancelling set aside every uncaptured authorization, the kept deposit's
// too: it was neither captured nor refunded, and lapsed at the provider
// while the order said it was kept (TestRandomFaults: "the provider holds
// 0, the order implies 200", the deposit's authorization left hanging).
// Captured, it is the order's; refused for good, the order records that it
// keeps nothing.
func TestKeptDepositIsCaptured(t *testing.T) {
	pol := order.DefaultPolicy
	for _, refused := range []bool{false, true} {
		o := depositOrder(t, true, nil)
		must(t, o.BeginPayment(t0, o.Due(), attempt("dep")))
		must(t, o.ApplyResult(t0, "a-dep", order.Result{Kind: order.ResultSucceeded, ProviderRef: "p-dep"}, pol))
		must(t, o.FireDeadline(t0.Add(7*day), order.DeadlinePart, pol))
		end := t0.Add(9 * day)
		must(t, o.FireDeadline(end, order.DeadlinePart, pol))
		if o.Status() != order.StatusCancelled || !contains(kinds(o), "deposit_kept") || len(o.Refunds()) != 0 {
			t.Fatalf("after the grace: %s, history %v, refunds %v", o.Status(), kinds(o), o.Refunds())
		}
		// The capture worker lists the attempts whose capture is due.
		if a, _ := o.Attempt("a-dep"); a.NextCaptureAt.IsZero() || a.NextCaptureAt.After(end) {
			t.Fatalf("the kept deposit's capture is not due (next capture at %v)", a.NextCaptureAt)
		}
		a, err := o.ClaimCapture(end, "a-dep", time.Minute)
		if err != nil {
			t.Fatalf("the kept deposit's capture cannot be claimed: %v", err)
		}
		if refused {
			must(t, o.CaptureRefused(end, a.ID, order.DeclineCaptureRefused))
			if a, _ := o.Attempt("a-dep"); a.Status != order.AttemptFailed || o.Status() != order.StatusCancelled {
				t.Fatalf("refused: attempt %s, order %s", a.Status, o.Status())
			}
			if k := kinds(o); k[len(k)-1] != "payment_failed" {
				t.Fatalf("refused: history %v, want the deposit's capture failed last", k)
			}
			if _, err := o.ClaimCapture(end.Add(time.Hour), "a-dep", time.Minute); err == nil {
				t.Fatal("a refused deposit is claimed again")
			}
			continue
		}
		must(t, o.MarkCaptured(end, a.ID))
		if a, _ := o.Attempt("a-dep"); !a.Captured {
			t.Fatal("the kept deposit is not captured")
		}
	}
}
