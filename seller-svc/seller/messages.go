package seller

import (
	"context"

	"github.com/google/uuid"

	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/protoconv"
)

// SendOrderMessage adds the seller's message to the order's conversation.
func (s *sellerService) SendOrderMessage(ctx context.Context, req *sellerv1.SendOrderMessageRequest) (*sellerv1.SendOrderMessageResponse, error) {
	var m order.Message
	_, err := s.update(ctx, req.OrderId, func(o *order.Order) error {
		var err error
		m, err = o.SendMessage(s.deps.Now(), uuid.NewString(), order.PartySeller, req.Message.Text, req.Message.Links)
		return err
	})
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
