// Package auth authenticates callers by bearer JWTs carrying a role and a
// subject, and authorizes them by role per gRPC service.
package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
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

// Keys are what an Issuer signs and verifies with. Buyer and seller tokens
// and service and admin tokens have separate keys, so that a leaked user
// key cannot mint a service or an admin caller.
type Keys struct {
	// User is the HS256 key of buyer and seller tokens (development, and
	// deployments without an identity provider); empty: none.
	User string
	// Service is the HS256 key of service tokens.
	Service string
	// Admin is the HS256 key of admin tokens; empty: this process neither
	// accepts nor signs them (buyer-svc, which faces the internet, never
	// holds it).
	Admin string
	// OIDC, when set, verifies buyer and seller tokens from the
	// marketplace's identity provider.
	OIDC *OIDC
}

// OIDC is an identity provider whose tokens (RS256 or ES256, keys from its
// JWKS, rotated keys fetched when a token names one not seen yet) speak for
// buyers and sellers.
type OIDC struct {
	// Issuer is the tokens' "iss"; Audience must be in their "aud".
	Issuer   string
	Audience string
	// JWKSURL is where its keys are published.
	JWKSURL string
	// RoleClaim names the claim holding "buyer" or "seller".
	RoleClaim string
}

// issuerName is the "iss" of the tokens Souk signs itself.
const issuerName = "souk"

// Issuer signs Souk's own tokens and verifies every token.
type Issuer struct {
	user, service, admin []byte
	oidc                 *OIDC
	jwks                 keyfunc.Keyfunc

	// verified remembers tokens that passed Verify, so that a caller's
	// every request does not parse and check its token again.
	mu       sync.Mutex
	verified map[string]verified
}

// verified is a token that passed, until when its verdict may be reused.
type verified struct {
	p     Principal
	until time.Time
}

// How long, and for how many tokens, a verdict is reused: a token stays
// good until it expires, but an OIDC key the provider withdrew should
// stop working soon.
const (
	verifiedFor = time.Minute
	verifiedMax = 10_000
)

// NewIssuer returns an Issuer for k; the HS256 keys must be at least 32
// bytes. With OIDC, it fetches the provider's keys until ctx ends.
func NewIssuer(ctx context.Context, k Keys) (*Issuer, error) {
	if len(k.Service) < 32 || (k.User != "" && len(k.User) < 32) {
		return nil, errors.New("the JWT secrets must be at least 32 bytes")
	}
	if k.User != "" && k.User == k.Service {
		return nil, errors.New("the user and the service JWT secrets must differ")
	}
	if k.Admin != "" && (len(k.Admin) < 32 || k.Admin == k.Service || k.Admin == k.User) {
		return nil, errors.New("the admin JWT secret must be at least 32 bytes and differ from the others")
	}
	i := &Issuer{user: []byte(k.User), service: []byte(k.Service), admin: []byte(k.Admin), oidc: k.OIDC}
	if k.OIDC != nil {
		if k.OIDC.Issuer == "" || k.OIDC.Audience == "" || k.OIDC.JWKSURL == "" {
			return nil, errors.New("OIDC needs an issuer, an audience and a JWKS URL")
		}
		if k.OIDC.RoleClaim == "" {
			k.OIDC.RoleClaim = "souk_role"
		}
		// A token naming an unknown key fetches the set again, at most
		// every 10 s; a call never waits for that more than 100 ms, so
		// tokens with made-up key ids cannot hold callers up.
		jwks, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{k.OIDC.JWKSURL}, keyfunc.Override{
			RefreshUnknownKID: rate.NewLimiter(rate.Every(10*time.Second), 1),
			RateLimitWaitMax:  100 * time.Millisecond,
			HTTPTimeout:       5 * time.Second,
		})
		if err != nil {
			return nil, fmt.Errorf("the identity provider's keys: %w", err)
		}
		i.jwks = jwks
	}
	return i, nil
}

// Sign returns a token for p that expires after ttl, with the key of its
// role (a buyer or seller token needs the user key).
func (i *Issuer) Sign(p Principal, ttl time.Duration) (string, error) {
	key := i.service
	switch p.Role {
	case RoleBuyer, RoleSeller:
		if len(i.user) == 0 {
			return "", errors.New("no user key to sign buyer and seller tokens with")
		}
		key = i.user
	case RoleAdmin:
		if len(i.admin) == 0 {
			return "", errors.New("no admin key to sign admin tokens with")
		}
		key = i.admin
	}
	now := time.Now()
	c := jwt.MapClaims{"role": string(p.Role), "sub": p.Subject, "iss": issuerName, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
}

// key picks a token's verification key: Souk's own HS256 tokens by their
// role, the identity provider's by their key id.
func (i *Issuer) key(t *jwt.Token) (any, error) {
	if t.Method.Alg() != "HS256" {
		if i.jwks == nil {
			return nil, errors.New("no identity provider is configured")
		}
		return i.jwks.Keyfunc(t)
	}
	role, _ := t.Claims.(jwt.MapClaims)["role"].(string)
	switch Role(role) {
	case RoleService:
		return i.service, nil
	case RoleAdmin:
		if len(i.admin) == 0 {
			return nil, errors.New("admin tokens are not accepted here")
		}
		return i.admin, nil
	case RoleBuyer, RoleSeller:
		if len(i.user) == 0 {
			return nil, errors.New("buyer and seller tokens come from the identity provider")
		}
		return i.user, nil
	}
	return nil, fmt.Errorf("unknown role %q", role)
}

// Verify checks a token's signature, expiry, issuer (and, from the
// identity provider, audience) and returns its principal. The identity
// provider's tokens speak for buyers and sellers only.
func (i *Issuer) Verify(token string) (Principal, error) {
	now := time.Now()
	i.mu.Lock()
	v, ok := i.verified[token]
	i.mu.Unlock()
	if ok && now.Before(v.until) {
		return v.p, nil
	}
	p, exp, err := i.verify(token)
	if err != nil {
		return Principal{}, err
	}
	i.mu.Lock()
	if i.verified == nil || len(i.verified) >= verifiedMax {
		i.verified = make(map[string]verified)
	}
	until := now.Add(verifiedFor)
	if exp.Before(until) {
		until = exp
	}
	i.verified[token] = verified{p: p, until: until}
	i.mu.Unlock()
	return p, nil
}

// verify checks a token and returns its principal and expiry.
func (i *Issuer) verify(token string) (Principal, time.Time, error) {
	c := jwt.MapClaims{}
	t, err := jwt.ParseWithClaims(token, c, i.key, jwt.WithValidMethods([]string{"HS256", "RS256", "ES256"}), jwt.WithExpirationRequired())
	if err != nil {
		return Principal{}, time.Time{}, err
	}
	iss, _ := c.GetIssuer()
	roleClaim := "role"
	if t.Method.Alg() == "HS256" {
		if iss != issuerName {
			return Principal{}, time.Time{}, errors.New("not a token of Souk's")
		}
	} else {
		aud, _ := c.GetAudience()
		if iss != i.oidc.Issuer || !slices.Contains(aud, i.oidc.Audience) {
			return Principal{}, time.Time{}, errors.New("a token of another issuer or for another audience")
		}
		roleClaim = i.oidc.RoleClaim
	}
	role, _ := c[roleClaim].(string)
	switch r := Role(role); {
	case r == RoleBuyer, r == RoleSeller:
	case (r == RoleService || r == RoleAdmin) && t.Method.Alg() == "HS256":
	default:
		return Principal{}, time.Time{}, fmt.Errorf("role %q is not one a token of this kind may carry", role)
	}
	sub, _ := c.GetSubject()
	if sub == "" || len(sub) > 128 {
		return Principal{}, time.Time{}, errors.New("token has no valid subject")
	}
	exp, err := c.GetExpirationTime()
	if err != nil || exp == nil {
		return Principal{}, time.Time{}, errors.New("token has no expiry")
	}
	return Principal{Role: Role(role), Subject: sub}, exp.Time, nil
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
// need no token. A service in neither is refused to everyone.
type Policy struct {
	Public []string
	Roles  map[string][]Role
}

func (pol Policy) check(fullMethod string, ctx context.Context, iss *Issuer) (context.Context, error) {
	svc, _, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	for _, p := range pol.Public {
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
