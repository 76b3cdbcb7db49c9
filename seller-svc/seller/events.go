package seller

import (
	"context"
	"fmt"

	"google.golang.org/grpc"

	eventsv1 "github.com/souk-dev/souk/gen/go/souk/events/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/events"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/protoconv"
)

// WatchOrderEvents streams the events of the store's orders.
func (s *sellerService) WatchOrderEvents(req *sellerv1.WatchOrderEventsRequest, stream grpc.ServerStreamingServer[sellerv1.WatchOrderEventsResponse]) error {
	ctx := stream.Context()
	after, err := events.ParseCursor(req.Cursor)
	if err != nil {
		return err
	}
	if id := req.GetFilter().GetOrderId(); id != "" {
		if _, seller, err := s.deps.DB.Parties(ctx, id); err != nil {
			return err
		} else if seller != sellerID(ctx) {
			return order.NotYours(id)
		}
	}
	f := protoconv.EventFilter(events.Filter{SellerID: sellerID(ctx)}, req.Filter)
	return s.deps.Events.Watch(ctx, f, after, protoconv.WatchSender(stream.Send,
		func(e *orderv1.OrderEvent) *sellerv1.WatchOrderEventsResponse {
			return &sellerv1.WatchOrderEventsResponse{Item: &sellerv1.WatchOrderEventsResponse_Event{Event: e}}
		},
		func(h *orderv1.EventHeartbeat) *sellerv1.WatchOrderEventsResponse {
			return &sellerv1.WatchOrderEventsResponse{Item: &sellerv1.WatchOrderEventsResponse_Heartbeat{Heartbeat: h}}
		}))
}

// eventService is the internal OrderEventService: every order's events.
type eventService struct {
	eventsv1.UnimplementedOrderEventServiceServer
	deps *app.Deps
}

// WatchOrderEvents streams every order's events, from a cursor or as a
// member of a consumer group.
func (s *eventService) WatchOrderEvents(req *eventsv1.WatchOrderEventsRequest, stream grpc.ServerStreamingServer[eventsv1.WatchOrderEventsResponse]) error {
	ctx := stream.Context()
	after, err := events.ParseCursor(req.Cursor)
	if err != nil {
		return err
	}
	if (req.Group == "") != (req.Consumer == "") {
		return fmt.Errorf("%w: a consumer group needs a consumer name, and a consumer name a group", order.ErrInvalid)
	}
	f := protoconv.EventFilter(events.Filter{}, req.Filter)
	send := protoconv.WatchSender(stream.Send,
		func(e *orderv1.OrderEvent) *eventsv1.WatchOrderEventsResponse {
			return &eventsv1.WatchOrderEventsResponse{Item: &eventsv1.WatchOrderEventsResponse_Event{Event: e}}
		},
		func(h *orderv1.EventHeartbeat) *eventsv1.WatchOrderEventsResponse {
			return &eventsv1.WatchOrderEventsResponse{Item: &eventsv1.WatchOrderEventsResponse_Heartbeat{Heartbeat: h}}
		})
	if req.Group != "" {
		return s.deps.Events.WatchGroup(ctx, f, req.Group, req.Consumer, after, send)
	}
	return s.deps.Events.Watch(ctx, f, after, send)
}

// AckOrderEvents acknowledges events a group's consumer handled.
func (s *eventService) AckOrderEvents(ctx context.Context, req *eventsv1.AckOrderEventsRequest) (*eventsv1.AckOrderEventsResponse, error) {
	cursors := make([]int64, len(req.Cursors))
	for i, c := range req.Cursors {
		var err error
		if cursors[i], err = events.ParseCursor(c); err != nil {
			return nil, err
		}
	}
	n, err := s.deps.Events.Ack(ctx, req.Group, cursors)
	if err != nil {
		return nil, err
	}
	return &eventsv1.AckOrderEventsResponse{Acknowledged: n}, nil
}
