package e2e

import (
	"context"
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	eventsv1 "github.com/souk-dev/souk/gen/go/souk/events/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/auth"
)

// TestInternalRoutesAreNotPublic: the catalog, event and dispute-decision
// services answer on seller-svc's internal listeners only; on the public
// gRPC port they do not exist, nor do their routes on the public gateway.
func TestInternalRoutesAreNotPublic(t *testing.T) {
	s := startSystem(t, 1, nil)
	admin, service := as(s.token(auth.RoleAdmin, "ops")), as(s.token(auth.RoleService, "buyer-svc"))
	public, internal := dial(t, s.sellers[0].GRPCAddr()), dial(t, s.sellers[0].InternalGRPCAddr())

	if _, err := sellerv1.NewDisputeResolutionServiceClient(public).ListEscalatedDisputes(admin, &sellerv1.ListEscalatedDisputesRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("DisputeResolutionService on the public port: %v", err)
	}
	if _, err := sellerv1.NewCatalogServiceClient(public).ReleaseStock(service, &sellerv1.ReleaseStockRequest{CheckoutId: "00000000-0000-0000-0000-000000000000"}); status.Code(err) != codes.Unimplemented {
		t.Errorf("CatalogService on the public port: %v", err)
	}
	st, err := eventsv1.NewOrderEventServiceClient(public).WatchOrderEvents(service, &eventsv1.WatchOrderEventsRequest{})
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("OrderEventService on the public port: %v", err)
	}
	if _, err := sellerv1.NewDisputeResolutionServiceClient(internal).ListEscalatedDisputes(admin, &sellerv1.ListEscalatedDisputesRequest{}); err != nil {
		t.Errorf("DisputeResolutionService on the internal port: %v", err)
	}
	if _, err := sellerv1.NewSellerServiceClient(internal).ListOrders(as(s.token(auth.RoleSeller, "store-x")), &sellerv1.ListOrdersRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("SellerService on the internal port: %v", err)
	}

	for _, r := range []struct{ method, path, tok string }{
		{"GET", "/admin/v1/disputes", s.token(auth.RoleAdmin, "ops")},
		{"POST", "/internal/v1/reservations", s.token(auth.RoleService, "buyer-svc")},
		{"GET", "/internal/v1/events", s.token(auth.RoleService, "buyer-svc")},
	} {
		if code, _ := jsonCall(t, r.method, s.sellerURL(r.path), r.tok, map[string]any{}); code != http.StatusNotFound {
			t.Errorf("%s %s on the public gateway: HTTP %d", r.method, r.path, code)
		}
	}
	if code, _ := jsonCall(t, "GET", "http://"+s.sellers[0].InternalHTTPAddr()+"/admin/v1/disputes", s.token(auth.RoleAdmin, "ops"), nil); code != http.StatusOK {
		t.Errorf("the admin route on the internal gateway: HTTP %d", code)
	}
	_ = context.Background()
}
