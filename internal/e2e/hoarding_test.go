package e2e

import (
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/postgres"
)

// Round two, point 14: one buyer cannot hoard a store's stock with unpaid
// checkouts. Past the limits (orders, units) a checkout is refused with a
// clear FAILED_PRECONDITION and its stock goes back; concurrent checkouts
// of one buyer cannot slip past together; paying or cancelling frees room.
func TestUnpaidOrdersAreLimitedPerBuyer(t *testing.T) {
	s := startSystem(t, 1, func(c *app.Config) { c.Unpaid = postgres.UnpaidLimits{Orders: 3, Units: 5} })
	lamp := s.product("store-x", "Lamp", 1000, 100, 100)
	buyerCtx := as(s.token(auth.RoleBuyer, "mallory"))
	checkout := func(qty int64) (*buyerv1.CheckoutResponse, error) {
		return s.buyer.Checkout(buyerCtx, &buyerv1.CheckoutRequest{Items: []*buyerv1.CheckoutItem{{ProductId: lamp.Id, Quantity: qty}}})
	}
	if _, err := checkout(6); status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "unpaid") ||
		reasonOf(err).Reason != "UNPAID_LIMIT" || reasonOf(err).Metadata["max_units"] != "5" {
		t.Fatalf("6 units at once: %v, want FAILED_PRECONDITION about unpaid orders (UNPAID_LIMIT)", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); _, errs[i] = checkout(1) }()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch status.Code(err) {
		case codes.OK:
			ok++
		case codes.FailedPrecondition:
		default:
			t.Fatalf("a concurrent checkout: %v", err)
		}
	}
	if ok != 3 {
		t.Fatalf("%d of 6 concurrent checkouts went through, want the limit of 3", ok)
	}
	if got := s.stock(lamp); got != 97 {
		t.Fatalf("stock %d, want 97: the refused checkouts' units back", got)
	}
	list, err := s.buyer.ListOrders(buyerCtx, &buyerv1.ListOrdersRequest{})
	if err != nil || len(list.Orders) != 3 {
		t.Fatalf("mallory holds %d orders (%v), want 3", len(list.GetOrders()), err)
	}
	// Another buyer is not held back by mallory.
	if _, err := s.buyer.Checkout(as(s.token(auth.RoleBuyer, "alice")), &buyerv1.CheckoutRequest{Items: []*buyerv1.CheckoutItem{{ProductId: lamp.Id, Quantity: 1}}}); err != nil {
		t.Fatalf("another buyer's checkout: %v", err)
	}
	// Paying one frees room for one more.
	s.pay(t, "mallory", list.Orders[0], "4242424242424242", "hoarding-pay-1")
	if _, err := checkout(1); err != nil {
		t.Fatalf("a checkout after paying one: %v", err)
	}
	if _, err := checkout(1); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("a fourth unpaid order: %v, want FAILED_PRECONDITION", err)
	}
}
