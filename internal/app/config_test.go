package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/souk-dev/souk/internal/app"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestLoadDefaults(t *testing.T) {
	e := app.NewEnv(lookup(map[string]string{"SOUK_ENV": "development"}))
	c := e.Load()
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	if c.PaymentWindow != 20*24*time.Hour || !c.Listener || c.RedisPrefix != "souk:" {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestLoadParsesAndCollectsErrors(t *testing.T) {
	e := app.NewEnv(lookup(map[string]string{"SOUK_ENV": "development", "SOUK_PAYMENT_WINDOW": "3d", "SOUK_SWEEP_INTERVAL": "250ms"}))
	c := e.Load()
	if e.Err() != nil || c.PaymentWindow != 72*time.Hour || c.SweepInterval != 250*time.Millisecond {
		t.Fatalf("got %v %v %v", c.PaymentWindow, c.SweepInterval, e.Err())
	}
	e = app.NewEnv(lookup(map[string]string{
		"SOUK_PAYMENT_WINDOW": "soon", "SOUK_REDIS_DB": "one", "SOUK_EXPIRY_LISTENER": "maybe",
		"SOUK_JWT_SECRET": "short", "SOUK_LOG_LEVEL": "loud", "SOUK_LOCK_TTL": "-1s",
	}))
	e.Load()
	err := e.Err()
	for _, name := range []string{"SOUK_PAYMENT_WINDOW", "SOUK_REDIS_DB", "SOUK_EXPIRY_LISTENER", "SOUK_JWT_SECRET", "SOUK_LOG_LEVEL", "SOUK_LOCK_TTL"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}

// TestProductionRefusesDevelopmentSecrets: outside development the
// documented development secrets are refused, and needed secrets must be
// set; in development they are the defaults.
func TestProductionRefusesDevelopmentSecrets(t *testing.T) {
	e := app.NewEnv(lookup(map[string]string{"SOUK_JWT_SECRET": app.DevJWTSecret, "SOUK_SERVICE_JWT_SECRET": app.DevServiceJWTSecret}))
	e.Load()
	for _, name := range []string{"SOUK_JWT_SECRET", "SOUK_SERVICE_JWT_SECRET"} {
		if err := e.Err(); err == nil || !strings.Contains(err.Error(), name+": the documented development secret is refused") {
			t.Errorf("production with the development %s: %v", name, err)
		}
	}
	e = app.NewEnv(lookup(nil))
	e.Load()
	if err := e.Err(); err == nil || !strings.Contains(err.Error(), "SOUK_SERVICE_JWT_SECRET: required") || !strings.Contains(err.Error(), "SOUK_JWT_SECRET: required") {
		t.Errorf("production with no secrets: %v", err)
	}
	e = app.NewEnv(lookup(map[string]string{"SOUK_SERVICE_JWT_SECRET": strings.Repeat("s", 40), "SOUK_OIDC_ISSUER": "https://id.example",
		"SOUK_OIDC_AUDIENCE": "souk"}))
	c := e.Load()
	if err := e.Err(); err != nil || c.JWTSecret != "" || c.OIDC.JWKSURL != "https://id.example/.well-known/jwks.json" {
		t.Errorf("production with OIDC: %v %+v", err, c.OIDC)
	}
	e = app.NewEnv(lookup(map[string]string{"SOUK_ENV": "development"}))
	c = e.Load()
	if err := e.Err(); err != nil || c.JWTSecret != app.DevJWTSecret || c.ServiceJWTSecret != app.DevServiceJWTSecret {
		t.Errorf("development: %v", err)
	}
	e = app.NewEnv(lookup(map[string]string{"SOUK_ENV": "staging"}))
	e.Load()
	if err := e.Err(); err == nil || !strings.Contains(err.Error(), "SOUK_ENV") {
		t.Errorf("an unknown SOUK_ENV: %v", err)
	}
}

// The admin key is read only where asked for (seller-svc): required in
// production, never the service key; buyer-svc's shared configuration has
// none.
func TestAdminKey(t *testing.T) {
	service := strings.Repeat("s", 40)
	e := app.NewEnv(lookup(map[string]string{"SOUK_SERVICE_JWT_SECRET": service, "SOUK_JWT_SECRET": strings.Repeat("u", 40)}))
	c := e.Load()
	if err := e.Err(); err != nil || c.AdminJWTSecret != "" {
		t.Fatalf("the shared configuration: %v, admin key %q", err, c.AdminJWTSecret)
	}
	e.LoadAdminKey(&c)
	if err := e.Err(); err == nil || !strings.Contains(err.Error(), "SOUK_ADMIN_JWT_SECRET") {
		t.Fatalf("production without an admin key: %v", err)
	}
	e = app.NewEnv(lookup(map[string]string{"SOUK_SERVICE_JWT_SECRET": service, "SOUK_JWT_SECRET": strings.Repeat("u", 40),
		"SOUK_ADMIN_JWT_SECRET": service}))
	c = e.Load()
	e.LoadAdminKey(&c)
	if err := e.Err(); err == nil {
		t.Fatal("the service key as the admin key was accepted")
	}
}
