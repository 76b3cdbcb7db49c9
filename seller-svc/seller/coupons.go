package seller

import (
	"context"

	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/protoconv"
)

// CreateCoupon creates a coupon of the caller's store, funded by the store.
func (s *sellerService) CreateCoupon(ctx context.Context, req *sellerv1.CreateCouponRequest) (*sellerv1.CreateCouponResponse, error) {
	seller := sellerID(ctx)
	c, err := createCoupon(ctx, s.deps, protoconv.FromCoupon(req.Coupon, order.CouponStore, seller))
	if err != nil {
		return nil, err
	}
	return &sellerv1.CreateCouponResponse{Coupon: c}, nil
}

// UpdateCoupon changes a coupon of the caller's store; another store's is
// not found.
func (s *sellerService) UpdateCoupon(ctx context.Context, req *sellerv1.UpdateCouponRequest) (*sellerv1.UpdateCouponResponse, error) {
	seller := sellerID(ctx)
	c, err := updateCoupon(ctx, s.deps, seller, protoconv.FromCoupon(req.Coupon, order.CouponStore, seller))
	if err != nil {
		return nil, err
	}
	return &sellerv1.UpdateCouponResponse{Coupon: c}, nil
}

// ListCoupons lists the store's coupons with their use.
func (s *sellerService) ListCoupons(ctx context.Context, _ *sellerv1.ListCouponsRequest) (*sellerv1.ListCouponsResponse, error) {
	uses, err := s.deps.DB.CouponUses(ctx, sellerID(ctx))
	if err != nil {
		return nil, err
	}
	return &sellerv1.ListCouponsResponse{Coupons: protoconv.CouponUses(uses)}, nil
}

func createCoupon(ctx context.Context, deps *app.Deps, c order.Coupon) (*orderv1.Coupon, error) {
	id, err := deps.DB.CreateCoupon(ctx, c)
	if err != nil {
		return nil, err
	}
	c.ID = id
	return protoconv.Coupon(c, 0), nil
}

func updateCoupon(ctx context.Context, deps *app.Deps, issuer string, c order.Coupon) (*orderv1.Coupon, error) {
	stored, err := deps.DB.UpdateCoupon(ctx, c.ID, issuer, func(cur *order.Coupon) error {
		*cur = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	return protoconv.Coupon(stored.Coupon, stored.Used), nil
}

// couponAdmin implements CouponAdminService for the platform's admins.
type couponAdmin struct {
	sellerv1.UnimplementedCouponAdminServiceServer
	deps *app.Deps
}

// CreatePlatformCoupon creates a coupon the platform funds.
func (a *couponAdmin) CreatePlatformCoupon(ctx context.Context, req *sellerv1.CreatePlatformCouponRequest) (*sellerv1.CreatePlatformCouponResponse, error) {
	c, err := createCoupon(ctx, a.deps, protoconv.FromCoupon(req.Coupon, order.CouponPlatform, ""))
	if err != nil {
		return nil, err
	}
	return &sellerv1.CreatePlatformCouponResponse{Coupon: c}, nil
}

// UpdatePlatformCoupon changes a platform coupon.
func (a *couponAdmin) UpdatePlatformCoupon(ctx context.Context, req *sellerv1.UpdatePlatformCouponRequest) (*sellerv1.UpdatePlatformCouponResponse, error) {
	c, err := updateCoupon(ctx, a.deps, "", protoconv.FromCoupon(req.Coupon, order.CouponPlatform, ""))
	if err != nil {
		return nil, err
	}
	return &sellerv1.UpdatePlatformCouponResponse{Coupon: c}, nil
}

// GrantCoupon grants a platform coupon to a buyer.
func (a *couponAdmin) GrantCoupon(ctx context.Context, req *sellerv1.GrantCouponRequest) (*sellerv1.GrantCouponResponse, error) {
	if err := a.deps.DB.GrantCoupon(ctx, req.CouponId, req.BuyerId); err != nil {
		return nil, err
	}
	return &sellerv1.GrantCouponResponse{}, nil
}

// GetCouponReport lists each platform coupon's use and cost.
func (a *couponAdmin) GetCouponReport(ctx context.Context, _ *sellerv1.GetCouponReportRequest) (*sellerv1.GetCouponReportResponse, error) {
	uses, err := a.deps.DB.CouponUses(ctx, "")
	if err != nil {
		return nil, err
	}
	return &sellerv1.GetCouponReportResponse{Coupons: protoconv.CouponUses(uses)}, nil
}
