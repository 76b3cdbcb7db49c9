// Command seed fills a running Souk with demo data for `make up`: a demo
// seller with products (created through seller-svc's gRPC API) and a demo
// buyer, and prints their tokens with calls to paste.
package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func run() error {
	e := app.NewEnv(nil)
	cfg := e.Load()
	e.LoadAdminKey(&cfg) // the demo's admin token
	buyerGRPC := e.String("SOUK_BUYER_GRPC_ADDR", "127.0.0.1:50051")
	buyerHTTP := e.String("SOUK_BUYER_HTTP_ADDR", "127.0.0.1:8081")
	sellerGRPC := e.String("SOUK_SELLER_GRPC_ADDR", "127.0.0.1:50052")
	sellerHTTP := e.String("SOUK_SELLER_HTTP_ADDR", "127.0.0.1:8082")
	if err := e.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	iss, err := auth.NewIssuer(ctx, cfg.Keys())
	if err != nil {
		return err
	}
	for _, addr := range []string{sellerGRPC, buyerGRPC} {
		if err := waitHealthy(ctx, addr); err != nil {
			return err
		}
	}
	const ttl = 30 * 24 * time.Hour
	sellerTok, _ := iss.Sign(auth.Principal{Role: auth.RoleSeller, Subject: "demo-store"}, ttl)
	buyerTok, _ := iss.Sign(auth.Principal{Role: auth.RoleBuyer, Subject: "demo-buyer"}, ttl)
	adminTok, _ := iss.Sign(auth.Principal{Role: auth.RoleAdmin, Subject: "demo-admin"}, ttl)
	serviceTok, _ := iss.Sign(auth.Principal{Role: auth.RoleService, Subject: "demo-consumer"}, ttl)

	conn, err := grpc.NewClient(sellerGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	seller := sellerv1.NewSellerServiceClient(conn)
	sctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+sellerTok)
	list, err := seller.ListProducts(sctx, &sellerv1.ListProductsRequest{})
	if err != nil {
		return fmt.Errorf("list products: %w", err)
	}
	products := list.Products
	// A pre-sale is paid in parts: 20% now, the balance within 7 days.
	presale := &orderv1.PaymentPlan{Kind: orderv1.PaymentPlanKind_PAYMENT_PLAN_KIND_DEPOSIT, DepositPercent: 20,
		BalanceWindow: durationpb.New(7 * 24 * time.Hour), Grace: durationpb.New(48 * time.Hour)}
	type demo struct {
		title           string
		price, shipping int64
		stock           int64
		protectionDays  int32 // buyer protection varies by product
		plan            *orderv1.PaymentPlan
	}
	var add []demo
	if len(products) == 0 {
		add = []demo{
			{"Wireless earbuds", 1999, 299, 500, 75, nil},
			{"Phone case, transparent", 349, 0, 2000, 15, nil},
			{"LED desk lamp", 2599, 499, 150, 120, nil},
		}
	}
	if !slices.ContainsFunc(products, func(p *sellerv1.Product) bool { return p.PaymentPlan != nil }) {
		// (A demo store made before pre-sales gets one too.)
		add = append(add, demo{"Smartwatch (pre-sale)", 14900, 0, 300, 60, presale})
	}
	for _, p := range add {
		money := func(n int64) *orderv1.Money { return &orderv1.Money{AmountMinor: n, Currency: "USD"} }
		resp, err := seller.CreateProduct(sctx, &sellerv1.CreateProductRequest{
			Title: p.title, Price: money(p.price), ShippingFee: money(p.shipping), Stock: p.stock, HandlingDays: 5,
			ProtectionDays: &p.protectionDays, PaymentPlan: p.plan,
		})
		if err != nil {
			return fmt.Errorf("create product: %w", err)
		}
		products = append(products, resp.Product)
	}
	// The demo store's welcome coupon (there already after a restart).
	now := time.Now()
	_, err = seller.CreateCoupon(sctx, &sellerv1.CreateCouponRequest{Coupon: &orderv1.Coupon{Code: "WELCOME10",
		Kind: orderv1.CouponKind_COUPON_KIND_PERCENT_OFF, Percent: 10, Amount: &orderv1.Money{Currency: "USD"}, PerBuyerLimit: 1,
		StartsAt: timestamppb.New(now.Add(-time.Hour)), EndsAt: timestamppb.New(now.AddDate(1, 0, 0))}})
	if err != nil && status.Code(err) != codes.Aborted {
		return fmt.Errorf("create coupon: %w", err)
	}
	// The first example's product is paid at once; the pre-sale has one of its own.
	p, presaleID := products[0], ""
	for _, q := range products {
		if q.PaymentPlan != nil {
			presaleID = q.Id
		} else if p.PaymentPlan != nil {
			p = q
		}
	}
	var others []*sellerv1.Product
	for _, q := range products {
		if q.Id != p.Id {
			others = append(others, q)
		}
	}
	fmt.Printf(`
Souk is running.

  buyer-svc   gRPC %[1]s   JSON http://%[2]s   (OpenAPI: http://%[2]s/openapi/souk/buyer/v1/buyer.swagger.json)
  seller-svc  gRPC %[3]s   JSON http://%[4]s   (OpenAPI: http://%[4]s/openapi/souk/seller/v1/seller.swagger.json)

  The seller dashboard: http://%[4]s/  ("Use the demo store", or paste $SELLER_TOKEN)

Tokens (valid 30 days, signed with the development secret):

  export BUYER_TOKEN=%[5]s
  export SELLER_TOKEN=%[6]s
  export ADMIN_TOKEN=%[12]s   # decides escalated disputes (DisputeResolutionService, internal port 50062 / http://127.0.0.1:9082)
  export SERVICE_TOKEN=%[13]s   # internal services: every order's events (OrderEventService, internal port 50062)

Demo products of seller "demo-store": %[7]s (%[8]s, %[9]d %[10]s)%[11]s

Try it:

  # the buyer checks out two "%[8]s" (retrying with the same key returns the same orders)
  curl -s -X POST http://%[2]s/v1/checkout -H "Authorization: Bearer $BUYER_TOKEN" \
    -d '{"items":[{"product_id":"%[7]s","quantity":2}],"idempotency_key":"demo-cart-1"}'

  # the store's coupon WELCOME10 (10%% off, once a buyer) and the price in euros, quoted without
  # reserving anything; Checkout takes the same "store_coupons" and "currency"
  curl -s -X POST http://%[2]s/v1/checkout:preview -H "Authorization: Bearer $BUYER_TOKEN" \
    -d '{"items":[{"product_id":"%[7]s","quantity":2}],"store_coupons":{"demo-store":"WELCOME10"},"currency":"EUR"}'

  # a pre-sale paid in parts: the order asks 20%% now (its amount_due), the balance within 7 days;
  # it is PARTIALLY_PAID in between and ships once paid in full
  curl -s -X POST http://%[2]s/v1/checkout -H "Authorization: Bearer $BUYER_TOKEN" \
    -d '{"items":[{"product_id":"%[14]s","quantity":1}],"idempotency_key":"demo-presale-1"}'

  # the seller sees the new purchase order at once: in the list, and live on the event feed
  # (in another terminal, before the checkout; one JSON object a line, a heartbeat every 15 s)
  curl -s http://%[4]s/v1/orders -H "Authorization: Bearer $SELLER_TOKEN"
  curl -sN http://%[4]s/v1/events -H "Authorization: Bearer $SELLER_TOKEN"

  # the seller gives a discount (ORDER_ID from the checkout's answer)
  curl -s -X POST http://%[4]s/v1/orders/$ORDER_ID:adjust-price -H "Authorization: Bearer $SELLER_TOKEN" \
    -d '{"shipping_fee":{"amount_minor":0,"currency":"USD"},"reason":"free shipping"}'

  # the buyer pays the total they now see (test card 4242 4242 4242 4242 approves)
  curl -s -X POST http://%[2]s/v1/orders/$ORDER_ID:pay -H "Authorization: Bearer $BUYER_TOKEN" \
    -d '{"expected_total":{"amount_minor":3998,"currency":"USD"},"idempotency_key":"demo-pay-1",
         "card":{"number":"4242424242424242","exp_month":12,"exp_year":2030,"cvc":"123"}}'

  # after payment: the seller ships, the buyer opens a dispute, the seller's figures
  curl -s -X POST http://%[4]s/v1/orders/$ORDER_ID:ship -H "Authorization: Bearer $SELLER_TOKEN" \
    -d '{"carrier":"Cainiao","tracking_number":"LP00123456789CN"}'
  curl -s http://%[4]s/v1/stats -H "Authorization: Bearer $SELLER_TOKEN"

  # over gRPC (reflection is on)
  go tool grpcurl -plaintext -H "authorization: Bearer $BUYER_TOKEN" %[1]s souk.buyer.v1.BuyerService/ListOrders
  go tool grpcurl -plaintext -H "authorization: Bearer $SELLER_TOKEN" %[3]s list
  go tool grpcurl -plaintext -H "authorization: Bearer $BUYER_TOKEN" -d '{"cursor":"0"}' %[1]s souk.buyer.v1.BuyerService/WatchOrderEvents

Ctrl-C stops everything.
`, buyerGRPC, buyerHTTP, sellerGRPC, sellerHTTP, buyerTok, sellerTok, p.Id, p.Title, p.Price.AmountMinor, p.Price.Currency,
		otherIDs(others), adminTok, serviceTok, presaleID)
	return nil
}

func otherIDs(ps []*sellerv1.Product) string {
	s := ""
	for _, p := range ps {
		s += fmt.Sprintf(", %s (%s)", p.Id, p.Title)
	}
	return s
}

// waitHealthy polls a service's gRPC health check until it serves.
func waitHealthy(ctx context.Context, addr string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	h := healthpb.NewHealthClient(conn)
	for {
		resp, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && resp.Status == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not become healthy: %v", addr, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
