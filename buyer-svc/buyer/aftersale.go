package buyer

import (
	"context"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/protoconv"
)

// RequestCancellation opens a cancellation request on a paid order.
func (s *buyerService) RequestCancellation(ctx context.Context, req *buyerv1.RequestCancellationRequest) (*buyerv1.RequestCancellationResponse, error) {
	o, err := s.update(ctx, buyerID(ctx), req.OrderId, func(o *order.Order) error {
		return o.RequestCancellation(s.deps.Now(), req.Reason, req.Note, s.deps.Config.Policy)
	})
	if err != nil {
		return nil, err
	}
	return &buyerv1.RequestCancellationResponse{Order: protoconv.Order(o, true)}, nil
}

// WithdrawCancellation withdraws the open cancellation request.
func (s *buyerService) WithdrawCancellation(ctx context.Context, req *buyerv1.WithdrawCancellationRequest) (*buyerv1.WithdrawCancellationResponse, error) {
	o, err := s.update(ctx, buyerID(ctx), req.OrderId, func(o *order.Order) error { return o.WithdrawCancellation(s.deps.Now()) })
	if err != nil {
		return nil, err
	}
	return &buyerv1.WithdrawCancellationResponse{Order: protoconv.Order(o, true)}, nil
}

// AskProtectionExtension records the buyer's request for more protection time.
func (s *buyerService) AskProtectionExtension(ctx context.Context, req *buyerv1.AskProtectionExtensionRequest) (*buyerv1.AskProtectionExtensionResponse, error) {
	o, err := s.update(ctx, buyerID(ctx), req.OrderId, func(o *order.Order) error {
		return o.AskProtectionExtension(s.deps.Now(), int(req.Days), req.Note)
	})
	if err != nil {
		return nil, err
	}
	return &buyerv1.AskProtectionExtensionResponse{Order: protoconv.Order(o, true)}, nil
}

// OpenDispute opens a dispute on a shipped order.
func (s *buyerService) OpenDispute(ctx context.Context, req *buyerv1.OpenDisputeRequest) (*buyerv1.OpenDisputeResponse, error) {
	ctx = app.WithRequestID(ctx, req.RequestId, req)
	ev := protoconv.Evidence(order.PartyBuyer, req.Evidence)
	if err := s.deps.DB.CheckMessages(ctx, req.OrderId, ev.MessageIDs); err != nil {
		return nil, err
	}
	o, err := s.update(ctx, buyerID(ctx), req.OrderId, func(o *order.Order) error {
		return o.OpenDispute(s.deps.Now(), req.Reason, protoconv.FromMoney(req.RefundAmount), ev, s.deps.Config.Policy)
	})
	if err != nil {
		return nil, err
	}
	return &buyerv1.OpenDisputeResponse{Order: protoconv.Order(o, true)}, nil
}

// AddDisputeEvidence adds the buyer's evidence.
func (s *buyerService) AddDisputeEvidence(ctx context.Context, req *buyerv1.AddDisputeEvidenceRequest) (*buyerv1.AddDisputeEvidenceResponse, error) {
	ctx = app.WithRequestID(ctx, req.RequestId, req)
	ev := protoconv.Evidence(order.PartyBuyer, req.Evidence)
	if err := s.deps.DB.CheckMessages(ctx, req.OrderId, ev.MessageIDs); err != nil {
		return nil, err
	}
	o, err := s.update(ctx, buyerID(ctx), req.OrderId, func(o *order.Order) error {
		return o.AddEvidence(s.deps.Now(), ev)
	})
	if err != nil {
		return nil, err
	}
	return &buyerv1.AddDisputeEvidenceResponse{Order: protoconv.Order(o, true)}, nil
}

// WithdrawDispute withdraws the buyer's dispute.
func (s *buyerService) WithdrawDispute(ctx context.Context, req *buyerv1.WithdrawDisputeRequest) (*buyerv1.WithdrawDisputeResponse, error) {
	o, err := s.update(ctx, buyerID(ctx), req.OrderId, func(o *order.Order) error { return o.WithdrawDispute(s.deps.Now()) })
	if err != nil {
		return nil, err
	}
	return &buyerv1.WithdrawDisputeResponse{Order: protoconv.Order(o, true)}, nil
}

// AnswerCounterOffer takes or refuses the seller's offer.
func (s *buyerService) AnswerCounterOffer(ctx context.Context, req *buyerv1.AnswerCounterOfferRequest) (*buyerv1.AnswerCounterOfferResponse, error) {
	o, err := s.update(ctx, buyerID(ctx), req.OrderId, func(o *order.Order) error {
		return o.AnswerCounterOffer(s.deps.Now(), req.Accept, s.deps.Config.Policy)
	})
	if err != nil {
		return nil, err
	}
	return &buyerv1.AnswerCounterOfferResponse{Order: protoconv.Order(o, true)}, nil
}
