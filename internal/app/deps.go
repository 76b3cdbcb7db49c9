package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"

	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/deadline"
	"github.com/souk-dev/souk/internal/events"
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
	Redis     redis.UniversalClient
	Locker    *lock.Locker
	Deadlines *deadline.Scheduler
	Issuer    *auth.Issuer
	// Events serves watches of the event feed.
	Events *events.Hub
	// Metrics are the replica's Prometheus metrics.
	Metrics *Metrics
	// Now is the clock, in the microseconds Postgres keeps.
	Now func() time.Time

	relay  *relay.Relay
	cancel context.CancelFunc
	done   chan struct{}
}

// Now returns the wall clock truncated to microseconds.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// Open connects to Postgres (migrating it if configured) and Redis, and
// starts the deadline scheduler if configured.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Deps, error) {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	iss, err := auth.NewIssuer(runCtx, cfg.Keys())
	if err != nil {
		cancel()
		return nil, err
	}
	var traced []func(*pgxpool.Config)
	if cfg.Tracing {
		traced = append(traced, postgres.Traced)
	}
	db, err := postgres.Open(ctx, cfg.DatabaseURL, traced...)
	if err != nil {
		cancel()
		return nil, err
	}
	db.LimitUnpaid(cfg.Unpaid)
	if cfg.Migrate {
		if err := db.Migrate(ctx); err != nil {
			cancel()
			db.Close()
			return nil, err
		}
	}
	rdb := cfg.NewRedis()
	if cfg.Tracing {
		// Traces: a span per Redis command.
		if err := redisotel.InstrumentTracing(rdb); err != nil {
			cancel()
			db.Close()
			return nil, fmt.Errorf("trace redis: %w", err)
		}
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		cancel()
		db.Close()
		return nil, fmt.Errorf("ping redis: %w", err)
	}
	d := &Deps{
		Config: cfg, Log: log, DB: db, Redis: rdb, Issuer: iss, Now: Now,
		Locker:    lock.New(rdb, cfg.RedisPrefix, cfg.LockTTL),
		Deadlines: deadline.New(rdb, cfg.RedisPrefix, db, cfg.Policy, Now, log),
		done:      make(chan struct{}),
	}
	d.Deadlines.SetHorizon(cfg.DeadlineHorizon)
	d.Metrics = newMetrics(db, rdb)
	d.Deadlines.OnFiredDeadline(d.Metrics.DeadlineFired)
	watch := cfg.Watch
	watch.Stream = EventStream(cfg)
	// The hub's own client: Stop closes it to end its blocking reads at once.
	d.Events = events.NewHub(cfg.NewRedis(), watch, log)
	d.Events.SetGroupPositions(db)
	d.Metrics.WatchReads(d.Events.Replayed, d.Events.Live)
	d.cancel = cancel
	var wg sync.WaitGroup
	if cfg.Deadlines {
		wg.Go(func() {
			_ = d.Deadlines.Run(runCtx, deadline.Config{Listen: cfg.Listener, SweepInterval: cfg.SweepInterval})
		})
	}
	wg.Go(func() { d.Events.Run(runCtx) })
	if cfg.Relay {
		d.relay = relay.New(db, rdb, relay.Config{Stream: EventStream(cfg), Retention: cfg.EventRetention, Interval: cfg.RelayInterval}, Now, log)
		wg.Go(func() { d.relay.Run(runCtx) })
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
// order's deadline keys and wakes the event relay.
func (d *Deps) Changed(ctx context.Context, o *order.Order) {
	d.Deadlines.Arm(ctx, o)
	if d.relay != nil {
		d.relay.Wake()
	}
}

// Stored passes on the result of a change, calling Changed when it was
// stored.
func (d *Deps) Stored(ctx context.Context, o *order.Order, err error) (*order.Order, error) {
	if errors.Is(err, postgres.ErrReplayed) {
		return o, nil // a retried request: the order as it stands
	}
	if err != nil {
		return nil, err
	}
	d.Changed(ctx, o)
	return o, nil
}

// Ready says whether the replica can serve: PostgreSQL and Redis answer.
func (d *Deps) Ready(ctx context.Context) error {
	if err := d.DB.Pool().Ping(ctx); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if err := d.Redis.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// Close stops the scheduler and closes the connections.
func (d *Deps) Close() {
	d.Events.Stop()
	d.cancel()
	<-d.done
	_ = d.Redis.Close()
	d.DB.Close()
}
