// Package server is the plumbing both services share: a gRPC server with
// the interceptor chain (request id and logs, auth, validation, the error
// table), health checking and reflection, and a JSON gateway that dials the
// service's own gRPC port so that every interceptor applies to it too.
package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"buf.build/go/protovalidate"
	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/souk-dev/souk/gen"
	"github.com/souk-dev/souk/internal/auth"
)

// GatewayRegistrar registers a service's JSON handlers on the gateway mux,
// dialling the gRPC endpoint (the generated Register…HandlerFromEndpoint).
type GatewayRegistrar func(ctx context.Context, mux *runtime.ServeMux, endpoint string, opts []grpc.DialOption) error

// Config is what a Server needs.
type Config struct {
	// GRPCAddr and HTTPAddr are where to listen; ":0" picks a free port.
	GRPCAddr string
	HTTPAddr string
	Log      *slog.Logger
	Issuer   *auth.Issuer
	Policy   auth.Policy
	// Services are the full names of the served gRPC services, for health.
	Services []string
	// Register registers the service implementations.
	Register func(*grpc.Server)
	// Gateway registers their JSON handlers.
	Gateway []GatewayRegistrar
	// Pages are served beside the gateway on the HTTP port, by pattern
	// ("/dashboard/"): same origin as the JSON API.
	Pages map[string]http.Handler
	// Internal is the listener pair for the platform's own callers (other
	// services, admins, Prometheus), apart from the public one.
	Internal Listeners
	// Metrics, if set, counts and times every call.
	Metrics *grpcprom.ServerMetrics
	// Tracing instruments the gRPC servers, the gateway and its calls
	// (off: no instrumentation at all, not even no-op spans).
	Tracing bool
	// Profiles serves Go's profiles (/debug/pprof/) on the internal HTTP
	// listener (SOUK_PPROF); off by default.
	Profiles bool
	// Ready, if set, is asked every second whether the replica can serve
	// (its PostgreSQL and Redis answer): readiness follows it.
	Ready func(context.Context) error
}

// Liveness is the health service name that says the process is up, apart
// from readiness (the empty name and the services' names).
const Liveness = "liveness"

// Listeners are the internal gRPC and HTTP listeners: the services only
// Souk's own callers may reach, their gateway, and pages such as /metrics.
// Empty addresses leave a listener off.
type Listeners struct {
	GRPCAddr string
	HTTPAddr string
	Services []string
	Register func(*grpc.Server)
	Gateway  []GatewayRegistrar
	Pages    map[string]http.Handler
}

// Server serves one Souk service over gRPC and JSON.
type Server struct {
	cfg     Config
	grpc    *grpc.Server
	health  *health.Server
	http    *http.Server
	grpcLis net.Listener
	httpLis net.Listener
	// The internal listeners, when configured.
	igrpc    *grpc.Server
	ihttp    *http.Server
	igrpcLis net.Listener
	ihttpLis net.Listener
	// healthEnd is closed when the server stops: health watches end.
	healthEnd chan struct{}
	// stopReady ends the readiness loop.
	stopReady context.CancelFunc
	readyDone chan struct{}
	mu        sync.Mutex
	ready     bool
	stopping  bool
}

// streamWorkers is how many calls at once each gRPC server runs on its
// pool of goroutines.
const streamWorkers = 64

// New builds the gRPC server with its interceptors.
func New(cfg Config) (*Server, error) {
	v, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("protovalidate: %w", err)
	}
	panics := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		cfg.Log.ErrorContext(ctx, "panic", "panic", fmt.Sprint(p))
		return status.Error(codes.Internal, "internal error")
	})
	unaryMetrics, streamMetrics := grpc.UnaryServerInterceptor(passUnary), grpc.StreamServerInterceptor(passStream)
	if cfg.Metrics != nil {
		unaryMetrics, streamMetrics = cfg.Metrics.UnaryServerInterceptor(), cfg.Metrics.StreamServerInterceptor()
	}
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(
			unaryMetrics,
			logInterceptor(cfg.Log),
			recovery.UnaryServerInterceptor(panics),
			auth.UnaryServerInterceptor(cfg.Issuer, cfg.Policy),
			validateInterceptor(v),
			errorInterceptor(cfg.Log),
		),
		grpc.ChainStreamInterceptor(
			streamMetrics,
			streamLogInterceptor(cfg.Log),
			recovery.StreamServerInterceptor(panics),
			auth.StreamServerInterceptor(cfg.Issuer, cfg.Policy),
			validateStreamInterceptor(v),
			streamErrorInterceptor(cfg.Log),
		),
	}
	// Limits of one connection: concurrent calls, and pings (a client may
	// ping every 20 s, also with no call open, as mobile apps keep their
	// watches alive; more often is answered with GOAWAY). The server pings
	// an idle connection after a minute and drops it if no answer comes.
	opts = append(opts, grpc.MaxConcurrentStreams(maxConcurrentStreams),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 20 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}))
	// Calls run on long-lived goroutines (up to streamWorkers at once; more
	// get goroutines of their own), whose stacks stay grown: a goroutine a
	// call spent about 6% of a read's CPU growing its stack (make bench).
	opts = append(opts, grpc.NumStreamWorkers(streamWorkers))
	if cfg.Tracing {
		// Traces: a span per call, continuing the caller's trace.
		opts = append(opts, grpc.StatsHandler(otelgrpc.NewServerHandler()))
	}
	hs := health.NewServer()
	g := grpc.NewServer(opts...)
	cfg.Register(g)
	stopping := make(chan struct{})
	watched := &endingHealth{Server: hs, stopping: stopping, slots: make(chan struct{}, maxHealthWatches)}
	healthpb.RegisterHealthServer(g, watched)
	reflection.Register(g)
	s := &Server{cfg: cfg, grpc: g, health: hs, healthEnd: stopping}
	if cfg.Internal.Register != nil {
		s.igrpc = grpc.NewServer(opts...)
		cfg.Internal.Register(s.igrpc)
		healthpb.RegisterHealthServer(s.igrpc, watched)
		reflection.Register(s.igrpc)
	}
	if cfg.Metrics != nil {
		cfg.Metrics.InitializeMetrics(g)
		if s.igrpc != nil {
			cfg.Metrics.InitializeMetrics(s.igrpc)
		}
	}
	return s, nil
}

// endingHealth is the health service, whose Watch streams end when the
// server stops (after they have been told NOT_SERVING).
type endingHealth struct {
	*health.Server
	stopping <-chan struct{}
	// slots bound the health watches open at once: they need no token, so
	// anyone could otherwise hold any number of streams open.
	slots chan struct{}
}

// Limits of a replica's gRPC servers.
const (
	// maxConcurrentStreams bounds the calls open at once on one connection.
	maxConcurrentStreams = 1000
	// maxHealthWatches bounds the health watches open at once (they need
	// no token); one more is RESOURCE_EXHAUSTED.
	maxHealthWatches = 64
)

func (h *endingHealth) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		return status.Errorf(codes.ResourceExhausted, "%d health watches are open on this replica already; use Check, or watch later", maxHealthWatches)
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	go func() {
		select {
		case <-h.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := h.Server.Watch(req, &healthStream{Health_WatchServer: stream, ctx: ctx})
	if stream.Context().Err() == nil && ctx.Err() != nil {
		return status.Error(codes.Unavailable, "the server is stopping")
	}
	return err
}

type healthStream struct {
	healthpb.Health_WatchServer
	ctx context.Context
}

func (s *healthStream) Context() context.Context { return s.ctx }

func passUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	return h(ctx, req)
}

func passStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return h(srv, ss)
}

// Open listens on every configured address and starts serving in the
// background.
func (s *Server) Open(ctx context.Context) error {
	var err error
	if s.grpcLis, s.httpLis, s.http, err = s.serve(ctx, s.grpc, s.cfg.GRPCAddr, s.cfg.HTTPAddr, s.cfg.Gateway, s.cfg.Pages, true); err != nil {
		return err
	}
	in := s.cfg.Internal
	if in.HTTPAddr != "" || in.GRPCAddr != "" {
		pages := map[string]http.Handler{"GET /healthz": s.healthPage(Liveness), "GET /readyz": s.healthPage("")}
		if s.cfg.Profiles {
			// Go's profiles, for the operators only, when asked for.
			maps.Copy(pages, map[string]http.Handler{"GET /debug/pprof/": http.HandlerFunc(pprof.Index),
				"GET /debug/pprof/profile": http.HandlerFunc(pprof.Profile), "GET /debug/pprof/trace": http.HandlerFunc(pprof.Trace),
				"GET /debug/pprof/symbol": http.HandlerFunc(pprof.Symbol)})
		}
		maps.Copy(pages, in.Pages)
		if s.igrpcLis, s.ihttpLis, s.ihttp, err = s.serve(ctx, s.igrpc, in.GRPCAddr, in.HTTPAddr, in.Gateway, pages, false); err != nil {
			s.grpcLis.Close()
			s.httpLis.Close()
			return fmt.Errorf("internal listeners: %w", err)
		}
	}
	s.health.SetServingStatus(Liveness, healthpb.HealthCheckResponse_SERVING)
	s.setReady(true)
	ctx, s.stopReady = context.WithCancel(context.WithoutCancel(ctx))
	s.readyDone = make(chan struct{})
	go s.watchReady(ctx)
	return nil
}

// setReady sets readiness: every service's health, and "" (not liveness).
func (s *Server) setReady(ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping || ok == s.ready && s.readyDone != nil {
		return
	}
	s.ready = ok
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	for _, name := range append(append([]string{""}, s.cfg.Services...), s.cfg.Internal.Services...) {
		s.health.SetServingStatus(name, st)
	}
}

// watchReady asks cfg.Ready every second and sets readiness by its answer.
func (s *Server) watchReady(ctx context.Context) {
	defer close(s.readyDone)
	if s.cfg.Ready == nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		check, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := s.cfg.Ready(check)
		cancel()
		if err != nil && ctx.Err() == nil {
			s.mu.Lock()
			was := s.ready
			s.mu.Unlock()
			if was {
				s.cfg.Log.Warn("not ready", "err", err)
			}
		}
		s.setReady(err == nil)
	}
}

// healthPage answers 200 while the health service name is SERVING, else 503.
func (s *Server) healthPage(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := s.health.Check(r.Context(), &healthpb.HealthCheckRequest{Service: name})
		if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
			http.Error(w, "not serving", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
}

// serve listens on a gRPC address (if g is set) and an HTTP one, serving g
// and a gateway to it with pages beside.
func (s *Server) serve(ctx context.Context, g *grpc.Server, grpcAddr, httpAddr string, gateway []GatewayRegistrar, pages map[string]http.Handler, openapi bool) (grpcLis, httpLis net.Listener, srv *http.Server, err error) {
	if g != nil {
		if grpcLis, err = net.Listen("tcp", grpcAddr); err != nil {
			return nil, nil, nil, fmt.Errorf("listen gRPC: %w", err)
		}
		go func() {
			if err := g.Serve(grpcLis); err != nil {
				s.cfg.Log.Error("gRPC server stopped", "err", err)
			}
		}()
	}
	if httpLis, err = net.Listen("tcp", httpAddr); err != nil {
		if grpcLis != nil {
			grpcLis.Close()
		}
		return nil, nil, nil, fmt.Errorf("listen HTTP: %w", err)
	}
	mux := runtime.NewServeMux(
		runtime.WithIncomingHeaderMatcher(func(key string) (string, bool) {
			if strings.EqualFold(key, RequestIDHeader) {
				return RequestIDHeader, true
			}
			return runtime.DefaultHeaderMatcher(key)
		}),
		runtime.WithOutgoingHeaderMatcher(func(key string) (string, bool) {
			if key == RequestIDHeader {
				return "X-Request-Id", true
			}
			return "", false
		}),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
	)
	for _, reg := range gateway {
		if grpcLis == nil {
			return nil, nil, nil, errors.New("a gateway needs a gRPC listener")
		}
		dial := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if s.cfg.Tracing {
			dial = append(dial, grpc.WithStatsHandler(otelgrpc.NewClientHandler()))
		}
		if err := reg(ctx, mux, grpcLis.Addr().String(), dial); err != nil {
			return nil, nil, nil, fmt.Errorf("register gateway: %w", err)
		}
	}
	root := http.NewServeMux()
	if openapi {
		docs, _ := fs.Sub(gen.OpenAPI, "openapi")
		root.Handle("/openapi/", http.StripPrefix("/openapi/", http.FileServerFS(docs)))
	}
	root.Handle("/", http.MaxBytesHandler(mux, 1<<20))
	for pattern, h := range pages {
		root.Handle(pattern, h)
	}
	var handler http.Handler = root
	if s.cfg.Tracing {
		handler = otelhttp.NewHandler(root, "gateway", otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			return r.Method + " " + r.URL.Path
		}))
	}
	srv = &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second}
	go func() {
		if err := srv.Serve(httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Log.Error("HTTP server stopped", "err", err)
		}
	}()
	return grpcLis, httpLis, srv, nil
}

// GRPCAddr returns the address the gRPC server listens on.
func (s *Server) GRPCAddr() string { return s.grpcLis.Addr().String() }

// HTTPAddr returns the address the JSON gateway listens on.
func (s *Server) HTTPAddr() string { return s.httpLis.Addr().String() }

// InternalGRPCAddr returns the internal gRPC address ("" when off).
func (s *Server) InternalGRPCAddr() string { return addr(s.igrpcLis) }

// InternalHTTPAddr returns the internal HTTP address ("" when off).
func (s *Server) InternalHTTPAddr() string { return addr(s.ihttpLis) }

func addr(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}

// Close stops taking calls and waits for the ones in flight, up to ctx's
// deadline, then stops hard.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	if s.stopReady != nil {
		s.stopReady()
		<-s.readyDone
	}
	s.health.Shutdown()
	// Health watchers have heard NOT_SERVING: end their streams, which would
	// otherwise hold the graceful stop until its deadline.
	time.Sleep(50 * time.Millisecond)
	close(s.healthEnd)
	var errs []error
	for _, h := range []*http.Server{s.http, s.ihttp} {
		if h != nil {
			errs = append(errs, h.Shutdown(ctx))
		}
	}
	for _, g := range []*grpc.Server{s.grpc, s.igrpc} {
		if g == nil {
			continue
		}
		done := make(chan struct{})
		go func() { g.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			g.Stop()
		}
	}
	return errors.Join(errs...)
}
