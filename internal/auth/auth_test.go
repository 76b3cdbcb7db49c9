package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/souk-dev/souk/internal/auth"
)

var (
	userKey    = strings.Repeat("u", 40)
	serviceKey = strings.Repeat("s", 40)
	adminKey   = strings.Repeat("a", 40)
)

func issuer(t *testing.T, k auth.Keys) *auth.Issuer {
	t.Helper()
	iss, err := auth.NewIssuer(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func TestSignVerifyRoundTrip(t *testing.T) {
	iss := issuer(t, auth.Keys{User: userKey, Service: serviceKey, Admin: adminKey})
	for _, p := range []auth.Principal{{Role: auth.RoleSeller, Subject: "store-x"}, {Role: auth.RoleService, Subject: "buyer-svc"}, {Role: auth.RoleAdmin, Subject: "ops"}} {
		tok, err := iss.Sign(p, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := iss.Verify(tok); err != nil || got != p {
			t.Fatalf("verify = %+v, %v; want %+v", got, err, p)
		}
	}
}

// A verified token's verdict is reused, but never past the token's expiry.
func TestVerifiedTokenStillExpires(t *testing.T) {
	iss := issuer(t, auth.Keys{User: userKey, Service: serviceKey})
	p := auth.Principal{Role: auth.RoleBuyer, Subject: "alice"}
	tok, err := iss.Sign(p, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got, err := iss.Verify(tok); err != nil || got != p {
			t.Fatalf("verify = %+v, %v", got, err)
		}
	}
	time.Sleep(2100 * time.Millisecond) // JWT expiry has second precision
	if _, err := iss.Verify(tok); err == nil {
		t.Fatal("an expired token passed (its earlier verdict was reused)")
	}
}

func TestVerifyRejects(t *testing.T) {
	iss := issuer(t, auth.Keys{User: userKey, Service: serviceKey})
	other := issuer(t, auth.Keys{User: strings.Repeat("z", 40), Service: strings.Repeat("y", 40)})
	expired, _ := iss.Sign(auth.Principal{Role: auth.RoleBuyer, Subject: "alice"}, -time.Minute)
	forged, _ := other.Sign(auth.Principal{Role: auth.RoleBuyer, Subject: "alice"}, time.Minute)
	forgedService, _ := other.Sign(auth.Principal{Role: auth.RoleService, Subject: "x"}, time.Minute)
	noSubject, _ := iss.Sign(auth.Principal{Role: auth.RoleBuyer}, time.Minute)
	hs := func(key string, c jwt.MapClaims) string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(key))
		return s
	}
	exp := time.Now().Add(time.Hour).Unix()
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"role": "admin", "sub": "x", "iss": "souk", "exp": exp}).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	for name, tok := range map[string]string{
		"expired": expired, "other user key": forged, "other service key": forgedService, "no subject": noSubject,
		"unknown role":   hs(userKey, jwt.MapClaims{"role": "superuser", "sub": "x", "iss": "souk", "exp": exp}),
		"alg none":       none,
		"no expiry":      hs(serviceKey, jwt.MapClaims{"role": "admin", "sub": "x", "iss": "souk"}),
		"another issuer": hs(userKey, jwt.MapClaims{"role": "buyer", "sub": "x", "iss": "elsewhere", "exp": exp}),
		"garbage":        "not.a.token", "empty": "",
		// A leaked user key must not mint a service or an admin caller.
		"service by the user key": hs(userKey, jwt.MapClaims{"role": "service", "sub": "x", "iss": "souk", "exp": exp}),
		"admin by the user key":   hs(userKey, jwt.MapClaims{"role": "admin", "sub": "x", "iss": "souk", "exp": exp}),
	} {
		if p, err := iss.Verify(tok); err == nil {
			t.Errorf("%s: accepted as %+v", name, p)
		}
	}
}

func TestNewIssuerRefusesWeakKeys(t *testing.T) {
	for name, k := range map[string]auth.Keys{
		"short user key": {User: "short", Service: serviceKey}, "no service key": {User: userKey},
		"one key for both": {User: userKey, Service: userKey},
	} {
		if _, err := auth.NewIssuer(context.Background(), k); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// jwks is an identity provider's key set, served by an in-process server.
type jwks struct {
	mu   sync.Mutex
	keys []map[string]string
}

func (j *jwks) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	j.mu.Lock()
	defer j.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"keys": j.keys})
}

func (j *jwks) publish(keys ...map[string]string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.keys = keys
}

var b64 = base64.RawURLEncoding.EncodeToString

func rsaJWK(kid string, k *rsa.PrivateKey) map[string]string {
	return map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(kid string, k *ecdsa.PrivateKey) map[string]string {
	pad := func(b []byte) []byte { return append(make([]byte, 32-len(b)), b...) }
	return map[string]string{"kty": "EC", "kid": kid, "alg": "ES256", "use": "sig", "crv": "P-256", "x": b64(pad(k.X.Bytes())), "y": b64(pad(k.Y.Bytes()))}
}

// TestOIDC: buyer and seller tokens from an identity provider (RS256 and
// ES256 keys from its JWKS) are accepted with the right issuer and
// audience; a rotated key is fetched when a token names it; a key the
// provider never published, another audience or issuer, and a service or
// admin role are refused.
func TestOIDC(t *testing.T) {
	k1, _ := rsa.GenerateKey(rand.Reader, 2048)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k3, _ := rsa.GenerateKey(rand.Reader, 2048)
	set := &jwks{}
	set.publish(rsaJWK("k1", k1))
	srv := httptest.NewServer(set)
	defer srv.Close()
	iss := issuer(t, auth.Keys{Service: serviceKey, OIDC: &auth.OIDC{Issuer: "https://id.example", Audience: "souk", JWKSURL: srv.URL, RoleClaim: "souk_role"}})

	sign := func(m jwt.SigningMethod, kid string, key any, c jwt.MapClaims) string {
		base := jwt.MapClaims{"iss": "https://id.example", "aud": []string{"souk", "other-app"}, "sub": "alice", "souk_role": "buyer",
			"exp": time.Now().Add(time.Hour).Unix()}
		for k, v := range c {
			base[k] = v
		}
		tok := jwt.NewWithClaims(m, base)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if p, err := iss.Verify(sign(jwt.SigningMethodRS256, "k1", k1, nil)); err != nil || p != (auth.Principal{Role: auth.RoleBuyer, Subject: "alice"}) {
		t.Fatalf("a buyer's token from the provider: %+v, %v", p, err)
	}
	for name, tok := range map[string]string{
		"another audience": sign(jwt.SigningMethodRS256, "k1", k1, jwt.MapClaims{"aud": "not-souk"}),
		"another issuer":   sign(jwt.SigningMethodRS256, "k1", k1, jwt.MapClaims{"iss": "https://evil.example"}),
		"an admin role":    sign(jwt.SigningMethodRS256, "k1", k1, jwt.MapClaims{"souk_role": "admin"}),
		"a service role":   sign(jwt.SigningMethodRS256, "k1", k1, jwt.MapClaims{"souk_role": "service"}),
		"no role":          sign(jwt.SigningMethodRS256, "k1", k1, jwt.MapClaims{"souk_role": nil}),
		"expired":          sign(jwt.SigningMethodRS256, "k1", k1, jwt.MapClaims{"exp": time.Now().Add(-time.Minute).Unix()}),
		"a key id lying":   sign(jwt.SigningMethodRS256, "k1", k3, nil),
	} {
		if p, err := iss.Verify(tok); err == nil {
			t.Errorf("%s: accepted as %+v", name, p)
		}
	}
	// Without a user key, Souk's own HS256 buyer tokens are refused.
	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"role": "buyer", "sub": "alice", "iss": "souk",
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(userKey))
	if _, err := iss.Verify(hs); err == nil {
		t.Error("an HS256 buyer token was accepted without a user key")
	}

	// The provider rotates to an EC key: a token naming it is accepted.
	set.publish(ecJWK("k2", k2))
	if p, err := iss.Verify(sign(jwt.SigningMethodES256, "k2", k2, jwt.MapClaims{"sub": "store-x", "souk_role": "seller"})); err != nil ||
		p != (auth.Principal{Role: auth.RoleSeller, Subject: "store-x"}) {
		t.Fatalf("a token of the rotated key: %+v, %v", p, err)
	}
	// A key the provider never published.
	if p, err := iss.Verify(sign(jwt.SigningMethodRS256, "k3", k3, nil)); err == nil {
		t.Errorf("a token of an unknown key: accepted as %+v", p)
	}
}

// Round two, point 19: admin tokens have a key of their own. A process
// without it (buyer-svc) can neither sign nor accept them, and a token
// that claims the admin role under the service key is refused.
func TestAdminTokensHaveTheirOwnKey(t *testing.T) {
	seller := issuer(t, auth.Keys{User: userKey, Service: serviceKey, Admin: adminKey})
	buyer := issuer(t, auth.Keys{User: userKey, Service: serviceKey})
	admin := auth.Principal{Role: auth.RoleAdmin, Subject: "ops"}
	if _, err := buyer.Sign(admin, time.Minute); err == nil {
		t.Fatal("a process without the admin key signed an admin token")
	}
	tok, err := seller.Sign(admin, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := buyer.Verify(tok); err == nil {
		t.Fatal("a process without the admin key accepted an admin token")
	}
	forged, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"role": "admin", "sub": "ops", "iss": "souk",
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(serviceKey))
	if _, err := seller.Verify(forged); err == nil {
		t.Fatal("an admin token signed with the service key was accepted")
	}
	if _, err := auth.NewIssuer(context.Background(), auth.Keys{User: userKey, Service: serviceKey, Admin: serviceKey}); err == nil {
		t.Fatal("the admin key may be the service key")
	}
}
