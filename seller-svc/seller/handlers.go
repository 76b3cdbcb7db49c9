package seller

import (
	"context"
	"errors"
	"fmt"
	"time"

	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/catalog"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/postgres"
	"github.com/souk-dev/souk/internal/protoconv"
)

// adjustLockWait is how long a price adjustment waits for a payment that
// holds the order's lock before it is refused.
const adjustLockWait = 2 * time.Second

// sellerService implements SellerService for the seller in each call's token.
type sellerService struct {
	sellerv1.UnimplementedSellerServiceServer
	deps *app.Deps
}

func sellerID(ctx context.Context) string {
	p, _ := auth.FromContext(ctx)
	return p.Subject
}

// CreateProduct adds a product to the caller's catalog.
func (s *sellerService) CreateProduct(ctx context.Context, req *sellerv1.CreateProductRequest) (*sellerv1.CreateProductResponse, error) {
	if req.Price.Currency != req.ShippingFee.Currency {
		return nil, fmt.Errorf("%w: price and shipping fee must be in one currency", order.ErrInvalid)
	}
	now := s.deps.Now()
	p := catalog.Product{
		ID: order.NewIDAt(sellerID(ctx), now), SellerID: sellerID(ctx), Title: req.Title, Currency: req.Price.Currency,
		Price: req.Price.AmountMinor, ShippingFee: req.ShippingFee.AmountMinor, Stock: req.Stock,
		HandlingDays: int(req.HandlingDays), ProtectionDays: catalog.DefaultProtectionDays, CreatedAt: now, UpdatedAt: now,
		Plan: protoconv.FromPlan(req.PaymentPlan),
	}
	if req.ProtectionDays != nil {
		p.ProtectionDays = int(*req.ProtectionDays)
	}
	// An id another product of the store has (order.NewIDAt): a new one.
	for try := 1; ; try++ {
		err := s.deps.DB.CreateProduct(ctx, p)
		if err == nil {
			break
		}
		if !errors.Is(err, postgres.ErrIDTaken) || try == order.IDTries {
			return nil, err
		}
		p.ID = order.NewIDAt(sellerID(ctx), now)
	}
	return &sellerv1.CreateProductResponse{Product: protoconv.Product(p)}, nil
}

// UpdateProduct changes the fields the request sets.
func (s *sellerService) UpdateProduct(ctx context.Context, req *sellerv1.UpdateProductRequest) (*sellerv1.UpdateProductResponse, error) {
	u := catalog.Update{Title: req.Title, Stock: req.Stock, Plan: protoconv.FromPlan(req.PaymentPlan), ClearPlan: req.ClearPaymentPlan}
	if req.HandlingDays != nil {
		d := int(*req.HandlingDays)
		u.HandlingDays = &d
	}
	if req.ProtectionDays != nil {
		d := int(*req.ProtectionDays)
		u.ProtectionDays = &d
	}
	if req.Price != nil {
		m := protoconv.FromMoney(req.Price)
		u.Price = &m
	}
	if req.ShippingFee != nil {
		m := protoconv.FromMoney(req.ShippingFee)
		u.ShippingFee = &m
	}
	p, err := s.deps.DB.UpdateProduct(ctx, req.ProductId, sellerID(ctx), func(p *catalog.Product) error {
		return p.Apply(s.deps.Now(), u)
	})
	if err != nil {
		return nil, err
	}
	return &sellerv1.UpdateProductResponse{Product: protoconv.Product(p)}, nil
}

// ListProducts pages the caller's products.
func (s *sellerService) ListProducts(ctx context.Context, req *sellerv1.ListProductsRequest) (*sellerv1.ListProductsResponse, error) {
	ps, next, err := s.deps.DB.ListProducts(ctx, sellerID(ctx), protoconv.PageSize(req.PageSize, 50), req.PageToken)
	if err != nil {
		return nil, err
	}
	resp := &sellerv1.ListProductsResponse{NextPageToken: next}
	for _, p := range ps {
		resp.Products = append(resp.Products, protoconv.Product(p))
	}
	return resp, nil
}

// ListOrders pages the caller's store's orders.
func (s *sellerService) ListOrders(ctx context.Context, req *sellerv1.ListOrdersRequest) (*sellerv1.ListOrdersResponse, error) {
	q := protoconv.ListQuery(postgres.Seller, sellerID(ctx), req)
	q.OpenCancellation = req.CancellationRequested
	os, next, err := s.deps.DB.List(ctx, q)
	if err != nil {
		return nil, err
	}
	return &sellerv1.ListOrdersResponse{Orders: protoconv.SellerOrders(os), NextPageToken: next}, nil
}

// owned reads one of the store's orders; another store's is not found.
func (s *sellerService) owned(ctx context.Context, id string) (*order.Order, error) {
	o, err := s.deps.DB.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := o.CheckParty(order.PartySeller, sellerID(ctx)); err != nil {
		return nil, err
	}
	return o, nil
}

// GetOrder returns one of the store's orders; another store's is not found.
func (s *sellerService) GetOrder(ctx context.Context, req *sellerv1.GetOrderRequest) (*sellerv1.GetOrderResponse, error) {
	o, err := s.owned(ctx, req.OrderId)
	if err != nil {
		return nil, err
	}
	return &sellerv1.GetOrderResponse{Order: protoconv.SellerOrder(o)}, nil
}

// update applies fn to one of the caller's orders and arms its deadlines.
func (s *sellerService) update(ctx context.Context, id string, fn func(*order.Order) error) (*order.Order, error) {
	o, err := s.deps.DB.Update(ctx, id, order.AsParty(order.PartySeller, sellerID(ctx), fn))
	return s.deps.Stored(ctx, o, err)
}

// locked applies fn to one of the caller's unpaid orders under the order's
// lock, so that a price change waits for, or is refused during, a payment
// instead of racing it. Ownership is checked first: another store's seller
// must never hold the lock. The order read for that check is the one the
// change is made from and written at its version, in one more round trip;
// if it moved on meanwhile (a payment the lock waited for), the change is
// made again on the order as it is (UpdateSeen).
func (s *sellerService) locked(ctx context.Context, id string, fn func(*order.Order) error) (*order.Order, error) {
	seller := sellerID(ctx)
	seen, err := s.deps.DB.See(ctx, id)
	if err != nil {
		return nil, err
	} else if seen.SellerID() != seller {
		return nil, order.NotYours(id)
	}
	lk, err := s.deps.Locker.Obtain(ctx, id, adjustLockWait)
	if err != nil {
		return nil, err
	}
	defer lk.Release(ctx)
	o, err := s.deps.DB.UpdateSeen(ctx, seen, order.AsParty(order.PartySeller, seller, fn))
	return s.deps.Stored(ctx, o, err)
}

// AnswerOffer accepts or declines the buyer's open offer, under the order's lock.
func (s *sellerService) AnswerOffer(ctx context.Context, req *sellerv1.AnswerOfferRequest) (*sellerv1.AnswerOfferResponse, error) {
	o, err := s.locked(ctx, req.OrderId, func(o *order.Order) error { return o.AnswerOffer(s.deps.Now(), req.Accept, req.Note) })
	if err != nil {
		return nil, err
	}
	return &sellerv1.AnswerOfferResponse{Order: protoconv.SellerOrder(o)}, nil
}

// AdjustOrderPrice reprices an unpaid order, under the order's lock.
func (s *sellerService) AdjustOrderPrice(ctx context.Context, req *sellerv1.AdjustOrderPriceRequest) (*sellerv1.AdjustOrderPriceResponse, error) {
	ctx = app.WithRequestID(ctx, req.RequestId, req)
	change := order.PriceChange{UnitPrices: map[string]order.Money{}, Reason: req.Reason}
	for _, ip := range req.ItemPrices {
		if _, dup := change.UnitPrices[ip.ProductId]; dup {
			return nil, fmt.Errorf("%w: product %s is priced twice", order.ErrInvalid, ip.ProductId)
		}
		change.UnitPrices[ip.ProductId] = protoconv.FromMoney(ip.UnitPrice)
	}
	if req.ShippingFee != nil {
		m := protoconv.FromMoney(req.ShippingFee)
		change.ShippingFee = &m
	}
	o, err := s.locked(ctx, req.OrderId, func(o *order.Order) error { return o.AdjustPrice(s.deps.Now(), change) })
	if err != nil {
		return nil, err
	}
	return &sellerv1.AdjustOrderPriceResponse{Order: protoconv.SellerOrder(o)}, nil
}

// ShipOrder records the shipment of a paid order.
func (s *sellerService) ShipOrder(ctx context.Context, req *sellerv1.ShipOrderRequest) (*sellerv1.ShipOrderResponse, error) {
	ctx = app.WithRequestID(ctx, req.RequestId, req)
	o, err := s.update(ctx, req.OrderId, func(o *order.Order) error {
		return o.Ship(s.deps.Now(), order.Shipment{Carrier: req.Carrier, TrackingNumber: req.TrackingNumber, TrackingURL: req.TrackingUrl}, s.deps.Config.Policy)
	})
	if err != nil {
		return nil, err
	}
	return &sellerv1.ShipOrderResponse{Order: protoconv.SellerOrder(o)}, nil
}

// catalogService implements CatalogService for Souk's own services.
type catalogService struct {
	sellerv1.UnimplementedCatalogServiceServer
	deps *app.Deps
}

// ReserveStock takes stock for a checkout, all or nothing.
func (c *catalogService) ReserveStock(ctx context.Context, req *sellerv1.ReserveStockRequest) (*sellerv1.ReserveStockResponse, error) {
	ps, err := c.deps.DB.Reserve(ctx, req.CheckoutId, stockItems(req.Items), c.deps.Now())
	if err != nil {
		return nil, err
	}
	return &sellerv1.ReserveStockResponse{Products: products(ps)}, nil
}

// QuoteProducts prices products without reserving them.
func (c *catalogService) QuoteProducts(ctx context.Context, req *sellerv1.QuoteProductsRequest) (*sellerv1.QuoteProductsResponse, error) {
	ps, err := c.deps.DB.Quote(ctx, stockItems(req.Items))
	if err != nil {
		return nil, err
	}
	return &sellerv1.QuoteProductsResponse{Products: products(ps)}, nil
}

func stockItems(req []*sellerv1.StockItem) []postgres.StockItem {
	items := make([]postgres.StockItem, len(req))
	for i, it := range req {
		items[i] = postgres.StockItem{ProductID: it.ProductId, Quantity: it.Quantity}
	}
	return items
}

func products(ps []catalog.Product) []*sellerv1.Product {
	out := make([]*sellerv1.Product, len(ps))
	for i, p := range ps {
		out[i] = protoconv.Product(p)
	}
	return out
}

// ReleaseStock gives a checkout's reserved stock back.
func (c *catalogService) ReleaseStock(ctx context.Context, req *sellerv1.ReleaseStockRequest) (*sellerv1.ReleaseStockResponse, error) {
	n, err := c.deps.DB.Release(ctx, req.CheckoutId, req.ProductIds)
	if err != nil {
		return nil, err
	}
	return &sellerv1.ReleaseStockResponse{ReleasedUnits: n}, nil
}

// RefundItems refunds units of some of a paid order's lines.
func (s *sellerService) RefundItems(ctx context.Context, req *sellerv1.RefundItemsRequest) (*sellerv1.RefundItemsResponse, error) {
	ctx = app.WithRequestID(ctx, req.RequestId, req)
	units := make(map[string]int64, len(req.Items))
	for _, it := range req.Items {
		if _, dup := units[it.ProductId]; dup {
			return nil, &order.FieldError{Field: "items", Msg: "product " + it.ProductId + " appears twice"}
		}
		units[it.ProductId] = it.Quantity
	}
	var owed order.Money
	o, err := s.update(ctx, req.OrderId, func(o *order.Order) error {
		var err error
		owed, err = o.RefundItems(s.deps.Now(), units, req.Reason, s.deps.Config.Policy)
		return err
	})
	if err != nil {
		return nil, err
	}
	resp := &sellerv1.RefundItemsResponse{Order: protoconv.SellerOrder(o)}
	if owed.Currency != "" { // a retry answers with the order as it stands
		resp.Amount = protoconv.Money(owed.Amount, owed.Currency)
	}
	return resp, nil
}
