package buyer

import (
	"google.golang.org/grpc"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	"github.com/souk-dev/souk/internal/events"
	"github.com/souk-dev/souk/internal/protoconv"
)

// WatchOrderEvents streams the events of the buyer's orders.
func (s *buyerService) WatchOrderEvents(req *buyerv1.WatchOrderEventsRequest, stream grpc.ServerStreamingServer[buyerv1.WatchOrderEventsResponse]) error {
	ctx := stream.Context()
	after, err := events.ParseCursor(req.Cursor)
	if err != nil {
		return err
	}
	if id := req.GetFilter().GetOrderId(); id != "" {
		if _, err := s.owned(ctx, id); err != nil {
			return err
		}
	}
	f := protoconv.EventFilter(events.Filter{BuyerID: buyerID(ctx)}, req.Filter)
	return s.deps.Events.Watch(ctx, f, after, protoconv.WatchSender(stream.Send,
		func(e *orderv1.OrderEvent) *buyerv1.WatchOrderEventsResponse {
			return &buyerv1.WatchOrderEventsResponse{Item: &buyerv1.WatchOrderEventsResponse_Event{Event: e}}
		},
		func(h *orderv1.EventHeartbeat) *buyerv1.WatchOrderEventsResponse {
			return &buyerv1.WatchOrderEventsResponse{Item: &buyerv1.WatchOrderEventsResponse_Heartbeat{Heartbeat: h}}
		}))
}
