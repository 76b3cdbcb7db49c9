// Package app wires what both services run on: configuration, the database,
// Redis, the order locks and the deadline scheduler.
package app

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/bankday"
	"github.com/souk-dev/souk/internal/events"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/postgres"
	"github.com/souk-dev/souk/internal/telemetry"
)

// DefaultDatabaseURL is the database `make up` starts.
const DefaultDatabaseURL = "postgres://souk:souk@127.0.0.1:55432/souk?sslmode=disable"

// The documented development secrets: the services refuse them unless
// SOUK_ENV=development.
const (
	DevJWTSecret        = "souk-development-secret-do-not-use-in-production"
	DevServiceJWTSecret = "souk-development-service-secret-do-not-use-in-production"
	// DevAdminJWTSecret is the documented development key of admin tokens.
	DevAdminJWTSecret = "souk-development-admin-secret-do-not-use-in-production"
)

// Development is the SOUK_ENV of make up and the tests: the development
// secrets are allowed, and are the defaults.
const Development = "development"

// Config is what both services read from the environment.
type Config struct {
	DatabaseURL string
	RedisAddr   string
	// RedisAddrs, with more than one address, are a Redis Cluster's seed
	// nodes: the services use a cluster client instead of RedisAddr.
	RedisAddrs  []string
	RedisDB     int
	RedisPrefix string
	// Env is SOUK_ENV: "production" (the default) or "development".
	Env string
	// JWTSecret is the HS256 key of buyer and seller tokens (empty in
	// production when they come from OIDC only); ServiceJWTSecret that of
	// service and admin tokens.
	JWTSecret        string
	ServiceJWTSecret string
	// AdminJWTSecret is the key of admin tokens (SOUK_ADMIN_JWT_SECRET):
	// seller-svc, which serves the admin APIs on its internal listener,
	// loads it (LoadAdminKey); buyer-svc never does.
	AdminJWTSecret string
	// Tracing instruments calls, queries and Redis commands for
	// OpenTelemetry; on when the OTEL_* variables ask for traces.
	Tracing bool
	// OIDC verifies buyer and seller tokens from an identity provider.
	OIDC          *auth.OIDC
	LogLevel      slog.Level
	Migrate       bool
	PaymentWindow time.Duration
	Deadlines     bool
	Listener      bool
	SweepInterval time.Duration
	// DeadlineHorizon: only deadlines due within it have Redis keys.
	DeadlineHorizon time.Duration
	LockTTL         time.Duration
	// Profiles serves Go's profiles on the internal HTTP listener.
	Profiles bool
	// Unpaid bounds the unpaid orders, and the units in them, that one
	// buyer may hold (zero: no bound).
	Unpaid postgres.UnpaidLimits
	// Relay runs the event relay (outbox to Redis stream) in this replica;
	// RelayInterval is how often it looks for events, EventRetention how
	// long the stream keeps them.
	Relay          bool
	RelayInterval  time.Duration
	EventRetention time.Duration
	// Watch tunes the watches of the event feed (the stream is set by Open).
	Watch events.Config
	// Policy holds the payment and refund rules (verification and
	// processing windows, refund due dates and the holidays they skip).
	Policy order.Policy
}

// Env reads environment variables with defaults, collecting every error so
// that a misconfigured service fails at once with all of them.
type Env struct {
	lookup func(string) (string, bool)
	errs   []error
}

// NewEnv reads from the process environment, or from lookup when it is set.
func NewEnv(lookup func(string) (string, bool)) *Env {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return &Env{lookup: lookup}
}

// String returns the variable's value or def.
func (e *Env) String(name, def string) string {
	if v, ok := e.lookup(name); ok && v != "" {
		return v
	}
	return def
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// NewRedis returns a client of the configured Redis: a cluster client for
// several addresses (SOUK_REDIS_ADDRS), else a client of RedisAddr.
func (c Config) NewRedis() redis.UniversalClient {
	if len(c.RedisAddrs) > 1 {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.RedisAddrs})
	}
	addr := c.RedisAddr
	if len(c.RedisAddrs) == 1 {
		addr = c.RedisAddrs[0]
	}
	return redis.NewClient(&redis.Options{Addr: addr, DB: c.RedisDB})
}

// Keys are the token keys the configuration names.
func (c Config) Keys() auth.Keys {
	return auth.Keys{User: c.JWTSecret, Service: c.ServiceJWTSecret, Admin: c.AdminJWTSecret, OIDC: c.OIDC}
}

// Secret returns a secret: in development, the documented development
// value by default; otherwise it must be set, and the development value is
// refused.
func (e *Env) Secret(name, devValue string, dev bool) string {
	if dev {
		return e.String(name, devValue)
	}
	v := e.String(name, "")
	if v == devValue {
		e.errs = append(e.errs, fmt.Errorf("%s: the documented development secret is refused unless SOUK_ENV=development", name))
	}
	return v
}

// Int returns the variable as an integer, or def.
func (e *Env) Int(name string, def int) int {
	v := e.String(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: %q is not an integer", name, v))
	}
	return n
}

// Bool returns the variable as a boolean, or def.
func (e *Env) Bool(name string, def bool) bool {
	v := e.String(name, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: %q is not a boolean", name, v))
	}
	return b
}

// Duration returns the variable as a positive Go duration ("20d" is
// accepted for days), or def.
func (e *Env) Duration(name string, def time.Duration) time.Duration {
	v := e.String(name, "")
	if v == "" {
		return def
	}
	if days, ok := cutSuffix(v, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			return time.Duration(n) * 24 * time.Hour
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		e.errs = append(e.errs, fmt.Errorf("%s: %q is not a positive duration", name, v))
	}
	return d
}

func cutSuffix(s, suffix string) (string, bool) {
	if len(s) > len(suffix) && s[len(s)-len(suffix):] == suffix {
		return s[:len(s)-len(suffix)], true
	}
	return s, false
}

// LoadAdminKey reads the key of admin tokens into c: required, at least 32
// bytes, and other than the service key (in development, the documented
// development key by default).
func (e *Env) LoadAdminKey(c *Config) {
	c.AdminJWTSecret = e.Secret("SOUK_ADMIN_JWT_SECRET", DevAdminJWTSecret, c.Env == Development)
	if len(c.AdminJWTSecret) < 32 || c.AdminJWTSecret == c.ServiceJWTSecret || c.AdminJWTSecret == c.JWTSecret {
		e.errs = append(e.errs, errors.New("SOUK_ADMIN_JWT_SECRET: required, at least 32 bytes, and not the service or user key"))
	}
}

// Err returns every error met so far, or nil.
func (e *Env) Err() error { return errors.Join(e.errs...) }

// Load reads the shared configuration.
func (e *Env) Load() Config {
	c := Config{
		DatabaseURL:     e.String("SOUK_DATABASE_URL", DefaultDatabaseURL),
		RedisAddr:       e.String("SOUK_REDIS_ADDR", "127.0.0.1:56379"),
		RedisDB:         e.Int("SOUK_REDIS_DB", 0),
		RedisAddrs:      splitList(e.String("SOUK_REDIS_ADDRS", "")),
		RedisPrefix:     e.String("SOUK_REDIS_PREFIX", "souk:"),
		Env:             e.String("SOUK_ENV", "production"),
		Tracing:         telemetry.Enabled(),
		Migrate:         e.Bool("SOUK_MIGRATE", true),
		PaymentWindow:   e.Duration("SOUK_PAYMENT_WINDOW", 20*24*time.Hour),
		Deadlines:       e.Bool("SOUK_DEADLINES", true),
		Listener:        e.Bool("SOUK_EXPIRY_LISTENER", true),
		SweepInterval:   e.Duration("SOUK_SWEEP_INTERVAL", 30*time.Second),
		DeadlineHorizon: e.Duration("SOUK_DEADLINE_HORIZON", time.Hour),
		LockTTL:         e.Duration("SOUK_LOCK_TTL", 15*time.Second),
		Profiles:        e.Bool("SOUK_PPROF", false),
		Unpaid: postgres.UnpaidLimits{
			Orders: int64(e.Int("SOUK_MAX_UNPAID_ORDERS", 100)),
			Units:  int64(e.Int("SOUK_MAX_UNPAID_UNITS", 1000)),
		},
		Relay:          e.Bool("SOUK_RELAY", true),
		RelayInterval:  e.Duration("SOUK_RELAY_INTERVAL", 200*time.Millisecond),
		EventRetention: e.Duration("SOUK_EVENT_RETENTION", 7*24*time.Hour),
		Watch: events.Config{
			Heartbeat:  e.Duration("SOUK_WATCH_HEARTBEAT", 15*time.Second),
			Stall:      e.Duration("SOUK_WATCH_STALL", 30*time.Second),
			Buffer:     e.Int("SOUK_WATCH_BUFFER", 256),
			PerCaller:  e.Int("SOUK_WATCHES_PER_CALLER", 20),
			PerReplica: e.Int("SOUK_WATCHES_PER_REPLICA", 10000),
			ClaimAfter: e.Duration("SOUK_EVENT_CLAIM_AFTER", time.Minute),
		},
	}
	c.Policy = order.Policy{
		VerificationTTL:         e.Duration("SOUK_VERIFICATION_TTL", order.DefaultPolicy.VerificationTTL),
		ProcessingTimeout:       e.Duration("SOUK_PROCESSING_TIMEOUT", order.DefaultPolicy.ProcessingTimeout),
		MaxVerificationFailures: e.Int("SOUK_MAX_VERIFICATION_FAILURES", order.DefaultPolicy.MaxVerificationFailures),
		RefundBankingDays:       e.Int("SOUK_REFUND_BANKING_DAYS", order.DefaultPolicy.RefundBankingDays),
		HandlingDay:             e.Duration("SOUK_HANDLING_DAY", order.DefaultPolicy.HandlingDay),
		CancelAnswerWindow:      e.Duration("SOUK_CANCEL_ANSWER_WINDOW", order.DefaultPolicy.CancelAnswerWindow),
		ProtectionDay:           e.Duration("SOUK_PROTECTION_DAY", order.DefaultPolicy.ProtectionDay),
		DisputeAnswerWindow:     e.Duration("SOUK_DISPUTE_ANSWER_WINDOW", order.DefaultPolicy.DisputeAnswerWindow),
		RefundLease:             e.Duration("SOUK_REFUND_LEASE", order.DefaultPolicy.RefundLease),
		OfferTTL:                e.Duration("SOUK_OFFER_TTL", order.DefaultPolicy.OfferTTL),
	}
	if w := c.Policy.CancelAnswerWindow; w < 24*time.Hour || w > 7*24*time.Hour {
		e.errs = append(e.errs, errors.New("SOUK_CANCEL_ANSWER_WINDOW: must be 24h to 7 days (168h)"))
	}
	cal, err := bankday.NewCalendar(strings.Split(e.String("SOUK_HOLIDAYS", ""), ",")...)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("SOUK_HOLIDAYS: %w", err))
	}
	c.Policy.Calendar = cal
	if c.Unpaid.Orders < 0 || c.Unpaid.Units < 0 {
		e.errs = append(e.errs, errors.New("SOUK_MAX_UNPAID_ORDERS and SOUK_MAX_UNPAID_UNITS: must be 0 (no limit) or more"))
	}
	if c.Policy.MaxVerificationFailures < 1 {
		e.errs = append(e.errs, errors.New("SOUK_MAX_VERIFICATION_FAILURES: must be at least 1"))
	}
	if err := c.LogLevel.UnmarshalText([]byte(e.String("SOUK_LOG_LEVEL", "info"))); err != nil {
		e.errs = append(e.errs, fmt.Errorf("SOUK_LOG_LEVEL: %w", err))
	}
	dev := c.Env == Development
	if !dev && c.Env != "production" {
		e.errs = append(e.errs, errors.New("SOUK_ENV: must be production or development"))
	}
	c.JWTSecret = e.Secret("SOUK_JWT_SECRET", DevJWTSecret, dev)
	c.ServiceJWTSecret = e.Secret("SOUK_SERVICE_JWT_SECRET", DevServiceJWTSecret, dev)
	if iss := e.String("SOUK_OIDC_ISSUER", ""); iss != "" {
		c.OIDC = &auth.OIDC{Issuer: iss, Audience: e.String("SOUK_OIDC_AUDIENCE", ""),
			JWKSURL:   e.String("SOUK_OIDC_JWKS_URL", strings.TrimSuffix(iss, "/")+"/.well-known/jwks.json"),
			RoleClaim: e.String("SOUK_OIDC_ROLE_CLAIM", "souk_role")}
		if c.OIDC.Audience == "" {
			e.errs = append(e.errs, errors.New("SOUK_OIDC_AUDIENCE: required with SOUK_OIDC_ISSUER"))
		}
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		e.errs = append(e.errs, errors.New("SOUK_JWT_SECRET: must be at least 32 bytes"))
	}
	if c.JWTSecret == "" && c.OIDC == nil {
		e.errs = append(e.errs, errors.New("SOUK_JWT_SECRET: required unless SOUK_OIDC_ISSUER is set (buyer and seller tokens need a key)"))
	}
	if len(c.ServiceJWTSecret) < 32 {
		e.errs = append(e.errs, errors.New("SOUK_SERVICE_JWT_SECRET: required, at least 32 bytes"))
	}
	return c
}
