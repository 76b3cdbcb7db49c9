package auth_test

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/souk-dev/souk/internal/auth"
)

const secret = "test-secret-test-secret-test-secret-0123"

func TestSignVerifyRoundTrip(t *testing.T) {
	iss, err := auth.NewIssuer(secret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Sign(auth.Principal{Role: auth.RoleSeller, Subject: "store-x"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	p, err := iss.Verify(tok)
	if err != nil || p != (auth.Principal{Role: auth.RoleSeller, Subject: "store-x"}) {
		t.Fatalf("verify = %+v, %v", p, err)
	}
}

func TestVerifyRejects(t *testing.T) {
	iss, _ := auth.NewIssuer(secret)
	other, _ := auth.NewIssuer(strings.Repeat("z", 40))
	expired, _ := iss.Sign(auth.Principal{Role: auth.RoleBuyer, Subject: "alice"}, -time.Minute)
	forged, _ := other.Sign(auth.Principal{Role: auth.RoleBuyer, Subject: "alice"}, time.Minute)
	noSubject, _ := iss.Sign(auth.Principal{Role: auth.RoleBuyer}, time.Minute)
	badRole, _ := iss.Sign(auth.Principal{Role: "superuser", Subject: "alice"}, time.Minute)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"role": "admin", "sub": "x", "iss": "souk",
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	noExpiry, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"role": "admin", "sub": "x", "iss": "souk"}).SignedString([]byte(secret))
	for name, tok := range map[string]string{
		"expired": expired, "other secret": forged, "no subject": noSubject, "unknown role": badRole,
		"alg none": none, "no expiry": noExpiry, "garbage": "not.a.token", "empty": "",
	} {
		if p, err := iss.Verify(tok); err == nil {
			t.Errorf("%s: accepted as %+v", name, p)
		}
	}
}

func TestNewIssuerNeedsALongSecret(t *testing.T) {
	if _, err := auth.NewIssuer("short"); err == nil {
		t.Fatal("a 5-byte secret was accepted")
	}
}
