package seller

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"time"

	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
)

// dashboardFiles is the seller dashboard: static files, no build step,
// calling only the public JSON API of this same origin.
//
//go:embed dashboard
var dashboardFiles embed.FS

// DemoStore is the store whose token the development sign-in hands out.
const DemoStore = "demo-store"

// pages serves the dashboard at /dashboard/ (and / sends there), and, with
// the development JWT secret only, the demo store's sign-in at /dev/token.
func (m *Main) pages(iss *auth.Issuer) map[string]http.Handler {
	files, _ := fs.Sub(dashboardFiles, "dashboard")
	dev := m.cfg.JWTSecret == app.DevJWTSecret
	static := http.StripPrefix("/dashboard/", http.FileServerFS(files))
	p := map[string]http.Handler{
		"GET /dashboard/": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			static.ServeHTTP(w, r)
		}),
		"GET /dashboard/config.json": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"demo_sign_in": dev})
		}),
		"GET /{$}": http.RedirectHandler("/dashboard/", http.StatusFound),
	}
	if dev {
		p["POST /dev/token"] = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			tok, err := iss.Sign(auth.Principal{Role: auth.RoleSeller, Subject: DemoStore}, 12*time.Hour)
			if err != nil {
				http.Error(w, "sign", http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"token": tok, "seller_id": DemoStore})
		})
	}
	return p
}
