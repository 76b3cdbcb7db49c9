package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/testenv"
)

// num reads a JSON int64 (a string) at path.
func num(t *testing.T, v any, path ...any) int64 {
	t.Helper()
	s := str(v, path...)
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%v at %v is not a number", get(v, path...), path)
	}
	return n
}

// lineShares reads an order's (or a preview order's) lines as JSON:
// "product=net [code:source:amount ...]".
func lineShares(t *testing.T, o any, names map[string]string) []string {
	t.Helper()
	var out []string
	items, _ := get(o, "items").([]any)
	for _, it := range items {
		line := fmt.Sprintf("%s=%d", names[str(it, "product_id")], num(t, it, "net", "amount_minor"))
		ds, _ := get(it, "discounts").([]any)
		for _, d := range ds {
			line += fmt.Sprintf(" %s:%s:%d", str(d, "code"), str(d, "source"), num(t, d, "amount", "amount_minor"))
		}
		out = append(out, line)
	}
	return out
}

// TestCouponsEndToEnd: a store creates a coupon over its JSON API, the
// platform another over the admin API; a buyer's checkout of two stores
// names both, through the gateway. The preview and the checkout agree to
// the unit: the store's 10% first, then the platform's 1,000 split over
// the orders by their eligible subtotals (largest remainder). Cancelling
// one order keeps the platform coupon (the other order holds it) and
// gives the store's back; the other order's payment window passes and the
// platform coupon is released, redeemable again. A seller's price change
// re-runs the split without raising the platform's share; a paid order's
// partial refund is what was paid, never the coupon.
func TestCouponsEndToEnd(t *testing.T) {
	s := startSystem(t, 1, func(c *app.Config) { c.PaymentWindow = 12 * time.Second })
	lamp := s.product("store-a", "Lamp", 3000, 500, 50)
	rug := s.product("store-b", "Rug", 2000, 300, 50)
	names := map[string]string{lamp.Id: "lamp", rug.Id: "rug"}
	now := time.Now().UTC()
	window := map[string]any{"starts_at": now.Add(-time.Minute).Format(time.RFC3339), "ends_at": now.Add(time.Hour).Format(time.RFC3339)}

	storeTok := s.token(auth.RoleSeller, "store-a")
	code, body := jsonCall(t, "POST", s.sellerURL("/v1/coupons"), storeTok, map[string]any{"coupon": map[string]any{
		"code": "A10", "kind": "COUPON_KIND_PERCENT_OFF", "percent": 10, "amount": map[string]any{"amount_minor": 0, "currency": "USD"},
		"starts_at": window["starts_at"], "ends_at": window["ends_at"]}})
	if code != http.StatusOK || str(body, "coupon", "source") != "COUPON_SOURCE_STORE" || str(body, "coupon", "seller_id") != "store-a" {
		t.Fatalf("store coupon: %d %v", code, body)
	}
	admin := sellerv1.NewCouponAdminServiceClient(dial(t, s.sellers[0].InternalGRPCAddr()))
	adminCtx := as(s.token(auth.RoleAdmin, "marketing-1"))
	sale, err := admin.CreatePlatformCoupon(adminCtx, &sellerv1.CreatePlatformCouponRequest{Coupon: &orderv1.Coupon{
		Code: "SALE1000", Kind: orderv1.CouponKind_COUPON_KIND_AMOUNT_OFF, Amount: usd(1000), MinSubtotal: usd(2000),
		StartsAt: timestamppb.New(now.Add(-time.Minute)), EndsAt: timestamppb.New(now.Add(time.Hour)), RedemptionLimit: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.seller.CreateCoupon(as(s.token(auth.RoleSeller, "store-b")), &sellerv1.CreateCouponRequest{Coupon: &orderv1.Coupon{
		Code: "bad", Kind: orderv1.CouponKind_COUPON_KIND_PERCENT_OFF, Percent: 0, Amount: usd(0),
		StartsAt: timestamppb.New(now), EndsAt: timestamppb.New(now.Add(time.Hour))}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a percent-off coupon of 0%%: %v, want INVALID_ARGUMENT", err)
	}

	aliceTok := s.token(auth.RoleBuyer, "alice")
	cart := map[string]any{"items": []any{map[string]any{"product_id": lamp.Id, "quantity": 1}, map[string]any{"product_id": rug.Id, "quantity": 1}},
		"platform_coupon": "sale1000", "store_coupons": map[string]any{"store-a": "A10"}}
	// Lamp 3000 - 300 (A10) = 2700 and rug 2000 are eligible: 1000 × 2700/4700 = 574.47 and 425.53,
	// the unit left goes to the larger remainder (the rug).
	want := [][]string{{"lamp=2126 A10:COUPON_SOURCE_STORE:300 SALE1000:COUPON_SOURCE_PLATFORM:574"}, {"rug=1574 SALE1000:COUPON_SOURCE_PLATFORM:426"}}
	code, preview := jsonCall(t, "POST", s.buyerURL("/v1/checkout:preview"), aliceTok, cart)
	if code != http.StatusOK {
		t.Fatalf("preview: %d %v", code, preview)
	}
	for i, w := range want {
		if got := lineShares(t, get(preview, "orders", i), names); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Fatalf("preview order %d: %v, want %v", i, got, w)
		}
	}
	if num(t, preview, "orders", 0, "total", "amount_minor") != 2626 || num(t, preview, "orders", 1, "total", "amount_minor") != 1874 {
		t.Fatalf("preview totals: %v", preview)
	}
	if s.stock(lamp) != 50 {
		t.Fatal("the preview reserved stock")
	}

	code, out := jsonCall(t, "POST", s.buyerURL("/v1/checkout"), aliceTok, cart)
	if code != http.StatusOK {
		t.Fatalf("checkout: %d %v", code, out)
	}
	ids := []string{str(out, "orders", 0, "id"), str(out, "orders", 1, "id")}
	for i, w := range want {
		code, got := jsonCall(t, "GET", s.buyerURL("/v1/orders/"+ids[i]), aliceTok, nil)
		if code != http.StatusOK || fmt.Sprint(lineShares(t, get(got, "order"), names)) != fmt.Sprint(w) {
			t.Fatalf("order %d: %d %v, want %v", i, code, lineShares(t, get(got, "order"), names), w)
		}
		var sum int64
		for j := range get(got, "order", "items").([]any) {
			sum += num(t, got, "order", "items", j, "net", "amount_minor")
		}
		if total := num(t, got, "order", "total", "amount_minor"); total != sum+num(t, got, "order", "shipping_fee", "amount_minor") {
			t.Fatalf("order %d: total %d is not its lines (%d) and shipping", i, total, sum)
		}
	}
	lampOrder := s.order("alice", ids[0])
	if lampOrder.StoreFunded.GetAmountMinor() != 300 || lampOrder.CouponDiscount.GetAmountMinor() != 874 || len(lampOrder.Coupons) != 2 ||
		countKinds(lampOrder)["coupon_reserved"] != 2 {
		t.Fatalf("the lamp's order: store-funded %v, coupons %v (%v), history %v", lampOrder.StoreFunded, lampOrder.CouponDiscount, lampOrder.Coupons, countKinds(lampOrder))
	}
	// The platform coupon (limit 1) is held: a second checkout is refused with a reason to act on.
	bobTok := s.token(auth.RoleBuyer, "bob")
	code, refused := jsonCall(t, "POST", s.buyerURL("/v1/checkout"), bobTok, map[string]any{"items": []any{map[string]any{"product_id": rug.Id, "quantity": 1}},
		"platform_coupon": "SALE1000"})
	if code != http.StatusBadRequest || str(refused, "details", 0, "reason") != "COUPON_EXHAUSTED" {
		t.Fatalf("a second use of a coupon limited to one: %d %v", code, refused)
	}

	// Alice cancels the lamp's order: A10 comes back, SALE1000 stays with the rug's.
	code, body = jsonCall(t, "POST", s.buyerURL("/v1/orders/"+ids[0]+":cancel"), aliceTok, map[string]any{"reason": "changed my mind"})
	if code != http.StatusOK {
		t.Fatalf("cancel: %d %v", code, body)
	}
	states := func(o *orderv1.Order) map[string]orderv1.CouponHoldState {
		m := map[string]orderv1.CouponHoldState{}
		for _, c := range o.Coupons {
			m[c.Code] = c.State
		}
		return m
	}
	if st := states(s.order("alice", ids[0])); st["A10"] != orderv1.CouponHoldState_COUPON_HOLD_STATE_RELEASED ||
		st["SALE1000"] != orderv1.CouponHoldState_COUPON_HOLD_STATE_RESERVED {
		t.Fatalf("after one of two orders was cancelled: %v", st)
	}
	report, err := admin.GetCouponReport(adminCtx, &sellerv1.GetCouponReportRequest{})
	if err != nil || len(report.Coupons) == 0 || report.Coupons[0].Coupon.Id != sale.Coupon.Id || report.Coupons[0].Reserved != 1 {
		t.Fatalf("report after the first cancellation: %v %v", report, err)
	}

	// A seller's price change re-runs the split of that order only; the
	// platform's share never grows. (Store B cuts the rug to 300: the
	// platform's 426 shrinks to 300; raised again, it stays 300.)
	rugSeller := as(s.token(auth.RoleSeller, "store-b"))
	for _, price := range []int64{300, 2500} {
		r, err := s.seller.AdjustOrderPrice(rugSeller, &sellerv1.AdjustOrderPriceRequest{OrderId: ids[1], Reason: "custom size",
			ItemPrices: []*sellerv1.ItemPrice{{ProductId: rug.Id, UnitPrice: usd(price)}}})
		if err != nil {
			t.Fatal(err)
		}
		if d := r.Order.Items[0].Discounts; len(d) != 1 || d[0].Amount.AmountMinor != 300 || r.Order.Total.AmountMinor != price-300+300 {
			t.Fatalf("rug at %d: discounts %v, total %v", price, d, r.Order.Total)
		}
	}

	// The rug's order is never paid: its window passes, and the platform
	// coupon (still valid) is released and redeemable again.
	testenv.Eventually(t, 30*time.Second, "the rug's order expires", func() bool {
		return s.order("alice", ids[1]).Status == orderv1.OrderStatus_ORDER_STATUS_CANCELLED
	})
	rugOrder := s.order("alice", ids[1])
	if st := states(rugOrder); st["SALE1000"] != orderv1.CouponHoldState_COUPON_HOLD_STATE_RELEASED || countKinds(rugOrder)["coupon_released"] != 1 {
		t.Fatalf("after the window passed: %v %v", st, countKinds(rugOrder))
	}
	resp, err := s.buyer.Checkout(as(bobTok), &buyerv1.CheckoutRequest{Items: []*buyerv1.CheckoutItem{{ProductId: lamp.Id, Quantity: 1}},
		PlatformCoupon: "SALE1000", StoreCoupons: map[string]string{"store-a": "a10"}})
	if err != nil {
		t.Fatalf("the released coupon: %v", err)
	}
	paid := resp.Orders[0]
	if paid.Total.AmountMinor != 3000-300-1000+500 {
		t.Fatalf("bob's total %v", paid.Total)
	}

	// A checkout retried with its idempotency key redeems once.
	twice, err := admin.CreatePlatformCoupon(adminCtx, &sellerv1.CreatePlatformCouponRequest{Coupon: &orderv1.Coupon{
		Code: "TWICE", Kind: orderv1.CouponKind_COUPON_KIND_AMOUNT_OFF, Amount: usd(100),
		StartsAt: timestamppb.New(now.Add(-time.Minute)), EndsAt: timestamppb.New(now.Add(time.Hour))}})
	if err != nil {
		t.Fatal(err)
	}
	retried := &buyerv1.CheckoutRequest{Items: []*buyerv1.CheckoutItem{{ProductId: rug.Id, Quantity: 1}}, PlatformCoupon: "TWICE",
		IdempotencyKey: "carol-checkout-1"}
	first, err := s.buyer.Checkout(as(s.token(auth.RoleBuyer, "carol")), retried)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.buyer.Checkout(as(s.token(auth.RoleBuyer, "carol")), retried)
	if err != nil || again.Orders[0].Id != first.Orders[0].Id {
		t.Fatalf("the retried checkout: %v %v", again, err)
	}
	report, err = admin.GetCouponReport(adminCtx, &sellerv1.GetCouponReportRequest{})
	if err != nil || report.Coupons[0].Coupon.Id != twice.Coupon.Id || report.Coupons[0].Reserved != 1 {
		t.Fatalf("a retried checkout's coupon: %v %v", report.GetCoupons()[0], err)
	}

	// Paid, shipped, disputed in part: the refund is drawn on the money paid.
	s.pay(t, "bob", paid, "4242424242424242", "pay-bob-0001")
	if _, err := s.seller.ShipOrder(as(storeTok), &sellerv1.ShipOrderRequest{OrderId: paid.Id, Carrier: "DHL", TrackingNumber: "JD0001"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.buyer.OpenDispute(as(bobTok), &buyerv1.OpenDisputeRequest{OrderId: paid.Id, Reason: "damaged", RefundAmount: usd(2201),
		Evidence: &orderv1.EvidenceInput{Text: "broken"}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a refund above what was paid (2200): %v", err)
	}
	if _, err := s.buyer.OpenDispute(as(bobTok), &buyerv1.OpenDisputeRequest{OrderId: paid.Id, Reason: "damaged", RefundAmount: usd(1200),
		Evidence: &orderv1.EvidenceInput{Text: "broken"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.seller.AnswerDispute(as(storeTok), &sellerv1.AnswerDisputeRequest{OrderId: paid.Id,
		Answer: &sellerv1.AnswerDisputeRequest_Accept{Accept: &sellerv1.AcceptDispute{}}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 15*time.Second, "the partial refund is paid", func() bool {
		o := s.order("bob", paid.Id)
		return len(o.Refunds) == 1 && o.Refunds[0].Status == orderv1.RefundStatus_REFUND_STATUS_SUCCEEDED
	})
	ledger, err := s.provider.Ledger(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var captured, refunded int64
	for _, p := range ledger {
		if p.OrderID == paid.Id {
			captured, refunded = captured+p.Amount, refunded+p.Refunded
		}
	}
	if captured != 2200 || refunded != 1200 {
		t.Fatalf("the provider took %d and gave back %d, want 2200 and 1200", captured, refunded)
	}
	report, err = admin.GetCouponReport(adminCtx, &sellerv1.GetCouponReportRequest{})
	if err != nil || report.Coupons[1].Coupon.Id != sale.Coupon.Id || report.Coupons[1].Consumed != 1 || report.Coupons[1].Released != 1 ||
		report.Coupons[1].Cost.AmountMinor != 1000 {
		t.Fatalf("report at the end: %v %v", report, err)
	}
	// Units of a line refunded by the store: each at its share of the
	// line's net (5,900 for 3 rugs after B100's 100), the last carrying
	// the rounding: 1,966 + 1,966 + 1,968.
	bTok := s.token(auth.RoleSeller, "store-b")
	if _, err := s.seller.CreateCoupon(as(bTok), &sellerv1.CreateCouponRequest{Coupon: &orderv1.Coupon{Code: "B100",
		Kind: orderv1.CouponKind_COUPON_KIND_AMOUNT_OFF, Amount: usd(100), StartsAt: timestamppb.New(now.Add(-time.Minute)),
		EndsAt: timestamppb.New(now.Add(time.Hour))}}); err != nil {
		t.Fatal(err)
	}
	rugs, err := s.buyer.Checkout(as(s.token(auth.RoleBuyer, "dave")), &buyerv1.CheckoutRequest{Items: []*buyerv1.CheckoutItem{{ProductId: rug.Id, Quantity: 3}},
		StoreCoupons: map[string]string{"store-b": "B100"}})
	if err != nil {
		t.Fatal(err)
	}
	three := rugs.Orders[0]
	s.pay(t, "dave", three, "4242424242424242", "pay-dave-0001")
	for _, step := range []struct {
		units, want int64
	}{{2, 3932}, {1, 1968}} {
		code, body := jsonCall(t, "POST", s.sellerURL("/v1/orders/"+three.Id+":refund-items"), bTok, map[string]any{
			"items": []any{map[string]any{"product_id": rug.Id, "quantity": step.units}}, "reason": "two arrived torn"})
		if code != http.StatusOK || num(t, body, "amount", "amount_minor") != step.want {
			t.Fatalf("refund %d rugs: %d %v, want %d", step.units, code, body, step.want)
		}
	}
	code, body = jsonCall(t, "POST", s.sellerURL("/v1/orders/"+three.Id+":refund-items"), bTok, map[string]any{
		"items": []any{map[string]any{"product_id": rug.Id, "quantity": 1}}, "reason": "again"})
	if code != http.StatusBadRequest || str(body, "details", 0, "field_violations", 0, "field") != "items" {
		t.Fatalf("a fourth rug of three: %d %v", code, body)
	}
	testenv.Eventually(t, 15*time.Second, "the rugs' refunds are paid", func() bool {
		o := s.order("dave", three.Id)
		return len(o.Refunds) == 2 && o.Refunds[0].Status == orderv1.RefundStatus_REFUND_STATUS_SUCCEEDED &&
			o.Refunds[1].Status == orderv1.RefundStatus_REFUND_STATUS_SUCCEEDED
	})
	if l := s.order("dave", three.Id).Items[0]; l.RefundedUnits != 3 || l.Refunded.AmountMinor != 5900 || l.Net.AmountMinor != 5900 {
		t.Fatalf("the rugs' line: %v", l)
	}

	stats, err := s.seller.GetSellerStats(as(storeTok), &sellerv1.GetSellerStatsRequest{})
	if err != nil || len(stats.StoreFundedDiscounts) != 1 || stats.StoreFundedDiscounts[0].AmountMinor != 300 {
		t.Fatalf("store-a funded 300 of bob's paid order: %v %v", stats.GetStoreFundedDiscounts(), err)
	}
}

// TestSaleDayAcrossReplicas: a platform coupon limited to 100 checkouts
// and 1,000 concurrent checkouts through two buyer-svc replicas: exactly
// 100 orders hold it, every other checkout is refused with
// COUPON_EXHAUSTED and keeps no stock; one buyer's 20 concurrent
// checkouts of a coupon of one use per buyer redeem once. Ten holders
// cancel: ten more checkouts get it. The coupon ends: cancelling gives
// nothing back, and no checkout gets it.
func TestSaleDayAcrossReplicas(t *testing.T) {
	s := startSystem(t, 2, nil)
	lamp := s.product("store-a", "Lamp", 3000, 500, 100000)
	admin := sellerv1.NewCouponAdminServiceClient(dial(t, s.sellers[0].InternalGRPCAddr()))
	adminCtx := as(s.token(auth.RoleAdmin, "marketing-1"))
	now := time.Now()
	coupon := func(code string, limit, perBuyer int64) *orderv1.Coupon {
		r, err := admin.CreatePlatformCoupon(adminCtx, &sellerv1.CreatePlatformCouponRequest{Coupon: &orderv1.Coupon{
			Code: code, Kind: orderv1.CouponKind_COUPON_KIND_AMOUNT_OFF, Amount: usd(500), StartsAt: timestamppb.New(now.Add(-time.Minute)),
			EndsAt: timestamppb.New(now.Add(time.Hour)), RedemptionLimit: limit, PerBuyerLimit: perBuyer}})
		if err != nil {
			t.Fatal(err)
		}
		return r.Coupon
	}
	clients := []buyerv1.BuyerServiceClient{buyerv1.NewBuyerServiceClient(dial(t, s.buyers[0].GRPCAddr())),
		buyerv1.NewBuyerServiceClient(dial(t, s.buyers[1].GRPCAddr()))}
	type result struct {
		order  *orderv1.Order
		reason string
		err    error
	}
	rush := func(n int, buyer func(i int) string, code string) []result {
		out := make([]result, n)
		sem := make(chan struct{}, 48)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				r, err := clients[i%2].Checkout(as(s.token(auth.RoleBuyer, buyer(i))), &buyerv1.CheckoutRequest{
					Items: []*buyerv1.CheckoutItem{{ProductId: lamp.Id, Quantity: 1}}, PlatformCoupon: code})
				if err != nil {
					out[i] = result{reason: reasonOf(err).Reason, err: err}
					return
				}
				out[i] = result{order: r.Orders[0]}
			}()
		}
		wg.Wait()
		return out
	}
	count := func(rs []result) (held int, reasons map[string]int) {
		reasons = map[string]int{}
		for _, r := range rs {
			if r.order != nil {
				held++
			} else {
				reasons[r.reason]++
			}
		}
		return held, reasons
	}
	use := func(c *orderv1.Coupon) *orderv1.CouponUse {
		r, err := admin.GetCouponReport(adminCtx, &sellerv1.GetCouponReportRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range r.Coupons {
			if u.Coupon.Id == c.Id {
				return u
			}
		}
		t.Fatalf("coupon %s not in the report", c.Code)
		return nil
	}

	hot := coupon("HOT100", 100, 0)
	rs := rush(1000, func(i int) string { return fmt.Sprintf("buyer-%d", i) }, "HOT100")
	if held, reasons := count(rs); held != 100 || reasons["COUPON_EXHAUSTED"] != 900 {
		t.Fatalf("1,000 checkouts of a coupon of 100: %d held it, refusals %v", held, reasons)
	}
	if u := use(hot); u.Reserved != 100 {
		t.Fatalf("report: %v", u)
	}
	if got := s.stock(lamp); got != 100000-100 {
		t.Fatalf("stock %d: refused checkouts kept stock", got)
	}

	once := coupon("ONCE", 0, 1)
	if held, reasons := count(rush(20, func(int) string { return "mallory" }, "ONCE")); held != 1 || reasons["COUPON_PER_BUYER"] != 19 {
		t.Fatalf("one buyer's 20 checkouts of a coupon of one use each: %d held it, refusals %v", held, reasons)
	}
	if u := use(once); u.Reserved != 1 {
		t.Fatalf("report: %v", u)
	}

	// Ten holders cancel: ten more get it, the rest are refused.
	var holders []result
	for _, r := range rs {
		if r.order != nil {
			holders = append(holders, r)
		}
	}
	for _, h := range holders[:10] {
		if _, err := s.buyer.CancelOrder(as(s.token(auth.RoleBuyer, h.order.BuyerId)), &buyerv1.CancelOrderRequest{OrderId: h.order.Id,
			Reason: "changed my mind"}); err != nil {
			t.Fatal(err)
		}
	}
	if held, reasons := count(rush(50, func(i int) string { return fmt.Sprintf("late-%d", i) }, "HOT100")); held != 10 || reasons["COUPON_EXHAUSTED"] != 40 {
		t.Fatalf("after ten cancellations: %d held it, refusals %v", held, reasons)
	}

	// The platform ends the coupon early: a cancellation gives nothing
	// back, and nobody gets it.
	hot.EndsAt = timestamppb.New(time.Now().Add(time.Second))
	if _, err := admin.UpdatePlatformCoupon(adminCtx, &sellerv1.UpdatePlatformCouponRequest{Coupon: hot}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(hot.EndsAt.AsTime()))
	h := holders[10]
	if _, err := s.buyer.CancelOrder(as(s.token(auth.RoleBuyer, h.order.BuyerId)), &buyerv1.CancelOrderRequest{OrderId: h.order.Id,
		Reason: "changed my mind"}); err != nil {
		t.Fatal(err)
	}
	if u := use(hot); u.Lapsed != 1 || u.Released != 10 || u.Reserved != 99 {
		t.Fatalf("after the end: %v", u)
	}
	if held, reasons := count(rush(5, func(i int) string { return fmt.Sprintf("after-%d", i) }, "HOT100")); held != 0 || reasons["COUPON_NOT_APPLICABLE"] != 5 {
		t.Fatalf("checkouts of an ended coupon: %d held it, refusals %v", held, reasons)
	}
}
