// Command seller-svc serves sellers: catalog, incoming orders, price
// adjustments and shipping, over gRPC and a JSON gateway. Configuration is
// read from the environment (see README).
package main

import (
	"os"

	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/server"
	"github.com/souk-dev/souk/seller-svc/seller"
)

func main() {
	cfg, err := seller.LoadConfig(nil)
	if err != nil {
		app.Exit("seller-svc", err)
	}
	log := server.NewLogger(os.Stdout, cfg.LogLevel).With("service", "seller-svc")
	app.Main("seller-svc", log, seller.New(cfg, log))
}
