package seller

import (
	"context"
	"fmt"
	"time"

	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/postgres"
	"github.com/souk-dev/souk/internal/protoconv"
)

// AnswerCancellation accepts or rejects the buyer's cancellation request.
func (s *sellerService) AnswerCancellation(ctx context.Context, req *sellerv1.AnswerCancellationRequest) (*sellerv1.AnswerCancellationResponse, error) {
	o, err := s.update(ctx, req.OrderId, func(o *order.Order) error {
		return o.AnswerCancellation(s.deps.Now(), req.Accept, req.Note, s.deps.Config.Policy)
	})
	if err != nil {
		return nil, err
	}
	return &sellerv1.AnswerCancellationResponse{Order: protoconv.SellerOrder(o)}, nil
}

// ExtendProtection extends buyer protection on a shipped order.
func (s *sellerService) ExtendProtection(ctx context.Context, req *sellerv1.ExtendProtectionRequest) (*sellerv1.ExtendProtectionResponse, error) {
	o, err := s.update(ctx, req.OrderId, func(o *order.Order) error {
		return o.ExtendProtection(s.deps.Now(), int(req.Days), req.Reason, s.deps.Config.Policy)
	})
	if err != nil {
		return nil, err
	}
	return &sellerv1.ExtendProtectionResponse{Order: protoconv.SellerOrder(o)}, nil
}

// AnswerDispute accepts, counters or rejects the buyer's dispute.
func (s *sellerService) AnswerDispute(ctx context.Context, req *sellerv1.AnswerDisputeRequest) (*sellerv1.AnswerDisputeResponse, error) {
	pol := s.deps.Config.Policy
	if r, ok := req.Answer.(*sellerv1.AnswerDisputeRequest_Reject); ok {
		if err := s.deps.DB.CheckMessages(ctx, req.OrderId, protoconv.Evidence(order.PartySeller, r.Reject.Evidence).MessageIDs); err != nil {
			return nil, err
		}
	}
	o, err := s.update(ctx, req.OrderId, func(o *order.Order) error {
		now := s.deps.Now()
		switch a := req.Answer.(type) {
		case *sellerv1.AnswerDisputeRequest_Accept:
			return o.AcceptDispute(now, pol)
		case *sellerv1.AnswerDisputeRequest_CounterOffer:
			return o.CounterOffer(now, protoconv.FromMoney(a.CounterOffer.Amount), a.CounterOffer.Note, pol)
		case *sellerv1.AnswerDisputeRequest_Reject:
			return o.RejectDispute(now, protoconv.Evidence(order.PartySeller, a.Reject.Evidence))
		}
		return fmt.Errorf("%w: an answer is required", order.ErrInvalid)
	})
	if err != nil {
		return nil, err
	}
	return &sellerv1.AnswerDisputeResponse{Order: protoconv.SellerOrder(o)}, nil
}

// AddDisputeEvidence adds the seller's evidence.
func (s *sellerService) AddDisputeEvidence(ctx context.Context, req *sellerv1.AddDisputeEvidenceRequest) (*sellerv1.AddDisputeEvidenceResponse, error) {
	ctx = app.WithRequestID(ctx, req.RequestId, req)
	ev := protoconv.Evidence(order.PartySeller, req.Evidence)
	if err := s.deps.DB.CheckMessages(ctx, req.OrderId, ev.MessageIDs); err != nil {
		return nil, err
	}
	o, err := s.update(ctx, req.OrderId, func(o *order.Order) error {
		return o.AddEvidence(s.deps.Now(), ev)
	})
	if err != nil {
		return nil, err
	}
	return &sellerv1.AddDisputeEvidenceResponse{Order: protoconv.SellerOrder(o)}, nil
}

// GetSellerStats returns the caller's store's figures.
func (s *sellerService) GetSellerStats(ctx context.Context, _ *sellerv1.GetSellerStatsRequest) (*sellerv1.GetSellerStatsResponse, error) {
	st, err := s.deps.DB.SellerStats(ctx, sellerID(ctx), s.deps.Now())
	if err != nil {
		return nil, err
	}
	resp := &sellerv1.GetSellerStatsResponse{PaidOrders: st.Paid, SellerCancellations: st.SellerCancellations, RefundsInFlight: st.RefundsInFlight,
		OpenCancellationRequestCount: st.OpenCancellationCount, OpenDisputeCount: st.OpenDisputeCount}
	if st.Paid > 0 {
		resp.CancellationRateBp = st.SellerCancellations * 10000 / st.Paid
	}
	for _, status := range order.Statuses {
		if n := st.ByStatus[status]; n > 0 {
			resp.OrdersByStatus = append(resp.OrdersByStatus, &sellerv1.StatusCount{Status: protoconv.StatusOf(status), Count: n})
		}
	}
	cases := func(cs []postgres.OpenCase) []*sellerv1.OpenCase {
		var out []*sellerv1.OpenCase
		for _, c := range cs {
			out = append(out, &sellerv1.OpenCase{OrderId: c.OrderID, Detail: c.Detail, DueAt: protoconv.Time(c.DueAt)})
		}
		return out
	}
	resp.OpenCancellationRequests, resp.OpenDisputes = cases(st.OpenCancellations), cases(st.OpenDisputes)
	for _, m := range st.StoreFunded {
		resp.StoreFundedDiscounts = append(resp.StoreFundedDiscounts, protoconv.Money(m.Amount, m.Currency))
	}
	for _, m := range st.RefundAmounts {
		resp.RefundsInFlightAmounts = append(resp.RefundsInFlightAmounts, protoconv.Money(m.Amount, m.Currency))
	}
	for _, d := range st.Days {
		day := &sellerv1.DayFigures{Date: d.Date.Format(time.DateOnly), Orders: d.Orders, PaidOrders: d.Paid}
		for _, m := range d.Revenue {
			day.Revenue = append(day.Revenue, protoconv.Money(m.Amount, m.Currency))
		}
		resp.Days = append(resp.Days, day)
	}
	return resp, nil
}

// disputeService implements DisputeResolutionService for the platform's admins.
type disputeService struct {
	sellerv1.UnimplementedDisputeResolutionServiceServer
	deps *app.Deps
}

// ListEscalatedDisputes lists the disputes waiting for the platform.
func (d *disputeService) ListEscalatedDisputes(ctx context.Context, req *sellerv1.ListEscalatedDisputesRequest) (*sellerv1.ListEscalatedDisputesResponse, error) {
	os, next, err := d.deps.DB.EscalatedDisputes(ctx, protoconv.PageSize(req.PageSize, 20), req.PageToken)
	if err != nil {
		return nil, err
	}
	resp := &sellerv1.ListEscalatedDisputesResponse{NextPageToken: next}
	for _, o := range os {
		resp.Orders = append(resp.Orders, protoconv.Order(o, true))
	}
	return resp, nil
}

// DecideDispute records the platform's decision on an escalated dispute.
func (d *disputeService) DecideDispute(ctx context.Context, req *sellerv1.DecideDisputeRequest) (*sellerv1.DecideDisputeResponse, error) {
	ctx = app.WithRequestID(ctx, req.RequestId, req)
	admin, _ := auth.FromContext(ctx)
	o, err := d.deps.DB.Update(ctx, req.OrderId, func(o *order.Order) error {
		return o.DecideDispute(d.deps.Now(), admin.Subject, protoconv.FromMoney(req.RefundAmount), req.Note, d.deps.Config.Policy)
	})
	if o, err = d.deps.Stored(ctx, o, err); err != nil {
		return nil, err
	}
	return &sellerv1.DecideDisputeResponse{Order: protoconv.Order(o, true)}, nil
}

// refundService implements RefundResolutionService for the platform's admins.
type refundService struct {
	sellerv1.UnimplementedRefundResolutionServiceServer
	deps *app.Deps
}

// ListFailedRefunds lists the refunds the provider refused for good.
func (r *refundService) ListFailedRefunds(ctx context.Context, req *sellerv1.ListFailedRefundsRequest) (*sellerv1.ListFailedRefundsResponse, error) {
	rs, next, err := r.deps.DB.FailedRefunds(ctx, protoconv.PageSize(req.PageSize, 20), req.PageToken)
	if err != nil {
		return nil, err
	}
	resp := &sellerv1.ListFailedRefundsResponse{NextPageToken: next}
	for _, f := range rs {
		resp.Refunds = append(resp.Refunds, protoconv.Refund(f.OrderID, f.Refund))
	}
	return resp, nil
}

// RetryRefund hands a failed refund back to buyer-svc's refund worker.
func (r *refundService) RetryRefund(ctx context.Context, req *sellerv1.RetryRefundRequest) (*sellerv1.RetryRefundResponse, error) {
	o, err := r.update(ctx, req.OrderId, func(o *order.Order, now time.Time, admin string) error {
		return o.RetryRefund(now, req.RefundId, admin, req.Note)
	})
	if err != nil {
		return nil, err
	}
	return &sellerv1.RetryRefundResponse{Order: protoconv.Order(o, true)}, nil
}

// SettleRefund records a failed refund as paid by other means.
func (r *refundService) SettleRefund(ctx context.Context, req *sellerv1.SettleRefundRequest) (*sellerv1.SettleRefundResponse, error) {
	o, err := r.update(ctx, req.OrderId, func(o *order.Order, now time.Time, admin string) error {
		return o.SettleRefund(now, req.RefundId, admin, req.Note)
	})
	if err != nil {
		return nil, err
	}
	return &sellerv1.SettleRefundResponse{Order: protoconv.Order(o, true)}, nil
}

// update applies an admin's change to an order.
func (r *refundService) update(ctx context.Context, orderID string, fn func(o *order.Order, now time.Time, admin string) error) (*order.Order, error) {
	admin, _ := auth.FromContext(ctx)
	o, err := r.deps.DB.Update(ctx, orderID, func(o *order.Order) error { return fn(o, r.deps.Now(), admin.Subject) })
	if err != nil {
		return nil, err
	}
	r.deps.Changed(ctx, o)
	return o, nil
}
