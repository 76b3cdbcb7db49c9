// Package buyer is buyer-svc: the buyers' front door (checkout, "My
// Orders", paying, cancelling, confirming receipt). It prices and reserves
// checkouts through seller-svc's CatalogService over gRPC.
package buyer

import (
	"context"
	"fmt"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/payment"
	"github.com/souk-dev/souk/internal/server"
)

// Config is buyer-svc's configuration.
type Config struct {
	app.Config
	GRPCAddr string
	HTTPAddr string
	// SellerAddr is seller-svc's gRPC address, for the CatalogService.
	SellerAddr string
}

// LoadConfig reads the configuration from the environment (lookup, or the
// process environment when nil), failing on any bad value.
func LoadConfig(lookup func(string) (string, bool)) (Config, error) {
	e := app.NewEnv(lookup)
	c := Config{
		Config:     e.Load(),
		GRPCAddr:   e.String("SOUK_BUYER_GRPC_ADDR", "127.0.0.1:50051"),
		HTTPAddr:   e.String("SOUK_BUYER_HTTP_ADDR", "127.0.0.1:8081"),
		SellerAddr: e.String("SOUK_SELLER_GRPC_ADDR", "127.0.0.1:50052"),
	}
	return c, e.Err()
}

// Main is a running buyer-svc.
type Main struct {
	cfg      Config
	log      *slog.Logger
	provider payment.Provider
	deps     *app.Deps
	srv      *server.Server
	conn     *grpc.ClientConn
}

// New returns a buyer-svc that Open will start. A nil provider means the
// simulated one.
func New(cfg Config, log *slog.Logger, provider payment.Provider) *Main {
	if provider == nil {
		provider = payment.NewSimulated(app.Now)
	}
	return &Main{cfg: cfg, log: log, provider: provider}
}

// Open connects to its dependencies and starts serving.
func (m *Main) Open(ctx context.Context) error {
	deps, err := app.Open(ctx, m.cfg.Config, m.log)
	if err != nil {
		return err
	}
	m.deps = deps
	m.conn, err = grpc.NewClient(m.cfg.SellerAddr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.ServiceCredentials{Issuer: deps.Issuer, Subject: "buyer-svc"}))
	if err != nil {
		deps.Close()
		return fmt.Errorf("dial seller-svc: %w", err)
	}
	svc := &buyerService{deps: deps, catalog: sellerv1.NewCatalogServiceClient(m.conn), provider: m.provider, window: m.cfg.PaymentWindow}
	m.srv, err = server.New(server.Config{
		GRPCAddr: m.cfg.GRPCAddr, HTTPAddr: m.cfg.HTTPAddr, Log: m.log, Issuer: deps.Issuer,
		Policy: auth.Policy{
			Public: []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"},
			Roles:  map[string][]auth.Role{buyerv1.BuyerService_ServiceDesc.ServiceName: {auth.RoleBuyer}},
		},
		Services: []string{buyerv1.BuyerService_ServiceDesc.ServiceName},
		Register: func(g *grpc.Server) { buyerv1.RegisterBuyerServiceServer(g, svc) },
		Gateway:  []server.GatewayRegistrar{buyerv1.RegisterBuyerServiceHandlerFromEndpoint},
	})
	if err == nil {
		err = m.srv.Open(ctx)
	}
	if err != nil {
		m.conn.Close()
		deps.Close()
		return err
	}
	m.log.Info("buyer-svc listening", "grpc", m.srv.GRPCAddr(), "http", m.srv.HTTPAddr())
	return nil
}

// GRPCAddr returns the gRPC address.
func (m *Main) GRPCAddr() string { return m.srv.GRPCAddr() }

// HTTPAddr returns the JSON gateway's address.
func (m *Main) HTTPAddr() string { return m.srv.HTTPAddr() }

// Close stops serving, letting calls in flight finish within ctx, and
// closes the connections.
func (m *Main) Close(ctx context.Context) error {
	err := m.srv.Close(ctx)
	m.conn.Close()
	m.deps.Close()
	return err
}
