package buyer

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/payment"
	"github.com/souk-dev/souk/internal/postgres"
	"github.com/souk-dev/souk/internal/protoconv"
)

// buyerService implements BuyerService for the buyer in each call's token.
type buyerService struct {
	buyerv1.UnimplementedBuyerServiceServer
	deps     *app.Deps
	catalog  sellerv1.CatalogServiceClient
	provider payment.Provider
	window   time.Duration
	// webhookSecret verifies the provider's signed events.
	webhookSecret []byte
	// crashAfterAuthorize is fault injection for tests: the process exits
	// between the provider's approval and recording it.
	crashAfterAuthorize bool
}

func buyerID(ctx context.Context) string {
	p, _ := auth.FromContext(ctx)
	return p.Subject
}

func ownedBy(o *order.Order, buyer string) error {
	if o.BuyerID() != buyer {
		return fmt.Errorf("%w: order %s", order.ErrNotFound, o.ID())
	}
	return nil
}

// Checkout reserves stock through seller-svc's CatalogService and creates
// one order per seller in one transaction. If the orders cannot be stored
// the reservation is released again.
func (s *buyerService) Checkout(ctx context.Context, req *buyerv1.CheckoutRequest) (*buyerv1.CheckoutResponse, error) {
	buyer := buyerID(ctx)
	checkoutID := uuid.NewString()
	items := make([]*sellerv1.StockItem, len(req.Items))
	seen := map[string]bool{}
	for i, it := range req.Items {
		if seen[it.ProductId] {
			return nil, fmt.Errorf("%w: product %s appears twice in the cart", order.ErrInvalid, it.ProductId)
		}
		seen[it.ProductId] = true
		items[i] = &sellerv1.StockItem{ProductId: it.ProductId, Quantity: it.Quantity}
	}
	res, err := s.catalog.ReserveStock(ctx, &sellerv1.ReserveStockRequest{CheckoutId: checkoutID, Items: items})
	if err != nil {
		return nil, err
	}
	orders, err := s.buildOrders(buyer, checkoutID, req.Items, res.Products)
	if err == nil {
		err = s.deps.DB.CreateOrders(ctx, orders)
	}
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, rerr := s.catalog.ReleaseStock(rctx, &sellerv1.ReleaseStockRequest{CheckoutId: checkoutID}); rerr != nil {
			s.deps.Log.ErrorContext(ctx, "release stock after failed checkout", "checkout_id", checkoutID, "err", rerr)
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

// buildOrders groups the cart by seller. An order's shipping fee is the
// highest of its products' fees, and its handling time the longest.
func (s *buyerService) buildOrders(buyer, checkoutID string, cart []*buyerv1.CheckoutItem, products []*sellerv1.Product) ([]*order.Order, error) {
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
				ID: uuid.NewString(), CheckoutID: checkoutID, BuyerID: buyer, SellerID: p.SellerId,
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

// GetOrder returns one of the caller's orders; another buyer's is not found.
func (s *buyerService) GetOrder(ctx context.Context, req *buyerv1.GetOrderRequest) (*buyerv1.GetOrderResponse, error) {
	o, err := s.deps.DB.Get(ctx, req.OrderId)
	if err != nil {
		return nil, err
	}
	if err := ownedBy(o, buyerID(ctx)); err != nil {
		return nil, err
	}
	return &buyerv1.GetOrderResponse{Order: protoconv.Order(o, true)}, nil
}

// update applies fn to one of the caller's orders and arms its deadlines.
func (s *buyerService) update(ctx context.Context, buyer, id string, fn func(*order.Order) error) (*order.Order, error) {
	o, err := s.deps.DB.Update(ctx, id, func(o *order.Order) error {
		if err := ownedBy(o, buyer); err != nil {
			return err
		}
		return fn(o)
	})
	if err != nil {
		return nil, err
	}
	s.deps.Changed(ctx, o)
	return o, nil
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
