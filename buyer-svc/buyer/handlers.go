package buyer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/payflow"
	"github.com/souk-dev/souk/internal/postgres"
	"github.com/souk-dev/souk/internal/protoconv"
	"github.com/souk-dev/souk/internal/rates"
)

// buyerService implements BuyerService for the buyer in each call's token.
type buyerService struct {
	buyerv1.UnimplementedBuyerServiceServer
	deps    *app.Deps
	catalog sellerv1.CatalogServiceClient
	// pay runs payments: the handlers only translate.
	pay    *payflow.Service
	window time.Duration
	// webhookSecret verifies the provider's signed events.
	webhookSecret []byte
	// quoter fixes the exchange rates of orders a buyer pays in another
	// currency than the store's.
	quoter rates.Quoter
}

func buyerID(ctx context.Context) string {
	p, _ := auth.FromContext(ctx)
	return p.Subject
}

// checkoutNamespace derives a checkout's id from its buyer and idempotency key.
var checkoutNamespace = uuid.MustParse("6f1c4f5e-7d1a-4b1e-9a55-3c2f3f0a9b10")

// Checkout reserves stock through seller-svc's CatalogService and creates
// one order per seller in one transaction. If the orders cannot be stored
// the reservation is released again. With an idempotency key the
// checkout's id is derived from it, so a retry finds the orders the first
// request stored (or finishes what it started) instead of buying twice.
func (s *buyerService) Checkout(ctx context.Context, req *buyerv1.CheckoutRequest) (*buyerv1.CheckoutResponse, error) {
	buyer := buyerID(ctx)
	// A checkout's id begins with its time (UUID version 7), so that the
	// orders' key on it (orders_checkout_seller_idx) and the stock
	// reservations' are written where the day's checkouts sit; a key's
	// checkout has the id derived from the key (below), as random as it is.
	checkoutID := uuid.Must(uuid.NewV7()).String()
	items := make([]*sellerv1.StockItem, len(req.Items))
	parts := []string{"checkout"}
	seen := map[string]bool{}
	for i, it := range req.Items {
		if seen[it.ProductId] {
			return nil, fmt.Errorf("%w: product %s appears twice in the cart", order.ErrInvalid, it.ProductId)
		}
		seen[it.ProductId] = true
		items[i] = &sellerv1.StockItem{ProductId: it.ProductId, Quantity: it.Quantity}
		parts = append(parts, fmt.Sprintf("%s:%d", it.ProductId, it.Quantity))
	}
	named := namedCoupons{platform: req.PlatformCoupon, stores: req.StoreCoupons, currency: req.Currency, instalments: req.PayInInstalments}
	parts = append(parts, named.parts()...)
	if req.IdempotencyKey == "" {
		return s.checkout(ctx, buyer, checkoutID, req.Items, items, named)
	}
	fresh, err := s.deps.DB.ClaimIdempotencyKey(ctx, "checkout:"+buyer, req.IdempotencyKey, s.pay.Fingerprint(parts...), s.deps.Now())
	if err != nil {
		return nil, err
	}
	checkoutID = uuid.NewSHA1(checkoutNamespace, []byte(buyer+"\x00"+req.IdempotencyKey)).String()
	// Retries racing each other meet on the checkout id: the store replays
	// a reservation made concurrently, and the orders are stored once. A
	// key this request claimed first has no orders yet (and should a
	// forgotten key's orders exist, storing them again says so).
	if !fresh {
		if resp, err := s.storedCheckout(ctx, buyer, checkoutID); resp != nil || err != nil {
			return resp, err
		}
	}
	return s.checkout(ctx, buyer, checkoutID, req.Items, items, named)
}

// checkout reserves a cart's stock under checkoutID and stores its orders
// with the coupons named (reserved in the same transaction).
func (s *buyerService) checkout(ctx context.Context, buyer, checkoutID string, cart []*buyerv1.CheckoutItem, items []*sellerv1.StockItem,
	named namedCoupons) (*buyerv1.CheckoutResponse, error) {
	coupons, err := s.resolveCoupons(ctx, named)
	if err != nil {
		return nil, err
	}
	res, err := s.catalog.ReserveStock(ctx, &sellerv1.ReserveStockRequest{CheckoutId: checkoutID, Items: items})
	if err != nil {
		return nil, err
	}
	var orders []*order.Order
	for try := 1; ; try++ {
		orders, err = s.buildOrders(ctx, buyer, checkoutID, cart, res.Products, coupons, named)
		if err == nil {
			err = s.deps.DB.CreateOrders(ctx, orders)
		}
		// An id another order of its store has (order.NewIDAt): nothing
		// was stored, and the orders are made again with new ids.
		if !errors.Is(err, postgres.ErrIDTaken) || try == order.IDTries {
			break
		}
		s.deps.Log.WarnContext(ctx, "checkout: an order id was taken; new ids", "checkout_id", checkoutID, "err", err)
	}
	if err != nil {
		// What this request reserved goes back; a concurrent retry that
		// stored the orders first already consumed its own reservation.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, rerr := s.catalog.ReleaseStock(rctx, &sellerv1.ReleaseStockRequest{CheckoutId: checkoutID}); rerr != nil {
			s.deps.Log.ErrorContext(ctx, "release stock after failed checkout", "checkout_id", checkoutID, "err", rerr)
		}
		if errors.Is(err, postgres.ErrCheckoutExists) {
			return s.storedCheckout(ctx, buyer, checkoutID)
		}
		return nil, err
	}
	resp := &buyerv1.CheckoutResponse{CheckoutId: checkoutID}
	for _, o := range orders {
		s.deps.Changed(ctx, o)
		resp.Orders = append(resp.Orders, protoconv.Order(o, true))
	}
	return resp, nil
}

// storedCheckout answers with a checkout's stored orders (nil if it has none).
func (s *buyerService) storedCheckout(ctx context.Context, buyer, checkoutID string) (*buyerv1.CheckoutResponse, error) {
	orders, err := s.deps.DB.CheckoutOrders(ctx, buyer, checkoutID)
	if err != nil || len(orders) == 0 {
		return nil, err
	}
	resp := &buyerv1.CheckoutResponse{CheckoutId: checkoutID}
	for _, o := range orders {
		resp.Orders = append(resp.Orders, protoconv.Order(o, true))
	}
	return resp, nil
}

// buildOrders groups the cart by seller. An order's shipping fee is the
// highest of its products' fees, and its handling time and buyer
// protection the longest. An order is paid in parts when one of its
// products is sold with a deposit, or allows instalments and the buyer
// asked for them; products of one store under different plans are
// refused (they are bought in separate checkouts).
func (s *buyerService) buildOrders(ctx context.Context, buyer, checkoutID string, cart []*buyerv1.CheckoutItem, products []*sellerv1.Product,
	coupons cartCoupons, named namedCoupons) ([]*order.Order, error) {
	currency := named.currency
	if len(products) != len(cart) {
		return nil, fmt.Errorf("catalog answered %d products for %d items", len(products), len(cart))
	}
	var sellers []string
	groups := map[string]*order.NewOrderParams{}
	now := s.deps.Now()
	for i, p := range products {
		g, ok := groups[p.SellerId]
		if !ok {
			g = &order.NewOrderParams{
				ID: order.NewIDAt(p.SellerId, now), CheckoutID: checkoutID, BuyerID: buyer, SellerID: p.SellerId,
				Currency: p.Price.Currency, PaymentWindow: s.window, Now: now,
			}
			groups[p.SellerId] = g
			sellers = append(sellers, p.SellerId)
		}
		if p.Price.Currency != g.Currency {
			return nil, fmt.Errorf("%w: products of one seller must share a currency (%s, %s)", order.ErrInvalid, g.Currency, p.Price.Currency)
		}
		g.Items = append(g.Items, order.Item{ProductID: p.Id, Title: p.Title, Quantity: cart[i].Quantity, UnitPrice: p.Price.AmountMinor})
		g.ShippingFee = max(g.ShippingFee, p.ShippingFee.AmountMinor)
		g.HandlingDays = max(g.HandlingDays, int(p.HandlingDays))
		g.ProtectionDays = max(g.ProtectionDays, int(p.ProtectionDays))
		if plan := protoconv.FromPlan(p.PaymentPlan); plan != nil && (plan.Kind == order.PlanDeposit || named.instalments) {
			if g.Plan != nil && *g.Plan != *plan {
				return nil, fmt.Errorf("%w: products of store %s are sold under different payment plans; buy them in separate checkouts",
					order.ErrInvalid, p.SellerId)
			}
			g.Plan = plan
		}
	}
	if err := coupons.apply(sellers, groups); err != nil {
		return nil, err
	}
	// A buyer paying in another currency gets each order quoted in it,
	// from its store's.
	for _, sid := range sellers {
		if g := groups[sid]; currency != "" && currency != g.Currency {
			q, err := s.quoter.Quote(ctx, g.Currency, currency, now)
			if err != nil {
				return nil, err
			}
			g.Quote = &q
		}
	}
	orders := make([]*order.Order, 0, len(sellers))
	for _, sid := range sellers {
		o, err := order.New(*groups[sid])
		if err != nil {
			return nil, err
		}
		orders = append(orders, o)
	}
	return orders, nil
}

// ListOrders pages the caller's orders.
func (s *buyerService) ListOrders(ctx context.Context, req *buyerv1.ListOrdersRequest) (*buyerv1.ListOrdersResponse, error) {
	os, next, err := s.deps.DB.List(ctx, protoconv.ListQuery(postgres.Buyer, buyerID(ctx), req))
	if err != nil {
		return nil, err
	}
	return &buyerv1.ListOrdersResponse{Orders: protoconv.Orders(os), NextPageToken: next}, nil
}

// owned reads one of the caller's orders; another buyer's is not found.
func (s *buyerService) owned(ctx context.Context, id string) (*order.Order, error) {
	o, err := s.deps.DB.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := o.CheckParty(order.PartyBuyer, buyerID(ctx)); err != nil {
		return nil, err
	}
	return o, nil
}

// GetOrder returns one of the caller's orders; another buyer's is not found.
func (s *buyerService) GetOrder(ctx context.Context, req *buyerv1.GetOrderRequest) (*buyerv1.GetOrderResponse, error) {
	o, err := s.owned(ctx, req.OrderId)
	if err != nil {
		return nil, err
	}
	return &buyerv1.GetOrderResponse{Order: protoconv.Order(o, true)}, nil
}

// update applies fn to one of the caller's orders and arms its deadlines.
func (s *buyerService) update(ctx context.Context, buyer, id string, fn func(*order.Order) error) (*order.Order, error) {
	o, err := s.deps.DB.Update(ctx, id, order.AsParty(order.PartyBuyer, buyer, fn))
	return s.deps.Stored(ctx, o, err)
}

// CancelOrder cancels an unpaid order; its stock is released in the same transaction.
func (s *buyerService) CancelOrder(ctx context.Context, req *buyerv1.CancelOrderRequest) (*buyerv1.CancelOrderResponse, error) {
	buyer := buyerID(ctx)
	o, err := s.update(ctx, buyer, req.OrderId, func(o *order.Order) error { return o.Cancel(s.deps.Now(), buyer, req.Reason) })
	if err != nil {
		return nil, err
	}
	return &buyerv1.CancelOrderResponse{Order: protoconv.Order(o, true)}, nil
}

// ConfirmReceipt completes a shipped order.
func (s *buyerService) ConfirmReceipt(ctx context.Context, req *buyerv1.ConfirmReceiptRequest) (*buyerv1.ConfirmReceiptResponse, error) {
	o, err := s.update(ctx, buyerID(ctx), req.OrderId, func(o *order.Order) error { return o.ConfirmReceipt(s.deps.Now()) })
	if err != nil {
		return nil, err
	}
	return &buyerv1.ConfirmReceiptResponse{Order: protoconv.Order(o, true)}, nil
}
