package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/auth"
)

// TestAuthorizationMatrix calls every RPC as every kind of caller: the
// owner gets through (to OK or a business error), a caller of the right
// role who does not own the order or product gets NOT_FOUND, a wrong role
// PERMISSION_DENIED, and no or a bad token UNAUTHENTICATED.
func TestAuthorizationMatrix(t *testing.T) {
	s := startSystem(t, 1, nil)
	lamp := s.product("store-x", "Lamp", 1000, 100, 100)
	order := s.checkout("alice", 1, lamp)[0]
	cancelled := s.checkout("alice", 1, lamp)[0]
	if _, err := s.buyer.CancelOrder(as(s.token(auth.RoleBuyer, "alice")), &buyerv1.CancelOrderRequest{OrderId: cancelled.Id, Reason: "changed my mind"}); err != nil {
		t.Fatal(err)
	}

	callers := map[string]string{
		"buyer A":   s.token(auth.RoleBuyer, "alice"),
		"buyer B":   s.token(auth.RoleBuyer, "bob"),
		"seller X":  s.token(auth.RoleSeller, "store-x"),
		"seller Y":  s.token(auth.RoleSeller, "store-y"),
		"service":   s.token(auth.RoleService, "buyer-svc"),
		"admin":     s.token(auth.RoleAdmin, "root"),
		"no token":  "",
		"bad token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.bm90LWEtc2lnbmF0dXJl",
	}
	badSecret, _ := auth.NewIssuer(context.Background(), auth.Keys{User: "another-secret-another-secret-another-secret", Service: strings.Repeat("s", 40)})
	forged, _ := badSecret.Sign(auth.Principal{Role: auth.RoleBuyer, Subject: "alice"}, 3600e9)
	callers["forged token"] = forged

	declined := s.checkout("alice", 1, lamp)[0]
	declinedAttempt := s.pay(t, "alice", declined, "4000000000000002", "authz-declined").Attempt
	checkout := uuid.NewString()
	xc, err := s.seller.CreateCoupon(as(callers["seller X"]), &sellerv1.CreateCouponRequest{Coupon: &orderv1.Coupon{Code: "X5",
		Kind: orderv1.CouponKind_COUPON_KIND_PERCENT_OFF, Percent: 5, Amount: usd(0), StartsAt: timestamppb.Now(), EndsAt: timestamppb.New(time.Now().Add(time.Hour))}})
	if err != nil {
		t.Fatal(err)
	}
	xCoupon := xc.Coupon
	type rpc struct {
		name string
		// role may call; owner is the caller that owns the target, other the
		// one of the same role that does not (empty: no ownership).
		role         auth.Role
		owner, other string
		ownerCode    codes.Code
		call         func(ctx context.Context) error
	}
	rpcs := []rpc{
		{"buyer Checkout", auth.RoleBuyer, "buyer A", "", codes.OK, func(ctx context.Context) error {
			_, err := s.buyer.Checkout(ctx, &buyerv1.CheckoutRequest{Items: []*buyerv1.CheckoutItem{{ProductId: lamp.Id, Quantity: 1}}})
			return err
		}},
		{"buyer ListOrders", auth.RoleBuyer, "buyer A", "", codes.OK, func(ctx context.Context) error {
			_, err := s.buyer.ListOrders(ctx, &buyerv1.ListOrdersRequest{})
			return err
		}},
		{"buyer GetOrder", auth.RoleBuyer, "buyer A", "buyer B", codes.OK, func(ctx context.Context) error {
			_, err := s.buyer.GetOrder(ctx, &buyerv1.GetOrderRequest{OrderId: order.Id})
			return err
		}},
		{"buyer PayOrder", auth.RoleBuyer, "buyer A", "buyer B", codes.FailedPrecondition, func(ctx context.Context) error {
			_, err := s.buyer.PayOrder(ctx, &buyerv1.PayOrderRequest{OrderId: order.Id, ExpectedTotal: usd(1), IdempotencyKey: "authz-key-1",
				Method: &buyerv1.PayOrderRequest_Card{Card: &buyerv1.Card{Number: "4242424242424242", ExpMonth: 1, ExpYear: 2099, Cvc: "123"}}})
			return err
		}},
		{"buyer CancelOrder", auth.RoleBuyer, "buyer A", "buyer B", codes.FailedPrecondition, func(ctx context.Context) error {
			_, err := s.buyer.CancelOrder(ctx, &buyerv1.CancelOrderRequest{OrderId: cancelled.Id, Reason: "again"})
			return err
		}},
		{"buyer ConfirmReceipt", auth.RoleBuyer, "buyer A", "buyer B", codes.FailedPrecondition, func(ctx context.Context) error {
			_, err := s.buyer.ConfirmReceipt(ctx, &buyerv1.ConfirmReceiptRequest{OrderId: order.Id})
			return err
		}},
		{"buyer VerifyPayment", auth.RoleBuyer, "buyer A", "buyer B", codes.FailedPrecondition, func(ctx context.Context) error {
			_, err := s.buyer.VerifyPayment(ctx, &buyerv1.VerifyPaymentRequest{OrderId: declined.Id, AttemptId: declinedAttempt.Id, Code: "123456"})
			return err
		}},
		{"buyer PayOrders", auth.RoleBuyer, "buyer A", "buyer B", codes.OK, func(ctx context.Context) error {
			resp, err := s.buyer.PayOrders(ctx, &buyerv1.PayOrdersRequest{IdempotencyKey: "authz-many-" + uuid.NewString(),
				Orders: []*buyerv1.OrderPayment{{OrderId: order.Id, ExpectedTotal: usd(1)}},
				Method: &buyerv1.PayOrdersRequest_Card{Card: &buyerv1.Card{Number: "4242424242424242", ExpMonth: 1, ExpYear: 2099, Cvc: "123"}}})
			if err == nil && resp.Results[0].ErrorCode == "" {
				return fmt.Errorf("paid with a wrong total")
			}
			if err == nil && resp.Results[0].ErrorCode == "NOT_FOUND" {
				return status.Error(codes.NotFound, "not found")
			}
			return err
		}},
		{"buyer ListRefunds", auth.RoleBuyer, "buyer A", "", codes.OK, func(ctx context.Context) error {
			_, err := s.buyer.ListRefunds(ctx, &buyerv1.ListRefundsRequest{})
			return err
		}},
		{"buyer RequestCancellation", auth.RoleBuyer, "buyer A", "buyer B", codes.FailedPrecondition, func(ctx context.Context) error {
			_, err := s.buyer.RequestCancellation(ctx, &buyerv1.RequestCancellationRequest{OrderId: order.Id, Reason: "no_longer_needed"})
			return err
		}},
		{"buyer WithdrawCancellation", auth.RoleBuyer, "buyer A", "buyer B", codes.FailedPrecondition, func(ctx context.Context) error {
			_, err := s.buyer.WithdrawCancellation(ctx, &buyerv1.WithdrawCancellationRequest{OrderId: order.Id})
			return err
		}},
		{"buyer AskProtectionExtension", auth.RoleBuyer, "buyer A", "buyer B", codes.FailedPrecondition, func(ctx context.Context) error {
			_, err := s.buyer.AskProtectionExtension(ctx, &buyerv1.AskProtectionExtensionRequest{OrderId: order.Id, Days: 3})
			return err
		}},
		{"buyer OpenDispute", auth.RoleBuyer, "buyer A", "buyer B", codes.FailedPrecondition, func(ctx context.Context) error {
			_, err := s.buyer.OpenDispute(ctx, &buyerv1.OpenDisputeRequest{OrderId: order.Id, Reason: "damaged", RefundAmount: usd(100), Evidence: &orderv1.EvidenceInput{Text: "x"}})
			return err
		}},
		{"buyer AddDisputeEvidence", auth.RoleBuyer, "buyer A", "buyer B", codes.FailedPrecondition, func(ctx context.Context) error {
			_, err := s.buyer.AddDisputeEvidence(ctx, &buyerv1.AddDisputeEvidenceRequest{OrderId: order.Id, Evidence: &orderv1.EvidenceInput{Text: "x"}})
			return err
		}},
		{"buyer WithdrawDispute", auth.RoleBuyer, "buyer A", "buyer B", codes.FailedPrecondition, func(ctx context.Context) error {
			_, err := s.buyer.WithdrawDispute(ctx, &buyerv1.WithdrawDisputeRequest{OrderId: order.Id})
			return err
		}},
		{"buyer AnswerCounterOffer", auth.RoleBuyer, "buyer A", "buyer B", codes.FailedPrecondition, func(ctx context.Context) error {
			_, err := s.buyer.AnswerCounterOffer(ctx, &buyerv1.AnswerCounterOfferRequest{OrderId: order.Id, Accept: true})
			return err
		}},
		{"seller AnswerCancellation", auth.RoleSeller, "seller X", "seller Y", codes.FailedPrecondition, func(ctx context.Context) error {
			_, err := s.seller.AnswerCancellation(ctx, &sellerv1.AnswerCancellationRequest{OrderId: order.Id, Accept: true})
			return err
		}},
		{"seller ExtendProtection", auth.RoleSeller, "seller X", "seller Y", codes.FailedPrecondition, func(ctx context.Context) error {
			_, err := s.seller.ExtendProtection(ctx, &sellerv1.ExtendProtectionRequest{OrderId: order.Id, Days: 3})
			return err
		}},
		{"seller AnswerDispute", auth.RoleSeller, "seller X", "seller Y", codes.FailedPrecondition, func(ctx context.Context) error {
			_, err := s.seller.AnswerDispute(ctx, &sellerv1.AnswerDisputeRequest{OrderId: order.Id, Answer: &sellerv1.AnswerDisputeRequest_Accept{Accept: &sellerv1.AcceptDispute{}}})
			return err
		}},
		{"seller AddDisputeEvidence", auth.RoleSeller, "seller X", "seller Y", codes.FailedPrecondition, func(ctx context.Context) error {
			_, err := s.seller.AddDisputeEvidence(ctx, &sellerv1.AddDisputeEvidenceRequest{OrderId: order.Id, Evidence: &orderv1.EvidenceInput{Text: "x"}})
			return err
		}},
		{"seller GetSellerStats", auth.RoleSeller, "seller X", "", codes.OK, func(ctx context.Context) error {
			_, err := s.seller.GetSellerStats(ctx, &sellerv1.GetSellerStatsRequest{})
			return err
		}},
		{"admin ListEscalatedDisputes", auth.RoleAdmin, "admin", "", codes.OK, func(ctx context.Context) error {
			_, err := sellerv1.NewDisputeResolutionServiceClient(dial(t, s.sellers[0].InternalGRPCAddr())).ListEscalatedDisputes(ctx, &sellerv1.ListEscalatedDisputesRequest{})
			return err
		}},
		{"admin DecideDispute", auth.RoleAdmin, "admin", "", codes.FailedPrecondition, func(ctx context.Context) error {
			_, err := sellerv1.NewDisputeResolutionServiceClient(dial(t, s.sellers[0].InternalGRPCAddr())).DecideDispute(ctx, &sellerv1.DecideDisputeRequest{OrderId: order.Id, RefundAmount: usd(0), Note: "x"})
			return err
		}},
		{"seller CreateProduct", auth.RoleSeller, "seller X", "", codes.OK, func(ctx context.Context) error {
			_, err := s.seller.CreateProduct(ctx, &sellerv1.CreateProductRequest{Title: "Pen", Price: usd(100), ShippingFee: usd(0), Stock: 1, HandlingDays: 1})
			return err
		}},
		{"seller UpdateProduct", auth.RoleSeller, "seller X", "seller Y", codes.OK, func(ctx context.Context) error {
			title := "Lamp"
			_, err := s.seller.UpdateProduct(ctx, &sellerv1.UpdateProductRequest{ProductId: lamp.Id, Title: &title})
			return err
		}},
		{"seller ListProducts", auth.RoleSeller, "seller X", "", codes.OK, func(ctx context.Context) error {
			_, err := s.seller.ListProducts(ctx, &sellerv1.ListProductsRequest{})
			return err
		}},
		{"seller ListOrders", auth.RoleSeller, "seller X", "", codes.OK, func(ctx context.Context) error {
			_, err := s.seller.ListOrders(ctx, &sellerv1.ListOrdersRequest{})
			return err
		}},
		{"seller GetOrder", auth.RoleSeller, "seller X", "seller Y", codes.OK, func(ctx context.Context) error {
			_, err := s.seller.GetOrder(ctx, &sellerv1.GetOrderRequest{OrderId: order.Id})
			return err
		}},
		{"seller AdjustOrderPrice", auth.RoleSeller, "seller X", "seller Y", codes.OK, func(ctx context.Context) error {
			_, err := s.seller.AdjustOrderPrice(ctx, &sellerv1.AdjustOrderPriceRequest{OrderId: order.Id, ShippingFee: usd(50), Reason: "cheaper post"})
			return err
		}},
		{"buyer SendOrderMessage", auth.RoleBuyer, "buyer A", "buyer B", codes.OK, func(ctx context.Context) error {
			_, err := s.buyer.SendOrderMessage(ctx, &buyerv1.SendOrderMessageRequest{OrderId: order.Id, Message: &orderv1.MessageInput{Text: "hi"}})
			return err
		}},
		{"buyer ListOrderMessages", auth.RoleBuyer, "buyer A", "buyer B", codes.OK, func(ctx context.Context) error {
			_, err := s.buyer.ListOrderMessages(ctx, &buyerv1.ListOrderMessagesRequest{OrderId: order.Id})
			return err
		}},
		{"seller SendOrderMessage", auth.RoleSeller, "seller X", "seller Y", codes.OK, func(ctx context.Context) error {
			_, err := s.seller.SendOrderMessage(ctx, &sellerv1.SendOrderMessageRequest{OrderId: order.Id, Message: &orderv1.MessageInput{Text: "hello"}})
			return err
		}},
		{"seller ListOrderMessages", auth.RoleSeller, "seller X", "seller Y", codes.OK, func(ctx context.Context) error {
			_, err := s.seller.ListOrderMessages(ctx, &sellerv1.ListOrderMessagesRequest{OrderId: order.Id})
			return err
		}},
		{"buyer MakeOffer", auth.RoleBuyer, "buyer A", "buyer B", codes.FailedPrecondition, func(ctx context.Context) error {
			_, err := s.buyer.MakeOffer(ctx, &buyerv1.MakeOfferRequest{OrderId: cancelled.Id, Kind: orderv1.OfferKind_OFFER_KIND_TOTAL, Amount: usd(1)})
			return err
		}},
		{"seller AnswerOffer", auth.RoleSeller, "seller X", "seller Y", codes.FailedPrecondition, func(ctx context.Context) error {
			_, err := s.seller.AnswerOffer(ctx, &sellerv1.AnswerOfferRequest{OrderId: order.Id, Accept: true})
			return err
		}},
		{"seller ShipOrder", auth.RoleSeller, "seller X", "seller Y", codes.FailedPrecondition, func(ctx context.Context) error {
			_, err := s.seller.ShipOrder(ctx, &sellerv1.ShipOrderRequest{OrderId: order.Id, Carrier: "DHL", TrackingNumber: "JD0001"})
			return err
		}},
		{"buyer PreviewCheckout", auth.RoleBuyer, "buyer A", "", codes.OK, func(ctx context.Context) error {
			_, err := s.buyer.PreviewCheckout(ctx, &buyerv1.PreviewCheckoutRequest{Items: []*buyerv1.CheckoutItem{{ProductId: lamp.Id, Quantity: 1}}})
			return err
		}},
		{"buyer ListMyCoupons", auth.RoleBuyer, "buyer A", "", codes.OK, func(ctx context.Context) error {
			_, err := s.buyer.ListMyCoupons(ctx, &buyerv1.ListMyCouponsRequest{})
			return err
		}},
		{"seller CreateCoupon", auth.RoleSeller, "seller X", "", codes.OK, func(ctx context.Context) error {
			_, err := s.seller.CreateCoupon(ctx, &sellerv1.CreateCouponRequest{Coupon: &orderv1.Coupon{Code: "AUTHZ", Kind: orderv1.CouponKind_COUPON_KIND_PERCENT_OFF,
				Percent: 5, Amount: usd(0), StartsAt: timestamppb.Now(), EndsAt: timestamppb.New(time.Now().Add(time.Hour))}})
			return err
		}},
		{"seller UpdateCoupon", auth.RoleSeller, "seller X", "seller Y", codes.OK, func(ctx context.Context) error {
			_, err := s.seller.UpdateCoupon(ctx, &sellerv1.UpdateCouponRequest{Coupon: xCoupon})
			return err
		}},
		{"seller ListCoupons", auth.RoleSeller, "seller X", "", codes.OK, func(ctx context.Context) error {
			_, err := s.seller.ListCoupons(ctx, &sellerv1.ListCouponsRequest{})
			return err
		}},
		{"seller RefundItems", auth.RoleSeller, "seller X", "seller Y", codes.FailedPrecondition, func(ctx context.Context) error {
			_, err := s.seller.RefundItems(ctx, &sellerv1.RefundItemsRequest{OrderId: order.Id, Reason: "torn",
				Items: []*sellerv1.RefundItem{{ProductId: lamp.Id, Quantity: 1}}})
			return err
		}},
		{"catalog QuoteProducts", auth.RoleService, "service", "", codes.OK, func(ctx context.Context) error {
			_, err := s.catalog.QuoteProducts(ctx, &sellerv1.QuoteProductsRequest{Items: []*sellerv1.StockItem{{ProductId: lamp.Id, Quantity: 1}}})
			return err
		}},
		{"catalog ReserveStock", auth.RoleService, "service", "", codes.OK, func(ctx context.Context) error {
			_, err := s.catalog.ReserveStock(ctx, &sellerv1.ReserveStockRequest{CheckoutId: checkout, Items: []*sellerv1.StockItem{{ProductId: lamp.Id, Quantity: 1}}})
			return err
		}},
		{"catalog ReleaseStock", auth.RoleService, "service", "", codes.OK, func(ctx context.Context) error {
			_, err := s.catalog.ReleaseStock(ctx, &sellerv1.ReleaseStockRequest{CheckoutId: checkout})
			return err
		}},
	}
	roleOf := map[string]auth.Role{"buyer A": auth.RoleBuyer, "buyer B": auth.RoleBuyer, "seller X": auth.RoleSeller,
		"seller Y": auth.RoleSeller, "service": auth.RoleService, "admin": auth.RoleAdmin}
	for _, r := range rpcs {
		for caller, tok := range callers {
			var want codes.Code
			switch role, ok := roleOf[caller]; {
			case !ok:
				want = codes.Unauthenticated
			case role == auth.RoleAdmin && strings.HasPrefix(r.name, "buyer "):
				// buyer-svc does not hold the admin key: an admin token is
				// no token it can check.
				want = codes.Unauthenticated
			case role != r.role:
				want = codes.PermissionDenied
			case caller == r.owner:
				want = r.ownerCode
			case caller == r.other:
				want = codes.NotFound
			default:
				want = r.ownerCode
			}
			if got := status.Code(r.call(as(tok))); got != want {
				t.Errorf("%s as %s: %s, want %s", r.name, caller, got, want)
			}
		}
	}

	// The others' lists do not show alice's orders (bob has his own checkout).
	bobs, _ := s.buyer.ListOrders(as(callers["buyer B"]), &buyerv1.ListOrdersRequest{})
	for _, o := range bobs.GetOrders() {
		if o.BuyerId != "bob" {
			t.Errorf("buyer B sees %s's order %s", o.BuyerId, o.Id)
		}
	}
	if len(bobs.GetOrders()) != 1 {
		t.Errorf("buyer B sees %d orders, want his one", len(bobs.GetOrders()))
	}
	if ys, _ := s.seller.ListOrders(as(callers["seller Y"]), &sellerv1.ListOrdersRequest{}); len(ys.GetOrders()) != 0 {
		t.Errorf("seller Y sees %d orders, want none", len(ys.GetOrders()))
	}
	// Only the owners' calls changed the order: its one adjustment and a
	// message from each side.
	got := countKinds(s.order("alice", order.Id))
	if len(got) != 3 || got["created"] != 1 || got["price_adjusted"] != 1 || got["message_sent"] != 2 {
		t.Errorf("order history = %v, want created, one price_adjusted and two message_sent", got)
	}

	// The gateway answers with the matching HTTP statuses.
	for _, c := range []struct {
		url, tok string
		want     int
	}{
		{s.buyerURL("/v1/orders/" + order.Id), "", http.StatusUnauthorized},
		{s.buyerURL("/v1/orders/" + order.Id), callers["bad token"], http.StatusUnauthorized},
		{s.buyerURL("/v1/orders/" + order.Id), callers["seller X"], http.StatusForbidden},
		{s.buyerURL("/v1/orders/" + order.Id), callers["buyer B"], http.StatusNotFound},
		{s.buyerURL("/v1/orders/" + order.Id), callers["buyer A"], http.StatusOK},
		{s.sellerURL("/v1/orders/" + order.Id), callers["seller Y"], http.StatusNotFound},
		{s.sellerURL("/v1/orders/" + order.Id), callers["seller X"], http.StatusOK},
		{s.sellerURL("/v1/products"), callers["buyer A"], http.StatusForbidden},
	} {
		if code, body := jsonCall(t, "GET", c.url, c.tok, nil); code != c.want {
			t.Errorf("GET %s: %d %v, want %d", c.url, code, body, c.want)
		}
	}
}
