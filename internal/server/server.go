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
	"net"
	"net/http"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
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
}

// Server serves one Souk service over gRPC and JSON.
type Server struct {
	cfg     Config
	grpc    *grpc.Server
	health  *health.Server
	http    *http.Server
	grpcLis net.Listener
	httpLis net.Listener
}

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
	g := grpc.NewServer(
		grpc.ChainUnaryInterceptor(
			logInterceptor(cfg.Log),
			recovery.UnaryServerInterceptor(panics),
			auth.UnaryServerInterceptor(cfg.Issuer, cfg.Policy),
			validateInterceptor(v),
			errorInterceptor(cfg.Log),
		),
		grpc.ChainStreamInterceptor(
			streamLogInterceptor(cfg.Log),
			recovery.StreamServerInterceptor(panics),
			auth.StreamServerInterceptor(cfg.Issuer, cfg.Policy),
			validateStreamInterceptor(v),
			streamErrorInterceptor(cfg.Log),
		),
	)
	cfg.Register(g)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, hs)
	reflection.Register(g)
	return &Server{cfg: cfg, grpc: g, health: hs}, nil
}

// Open listens on both addresses and starts serving in the background.
func (s *Server) Open(ctx context.Context) error {
	var err error
	if s.grpcLis, err = net.Listen("tcp", s.cfg.GRPCAddr); err != nil {
		return fmt.Errorf("listen gRPC: %w", err)
	}
	if s.httpLis, err = net.Listen("tcp", s.cfg.HTTPAddr); err != nil {
		s.grpcLis.Close()
		return fmt.Errorf("listen HTTP: %w", err)
	}
	go func() {
		if err := s.grpc.Serve(s.grpcLis); err != nil {
			s.cfg.Log.Error("gRPC server stopped", "err", err)
		}
	}()
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
	for _, reg := range s.cfg.Gateway {
		if err := reg(ctx, mux, s.grpcLis.Addr().String(), []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}); err != nil {
			return fmt.Errorf("register gateway: %w", err)
		}
	}
	openapi, _ := fs.Sub(gen.OpenAPI, "openapi")
	root := http.NewServeMux()
	root.Handle("/openapi/", http.StripPrefix("/openapi/", http.FileServerFS(openapi)))
	root.Handle("/", http.MaxBytesHandler(mux, 1<<20))
	for pattern, h := range s.cfg.Pages {
		root.Handle(pattern, h)
	}
	s.http = &http.Server{Handler: root, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second}
	go func() {
		if err := s.http.Serve(s.httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Log.Error("HTTP server stopped", "err", err)
		}
	}()
	for _, name := range append([]string{""}, s.cfg.Services...) {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	return nil
}

// GRPCAddr returns the address the gRPC server listens on.
func (s *Server) GRPCAddr() string { return s.grpcLis.Addr().String() }

// HTTPAddr returns the address the JSON gateway listens on.
func (s *Server) HTTPAddr() string { return s.httpLis.Addr().String() }

// Close stops taking calls and waits for the ones in flight, up to ctx's
// deadline, then stops hard.
func (s *Server) Close(ctx context.Context) error {
	s.health.Shutdown()
	var err error
	if s.http != nil {
		err = s.http.Shutdown(ctx)
	}
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.grpc.Stop()
	}
	return err
}
