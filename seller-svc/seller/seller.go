// Package seller is seller-svc: the sellers' front door (catalog, incoming
// orders, price adjustments, shipping) and the catalog service that prices
// and reserves stock for checkouts.
package seller

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/grpc"

	eventsv1 "github.com/souk-dev/souk/gen/go/souk/events/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/server"
)

// Config is seller-svc's configuration.
type Config struct {
	app.Config
	GRPCAddr string
	HTTPAddr string
	// InternalGRPCAddr and InternalHTTPAddr serve Souk's own callers: the
	// catalog and event services, the admins' dispute decisions, /metrics.
	InternalGRPCAddr string
	InternalHTTPAddr string
	// ReservationTimeout is how old a reservation without orders must be
	// before it is taken for abandoned and released.
	ReservationTimeout time.Duration
}

// LoadConfig reads the configuration from the environment (lookup, or the
// process environment when nil), failing on any bad value.
func LoadConfig(lookup func(string) (string, bool)) (Config, error) {
	e := app.NewEnv(lookup)
	c := Config{
		Config:             e.Load(),
		GRPCAddr:           e.String("SOUK_SELLER_GRPC_ADDR", "127.0.0.1:50052"),
		HTTPAddr:           e.String("SOUK_SELLER_HTTP_ADDR", "127.0.0.1:8082"),
		InternalGRPCAddr:   e.String("SOUK_SELLER_INTERNAL_GRPC_ADDR", "127.0.0.1:50062"),
		InternalHTTPAddr:   e.String("SOUK_SELLER_INTERNAL_HTTP_ADDR", "127.0.0.1:9082"),
		ReservationTimeout: e.Duration("SOUK_RESERVATION_TIMEOUT", 10*time.Minute),
	}
	e.LoadAdminKey(&c.Config)
	return c, e.Err()
}

// Main is a running seller-svc.
type Main struct {
	cfg    Config
	log    *slog.Logger
	deps   *app.Deps
	srv    *server.Server
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a seller-svc that Open will start.
func New(cfg Config, log *slog.Logger) *Main { return &Main{cfg: cfg, log: log} }

// Open connects to its dependencies and starts serving.
func (m *Main) Open(ctx context.Context) error {
	deps, err := app.Open(ctx, m.cfg.Config, m.log)
	if err != nil {
		return err
	}
	m.deps = deps
	m.srv, err = server.New(server.Config{
		GRPCAddr: m.cfg.GRPCAddr, HTTPAddr: m.cfg.HTTPAddr, Log: m.log, Issuer: deps.Issuer,
		Policy: auth.Policy{
			Public: []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"},
			Roles: map[string][]auth.Role{
				sellerv1.SellerService_ServiceDesc.ServiceName:            {auth.RoleSeller},
				sellerv1.CatalogService_ServiceDesc.ServiceName:           {auth.RoleService},
				sellerv1.DisputeResolutionService_ServiceDesc.ServiceName: {auth.RoleAdmin},
				sellerv1.RefundResolutionService_ServiceDesc.ServiceName:  {auth.RoleAdmin},
				sellerv1.CouponAdminService_ServiceDesc.ServiceName:       {auth.RoleAdmin},
				eventsv1.OrderEventService_ServiceDesc.ServiceName:        {auth.RoleService},
			},
		},
		Services: []string{sellerv1.SellerService_ServiceDesc.ServiceName},
		Register: func(g *grpc.Server) {
			sellerv1.RegisterSellerServiceServer(g, &sellerService{deps: deps})
		},
		Gateway:  []server.GatewayRegistrar{sellerv1.RegisterSellerServiceHandlerFromEndpoint},
		Pages:    m.pages(deps.Issuer),
		Metrics:  deps.Metrics.GRPC,
		Ready:    deps.Ready,
		Tracing:  deps.Config.Tracing,
		Profiles: deps.Config.Profiles,
		// Internal, admin and event-consumer services never face the public.
		Internal: server.Listeners{
			GRPCAddr: m.cfg.InternalGRPCAddr, HTTPAddr: m.cfg.InternalHTTPAddr,
			Pages: map[string]http.Handler{"GET /metrics": deps.Metrics.Handler()},
			Services: []string{sellerv1.CatalogService_ServiceDesc.ServiceName, sellerv1.DisputeResolutionService_ServiceDesc.ServiceName,
				sellerv1.RefundResolutionService_ServiceDesc.ServiceName, sellerv1.CouponAdminService_ServiceDesc.ServiceName,
				eventsv1.OrderEventService_ServiceDesc.ServiceName},
			Register: func(g *grpc.Server) {
				sellerv1.RegisterCatalogServiceServer(g, &catalogService{deps: deps})
				sellerv1.RegisterDisputeResolutionServiceServer(g, &disputeService{deps: deps})
				sellerv1.RegisterRefundResolutionServiceServer(g, &refundService{deps: deps})
				sellerv1.RegisterCouponAdminServiceServer(g, &couponAdmin{deps: deps})
				eventsv1.RegisterOrderEventServiceServer(g, &eventService{deps: deps})
			},
			Gateway: []server.GatewayRegistrar{
				sellerv1.RegisterCatalogServiceHandlerFromEndpoint,
				sellerv1.RegisterDisputeResolutionServiceHandlerFromEndpoint,
				sellerv1.RegisterRefundResolutionServiceHandlerFromEndpoint,
				sellerv1.RegisterCouponAdminServiceHandlerFromEndpoint,
				eventsv1.RegisterOrderEventServiceHandlerFromEndpoint,
			},
		},
	})
	if err != nil {
		deps.Close()
		return err
	}
	if err := m.srv.Open(ctx); err != nil {
		deps.Close()
		return err
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel, m.done = cancel, make(chan struct{})
	go m.releaseAbandoned(bg)
	m.log.Info("seller-svc listening", "grpc", m.srv.GRPCAddr(), "http", m.srv.HTTPAddr(),
		"internal_grpc", m.srv.InternalGRPCAddr(), "internal_http", m.srv.InternalHTTPAddr())
	return nil
}

// releaseAbandoned gives back stock reserved by checkouts that never
// stored their orders.
func (m *Main) releaseAbandoned(ctx context.Context) {
	defer close(m.done)
	t := time.NewTicker(min(m.cfg.ReservationTimeout/2, time.Minute))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := m.deps.DB.ReleaseAbandoned(ctx, m.deps.Now().Add(-m.cfg.ReservationTimeout))
			if err != nil && ctx.Err() == nil {
				m.log.Error("release abandoned reservations", "err", err)
			} else if n > 0 {
				m.log.Info("released abandoned reservations", "units", n)
			}
		}
	}
}

// GRPCAddr returns the gRPC address.
func (m *Main) GRPCAddr() string { return m.srv.GRPCAddr() }

// HTTPAddr returns the JSON gateway's address.
func (m *Main) HTTPAddr() string { return m.srv.HTTPAddr() }

// InternalGRPCAddr returns the internal gRPC address.
func (m *Main) InternalGRPCAddr() string { return m.srv.InternalGRPCAddr() }

// InternalHTTPAddr returns the internal HTTP address.
func (m *Main) InternalHTTPAddr() string { return m.srv.InternalHTTPAddr() }

// Close stops serving, letting calls in flight finish within ctx, and
// closes the connections.
func (m *Main) Close(ctx context.Context) error {
	// Watches never end by themselves: end them (UNAVAILABLE, watch again)
	// so that the graceful stop does not wait for them.
	m.deps.Events.Stop()
	err := m.srv.Close(ctx)
	m.cancel()
	<-m.done
	m.deps.Close()
	return err
}
