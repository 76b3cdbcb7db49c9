// Command buyer-svc serves buyers: checkout, "My Orders", paying,
// cancelling and confirming receipt, over gRPC and a JSON gateway.
// Configuration is read from the environment (see README).
package main

import (
	"os"

	"github.com/souk-dev/souk/buyer-svc/buyer"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/server"
)

func main() {
	cfg, err := buyer.LoadConfig(nil)
	if err != nil {
		app.Exit("buyer-svc", err)
	}
	log := server.NewLogger(os.Stdout, cfg.LogLevel).With("service", "buyer-svc")
	app.Main("buyer-svc", log, buyer.New(cfg, log, nil))
}
