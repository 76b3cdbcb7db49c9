package app

import (
	"context"
	"net/http"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/postgres"
)

// Metrics are a replica's Prometheus metrics, in a registry of its own:
// its RPCs, its Postgres and Redis pools, and Souk's own (deadline lag,
// provider answers, and the state of deadlines, refunds, captures and the
// event outbox, read from Postgres when scraped).
type Metrics struct {
	Registry *prometheus.Registry
	// GRPC counts and times every RPC by method and code.
	GRPC        *grpcprom.ServerMetrics
	deadlineLag *prometheus.HistogramVec
	answers     *prometheus.CounterVec
}

func newMetrics(db *postgres.DB, rdb redis.UniversalClient) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		GRPC: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets([]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}))),
		deadlineLag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "souk_deadline_lag_seconds",
			Help:    "How late deadlines fire (fired - due), by kind and by the path that fired them (listener, sweeper).",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300, 900},
		}, []string{"kind", "path"}),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "souk_payment_answers_total",
			Help: "The payment provider's answers to payment attempts, by outcome and decline code.",
		}, []string{"outcome", "decline_code"}),
	}
	m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.GRPC, m.deadlineLag, m.answers, &poolCollector{db: db, rdb: rdb}, &stateCollector{db: db})
	return m
}

// DeadlineFired records a fired deadline.
func (m *Metrics) DeadlineFired(kind order.DeadlineKind, path string, lag time.Duration) {
	m.deadlineLag.WithLabelValues(string(kind), path).Observe(max(lag, 0).Seconds())
}

// Answered records an answer of the payment provider.
func (m *Metrics) Answered(outcome, declineCode string) {
	m.answers.WithLabelValues(outcome, declineCode).Inc()
}

// WatchReads exports how many event stream entries the replica's watches
// have read to catch up (replayed: a party's replay costs what that
// party's events cost, a watch of everything what the stream holds), and
// how many the replica read for its live watches (none while none is open).
func (m *Metrics) WatchReads(replayed, live func() int64) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "souk_event_replay_entries_total",
		Help: "Event stream entries the watches read to catch up from a cursor (a buyer's or a store's replay reads only theirs).",
	}, func() float64 { return float64(replayed()) }), prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "souk_event_live_entries_total",
		Help: "Event stream entries the replica read for its live watches (a replica with no watch open reads none).",
	}, func() float64 { return float64(live()) }))
}

// Handler serves the metrics (on the internal listener, at /metrics).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

var (
	poolDescs = map[string]*prometheus.Desc{}
	poolNames = []struct{ name, help string }{
		{"souk_pg_pool_connections", "PostgreSQL pool connections, by state (acquired, idle, total, max)."},
		{"souk_pg_pool_acquires_total", "Connections acquired from the PostgreSQL pool."},
		{"souk_pg_pool_empty_acquires_total", "Acquires that had to wait for a PostgreSQL connection."},
		{"souk_pg_pool_acquire_wait_seconds_total", "Time spent acquiring PostgreSQL connections."},
		{"souk_redis_pool_connections", "Redis pool connections, by state (idle, total)."},
		{"souk_redis_pool_lookups_total", "Redis pool lookups, by result (hit, miss, timeout)."},
	}
)

func init() {
	for _, n := range poolNames {
		var labels []string
		switch n.name {
		case "souk_pg_pool_connections", "souk_redis_pool_connections":
			labels = []string{"state"}
		case "souk_redis_pool_lookups_total":
			labels = []string{"result"}
		}
		poolDescs[n.name] = prometheus.NewDesc(n.name, n.help, labels, nil)
	}
}

// poolCollector reports the connection pools' statistics.
type poolCollector struct {
	db  *postgres.DB
	rdb redis.UniversalClient
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range poolDescs {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.db.Pool().Stat()
	gauge := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(poolDescs[name], prometheus.GaugeValue, v, labels...)
	}
	counter := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(poolDescs[name], prometheus.CounterValue, v, labels...)
	}
	gauge("souk_pg_pool_connections", float64(s.AcquiredConns()), "acquired")
	gauge("souk_pg_pool_connections", float64(s.IdleConns()), "idle")
	gauge("souk_pg_pool_connections", float64(s.TotalConns()), "total")
	gauge("souk_pg_pool_connections", float64(s.MaxConns()), "max")
	counter("souk_pg_pool_acquires_total", float64(s.AcquireCount()))
	counter("souk_pg_pool_empty_acquires_total", float64(s.EmptyAcquireCount()))
	counter("souk_pg_pool_acquire_wait_seconds_total", s.AcquireDuration().Seconds())
	r := c.rdb.PoolStats()
	gauge("souk_redis_pool_connections", float64(r.IdleConns), "idle")
	gauge("souk_redis_pool_connections", float64(r.TotalConns), "total")
	counter("souk_redis_pool_lookups_total", float64(r.Hits), "hit")
	counter("souk_redis_pool_lookups_total", float64(r.Misses), "miss")
	counter("souk_redis_pool_lookups_total", float64(r.Timeouts), "timeout")
}

var (
	openDeadlines   = prometheus.NewDesc("souk_open_deadlines", "Open deadlines, by kind.", []string{"kind"}, nil)
	refundsPending  = prometheus.NewDesc("souk_refunds_pending", "Refunds owed and not yet confirmed by the provider.", nil, nil)
	refundsOverdue  = prometheus.NewDesc("souk_refunds_overdue", "Pending refunds past their due date (alert on any).", nil, nil)
	refundsFailed   = prometheus.NewDesc("souk_refunds_failed", "Refunds the provider refused for good: money owed to buyers until an admin retries or settles them (alert on any).", nil, nil)
	refundBacklog   = prometheus.NewDesc("souk_refund_worker_backlog", "Pending refunds whose next try is due now: the refund worker's backlog.", nil, nil)
	captureBacklog  = prometheus.NewDesc("souk_capture_worker_backlog", "Paid orders whose payment is not captured yet.", nil, nil)
	outboxUnsent    = prometheus.NewDesc("souk_outbox_unpublished", "Order events not yet in the event stream.", nil, nil)
	outboxLag       = prometheus.NewDesc("souk_outbox_lag_seconds", "Age of the oldest event not yet in the event stream (0: none).", nil, nil)
	stateScrapeFail = prometheus.NewDesc("souk_state_scrape_errors", "1 if reading the state metrics from PostgreSQL failed in this scrape.", nil, nil)
)

// stateCollector reads Souk's state from PostgreSQL when scraped: a few
// counts on indexed columns, bounded by a timeout.
type stateCollector struct{ db *postgres.DB }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{openDeadlines, refundsPending, refundsOverdue, refundsFailed, refundBacklog, captureBacklog, outboxUnsent, outboxLag, stateScrapeFail} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := c.db.State(ctx)
	failed := 0.0
	if err != nil {
		failed = 1
	} else {
		for kind, n := range st.OpenDeadlines {
			ch <- prometheus.MustNewConstMetric(openDeadlines, prometheus.GaugeValue, float64(n), kind)
		}
		for d, v := range map[*prometheus.Desc]float64{
			refundsPending: float64(st.RefundsPending), refundsOverdue: float64(st.RefundsOverdue), refundBacklog: float64(st.RefundBacklog),
			refundsFailed:  float64(st.RefundsFailed),
			captureBacklog: float64(st.CaptureBacklog), outboxUnsent: float64(st.OutboxUnpublished), outboxLag: st.OutboxLag.Seconds(),
		} {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
		}
	}
	ch <- prometheus.MustNewConstMetric(stateScrapeFail, prometheus.GaugeValue, failed)
}
