package order_test

import (
	"errors"
	"testing"
	"time"

	"github.com/souk-dev/souk/internal/order"
)

// refundedPerAttempt sums what the order owes or paid back, per attempt.
func refundedPerAttempt(o *order.Order) map[string]int64 {
	n := map[string]int64{}
	for _, r := range o.Refunds() {
		if r.Status != order.RefundFailed {
			n[r.AttemptID] += r.Amount.Amount
		}
	}
	return n
}

// lateTransferThenCard is issue #7's first scenario: a bank transfer times
// out, the buyer pays by card, and the bank confirms the transfer late.
func lateTransferThenCard(t *testing.T) *order.Order {
	t.Helper()
	pol := order.DefaultPolicy
	o := opened(t)
	must(t, o.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultProcessing, ProviderRef: "bank-1"}, pol))
	must(t, o.FireDeadline(t0.Add(pol.ProcessingTimeout), order.DeadlineProcessing, pol))
	must(t, o.BeginPayment(t0.Add(pol.ProcessingTimeout), o.Total(), attempt("k2")))
	must(t, o.ApplyResult(t0.Add(pol.ProcessingTimeout), "a-k2", order.Result{Kind: order.ResultSucceeded, ProviderRef: "card-1", Captured: true}, pol))
	must(t, o.ApplyResult(t0.Add(pol.ProcessingTimeout+time.Hour), "a-k1", order.Result{Kind: order.ResultSucceeded, ProviderRef: "bank-1", Captured: true}, pol))
	if got := refundedPerAttempt(o); got["a-k1"] != 2800 || got["a-k2"] != 0 {
		t.Fatalf("after the late transfer: refunds %v, want the transfer owed back", got)
	}
	if o.PaidAttemptID() != "a-k2" {
		t.Fatalf("paid by %q, want the card attempt a-k2", o.PaidAttemptID())
	}
	return o
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestLateSuccessIsNotRefundedTwiceOnCancellation(t *testing.T) {
	o := lateTransferThenCard(t)
	must(t, o.CancelPaid(t0.Add(80*time.Hour), "system", order.ReasonShipByMissed, order.PartySeller, order.DefaultPolicy))
	if got := refundedPerAttempt(o); got["a-k1"] != 2800 || got["a-k2"] != 2800 || len(o.Refunds()) != 2 {
		t.Fatalf("refunds %v (%d rows), want each attempt paid back once in full", got, len(o.Refunds()))
	}
}

func TestDisputeDrawsOnTheAttemptThatPaid(t *testing.T) {
	pol := order.DefaultPolicy
	o := lateTransferThenCard(t)
	now := t0.Add(80 * time.Hour)
	must(t, o.Ship(now, order.Shipment{Carrier: "DHL", TrackingNumber: "JD01"}, pol))
	must(t, o.OpenDispute(now, "damaged", order.Money{Amount: 2800, Currency: "USD"}, order.Evidence{Text: "photo"}, pol))
	must(t, o.AcceptDispute(now, pol))
	if got := refundedPerAttempt(o); got["a-k1"] != 2800 || got["a-k2"] != 2800 {
		t.Fatalf("refunds %v, want the card paid back by the dispute", got)
	}
}

func TestRefundsNeverExceedWhatAnAttemptCaptured(t *testing.T) {
	pol := order.DefaultPolicy
	o := opened(t)
	must(t, o.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultSucceeded, ProviderRef: "p", Captured: true}, pol))
	must(t, o.Ship(t0, order.Shipment{Carrier: "DHL", TrackingNumber: "JD01"}, pol))
	must(t, o.OpenDispute(t0, "damaged", order.Money{Amount: 800, Currency: "USD"}, order.Evidence{Text: "photo"}, pol))
	must(t, o.AcceptDispute(t0, pol))
	if err := o.OpenDispute(t0, "again", order.Money{Amount: 2800, Currency: "USD"}, order.Evidence{Text: "x"}, pol); err == nil {
		t.Fatal("a second dispute on a completed order was accepted")
	}
	if got := refundedPerAttempt(o)["a-k1"]; got != 800 {
		t.Fatalf("refunded %d, want 800", got)
	}
}

func TestNothingShipsBeforeItsMoneyIsCaptured(t *testing.T) {
	pol := order.DefaultPolicy
	o := opened(t)
	must(t, o.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultSucceeded, ProviderRef: "auth-1"}, pol))
	if err := o.Ship(t0, order.Shipment{Carrier: "DHL", TrackingNumber: "JD01"}, pol); !errors.Is(err, order.ErrIllegalTransition) {
		t.Fatalf("ship before capture: %v, want ErrIllegalTransition", err)
	}
	must(t, o.MarkCaptured(t0, "a-k1"))
	must(t, o.Ship(t0, order.Shipment{Carrier: "DHL", TrackingNumber: "JD01"}, pol))
}

func TestCaptureRefusedReopensTheOrder(t *testing.T) {
	pol := order.DefaultPolicy
	o := opened(t)
	must(t, o.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultSucceeded, ProviderRef: "auth-1"}, pol))
	must(t, o.CaptureRefused(t0.Add(time.Hour), "a-k1", order.DeclineCaptureRefused))
	a, _ := o.Attempt("a-k1")
	if o.Status() != order.StatusPendingPayment || a.Status != order.AttemptFailed || o.LastDecline().Code != "capture_refused" {
		t.Fatalf("after a refused capture: order %s, attempt %s, decline %q", o.Status(), a.Status, o.LastDecline().Code)
	}
	if due := o.Deadlines()[order.DeadlinePayment]; !due.Equal(t0.Add(20 * 24 * time.Hour)) {
		t.Fatalf("payment window %v, want the original one back", due)
	}
	if _, ok := o.Deadlines()[order.DeadlineShipBy]; ok || o.PaidAttemptID() != "" {
		t.Fatalf("ship-by still open (%v) or still paid by %q", o.Deadlines(), o.PaidAttemptID())
	}
	// Paying again works.
	must(t, o.BeginPayment(t0.Add(2*time.Hour), o.Total(), attempt("k2")))
}

func TestCaptureRefusedAfterTheWindowCancels(t *testing.T) {
	pol := order.DefaultPolicy
	o := opened(t)
	must(t, o.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultSucceeded, ProviderRef: "auth-1"}, pol))
	must(t, o.CaptureRefused(t0.Add(21*24*time.Hour), "a-k1", order.DeclineCaptureRefused))
	if o.Status() != order.StatusCancelled || o.CancelReason() != order.ReasonPaymentTimeout || len(o.Refunds()) != 0 {
		t.Fatalf("order %s (%s), %d refunds", o.Status(), o.CancelReason(), len(o.Refunds()))
	}
}

func TestPaymentWindowWaitsForAPaymentBeingChecked(t *testing.T) {
	pol := order.DefaultPolicy
	window := 20 * 24 * time.Hour
	for _, tc := range []struct {
		name   string
		answer order.Result
		want   order.Status
	}{
		{"confirmed late", order.Result{Kind: order.ResultSucceeded, ProviderRef: "bank-1", Captured: true}, order.StatusAwaitingShipment},
		{"failed late", order.Result{Kind: order.ResultFailed, ProviderRef: "bank-1", Decline: order.Decline{Code: "transfer_failed"}}, order.StatusCancelled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOrder(t)
			day19 := t0.Add(19 * 24 * time.Hour)
			must(t, o.BeginPayment(day19, o.Total(), attempt("k1")))
			must(t, o.ApplyResult(day19, "a-k1", order.Result{Kind: order.ResultProcessing, ProviderRef: "bank-1"}, pol))
			must(t, o.FireDeadline(t0.Add(window), order.DeadlinePayment, pol))
			if o.Status() != order.StatusPaymentProcessing {
				t.Fatalf("the window cancelled a payment being checked: %s", o.Status())
			}
			must(t, o.ApplyResult(t0.Add(window+time.Hour), "a-k1", tc.answer, pol))
			if o.Status() != tc.want {
				t.Fatalf("status %s, want %s", o.Status(), tc.want)
			}
			if tc.want == order.StatusCancelled && o.CancelReason() != order.ReasonPaymentTimeout {
				t.Fatalf("cancel reason %q", o.CancelReason())
			}
		})
	}
}

func TestRecordLateAnswerOfACancelledAttempt(t *testing.T) {
	pol := order.DefaultPolicy
	for _, tc := range []struct {
		name       string
		res        order.Result
		found      bool
		refunded   int64
		declineNow string
	}{
		{"taken", order.Result{Kind: order.ResultSucceeded, ProviderRef: "w-1", Captured: true}, true, 2800, ""},
		{"declined", order.Result{Kind: order.ResultDeclined, ProviderRef: "w-1", Decline: order.Decline{Code: "wallet_rejected"}}, true, 0, "wallet_rejected"},
		{"never received", order.Result{}, false, 0, "not_received"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opened(t)
			must(t, o.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultProcessing}, pol)) // the answer was lost
			must(t, o.RequestCancellation(t0, "no_longer_needed", "", pol))
			must(t, o.AnswerCancellation(t0, true, "", pol))
			must(t, o.RecordLateAnswer(t0.Add(time.Minute), "a-k1", tc.res, tc.found, pol))
			a, _ := o.Attempt("a-k1")
			if got := refundedPerAttempt(o)["a-k1"]; got != tc.refunded || a.Decline.Code != tc.declineNow {
				t.Fatalf("refunded %d, decline %q; want %d, %q", got, a.Decline.Code, tc.refunded, tc.declineNow)
			}
			if err := o.RecordLateAnswer(t0.Add(time.Minute), "a-k1", tc.res, tc.found, pol); !errors.Is(err, order.ErrAlreadyFinal) {
				t.Fatalf("asked again: %v", err)
			}
		})
	}
}

func TestCancelledOrderIsNotCaptured(t *testing.T) {
	pol := order.DefaultPolicy
	o := opened(t)
	must(t, o.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultSucceeded, ProviderRef: "auth-1"}, pol))
	if a, _ := o.Attempt("a-k1"); a.NextCaptureAt.IsZero() {
		t.Fatal("an authorization that paid the order is not due for capture")
	}
	must(t, o.CancelPaid(t0, "system", order.ReasonShipByMissed, order.PartySeller, pol))
	if a, _ := o.Attempt("a-k1"); !a.NextCaptureAt.IsZero() || refundedPerAttempt(o)["a-k1"] != 2800 {
		t.Fatalf("after cancelling: capture due %v, refunded %d; want no capture and the authorization owed back", a.NextCaptureAt, refundedPerAttempt(o)["a-k1"])
	}
}

// Round two, point 1: a capture is claimed by one worker at a time, until
// its lease runs out or its outcome is recorded.
func TestClaimCapture(t *testing.T) {
	pol := order.DefaultPolicy
	o := opened(t)
	must(t, o.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultSucceeded, ProviderRef: "card-1"}, pol))
	if _, err := o.ClaimCapture(t0, "a-k1", time.Minute); !errors.Is(err, order.ErrNotDue) {
		t.Fatalf("a claim within the grace of the call that authorized: %v, want ErrNotDue", err)
	}
	at := t0.Add(order.CaptureGrace)
	a, err := o.ClaimCapture(at, "a-k1", time.Minute)
	if err != nil || a.ProviderRef != "card-1" {
		t.Fatalf("claim: %+v %v", a, err)
	}
	if _, err := o.ClaimCapture(at.Add(59*time.Second), "a-k1", time.Minute); !errors.Is(err, order.ErrNotDue) {
		t.Fatalf("a second claim within the lease: %v, want ErrNotDue", err)
	}
	if _, err := o.ClaimCapture(at.Add(time.Minute), "a-k1", time.Minute); err != nil {
		t.Fatalf("a claim after the lease ran out: %v", err)
	}
	must(t, o.MarkCaptured(at.Add(time.Minute), "a-k1"))
	if _, err := o.ClaimCapture(at.Add(time.Hour), "a-k1", time.Minute); !errors.Is(err, order.ErrIllegalTransition) {
		t.Fatalf("a claim of a captured payment: %v, want ErrIllegalTransition", err)
	}
}

// Round two, point 2: an answer is awaited while its attempt is open and the
// total is what it was made for, whatever else moved the order's version.
func TestAwaitsAnswer(t *testing.T) {
	pol := order.DefaultPolicy
	o := opened(t)
	if !o.AwaitsAnswer("a-k1") || o.AwaitsAnswer("a-nope") {
		t.Fatal("an open attempt is not awaited, or an unknown one is")
	}
	must(t, o.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultProcessing, ProviderRef: "bank-1"}, pol))
	if !o.AwaitsAnswer("a-k1") {
		t.Fatal("a payment being checked is not awaited")
	}
	must(t, o.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultDeclined, Decline: order.Decline{Code: "do_not_honor"}}, pol))
	if o.AwaitsAnswer("a-k1") {
		t.Fatal("a declined attempt is still awaited")
	}
}

// Round two, point 3: an attempt the provider had no record of is failed,
// and looked at once more: money that landed meanwhile is owed back, and a
// second "not found" is final.
func TestUnreceivedAttemptIsRechecked(t *testing.T) {
	pol := order.DefaultPolicy
	for _, tc := range []struct {
		name       string
		res        order.Result
		found      bool
		wantRefund bool
	}{
		{"landed", order.Result{Kind: order.ResultSucceeded, ProviderRef: "wallet-1", Captured: true}, true, true},
		{"never came", order.Result{}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opened(t)
			must(t, o.FailUnreceived(t0, "a-k1", t0.Add(time.Minute)))
			if a, _ := o.Attempt("a-k1"); a.Status != order.AttemptFailed || a.Decline.Code != order.DeclineNotReceived.Code || !a.RecheckAt.Equal(t0.Add(time.Minute)) {
				t.Fatalf("attempt %+v", a)
			}
			if o.Status() != order.StatusPendingPayment {
				t.Fatalf("order %s, want waiting for payment", o.Status())
			}
			must(t, o.RecordLateAnswer(t0.Add(time.Minute), "a-k1", tc.res, tc.found, pol))
			a, _ := o.Attempt("a-k1")
			if !a.RecheckAt.IsZero() {
				t.Fatal("the second look is not final")
			}
			if got := refundedPerAttempt(o)["a-k1"] > 0; got != tc.wantRefund {
				t.Fatalf("refund owed %v, want %v", got, tc.wantRefund)
			}
			if err := o.RecordLateAnswer(t0.Add(time.Hour), "a-k1", tc.res, tc.found, pol); !errors.Is(err, order.ErrAlreadyFinal) {
				t.Fatalf("a third look: %v, want ErrAlreadyFinal", err)
			}
		})
	}
}

// shippedOrder is a paid, captured order shipped at t0 under pol.
func shippedOrder(t *testing.T, pol order.Policy) *order.Order {
	t.Helper()
	o := opened(t)
	must(t, o.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultSucceeded, ProviderRef: "card-1", Captured: true}, pol))
	must(t, o.Ship(t0, order.Shipment{Carrier: "DHL", TrackingNumber: "JD0001"}, pol))
	return o
}

// Round two, point 7: a withdrawn dispute gives back the protection that
// was left when it opened, counted from the withdrawal; an extension counts
// in protection days as configured, not in 24-hour days.
func TestDisputeWithdrawalAndExtensionKeepProtection(t *testing.T) {
	pol := order.DefaultPolicy
	pol.ProtectionDay = time.Hour // a short day, as SOUK_PROTECTION_DAY sets for demos
	o := shippedOrder(t, pol)
	end := o.Deadlines()[order.DeadlineProtection]
	left := end.Sub(t0.Add(10 * time.Hour))
	must(t, o.OpenDispute(t0.Add(10*time.Hour), "damaged", order.Money{Amount: 100, Currency: "USD"}, order.Evidence{Text: "broken"}, pol))
	withdrawn := t0.Add(40 * time.Hour) // the dispute took 30 hours
	must(t, o.WithdrawDispute(withdrawn))
	if got := o.Deadlines()[order.DeadlineProtection]; !got.Equal(withdrawn.Add(left)) {
		t.Fatalf("protection ends at %s after the withdrawal, want %s (the %s left when the dispute opened)", got, withdrawn.Add(left), left)
	}
	before := o.Deadlines()[order.DeadlineProtection]
	must(t, o.ExtendProtection(withdrawn, 7, "customs", pol))
	if got := o.Deadlines()[order.DeadlineProtection]; !got.Equal(before.Add(7 * pol.ProtectionDay)) {
		t.Fatalf("an extension of 7 days moved protection by %s, want 7 protection days (%s)", got.Sub(before), 7*pol.ProtectionDay)
	}
}
