// Package buyer is buyer-svc: the buyers' front door (checkout, "My
// Orders", paying, cancelling, confirming receipt). It prices and reserves
// checkouts through seller-svc's CatalogService over gRPC.
package buyer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/payflow"
	"github.com/souk-dev/souk/internal/payment"
	"github.com/souk-dev/souk/internal/postgres"
	"github.com/souk-dev/souk/internal/rates"
	"github.com/souk-dev/souk/internal/server"
)

// Config is buyer-svc's configuration.
type Config struct {
	app.Config
	GRPCAddr string
	HTTPAddr string
	// InternalHTTPAddr serves Souk's own callers (/metrics).
	InternalHTTPAddr string
	// SellerAddr is seller-svc's internal gRPC address, for the CatalogService.
	SellerAddr string
	// WebhookSecret verifies (and, for the simulated provider, signs) the
	// provider's events.
	WebhookSecret string
	// CallbackURL is where the simulated provider reports asynchronous
	// outcomes; empty means this service's own gateway.
	CallbackURL string
	// SettleAfter is how long the simulated provider keeps asynchronous
	// payments processing.
	SettleAfter time.Duration
	// SimDatabaseURL, when set, keeps the simulated provider's ledger in a
	// database of its own (the default is the service's).
	SimDatabaseURL string
	// WorkerInterval is how often the payment worker looks for refunds,
	// captures and attempts whose answer was lost.
	WorkerInterval time.Duration
	// FingerprintSecret keys the hashes that tell a retried payment from a
	// reused idempotency key.
	FingerprintSecret string
	// ProviderTimeout bounds a call to the payment provider with the
	// recording of its answer; reconciliation waits for it (and half as
	// long again) before asking the provider about an unanswered attempt.
	ProviderTimeout time.Duration
	// QuoteTTL is how long an exchange-rate quote prices an order
	// (SOUK_QUOTE_TTL, 24 hours).
	QuoteTTL time.Duration
	// Rates is where exchange rates come from; nil: the built-in
	// development table (rates.Builtin).
	Rates rates.Source
}

// LoadConfig reads the configuration from the environment (lookup, or the
// process environment when nil), failing on any bad value.
func LoadConfig(lookup func(string) (string, bool)) (Config, error) {
	e := app.NewEnv(lookup)
	shared := e.Load()
	dev := shared.Env == app.Development
	c := Config{
		Config:           shared,
		GRPCAddr:         e.String("SOUK_BUYER_GRPC_ADDR", "127.0.0.1:50051"),
		HTTPAddr:         e.String("SOUK_BUYER_HTTP_ADDR", "127.0.0.1:8081"),
		InternalHTTPAddr: e.String("SOUK_BUYER_INTERNAL_HTTP_ADDR", "127.0.0.1:9081"),
		SellerAddr:       e.String("SOUK_SELLER_INTERNAL_GRPC_ADDR", "127.0.0.1:50062"),
		// Documented development secrets, like the JWT's.
		WebhookSecret:     e.Secret("SOUK_PROVIDER_WEBHOOK_SECRET", "souk-development-webhook-secret", dev),
		CallbackURL:       e.String("SOUK_PROVIDER_CALLBACK_URL", ""),
		SettleAfter:       e.Duration("SOUK_SIM_SETTLE_AFTER", 10*time.Second),
		SimDatabaseURL:    e.String("SOUK_SIM_DATABASE_URL", ""),
		WorkerInterval:    e.Duration("SOUK_WORKER_INTERVAL", time.Second),
		FingerprintSecret: e.Secret("SOUK_FINGERPRINT_SECRET", "souk-development-fingerprint-secret", dev),
		ProviderTimeout:   e.Duration("SOUK_PROVIDER_TIMEOUT", payflow.DefaultProviderTimeout),
		QuoteTTL:          e.Duration("SOUK_QUOTE_TTL", 24*time.Hour),
	}
	if len(c.WebhookSecret) < 16 || len(c.FingerprintSecret) < 16 {
		return c, errors.Join(e.Err(), errors.New("SOUK_PROVIDER_WEBHOOK_SECRET and SOUK_FINGERPRINT_SECRET: required, at least 16 bytes"))
	}
	return c, e.Err()
}

// Main is a running buyer-svc.
type Main struct {
	cfg       Config
	log       *slog.Logger
	provider  payment.Provider
	simulated *payment.Simulated
	simDB     *postgres.DB
	deps      *app.Deps
	srv       *server.Server
	conn      *grpc.ClientConn
	cancel    context.CancelFunc
	done      chan struct{}
}

// New returns a buyer-svc that Open will start. A nil provider means the
// simulated one, on the service's database.
func New(cfg Config, log *slog.Logger, provider payment.Provider) *Main {
	return &Main{cfg: cfg, log: log, provider: provider}
}

// Simulated returns the simulated provider the service runs, if it runs one.
func (m *Main) Simulated() *payment.Simulated { return m.simulated }

// Open connects to its dependencies and starts serving.
func (m *Main) Open(ctx context.Context) error {
	deps, err := app.Open(ctx, m.cfg.Config, m.log)
	if err != nil {
		return err
	}
	m.deps = deps
	dial := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.ServiceCredentials{Issuer: deps.Issuer, Subject: "buyer-svc"})}
	if m.cfg.Tracing {
		dial = append(dial, grpc.WithStatsHandler(otelgrpc.NewClientHandler()))
	}
	m.conn, err = grpc.NewClient(m.cfg.SellerAddr, dial...)
	if err != nil {
		deps.Close()
		return fmt.Errorf("dial seller-svc: %w", err)
	}
	if m.provider == nil {
		pool := deps.DB.Pool()
		if m.cfg.SimDatabaseURL != "" {
			// The simulated provider's ledger in a database of its own, so
			// that the record's figures are Souk's alone.
			if m.simDB, err = postgres.Open(ctx, m.cfg.SimDatabaseURL); err == nil {
				err = m.simDB.Migrate(ctx)
			}
			if err != nil {
				m.conn.Close()
				deps.Close()
				return fmt.Errorf("simulated provider's database: %w", err)
			}
			pool = m.simDB.Pool()
		}
		m.simulated = payment.NewSimulated(pool, payment.SimulatedConfig{
			SettleAfter: m.cfg.SettleAfter, CallbackURL: m.cfg.CallbackURL, WebhookSecret: []byte(m.cfg.WebhookSecret),
		}, app.Now, m.log)
		m.provider = m.simulated
	}
	src := m.cfg.Rates
	if src == nil {
		src = rates.Builtin()
	}
	quoter := rates.Quoter{Source: src, TTL: cmp.Or(m.cfg.QuoteTTL, 24*time.Hour)}
	pay := payflow.New(payflow.Config{
		DB: deps.DB, Locker: deps.Locker, Provider: m.provider, Log: m.log, Now: deps.Now, Policy: deps.Config.Policy,
		ProviderTimeout: m.cfg.ProviderTimeout, FingerprintKey: []byte(m.cfg.FingerprintSecret), Changed: deps.Changed, Answered: deps.Metrics.Answered,
		Quote: quoter.Quote,
	})
	svc := &buyerService{
		deps: deps, catalog: sellerv1.NewCatalogServiceClient(m.conn), pay: pay, window: m.cfg.PaymentWindow,
		webhookSecret: []byte(m.cfg.WebhookSecret), quoter: quoter,
	}
	m.srv, err = server.New(server.Config{
		GRPCAddr: m.cfg.GRPCAddr, HTTPAddr: m.cfg.HTTPAddr, Log: m.log, Issuer: deps.Issuer,
		Policy: auth.Policy{
			Public: []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"},
			Roles:  map[string][]auth.Role{buyerv1.BuyerService_ServiceDesc.ServiceName: {auth.RoleBuyer}},
		},
		Services: []string{buyerv1.BuyerService_ServiceDesc.ServiceName},
		Register: func(g *grpc.Server) { buyerv1.RegisterBuyerServiceServer(g, svc) },
		Gateway:  []server.GatewayRegistrar{buyerv1.RegisterBuyerServiceHandlerFromEndpoint},
		// The provider's webhook: its signature covers the raw body.
		Pages:    map[string]http.Handler{"POST /v1/provider/events": http.HandlerFunc(svc.webhook)},
		Internal: server.Listeners{HTTPAddr: m.cfg.InternalHTTPAddr, Pages: map[string]http.Handler{"GET /metrics": deps.Metrics.Handler()}},
		Metrics:  deps.Metrics.GRPC,
		Ready:    deps.Ready,
		Tracing:  deps.Config.Tracing,
		Profiles: deps.Config.Profiles,
	})
	if err == nil {
		err = m.srv.Open(ctx)
	}
	if err != nil {
		m.conn.Close()
		deps.Close()
		return err
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel, m.done = cancel, make(chan struct{})
	go func() {
		defer close(m.done)
		if m.simulated != nil {
			if m.cfg.CallbackURL == "" {
				m.simulated.SetCallbackURL("http://" + m.srv.HTTPAddr() + "/v1/provider/events")
			}
			go m.simulated.Run(bg)
		}
		pay.RunWorker(bg, m.cfg.WorkerInterval)
	}()
	m.log.Info("buyer-svc listening", "grpc", m.srv.GRPCAddr(), "http", m.srv.HTTPAddr(), "internal_http", m.srv.InternalHTTPAddr())
	return nil
}

// GRPCAddr returns the gRPC address.
func (m *Main) GRPCAddr() string { return m.srv.GRPCAddr() }

// HTTPAddr returns the JSON gateway's address.
func (m *Main) HTTPAddr() string { return m.srv.HTTPAddr() }

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
	m.conn.Close()
	m.deps.Close()
	if m.simDB != nil {
		m.simDB.Close()
	}
	return err
}
