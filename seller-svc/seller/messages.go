package seller

import (
	"context"

	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/protoconv"
)

// SendOrderMessage adds the seller's message to the order's conversation.
func (s *sellerService) SendOrderMessage(ctx context.Context, req *sellerv1.SendOrderMessageRequest) (*sellerv1.SendOrderMessageResponse, error) {
	ctx = app.WithRequestID(ctx, req.RequestId, req)
	// A retry's message has the first one's id, and is read back.
	m := order.Message{ID: app.RequestScopedID(ctx, req.RequestId)}
	_, err := s.update(ctx, req.OrderId, func(o *order.Order) error {
		var err error
		m, err = o.SendMessage(s.deps.Now(), m.ID, order.PartySeller, req.Message.Text, req.Message.Links)
		return err
	})
	if err == nil && m.Text == "" {
		m, err = s.deps.DB.Message(ctx, req.OrderId, m.ID)
	}
	if err != nil {
		return nil, err
	}
	return &sellerv1.SendOrderMessageResponse{Message: protoconv.Message(req.OrderId, m)}, nil
}

// ListOrderMessages pages the conversation of one of the store's orders.
func (s *sellerService) ListOrderMessages(ctx context.Context, req *sellerv1.ListOrderMessagesRequest) (*sellerv1.ListOrderMessagesResponse, error) {
	if _, err := s.owned(ctx, req.OrderId); err != nil {
		return nil, err
	}
	ms, next, err := s.deps.DB.ListMessages(ctx, req.OrderId, protoconv.PageSize(req.PageSize, 50), req.PageToken)
	if err != nil {
		return nil, err
	}
	resp := &sellerv1.ListOrderMessagesResponse{NextPageToken: next}
	for _, m := range ms {
		resp.Messages = append(resp.Messages, protoconv.Message(req.OrderId, m))
	}
	return resp, nil
}

// ListOrderEvents pages the history of one of the store's orders.
func (s *sellerService) ListOrderEvents(ctx context.Context, req *sellerv1.ListOrderEventsRequest) (*sellerv1.ListOrderEventsResponse, error) {
	// The order's header is enough to check it is the caller's and to
	// name its currency: the whole order (200 entries of history) is not
	// read for a page of it.
	h, err := s.deps.DB.Header(ctx, req.OrderId)
	if err != nil {
		return nil, err
	}
	if err := order.CheckParties(req.OrderId, h.BuyerID, h.SellerID, order.PartySeller, sellerID(ctx)); err != nil {
		return nil, err
	}
	evs, next, err := s.deps.DB.ListHistory(ctx, req.OrderId, protoconv.PageSize(req.PageSize, 50), req.PageToken)
	if err != nil {
		return nil, err
	}
	return &sellerv1.ListOrderEventsResponse{Events: protoconv.History(evs, h.Currency), NextPageToken: next}, nil
}
