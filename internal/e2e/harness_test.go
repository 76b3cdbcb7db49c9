// Package e2e boots the real services (seller-svc and buyer-svc, on :0) on
// real PostgreSQL and Redis and talks to them over gRPC and the JSON gateway.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/souk-dev/souk/buyer-svc/buyer"
	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/payment"
	"github.com/souk-dev/souk/internal/server"
	"github.com/souk-dev/souk/internal/testenv"
	"github.com/souk-dev/souk/seller-svc/seller"
)

// system is a running Souk: replicas of both services on one database and
// one Redis prefix.
type system struct {
	t        testing.TB
	cfg      app.Config
	opts     options
	sellers  []*seller.Main
	buyers   []*buyer.Main
	provider *payment.Simulated
	issuer   *auth.Issuer
	buyer    buyerv1.BuyerServiceClient
	seller   sellerv1.SellerServiceClient
	catalog  sellerv1.CatalogServiceClient
	stops    []func()
	// sellerStops and buyerStops stop each of sellers and buyers.
	sellerStops, buyerStops []func()
}

// options adjust a system beyond its shared configuration.
type options struct {
	// tune adjusts the configuration both services share.
	tune func(*app.Config)
	// buyer adjusts buyer-svc's own configuration.
	buyer func(*buyer.Config)
	// provider puts a provider of the test's (wrapping the simulated one,
	// to inject faults at the edge) in front of buyer-svc.
	provider func(*payment.Simulated) payment.Provider
	// noBuyers leaves buyer-svc to the test (processes it kills, say).
	noBuyers bool
	// cfg, if set, is the configuration to start from (a test's private
	// PostgreSQL and Redis) instead of the shared test servers.
	cfg *app.Config
	// logs, if set, gets the services' logs from level info up, as the
	// services write them in production (JSON, with request and trace ids).
	logs *logBuffer
}

// logger is the services' logger in a test.
func (s *system) logger() *slog.Logger {
	if s.opts.logs != nil {
		return server.NewLogger(s.opts.logs, slog.LevelInfo)
	}
	return testenv.Logger(s.t)
}

// startSystem starts replicas of each service; tune adjusts the configuration.
func startSystem(t testing.TB, replicas int, tune func(*app.Config)) *system {
	t.Helper()
	return startSystemWith(t, replicas, options{tune: tune})
}

// startSystemWith starts replicas of each service with opts.
func startSystemWith(t testing.TB, replicas int, opts options) *system {
	t.Helper()
	var cfg app.Config
	if opts.cfg != nil {
		cfg = *opts.cfg
	} else {
		cfg = testenv.Config(t)
	}
	if opts.tune != nil {
		opts.tune(&cfg)
	}
	s := &system{t: t, cfg: cfg, opts: opts}
	var err error
	if s.issuer, err = auth.NewIssuer(context.Background(), cfg.Keys()); err != nil {
		t.Fatal(err)
	}
	for range replicas {
		s.startSeller()
	}
	if !opts.noBuyers {
		for range replicas {
			s.startBuyer()
		}
	}
	s.dialClients()
	return s
}

func (s *system) dialClients() {
	if len(s.buyers) > 0 {
		s.buyer = buyerv1.NewBuyerServiceClient(dial(s.t, s.buyers[0].GRPCAddr()))
	}
	s.seller = sellerv1.NewSellerServiceClient(dial(s.t, s.sellers[0].GRPCAddr()))
	s.catalog = sellerv1.NewCatalogServiceClient(dial(s.t, s.sellers[0].InternalGRPCAddr()))
}

// stopSeller stops seller-svc replica i (it stays in sellers).
func (s *system) stopSeller(i int) { s.sellerStops[i]() }

// stopAll stops every replica, as a deployment that goes down.
func (s *system) stopAll() {
	for _, stop := range s.stops {
		stop()
	}
	s.stops, s.sellers, s.buyers, s.sellerStops, s.buyerStops = nil, nil, nil, nil, nil
}

// restart starts n replicas of each service again on the same database and Redis.
func (s *system) restart(n int) {
	for range n {
		s.startSeller()
	}
	for range n {
		s.startBuyer()
	}
	s.provider = s.buyers[0].Simulated()
	s.dialClients()
}

// onStop registers a replica's Close, run by stopAll or when the test ends.
func (s *system) onStop(close func(context.Context) error) func() {
	var once sync.Once
	stop := func() { once.Do(func() { closeMain(s.t, close) }) }
	s.stops = append(s.stops, stop)
	s.t.Cleanup(stop)
	return stop
}

func (s *system) startSeller() *seller.Main {
	s.t.Helper()
	return s.startSellerAt("127.0.0.1:0")
}

// startSellerAt starts a seller-svc replica whose gateway listens on httpAddr
// (a stopped replica's, for a browser to find again).
func (s *system) startSellerAt(httpAddr string) *seller.Main {
	s.t.Helper()
	m := seller.New(seller.Config{Config: s.cfg, GRPCAddr: "127.0.0.1:0", HTTPAddr: httpAddr, InternalGRPCAddr: "127.0.0.1:0",
		InternalHTTPAddr: "127.0.0.1:0", ReservationTimeout: time.Minute}, s.logger())
	if err := m.Open(context.Background()); err != nil {
		s.t.Fatal(err)
	}
	stop := s.onStop(m.Close)
	s.sellers = append(s.sellers, m)
	s.sellerStops = append(s.sellerStops, stop)
	return m
}

func (s *system) startBuyer() *buyer.Main {
	s.t.Helper()
	cfg := s.buyerConfig(s.sellers[len(s.buyers)%len(s.sellers)].InternalGRPCAddr())
	var provider payment.Provider
	var sim *payment.Simulated
	if s.opts.provider != nil {
		pool, err := pgxpool.New(context.Background(), s.cfg.DatabaseURL)
		if err != nil {
			s.t.Fatal(err)
		}
		s.t.Cleanup(pool.Close)
		sim = payment.NewSimulated(pool, payment.SimulatedConfig{SettleAfter: cfg.SettleAfter, WebhookSecret: []byte(cfg.WebhookSecret)},
			app.Now, testenv.Logger(s.t))
		provider = s.opts.provider(sim)
	}
	m := buyer.New(cfg, s.logger(), provider)
	if err := m.Open(context.Background()); err != nil {
		s.t.Fatal(err)
	}
	if sim != nil {
		sim.SetCallbackURL("http://" + m.HTTPAddr() + "/v1/provider/events")
		ctx, cancel := context.WithCancel(context.Background())
		go sim.Run(ctx)
		s.t.Cleanup(cancel)
	} else {
		sim = m.Simulated()
	}
	if s.provider == nil {
		s.provider = sim
	}
	s.buyerStops = append(s.buyerStops, s.onStop(m.Close))
	s.buyers = append(s.buyers, m)
	return m
}

// webhookSecret signs the simulated provider's events in tests.
const webhookSecret = "test-webhook-secret-test-webhook-secret"

// buyerConfig is the configuration of a buyer-svc replica in tests:
// asynchronous payments settle after a second, the worker runs every 100ms,
// a provider call has 3 s.
func (s *system) buyerConfig(sellerAddr string) buyer.Config {
	shared := s.cfg
	shared.AdminJWTSecret = "" // buyer-svc never holds the admin key
	c := buyer.Config{
		Config: shared, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", InternalHTTPAddr: "127.0.0.1:0", SellerAddr: sellerAddr,
		WebhookSecret: webhookSecret, SettleAfter: time.Second, WorkerInterval: 100 * time.Millisecond,
		FingerprintSecret: "test-fingerprint-secret",
		// Reconciliation asks about an unanswered attempt 4.5 s on.
		ProviderTimeout: 3 * time.Second,
	}
	if s.opts.buyer != nil {
		s.opts.buyer(&c)
	}
	return c
}

func closeMain(t testing.TB, close func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
}

func dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// token signs a token for role:subject.
func (s *system) token(role auth.Role, subject string) string {
	s.t.Helper()
	tok, err := s.issuer.Sign(auth.Principal{Role: role, Subject: subject}, time.Hour)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// as returns a context whose gRPC calls carry tok.
func as(tok string) context.Context {
	if tok == "" {
		return context.Background()
	}
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
}

// jsonCall makes a JSON gateway call and decodes the answer into a map.
func jsonCall(t testing.TB, method, url, tok string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = bytes.NewBufferString(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %s", method, url, raw)
		}
	}
	return resp.StatusCode, out
}

func (s *system) buyerURL(path string) string  { return "http://" + s.buyers[0].HTTPAddr() + path }
func (s *system) sellerURL(path string) string { return "http://" + s.sellers[0].HTTPAddr() + path }

// get walks a decoded JSON value by keys and indexes.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

// str returns the string at path ("" if absent). JSON int64s are strings.
func str(v any, path ...any) string {
	s, _ := get(v, path...).(string)
	return s
}
