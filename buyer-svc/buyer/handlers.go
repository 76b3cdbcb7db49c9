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
	"github.com/souk-dev/souk/internal/payment"
	"github.com/souk-dev/souk/internal/postgres"
	"github.com/souk-dev/souk/internal/protoconv"
)

const (
	// payLockWait is how long a payment waits for another operation on the
	// order (a price adjustment, a retry of itself) to let go of the lock.
	payLockWait = 2 * time.Second
	// providerTimeout bounds the provider call and the write-back, which
	// run on even if the buyer hangs up: an open attempt must be closed.
	providerTimeout = 30 * time.Second
)

// buyerService implements BuyerService for the buyer in each call's token.
type buyerService struct {
	buyerv1.UnimplementedBuyerServiceServer
	deps     *app.Deps
	catalog  sellerv1.CatalogServiceClient
	provider payment.Provider
	window   time.Duration
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

// errReplay says a payment request repeats an earlier one with its key.
var errReplay = errors.New("replayed payment request")

// PayOrder charges the order's current total. It holds the order's lock
// across the provider call, and the version read when the attempt opened
// is the fencing token of the write-back: if the order changed meanwhile,
// or the lock was lost, the charge is voided.
func (s *buyerService) PayOrder(ctx context.Context, req *buyerv1.PayOrderRequest) (*buyerv1.PayOrderResponse, error) {
	buyer := buyerID(ctx)
	card := payment.Card{Number: req.Card.Number, ExpMonth: int(req.Card.ExpMonth), ExpYear: int(req.Card.ExpYear), CVC: req.Card.Cvc}
	expected := protoconv.FromMoney(req.ExpectedTotal)
	attempt := order.Attempt{
		ID: uuid.NewString(), IdempotencyKey: req.IdempotencyKey, Method: "card",
		CardBrand: payment.Brand(card.Number), CardLast4: payment.Last4(card.Number),
		Fingerprint: fmt.Sprintf("card|%d|%s|%s|%s|%02d/%d", expected.Amount, expected.Currency,
			payment.Brand(card.Number), payment.Last4(card.Number), card.ExpMonth, card.ExpYear),
	}
	lk, err := s.deps.Locker.Obtain(ctx, req.OrderId, payLockWait)
	if err != nil {
		return nil, err
	}
	defer lk.Release(ctx)

	var prev order.Attempt
	o, err := s.update(ctx, buyer, req.OrderId, func(o *order.Order) error {
		if a, ok := o.AttemptByKey(req.IdempotencyKey); ok && a.Fingerprint == attempt.Fingerprint {
			prev = a
			return errReplay
		}
		return o.BeginPayment(s.deps.Now(), expected, attempt)
	})
	if errors.Is(err, errReplay) {
		if o, err = s.deps.DB.Get(ctx, req.OrderId); err != nil {
			return nil, err
		}
		return &buyerv1.PayOrderResponse{Order: protoconv.Order(o, true), Attempt: protoconv.Attempt(prev)}, nil
	}
	if err != nil {
		return nil, err
	}

	// From here on the attempt is open and must be closed, whether or not
	// the buyer is still waiting.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), providerTimeout)
	defer cancel()
	fence := o.Version()
	out, perr := s.provider.Charge(ctx, payment.ChargeRequest{
		IdempotencyKey: attempt.ID, Amount: o.Total(), Card: card, Description: "Souk order " + o.ID(),
	})
	if perr != nil {
		s.deps.Log.WarnContext(ctx, "payment provider error", "order_id", o.ID(), "err", perr)
		return s.failAttempt(ctx, buyer, o.ID(), attempt.ID, order.Decline{
			Code: "processing_error", Message: "The payment could not be processed. Try again in a moment.",
		})
	}
	o, err = s.update(ctx, buyer, o.ID(), func(o *order.Order) error {
		if o.Version() != fence || lk.Lost() {
			return fmt.Errorf("%w: order %s changed during the payment", order.ErrConflict, o.ID())
		}
		return o.CompletePayment(s.deps.Now(), attempt.ID, out)
	})
	if err != nil {
		if out.Approved {
			if verr := s.provider.Void(ctx, out.ProviderRef); verr != nil {
				s.deps.Log.ErrorContext(ctx, "void charge", "order_id", req.OrderId, "ref", out.ProviderRef, "err", verr)
			}
		}
		if _, ferr := s.failAttempt(ctx, buyer, req.OrderId, attempt.ID, order.Decline{
			Code: "voided", Message: "The payment was cancelled because the order changed. Try again.",
		}); ferr != nil {
			s.deps.Log.ErrorContext(ctx, "close voided attempt", "order_id", req.OrderId, "err", ferr)
		}
		return nil, err
	}
	a, _ := o.Attempt(attempt.ID)
	return &buyerv1.PayOrderResponse{Order: protoconv.Order(o, true), Attempt: protoconv.Attempt(a)}, nil
}

// failAttempt closes an open attempt as failed and answers with it.
func (s *buyerService) failAttempt(ctx context.Context, buyer, orderID, attemptID string, d order.Decline) (*buyerv1.PayOrderResponse, error) {
	o, err := s.update(ctx, buyer, orderID, func(o *order.Order) error { return o.FailPayment(s.deps.Now(), attemptID, d) })
	if err != nil {
		return nil, err
	}
	a, _ := o.Attempt(attemptID)
	return &buyerv1.PayOrderResponse{Order: protoconv.Order(o, true), Attempt: protoconv.Attempt(a)}, nil
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
