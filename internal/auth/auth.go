// Package auth authenticates callers by bearer JWTs carrying a role and a
// subject, and authorizes them by role per gRPC service.
package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Role is what kind of caller a token speaks for.
type Role string

// The roles.
const (
	RoleBuyer   Role = "buyer"
	RoleSeller  Role = "seller"
	RoleService Role = "service"
	RoleAdmin   Role = "admin"
)

// Principal is an authenticated caller: a role and the id of the buyer,
// seller (store), service or admin.
type Principal struct {
	Role    Role
	Subject string
}

// String formats the principal as "role:subject", the actor in order history.
func (p Principal) String() string { return string(p.Role) + ":" + p.Subject }

type claims struct {
	Role Role `json:"role"`
	jwt.RegisteredClaims
}

// Issuer signs and verifies HS256 tokens with one secret.
type Issuer struct {
	secret []byte
}

// NewIssuer returns an Issuer for secret, which must be at least 32 bytes.
func NewIssuer(secret string) (*Issuer, error) {
	if len(secret) < 32 {
		return nil, errors.New("the JWT secret must be at least 32 bytes")
	}
	return &Issuer{secret: []byte(secret)}, nil
}

// Sign returns a token for p that expires after ttl.
func (i *Issuer) Sign(p Principal, ttl time.Duration) (string, error) {
	now := time.Now()
	c := claims{Role: p.Role, RegisteredClaims: jwt.RegisteredClaims{
		Subject: p.Subject, Issuer: "souk", IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(i.secret)
}

// Verify checks a token's signature and expiry and returns its principal.
func (i *Issuer) Verify(token string) (Principal, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return i.secret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithIssuer("souk"))
	if err != nil {
		return Principal{}, err
	}
	switch c.Role {
	case RoleBuyer, RoleSeller, RoleService, RoleAdmin:
	default:
		return Principal{}, fmt.Errorf("unknown role %q", c.Role)
	}
	if c.Subject == "" || len(c.Subject) > 128 {
		return Principal{}, errors.New("token has no valid subject")
	}
	return Principal{Role: c.Role, Subject: c.Subject}, nil
}

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the caller the auth interceptor put in ctx.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// Policy says which roles may call which gRPC services. Keys are full
// service names ("souk.buyer.v1.BuyerService"); services listed in Public
// need no token, nor do those in Signed, whose handlers check a signature
// on every message instead. A service in none is refused to everyone.
type Policy struct {
	Public []string
	Signed []string
	Roles  map[string][]Role
}

func (pol Policy) check(fullMethod string, ctx context.Context, iss *Issuer) (context.Context, error) {
	svc, _, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	for _, p := range append(pol.Public, pol.Signed...) {
		if svc == p {
			return ctx, nil
		}
	}
	roles, ok := pol.Roles[svc]
	if !ok {
		return nil, status.Error(codes.PermissionDenied, "no role may call this service")
	}
	p, err := authenticate(ctx, iss)
	if err != nil {
		return nil, err
	}
	for _, r := range roles {
		if p.Role == r {
			return WithPrincipal(ctx, p), nil
		}
	}
	return nil, status.Errorf(codes.PermissionDenied, "a %s may not call %s", p.Role, svc)
}

func authenticate(ctx context.Context, iss *Issuer) (Principal, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return Principal{}, status.Error(codes.Unauthenticated, "missing bearer token")
	}
	tok, ok := strings.CutPrefix(vals[0], "Bearer ")
	if !ok {
		return Principal{}, status.Error(codes.Unauthenticated, "authorization must be \"Bearer <token>\"")
	}
	p, err := iss.Verify(strings.TrimSpace(tok))
	if err != nil {
		return Principal{}, status.Error(codes.Unauthenticated, "invalid token")
	}
	return p, nil
}

// UnaryServerInterceptor authenticates and authorizes unary calls by pol.
func UnaryServerInterceptor(iss *Issuer, pol Policy) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		ctx, err := pol.check(info.FullMethod, ctx, iss)
		if err != nil {
			return nil, err
		}
		return h(ctx, req)
	}
}

// StreamServerInterceptor authenticates and authorizes streams by pol.
func StreamServerInterceptor(iss *Issuer, pol Policy) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		ctx, err := pol.check(info.FullMethod, ss.Context(), iss)
		if err != nil {
			return err
		}
		return h(srv, &streamWithContext{ServerStream: ss, ctx: ctx})
	}
}

type streamWithContext struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *streamWithContext) Context() context.Context { return s.ctx }

// ServiceCredentials sends a fresh, short-lived service token with every
// call of a client connection; the services use it to call each other.
type ServiceCredentials struct {
	Issuer  *Issuer
	Subject string
}

// GetRequestMetadata signs a token for this call.
func (c ServiceCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	tok, err := c.Issuer.Sign(Principal{Role: RoleService, Subject: c.Subject}, 5*time.Minute)
	if err != nil {
		return nil, err
	}
	return map[string]string{"authorization": "Bearer " + tok}, nil
}

// RequireTransportSecurity is false: inside the cluster the services speak
// plain HTTP/2 (put TLS or a mesh in front in production).
func (ServiceCredentials) RequireTransportSecurity() bool { return false }
