// Command seller-svc serves sellers: catalog, incoming orders, price
// adjustments and shipping, over gRPC and a JSON gateway. Configuration is
// read from the environment (see README).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/souk-dev/souk/internal/server"
	"github.com/souk-dev/souk/seller-svc/seller"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "seller-svc:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := seller.LoadConfig(nil)
	if err != nil {
		return err
	}
	log := server.NewLogger(os.Stdout, cfg.LogLevel).With("service", "seller-svc")
	m := seller.New(cfg, log)
	if err := m.Open(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return m.Close(shutdown)
}
