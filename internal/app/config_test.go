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
	e := app.NewEnv(lookup(nil))
	c := e.Load()
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	if c.PaymentWindow != 20*24*time.Hour || !c.Listener || c.RedisPrefix != "souk:" {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestLoadParsesAndCollectsErrors(t *testing.T) {
	e := app.NewEnv(lookup(map[string]string{"SOUK_PAYMENT_WINDOW": "3d", "SOUK_SWEEP_INTERVAL": "250ms"}))
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
