package buyer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/protoconv"
)

// namedCoupons are the coupon codes a checkout names: the platform's and a
// store's per store.
type namedCoupons struct {
	platform string
	stores   map[string]string
	// currency is the buyer's, if not the stores' (it is no coupon, but
	// makes another checkout just as much), and instalments whether the
	// buyer pays in them where the products allow.
	currency    string
	instalments bool
}

// parts are the codes (and currency) for the checkout's fingerprint: a
// retry with other coupons is another checkout.
func (n namedCoupons) parts() []string {
	// Nothing for a checkout that names none: its fingerprint stays what
	// it was before coupons and currencies (a retry across an upgrade).
	var out []string
	if n.platform != "" {
		out = append(out, "platform:"+n.platform)
	}
	if n.currency != "" {
		out = append(out, "currency:"+n.currency)
	}
	if n.instalments {
		out = append(out, "instalments")
	}
	sellers := make([]string, 0, len(n.stores))
	for s := range n.stores {
		sellers = append(sellers, s)
	}
	sort.Strings(sellers)
	for _, s := range sellers {
		out = append(out, "store:"+s+":"+n.stores[s])
	}
	return out
}

// cartCoupons are a checkout's coupons as their issuers defined them.
type cartCoupons struct {
	platform *order.Coupon
	stores   map[string]*order.Coupon
}

// resolveCoupons reads the coupons a checkout names and refuses one that
// cannot be used now (paused, not started, ended). A code no coupon has
// is NOT_FOUND naming the field. The limits are the checkout
// transaction's to decide.
func (s *buyerService) resolveCoupons(ctx context.Context, n namedCoupons) (cartCoupons, error) {
	var out cartCoupons
	now := s.deps.Now()
	read := func(field, issuer, code string) (*order.Coupon, error) {
		c, err := s.deps.DB.CouponByCode(ctx, issuer, code)
		if errors.Is(err, order.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s: no coupon %q", order.ErrNotFound, field, code)
		} else if err != nil {
			return nil, err
		}
		if err := c.Usable(now); err != nil {
			return nil, err
		}
		return &c, nil
	}
	if n.platform != "" {
		c, err := read("platform_coupon", "", n.platform)
		if err != nil {
			return out, err
		}
		out.platform = c
	}
	for seller, code := range n.stores {
		c, err := read("store_coupons["+seller+"]", seller, code)
		if err != nil {
			return out, err
		}
		if out.stores == nil {
			out.stores = map[string]*order.Coupon{}
		}
		out.stores[seller] = c
	}
	return out, nil
}

// apply applies the coupons to a checkout's orders (groups by seller, in
// sellers' order): each line gets its discounts, each order the coupons
// its lines use.
func (c cartCoupons) apply(sellers []string, groups map[string]*order.NewOrderParams) error {
	if c.platform == nil && len(c.stores) == 0 {
		return nil
	}
	cart := make([]order.CartOrder, len(sellers))
	for i, sid := range sellers {
		g := groups[sid]
		cart[i] = order.CartOrder{ID: g.ID, SellerID: sid, Currency: g.Currency, Items: g.Items}
	}
	applied, err := order.ApplyCoupons(cart, c.stores, c.platform)
	if err != nil {
		return err
	}
	for i, sid := range sellers {
		g := groups[sid]
		items := slices.Clone(g.Items)
		for j := range items {
			items[j].Discounts = applied.Lines[i][j]
			for _, d := range items[j].Discounts {
				if !slices.ContainsFunc(g.Coupons, func(c order.Coupon) bool { return c.ID == d.CouponID }) {
					g.Coupons = append(g.Coupons, *c.byID(d.CouponID))
				}
			}
		}
		g.Items = items
	}
	return nil
}

func (c cartCoupons) byID(id string) *order.Coupon {
	if c.platform != nil && c.platform.ID == id {
		return c.platform
	}
	for _, s := range c.stores {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// PreviewCheckout prices a cart with its coupons as Checkout would: the
// same orders, lines and discounts, reserving neither stock nor coupons.
// A coupon the checkout would be refused (its limits, the buyer's uses, a
// grant) is refused here too, as it stands now.
func (s *buyerService) PreviewCheckout(ctx context.Context, req *buyerv1.PreviewCheckoutRequest) (*buyerv1.PreviewCheckoutResponse, error) {
	buyer := buyerID(ctx)
	named := namedCoupons{platform: req.PlatformCoupon, stores: req.StoreCoupons, currency: req.Currency, instalments: req.PayInInstalments}
	coupons, err := s.resolveCoupons(ctx, named)
	if err != nil {
		return nil, err
	}
	items := make([]*sellerv1.StockItem, len(req.Items))
	for i, it := range req.Items {
		items[i] = &sellerv1.StockItem{ProductId: it.ProductId, Quantity: it.Quantity}
	}
	res, err := s.catalog.QuoteProducts(ctx, &sellerv1.QuoteProductsRequest{Items: items})
	if err != nil {
		return nil, err
	}
	orders, err := s.buildOrders(ctx, buyer, "preview", req.Items, res.Products, coupons, named)
	if err != nil {
		return nil, err
	}
	resp := &buyerv1.PreviewCheckoutResponse{}
	checked := map[string]bool{}
	for _, o := range orders {
		for _, h := range o.Coupons() {
			if checked[h.Coupon.ID] {
				continue
			}
			checked[h.Coupon.ID] = true
			if err := s.deps.DB.CouponRefusal(ctx, h.Coupon.ID, buyer); err != nil {
				return nil, err
			}
		}
		cur := o.Currency()
		resp.Orders = append(resp.Orders, &buyerv1.PreviewOrder{SellerId: o.SellerID(), Items: protoconv.LineItems(o.Items(), cur),
			ShippingFee: protoconv.Money(o.ShippingFee(), cur), ItemsTotal: protoconv.Money(o.ItemsTotal(), cur),
			CouponDiscount: protoconv.Money(o.CouponDiscount(), cur), Total: protoconv.Money(o.Total().Amount, cur),
			Presentment: protoconv.Presentment(o), Schedule: protoconv.Schedule(o), AmountDue: protoconv.Money(o.Due().Amount, o.Due().Currency)})
	}
	return resp, nil
}

// ListMyCoupons lists the platform coupons granted to the buyer.
func (s *buyerService) ListMyCoupons(ctx context.Context, _ *buyerv1.ListMyCouponsRequest) (*buyerv1.ListMyCouponsResponse, error) {
	cs, err := s.deps.DB.GrantedCoupons(ctx, buyerID(ctx), s.deps.Now())
	if err != nil {
		return nil, err
	}
	resp := &buyerv1.ListMyCouponsResponse{}
	for _, c := range cs {
		resp.Coupons = append(resp.Coupons, &buyerv1.MyCoupon{Coupon: protoconv.Coupon(c.Coupon, 0), Uses: c.Uses})
	}
	return resp, nil
}
