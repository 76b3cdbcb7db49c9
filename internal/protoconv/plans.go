package protoconv

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	"github.com/souk-dev/souk/internal/order"
)

var planKinds = map[order.PlanKind]orderv1.PaymentPlanKind{
	order.PlanDeposit:     orderv1.PaymentPlanKind_PAYMENT_PLAN_KIND_DEPOSIT,
	order.PlanInstalments: orderv1.PaymentPlanKind_PAYMENT_PLAN_KIND_INSTALMENTS,
}

var partKinds = map[order.PartKind]orderv1.PaymentPartKind{
	order.PartDeposit:    orderv1.PaymentPartKind_PAYMENT_PART_KIND_DEPOSIT,
	order.PartBalance:    orderv1.PaymentPartKind_PAYMENT_PART_KIND_BALANCE,
	order.PartInstalment: orderv1.PaymentPartKind_PAYMENT_PART_KIND_INSTALMENT,
}

var partStatuses = map[order.PartStatus]orderv1.PaymentPartStatus{
	order.PartOpen:    orderv1.PaymentPartStatus_PAYMENT_PART_STATUS_OPEN,
	order.PartPaid:    orderv1.PaymentPartStatus_PAYMENT_PART_STATUS_PAID,
	order.PartPastDue: orderv1.PaymentPartStatus_PAYMENT_PART_STATUS_PAST_DUE,
	order.PartVoid:    orderv1.PaymentPartStatus_PAYMENT_PART_STATUS_VOID,
}

// Plan translates a payment plan; nil stays nil.
func Plan(p *order.Plan) *orderv1.PaymentPlan {
	if p == nil {
		return nil
	}
	out := &orderv1.PaymentPlan{Kind: planKinds[p.Kind], DepositAmountMinor: p.DepositAmount, DepositPercent: int32(p.DepositPercent),
		BalanceFrom: Time(p.BalanceFrom), KeepDeposit: p.KeepDeposit, Instalments: int32(p.Parts)}
	out.BalanceWindow, out.Every, out.Grace = duration(p.BalanceWindow), duration(p.Every), duration(p.Grace)
	return out
}

func duration(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}

// FromPlan translates a proto payment plan (nil: none); the domain
// validates it.
func FromPlan(p *orderv1.PaymentPlan) *order.Plan {
	if p == nil {
		return nil
	}
	out := &order.Plan{DepositAmount: p.DepositAmountMinor, DepositPercent: int64(p.DepositPercent), BalanceFrom: FromTime(p.BalanceFrom),
		BalanceWindow: p.BalanceWindow.AsDuration(), KeepDeposit: p.KeepDeposit, Parts: int(p.Instalments), Every: p.Every.AsDuration(),
		Grace: p.Grace.AsDuration()}
	for k, v := range planKinds {
		if v == p.Kind {
			out.Kind = k
		}
	}
	return out
}

// Schedule translates an order's payment schedule, each part also in the
// buyer's currency; nil when it is paid at once.
func Schedule(o *order.Order) *orderv1.PaymentSchedule {
	s := o.Schedule()
	if s == nil {
		return nil
	}
	out := &orderv1.PaymentSchedule{Plan: Plan(&s.Plan)}
	dues := o.PartsDue()
	for i, p := range s.Parts {
		due := dues[i]
		out.Parts = append(out.Parts, &orderv1.PaymentPart{Seq: int32(p.Seq), Kind: partKinds[p.Kind], Amount: Money(p.Amount, o.Currency()),
			PresentmentAmount: Money(due.Amount, due.Currency), DueAt: Time(p.DueAt), Status: partStatuses[p.Status],
			AttemptId: p.AttemptID, PaidAt: Time(p.PaidAt)})
	}
	return out
}

// amountDue is what the next payment must be, zero once nothing is due.
func amountDue(o *order.Order) *orderv1.Money {
	due := o.Due()
	switch o.Status() {
	case order.StatusPendingPayment, order.StatusPaymentProcessing, order.StatusPartiallyPaid:
		return Money(due.Amount, due.Currency)
	}
	return Money(0, due.Currency)
}
