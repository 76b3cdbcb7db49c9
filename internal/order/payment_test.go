package order_test

import (
	"errors"
	"testing"
	"time"

	"github.com/souk-dev/souk/internal/order"
)

func opened(t *testing.T) *order.Order {
	t.Helper()
	o := newOrder(t)
	if err := o.BeginPayment(t0, o.Total(), attempt("k1")); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestVerificationFlow(t *testing.T) {
	pol := order.DefaultPolicy
	o := opened(t)
	if err := o.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultRequiresVerification, ProviderRef: "p1"}, pol); err != nil {
		t.Fatal(err)
	}
	if due := o.Deadlines()[order.DeadlineVerification]; !due.Equal(t0.Add(pol.VerificationTTL)) {
		t.Fatalf("verification deadline = %v", due)
	}
	for i := 1; i < pol.MaxVerificationFailures; i++ {
		if err := o.WrongVerificationCode(t0, "a-k1", pol); err != nil {
			t.Fatal(err)
		}
	}
	if a, _ := o.Attempt("a-k1"); a.Status != order.AttemptRequiresVerification || a.VerificationFailures != pol.MaxVerificationFailures-1 {
		t.Fatalf("after %d wrong codes: %+v", pol.MaxVerificationFailures-1, a)
	}
	if err := o.WrongVerificationCode(t0, "a-k1", pol); err != nil {
		t.Fatal(err)
	}
	a, _ := o.Attempt("a-k1")
	if _, ok := o.Deadlines()[order.DeadlinePayment]; a.Status != order.AttemptFailed || a.Decline != order.DeclineVerificationFailed || !ok || len(o.Deadlines()) != 2 {
		t.Fatalf("after too many wrong codes: %+v, deadlines %v", a, o.Deadlines())
	}
}

func TestVerificationExpires(t *testing.T) {
	pol := order.DefaultPolicy
	o := opened(t)
	_ = o.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultRequiresVerification}, pol)
	if err := o.FireDeadline(t0.Add(time.Minute), order.DeadlineVerification, order.DefaultPolicy); !errors.Is(err, order.ErrNotDue) {
		t.Fatalf("early: %v", err)
	}
	if err := o.FireDeadline(t0.Add(pol.VerificationTTL), order.DeadlineVerification, order.DefaultPolicy); err != nil {
		t.Fatal(err)
	}
	if a, _ := o.Attempt("a-k1"); a.Status != order.AttemptFailed || a.Decline.Code != "verification_expired" || o.Status() != order.StatusPendingPayment {
		t.Fatalf("attempt %+v, order %s", a, o.Status())
	}
}

func TestAsynchronousPayment(t *testing.T) {
	pol := order.DefaultPolicy
	o := opened(t)
	if err := o.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultProcessing}, pol); err != nil {
		t.Fatal(err)
	}
	if o.Status() != order.StatusPaymentProcessing || !o.Deadlines()[order.DeadlineProcessing].Equal(t0.Add(pol.ProcessingTimeout)) {
		t.Fatalf("processing: %s %v", o.Status(), o.Deadlines())
	}
	if err := o.Cancel(t0, "alice", "x"); !errors.Is(err, order.ErrIllegalTransition) {
		t.Fatalf("buyer cancel while the payment is checked: %v", err)
	}
	// The provider never answers: the attempt fails, the order can be paid again.
	if err := o.FireDeadline(t0.Add(pol.ProcessingTimeout), order.DeadlineProcessing, order.DefaultPolicy); err != nil {
		t.Fatal(err)
	}
	if a, _ := o.Attempt("a-k1"); a.Status != order.AttemptFailed || o.Status() != order.StatusPendingPayment {
		t.Fatalf("after the processing timeout: %s, %s", a.Status, o.Status())
	}
	// …and when it takes the money later anyway, the money is owed back
	// and the order still waits for payment.
	if err := o.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultSucceeded, ProviderRef: "p1", Captured: true}, pol); err != nil {
		t.Fatalf("late success: %v", err)
	}
	if rs := o.Refunds(); len(rs) != 1 || rs[0].Reason != "late_payment" || o.Status() != order.StatusPendingPayment {
		t.Fatalf("late success: %s, refunds %+v", o.Status(), rs)
	}
	if err := o.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultSucceeded}, pol); !errors.Is(err, order.ErrAlreadyFinal) {
		t.Fatalf("the same event again: %v", err)
	}
}

func TestSuccessAfterExpiryIsRefunded(t *testing.T) {
	pol := order.DefaultPolicy
	o := opened(t)
	// An attempt waiting for its one-time code does not hold the window open.
	_ = o.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultRequiresVerification}, pol)
	due := o.Deadlines()[order.DeadlinePayment]
	if err := o.FireDeadline(due, order.DeadlinePayment, order.DefaultPolicy); err != nil {
		t.Fatal(err)
	}
	if a, _ := o.Attempt("a-k1"); o.Status() != order.StatusCancelled || a.Status != order.AttemptCanceled {
		t.Fatalf("expired: %s, attempt %s", o.Status(), a.Status)
	}
	if err := o.ApplyResult(due.Add(time.Hour), "a-k1", order.Result{Kind: order.ResultSucceeded, ProviderRef: "p1", Captured: true}, pol); err != nil {
		t.Fatal(err)
	}
	rs := o.Refunds()
	if o.Status() != order.StatusCancelled || len(rs) != 1 || rs[0].Amount != o.Total() || rs[0].Status != order.RefundPending || rs[0].ProviderRef != "p1" {
		t.Fatalf("order %s, refunds %+v", o.Status(), rs)
	}
	if err := o.ApplyResult(due, "a-k1", order.Result{Kind: order.ResultSucceeded}, pol); !errors.Is(err, order.ErrAlreadyFinal) {
		t.Fatalf("the same event again: %v", err)
	}
}

func TestCancelPaidOwesARefundDueInBankingDays(t *testing.T) {
	pol := order.DefaultPolicy
	o := opened(t)
	_ = o.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultSucceeded, ProviderRef: "p1"}, pol)
	if err := o.CancelPaid(t0, "seller:store-x", "out_of_stock", order.PartySeller, pol); err != nil {
		t.Fatal(err)
	}
	rs := o.Refunds()
	// t0 is Sunday 2026-11-22; 15 banking days later is Friday 2026-12-11.
	if len(rs) != 1 || !rs[0].DueAt.Equal(time.Date(2026, 12, 11, 10, 0, 0, 0, time.UTC)) || !o.ReleasesStock() {
		t.Fatalf("refunds %+v, releases stock %v", rs, o.ReleasesStock())
	}
	if err := o.CancelPaid(t0, "seller:store-x", "again", order.PartySeller, pol); !errors.Is(err, order.ErrIllegalTransition) {
		t.Fatalf("cancelling twice: %v", err)
	}
}

func TestRefundLifecycle(t *testing.T) {
	st := opened(t).Stored()
	st.Refunds = []order.Refund{{ID: "r1", Amount: order.Money{Amount: 100, Currency: "USD"}, Status: order.RefundPending, NextTryAt: t0}}
	o := order.UnmarshalFromDatabase(st)
	if _, err := o.StartRefund(t0, "r1", order.DefaultPolicy); err != nil {
		t.Fatal(err)
	}
	if _, err := o.StartRefund(t0.Add(time.Minute), "r1", order.DefaultPolicy); !errors.Is(err, order.ErrNotDue) {
		t.Fatalf("a leased refund was started again: %v", err)
	}
	if err := o.RefundRetryLater(t0, "r1", t0.Add(time.Second), "provider down"); err != nil {
		t.Fatal(err)
	}
	if _, err := o.StartRefund(t0, "r1", order.DefaultPolicy); !errors.Is(err, order.ErrNotDue) {
		t.Fatalf("started before its back-off ended: %v", err)
	}
	// A worker that died keeps its lease; after it, another takes over.
	if _, err := o.StartRefund(t0.Add(time.Second), "r1", order.DefaultPolicy); err != nil {
		t.Fatal(err)
	}
	r, err := o.StartRefund(t0.Add(time.Second+order.DefaultPolicy.RefundLease), "r1", order.DefaultPolicy)
	if err != nil || r.Tries != 3 {
		t.Fatalf("take-over: %+v %v", r, err)
	}
	if err := o.CompleteRefund(t0, "r1", "re_1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := o.StartRefund(t0.Add(time.Hour), "r1", order.DefaultPolicy); !errors.Is(err, order.ErrNotDue) {
		t.Fatalf("a completed refund was started: %v", err)
	}
}
