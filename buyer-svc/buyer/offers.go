package buyer

import (
	"context"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/protoconv"
)

// MakeOffer records the buyer's offer on an unpaid order.
func (s *buyerService) MakeOffer(ctx context.Context, req *buyerv1.MakeOfferRequest) (*buyerv1.MakeOfferResponse, error) {
	ctx = app.WithRequestID(ctx, req.RequestId, req)
	o, err := s.update(ctx, buyerID(ctx), req.OrderId, func(o *order.Order) error {
		return o.MakeOffer(s.deps.Now(), protoconv.OfferKind(req.Kind), protoconv.FromMoney(req.Amount), req.Note, s.deps.Config.Policy)
	})
	if err != nil {
		return nil, err
	}
	return &buyerv1.MakeOfferResponse{Order: protoconv.Order(o, true)}, nil
}
