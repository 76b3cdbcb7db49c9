package buyer_test

import (
	"strings"
	"testing"

	"github.com/souk-dev/souk/buyer-svc/buyer"
)

// TestProductionRefusesDevelopmentSecrets: buyer-svc does not start in
// production with the documented webhook or fingerprint secret.
func TestProductionRefusesDevelopmentSecrets(t *testing.T) {
	env := map[string]string{
		"SOUK_JWT_SECRET": strings.Repeat("u", 40), "SOUK_SERVICE_JWT_SECRET": strings.Repeat("s", 40),
		"SOUK_PROVIDER_WEBHOOK_SECRET": "souk-development-webhook-secret", "SOUK_FINGERPRINT_SECRET": "souk-development-fingerprint-secret",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	_, err := buyer.LoadConfig(lookup)
	for _, name := range []string{"SOUK_PROVIDER_WEBHOOK_SECRET", "SOUK_FINGERPRINT_SECRET"} {
		if err == nil || !strings.Contains(err.Error(), name+": the documented development secret is refused") {
			t.Errorf("%s: %v", name, err)
		}
	}
	env["SOUK_PROVIDER_WEBHOOK_SECRET"], env["SOUK_FINGERPRINT_SECRET"] = strings.Repeat("w", 32), strings.Repeat("f", 32)
	if _, err := buyer.LoadConfig(lookup); err != nil {
		t.Fatalf("production with its own secrets: %v", err)
	}
	env["SOUK_ENV"] = "development"
	delete(env, "SOUK_PROVIDER_WEBHOOK_SECRET")
	if c, err := buyer.LoadConfig(lookup); err != nil || c.WebhookSecret != "souk-development-webhook-secret" {
		t.Fatalf("development: %v", err)
	}
}
