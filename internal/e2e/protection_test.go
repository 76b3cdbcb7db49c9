package e2e

import (
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/auth"
)

// TestBuyerProtectionPerProduct: each product sets its protection period;
// an order keeps the longest of its products' as it was at checkout, and
// shipping starts that many days of protection.
func TestBuyerProtectionPerProduct(t *testing.T) {
	s := startSystem(t, 1, nil)
	sellerTok := s.token(auth.RoleSeller, "store-x")
	sellerCtx := as(sellerTok)
	mk := func(title string, days *int32) *sellerv1.Product {
		resp, err := s.seller.CreateProduct(sellerCtx, &sellerv1.CreateProductRequest{Title: title, Price: usd(1000), ShippingFee: usd(100),
			Stock: 10, HandlingDays: 3, ProtectionDays: days})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Product
	}
	days := func(n int32) *int32 { return &n }
	short, long, plain := mk("Socks", days(15)), mk("Tent", days(90)), mk("Mug", nil)
	if short.ProtectionDays != 15 || long.ProtectionDays != 90 || plain.ProtectionDays != 60 {
		t.Fatalf("protection days %d, %d, %d; want 15, 90 and the default 60", short.ProtectionDays, long.ProtectionDays, plain.ProtectionDays)
	}
	for _, bad := range []int32{14, 181} {
		_, err := s.seller.CreateProduct(sellerCtx, &sellerv1.CreateProductRequest{Title: "x", Price: usd(1), ShippingFee: usd(0),
			Stock: 1, HandlingDays: 1, ProtectionDays: days(bad)})
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("protection of %d days: %v, want INVALID_ARGUMENT", bad, err)
		}
	}
	o := s.checkout("alice", 1, short, long)[0]
	if o.ProtectionDays != 90 {
		t.Fatalf("order protection %d days, want the longest, 90", o.ProtectionDays)
	}
	// The seller shortens the tent's protection: the order keeps its 90 days.
	code, body := jsonCall(t, "PATCH", s.sellerURL("/v1/products/"+long.Id), sellerTok, map[string]any{"protection_days": 30})
	if code != http.StatusOK || body["product"].(map[string]any)["protection_days"] != float64(30) {
		t.Fatalf("update protection: %d %v", code, body)
	}
	s.pay(t, "alice", o, "4242424242424242", "protection-key-1")
	r, err := s.seller.ShipOrder(sellerCtx, &sellerv1.ShipOrderRequest{OrderId: o.Id, Carrier: "DHL", TrackingNumber: "JD0001"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := deadline(r.Order, "protection").Sub(r.Order.Shipment.ShippedAt.AsTime()), 90*24*time.Hour; got != want {
		t.Fatalf("protection runs %s after shipping, want %s", got, want)
	}
	if got := s.order("alice", o.Id); got.ProtectionDays != 90 {
		t.Fatalf("the order's protection changed to %d days", got.ProtectionDays)
	}
	if _, err := s.buyer.GetOrder(as(s.token(auth.RoleBuyer, "alice")), &buyerv1.GetOrderRequest{OrderId: o.Id}); err != nil {
		t.Fatal(err)
	}
}
