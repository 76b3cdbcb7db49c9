// Command buyer-svc serves buyers: checkout, "My Orders", paying,
// cancelling and confirming receipt, over gRPC and a JSON gateway.
// Configuration is read from the environment (see README).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/souk-dev/souk/buyer-svc/buyer"
	"github.com/souk-dev/souk/internal/server"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "buyer-svc:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := buyer.LoadConfig(nil)
	if err != nil {
		return err
	}
	log := server.NewLogger(os.Stdout, cfg.LogLevel).With("service", "buyer-svc")
	m := buyer.New(cfg, log, nil)
	if err := m.Open(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return m.Close(shutdown)
}
