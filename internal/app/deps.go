package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/deadline"
	"github.com/souk-dev/souk/internal/lock"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/postgres"
	"github.com/souk-dev/souk/internal/relay"
)

// Deps are the connections and helpers a service runs on.
type Deps struct {
	Config    Config
	Log       *slog.Logger
	DB        *postgres.DB
	Redis     *redis.Client
	Locker    *lock.Locker
	Deadlines *deadline.Scheduler
	Issuer    *auth.Issuer
	// Now is the clock, in the microseconds Postgres keeps.
	Now func() time.Time

	cancel context.CancelFunc
	done   chan struct{}
}

// Now returns the wall clock truncated to microseconds.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// Open connects to Postgres (migrating it if configured) and Redis, and
// starts the deadline scheduler if configured.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Deps, error) {
	iss, err := auth.NewIssuer(cfg.JWTSecret)
	if err != nil {
		return nil, err
	}
	db, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.Migrate {
		if err := db.Migrate(ctx); err != nil {
			db.Close()
			return nil, err
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: cfg.RedisAddr, DB: cfg.RedisDB})
	if err := rdb.Ping(ctx).Err(); err != nil {
		db.Close()
		return nil, fmt.Errorf("ping redis: %w", err)
	}
	d := &Deps{
		Config: cfg, Log: log, DB: db, Redis: rdb, Issuer: iss, Now: Now,
		Locker:    lock.New(rdb, cfg.RedisPrefix, cfg.LockTTL),
		Deadlines: deadline.New(rdb, cfg.RedisPrefix, db, cfg.Policy, Now, log),
		done:      make(chan struct{}),
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.cancel = cancel
	var wg sync.WaitGroup
	if cfg.Deadlines {
		wg.Go(func() {
			_ = d.Deadlines.Run(runCtx, deadline.Config{Listen: cfg.Listener, SweepInterval: cfg.SweepInterval})
		})
	}
	if cfg.Relay {
		r := relay.New(db, rdb, relay.Config{Stream: EventStream(cfg), Retention: cfg.EventRetention, Interval: cfg.RelayInterval}, Now, log)
		wg.Go(func() { r.Run(runCtx) })
	}
	go func() {
		wg.Wait()
		close(d.done)
	}()
	return d, nil
}

// EventStream is the Redis stream the relay publishes order events to.
func EventStream(cfg Config) string { return cfg.RedisPrefix + "events" }

// Changed is called after every committed change of an order: it arms the
// order's deadline keys.
func (d *Deps) Changed(ctx context.Context, o *order.Order) { d.Deadlines.Arm(ctx, o) }

// Close stops the scheduler and closes the connections.
func (d *Deps) Close() {
	d.cancel()
	<-d.done
	_ = d.Redis.Close()
	d.DB.Close()
}
