// Package catalog is the domain of sellers' products and their stock. Like
// the order domain it is pure: the store keeps products, seller-svc serves them.
package catalog

import (
	"errors"
	"fmt"
	"time"

	"github.com/souk-dev/souk/internal/order"
)

// The catalog's sentinel errors, mapped to gRPC codes by the server.
var (
	// ErrNotFound means the product does not exist, or the caller may not see it.
	ErrNotFound = errors.New("product not found")
	// ErrOutOfStock means a reservation asked for more units than are left.
	ErrOutOfStock = errors.New("out of stock")
)

// Product is an item a seller offers.
type Product struct {
	ID           string
	SellerID     string
	Title        string
	Currency     string
	Price        int64
	ShippingFee  int64
	Stock        int64
	HandlingDays int
	// ProtectionDays is how long buyer protection lasts after shipping.
	ProtectionDays int
	// Plan is how it may be paid in parts; nil: at once.
	Plan      *order.Plan
	CreatedAt time.Time
	UpdatedAt time.Time
}

// DefaultProtectionDays is a product's buyer protection unless its seller
// sets one: the same as an order's whose products set none.
const DefaultProtectionDays = order.DefaultProtectionDays

// Validate checks the rules every stored product keeps.
func (p Product) Validate() error {
	switch {
	case p.ID == "" || p.SellerID == "":
		return fmt.Errorf("%w: product and seller ids are required", order.ErrInvalid)
	case p.Title == "":
		return fmt.Errorf("%w: a product needs a title", order.ErrInvalid)
	case len(p.Currency) != 3:
		return fmt.Errorf("%w: currency %q is not an ISO 4217 code", order.ErrInvalid, p.Currency)
	case p.Price < 0 || p.Price > order.MaxAmount, p.ShippingFee < 0 || p.ShippingFee > order.MaxAmount:
		return fmt.Errorf("%w: price and shipping fee must be between 0 and %d minor units", order.ErrInvalid, order.MaxAmount)
	case p.Stock < 0:
		return fmt.Errorf("%w: stock cannot be negative", order.ErrInvalid)
	case p.HandlingDays < 1 || p.HandlingDays > 30:
		return fmt.Errorf("%w: handling time must be 1 to 30 days", order.ErrInvalid)
	case p.ProtectionDays < 15 || p.ProtectionDays > 180:
		return fmt.Errorf("%w: buyer protection must be 15 to 180 days", order.ErrInvalid)
	}
	if p.Plan != nil {
		if err := p.Plan.Validate(); err != nil {
			return err
		}
		if p.Plan.DepositAmount > p.Price {
			return fmt.Errorf("%w: the deposit is more than the price", order.ErrInvalid)
		}
	}
	return nil
}

// Update is a seller's change to a product; nil fields stay as they are.
type Update struct {
	Title          *string
	Price          *order.Money
	ShippingFee    *order.Money
	Stock          *int64
	HandlingDays   *int
	ProtectionDays *int
	// Plan, if set, replaces the payment plan; ClearPlan removes it.
	Plan      *order.Plan
	ClearPlan bool
}

// Apply changes p by u at now. A new price must keep the product's currency.
func (p *Product) Apply(now time.Time, u Update) error {
	next := *p
	if u.Title != nil {
		next.Title = *u.Title
	}
	for _, m := range []*order.Money{u.Price, u.ShippingFee} {
		if m != nil && m.Currency != p.Currency {
			return fmt.Errorf("%w: the product is priced in %s, not %s", order.ErrInvalid, p.Currency, m.Currency)
		}
	}
	if u.Price != nil {
		next.Price = u.Price.Amount
	}
	if u.ShippingFee != nil {
		next.ShippingFee = u.ShippingFee.Amount
	}
	if u.Stock != nil {
		next.Stock = *u.Stock
	}
	if u.HandlingDays != nil {
		next.HandlingDays = *u.HandlingDays
	}
	if u.ProtectionDays != nil {
		next.ProtectionDays = *u.ProtectionDays
	}
	switch {
	case u.ClearPlan:
		next.Plan = nil
	case u.Plan != nil:
		plan := *u.Plan
		next.Plan = &plan
	}
	next.UpdatedAt = now
	if err := next.Validate(); err != nil {
		return err
	}
	*p = next
	return nil
}
