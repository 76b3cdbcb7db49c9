// Command migrate brings the database at SOUK_DATABASE_URL up to date, for
// `make migrate` and for deployments that migrate before starting the
// services (with SOUK_MIGRATE=false on them).
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/postgres"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "migrate:", err)
		os.Exit(1)
	}
}

func run() error {
	e := app.NewEnv(nil)
	url := e.String("SOUK_DATABASE_URL", app.DefaultDatabaseURL)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := postgres.Open(ctx, url)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	fmt.Println("the schema is up to date")
	return nil
}
