package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	eventsv1 "github.com/souk-dev/souk/gen/go/souk/events/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/payment"
	"github.com/souk-dev/souk/internal/testenv"
)

// TestInternalRoutesAreNotPublic: the catalog, event and dispute-decision
// services answer on seller-svc's internal listeners only; on the public
// gRPC port they do not exist, nor do their routes on the public gateway.
func TestInternalRoutesAreNotPublic(t *testing.T) {
	s := startSystem(t, 1, nil)
	admin, service := as(s.token(auth.RoleAdmin, "ops")), as(s.token(auth.RoleService, "buyer-svc"))
	public, internal := dial(t, s.sellers[0].GRPCAddr()), dial(t, s.sellers[0].InternalGRPCAddr())

	if _, err := sellerv1.NewDisputeResolutionServiceClient(public).ListEscalatedDisputes(admin, &sellerv1.ListEscalatedDisputesRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("DisputeResolutionService on the public port: %v", err)
	}
	if _, err := sellerv1.NewCatalogServiceClient(public).ReleaseStock(service, &sellerv1.ReleaseStockRequest{CheckoutId: "00000000-0000-0000-0000-000000000000"}); status.Code(err) != codes.Unimplemented {
		t.Errorf("CatalogService on the public port: %v", err)
	}
	st, err := eventsv1.NewOrderEventServiceClient(public).WatchOrderEvents(service, &eventsv1.WatchOrderEventsRequest{})
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("OrderEventService on the public port: %v", err)
	}
	if _, err := sellerv1.NewDisputeResolutionServiceClient(internal).ListEscalatedDisputes(admin, &sellerv1.ListEscalatedDisputesRequest{}); err != nil {
		t.Errorf("DisputeResolutionService on the internal port: %v", err)
	}
	if _, err := sellerv1.NewSellerServiceClient(internal).ListOrders(as(s.token(auth.RoleSeller, "store-x")), &sellerv1.ListOrdersRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("SellerService on the internal port: %v", err)
	}

	for _, r := range []struct{ method, path, tok string }{
		{"GET", "/admin/v1/disputes", s.token(auth.RoleAdmin, "ops")},
		{"POST", "/internal/v1/reservations", s.token(auth.RoleService, "buyer-svc")},
		{"GET", "/internal/v1/events", s.token(auth.RoleService, "buyer-svc")},
	} {
		if code, _ := jsonCall(t, r.method, s.sellerURL(r.path), r.tok, map[string]any{}); code != http.StatusNotFound {
			t.Errorf("%s %s on the public gateway: HTTP %d", r.method, r.path, code)
		}
	}
	if code, _ := jsonCall(t, "GET", "http://"+s.sellers[0].InternalHTTPAddr()+"/admin/v1/disputes", s.token(auth.RoleAdmin, "ops"), nil); code != http.StatusOK {
		t.Errorf("the admin route on the internal gateway: HTTP %d", code)
	}
}

// scrape reads a /metrics page and returns the sum of the samples of name
// whose labels include every pair of labels ("k", "v", …), and whether any
// sample matched.
func scrape(t *testing.T, addr, name string, labels ...string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: HTTP %d", resp.StatusCode)
	}
	body, _ := io.ReadAll(resp.Body)
	sum, found := 0.0, false
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		ok := true
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(rest, fmt.Sprintf(`%s=%q`, labels[i], labels[i+1])) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(rest[strings.LastIndex(rest, "}")+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		sum, found = sum+v, true
	}
	return sum, found
}

// TestMetrics: after an end-to-end story (checkouts, an approved and a
// declined payment, two unpaid orders whose windows pass), each service's
// /metrics on its internal listener shows the RPCs by method and code, the
// provider's answers by outcome and decline code, the deadline that fired
// with its lag and path, the open deadlines, the pools and the outbox.
func TestMetrics(t *testing.T) {
	s := startSystem(t, 1, func(c *app.Config) { c.PaymentWindow = 3 * time.Second })
	lamp := s.product("store-x", "Lamp", 1000, 100, 100)
	buyerAddr, sellerAddr := s.buyers[0].InternalHTTPAddr(), s.sellers[0].InternalHTTPAddr()
	before, _ := scrape(t, buyerAddr, "grpc_server_handled_total", "grpc_method", "Checkout", "grpc_code", "OK")

	paid := s.checkout("alice", 1, lamp)[0]
	s.pay(t, "alice", paid, "4242424242424242", "metrics-paid")
	declined := s.checkout("alice", 1, lamp)[0]
	s.pay(t, "alice", declined, "4000000000000002", "metrics-declined")
	lapsing := s.checkout("alice", 1, lamp)[0]
	testenv.Eventually(t, 10*time.Second, "the unpaid orders lapse", func() bool {
		return s.order("alice", lapsing.Id).Status == cancelled && s.order("alice", declined.Id).Status == cancelled
	})

	// A store's watch from the stream's start replays its events: they
	// are counted.
	replay := watchGRPC(t, func(ctx context.Context) (grpc.ServerStreamingClient[sellerv1.WatchOrderEventsResponse], error) {
		return s.seller.WatchOrderEvents(authorized(ctx, s.token(auth.RoleSeller, "store-x")), &sellerv1.WatchOrderEventsRequest{Cursor: "0"})
	})
	replay.until(lapsing.Id, "cancelled", 10*time.Second)
	if n, _ := scrape(t, sellerAddr, "souk_event_replay_entries_total"); n < 3 {
		t.Errorf("seller-svc counted %v replayed entries, want the store's events", n)
	}
	// The watch, now live, is handed the store's next event: read by the
	// replica because a watch is open.
	live := s.checkout("alice", 1, lamp)[0]
	replay.until(live.Id, "created", 10*time.Second)
	if n, _ := scrape(t, sellerAddr, "souk_event_live_entries_total"); n < 1 {
		t.Errorf("seller-svc counted %v entries read for live watches, want the new order's", n)
	}

	if n, _ := scrape(t, buyerAddr, "grpc_server_handled_total", "grpc_method", "Checkout", "grpc_code", "OK"); n-before != 4 {
		t.Errorf("buyer-svc counted %v checkouts, want 4", n-before)
	}
	if n, _ := scrape(t, sellerAddr, "grpc_server_handled_total", "grpc_service", "souk.seller.v1.CatalogService", "grpc_method", "ReserveStock", "grpc_code", "OK"); n < 3 {
		t.Errorf("seller-svc counted %v reservations, want 3", n)
	}
	if _, ok := scrape(t, buyerAddr, "grpc_server_handling_seconds_bucket", "grpc_method", "PayOrder"); !ok {
		t.Error("no latency histogram of PayOrder")
	}
	if n, _ := scrape(t, buyerAddr, "souk_payment_answers_total", "outcome", "succeeded"); n != 1 {
		t.Errorf("%v approvals counted, want 1", n)
	}
	if n, _ := scrape(t, buyerAddr, "souk_payment_answers_total", "outcome", "declined", "decline_code", "do_not_honor"); n != 1 {
		t.Errorf("%v declines counted, want 1", n)
	}
	var fired float64
	for _, addr := range []string{buyerAddr, sellerAddr} {
		n, _ := scrape(t, addr, "souk_deadline_lag_seconds_count", "kind", "payment")
		fired += n
	}
	if fired != 2 {
		t.Errorf("%v payment deadlines fired, want 2", fired)
	}
	if n, _ := scrape(t, sellerAddr, "souk_open_deadlines", "kind", "ship_by"); n != 1 {
		t.Errorf("%v open ship-by deadlines, want 1", n)
	}
	for _, name := range []string{"souk_outbox_unpublished", "souk_outbox_lag_seconds", "souk_refunds_overdue", "souk_capture_worker_backlog"} {
		if _, ok := scrape(t, sellerAddr, name); !ok {
			t.Errorf("no %s", name)
		}
	}
	if n, _ := scrape(t, buyerAddr, "souk_pg_pool_connections", "state", "total"); n < 1 {
		t.Errorf("%v PostgreSQL connections", n)
	}
	if n, _ := scrape(t, buyerAddr, "souk_redis_pool_connections", "state", "total"); n < 1 {
		t.Errorf("%v Redis connections", n)
	}
	if n, ok := scrape(t, sellerAddr, "souk_state_scrape_errors"); !ok || n != 0 {
		t.Errorf("state scrape errors: %v", n)
	}
	// Not on the public port.
	if resp, err := http.Get(s.sellerURL("/metrics")); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics on the public port: %v %v", resp.StatusCode, err)
	}
}

// TestReadiness: readiness turns NOT_SERVING while PostgreSQL or Redis is
// down and back when it returns, over gRPC health and /readyz; liveness
// stays SERVING throughout.
func TestReadiness(t *testing.T) {
	pg, rd := testenv.StartPostgres(t), testenv.StartRedis(t)
	cfg := testenv.ConfigOn(pg.Database("souk"), rd.Addr, "souk-ready:")
	s := startSystemWith(t, 1, options{cfg: &cfg})
	health := healthpb.NewHealthClient(dial(t, s.buyers[0].GRPCAddr()))
	serving := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		r, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			return healthpb.HealthCheckResponse_UNKNOWN
		}
		return r.Status
	}
	readyz := func() int {
		resp, err := http.Get("http://" + s.sellers[0].InternalHTTPAddr() + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	up := healthpb.HealthCheckResponse_SERVING
	expect := func(what string, ready bool) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, what, func() bool {
			code := http.StatusServiceUnavailable
			if ready {
				code = http.StatusOK
			}
			return (serving("") == up) == ready && (serving("souk.buyer.v1.BuyerService") == up) == ready && readyz() == code
		})
		if serving("liveness") != up {
			t.Fatalf("%s: liveness is %v", what, serving("liveness"))
		}
	}
	expect("ready at start", true)
	pg.Stop()
	expect("not ready without PostgreSQL", false)
	pg.Start()
	expect("ready again with PostgreSQL", true)
	rd.Stop()
	expect("not ready without Redis", false)
	rd.Start()
	expect("ready again with Redis", true)
}

// TestTracing: with a tracer provider installed (an in-process span
// recorder here, OTLP in production), one checkout over the gateway is one
// trace that crosses both services: the gateway's HTTP span, buyer-svc's
// Checkout, its call to seller-svc and seller-svc's ReserveStock, with the
// SQL and Redis commands beneath; and the services' log lines carry its
// trace id.
func TestTracing(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTracerProvider(tracenoop.NewTracerProvider()); _ = tp.Shutdown(context.Background()) })
	logs := &logBuffer{}
	// A payment window within the deadline horizon: the checkout arms it in Redis.
	s := startSystemWith(t, 1, options{logs: logs, tune: func(c *app.Config) { c.Tracing = true; c.PaymentWindow = 30 * time.Minute }})
	lamp := s.product("store-x", "Lamp", 1000, 100, 100)

	code, body := jsonCall(t, "POST", s.buyerURL("/v1/checkout"), s.token(auth.RoleBuyer, "alice"),
		map[string]any{"items": []map[string]any{{"product_id": lamp.Id, "quantity": 1}}})
	if code != http.StatusOK {
		t.Fatalf("checkout: %d %v", code, body)
	}
	var checkout trace.SpanContext
	testenv.Eventually(t, 5*time.Second, "the checkout's server span", func() bool {
		for _, sp := range rec.Ended() {
			if sp.Name() == "souk.buyer.v1.BuyerService/Checkout" && sp.SpanKind() == trace.SpanKindServer {
				checkout = sp.SpanContext()
				return true
			}
		}
		return false
	})
	want := map[string]bool{
		"POST /v1/checkout": false, "souk.buyer.v1.BuyerService/Checkout": false,
		"souk.seller.v1.CatalogService/ReserveStock": false, "sql": false, "redis": false,
	}
	kinds := map[string]trace.SpanKind{}
	testenv.Eventually(t, 5*time.Second, "every span of the checkout", func() bool {
		for _, sp := range rec.Ended() {
			if sp.SpanContext().TraceID() != checkout.TraceID() {
				continue
			}
			name := sp.Name()
			switch {
			case strings.HasPrefix(name, "query ") || strings.HasPrefix(name, "batch") || strings.HasPrefix(name, "INSERT") ||
				strings.HasPrefix(name, "SELECT") || strings.HasPrefix(name, "UPDATE"):
				name = "sql"
			case sp.InstrumentationScope().Name == "github.com/redis/go-redis/extra/redisotel":
				name = "redis"
			}
			if _, ok := want[name]; ok {
				want[name] = true
				if name == "souk.seller.v1.CatalogService/ReserveStock" && sp.SpanKind() == trace.SpanKindServer {
					kinds[name] = sp.SpanKind()
				}
			}
		}
		for _, seen := range want {
			if !seen {
				return false
			}
		}
		return kinds["souk.seller.v1.CatalogService/ReserveStock"] == trace.SpanKindServer
	})
	if !strings.Contains(logs.String(), `"trace_id":"`+checkout.TraceID().String()+`"`) {
		t.Error("no log line carries the checkout's trace id")
	}
}

// TestOnRedisCluster: the whole system on the test Redis Cluster (three
// primaries): payments under the order lock, the event feed through the
// relay's script and the watch, and a payment window that lapses.
func TestOnRedisCluster(t *testing.T) {
	addrs := strings.Split(os.Getenv("SOUK_TEST_REDIS_CLUSTER"), ",")
	if len(addrs) < 2 {
		t.Fatal("SOUK_TEST_REDIS_CLUSTER is not set: run the tests with make test, which starts a Redis Cluster")
	}
	s := startSystem(t, 2, func(c *app.Config) { c.RedisAddrs, c.PaymentWindow = addrs, 3*time.Second })
	lamp := s.product("store-x", "Lamp", 1000, 100, 100)
	storeTok := s.token(auth.RoleSeller, "store-x")
	feed := watchGRPC(t, func(ctx context.Context) (grpc.ServerStreamingClient[sellerv1.WatchOrderEventsResponse], error) {
		return s.seller.WatchOrderEvents(authorized(ctx, storeTok), &sellerv1.WatchOrderEventsRequest{})
	})
	feed.began()
	paid := s.checkout("alice", 1, lamp)[0]
	if r := s.pay(t, "alice", paid, "4242424242424242", "cluster-pay"); r.Order.Status != paidStatus {
		t.Fatalf("pay: %s", r.Order.Status)
	}
	lapsing := s.checkout("bob", 1, lamp)[0]
	feed.until(paid.Id, "paid", 5*time.Second)
	feed.until(lapsing.Id, "cancelled", 10*time.Second)
	if o := s.order("bob", lapsing.Id); o.Status != cancelled || o.CancelReason != "payment_timeout" {
		t.Fatalf("the unpaid order: %s %s", o.Status, o.CancelReason)
	}
}

// TestStopDrains: a replica told to stop reports NOT_SERVING to health
// watchers at once and ends their watches, lets a payment in flight finish
// (the buyer gets the answer, the order is paid), then stops, well before
// its shutdown deadline.
func TestStopDrains(t *testing.T) {
	started := make(chan struct{}, 1)
	s := startSystemWith(t, 1, options{provider: func(sim *payment.Simulated) payment.Provider {
		return &faultyProvider{Provider: sim, afterPay: func(_ payment.PaymentRequest, res order.Result, err error) (order.Result, error) {
			started <- struct{}{}
			time.Sleep(time.Second)
			return res, err
		}}
	}})
	lamp := s.product("store-x", "Lamp", 1000, 100, 100)
	o := s.checkout("alice", 1, lamp)[0]
	watch, err := healthpb.NewHealthClient(dial(t, s.buyers[0].GRPCAddr())).Watch(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health before: %v %v", r, err)
	}
	paid := make(chan error, 1)
	go func() {
		_, err := s.buyer.PayOrder(as(s.token(auth.RoleBuyer, "alice")), &buyerv1.PayOrderRequest{OrderId: o.Id, ExpectedTotal: o.Total,
			IdempotencyKey: "drain-pay", Method: &buyerv1.PayOrderRequest_Card{Card: &buyerv1.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2099, Cvc: "123"}}})
		paid <- err
	}()
	<-started
	start := time.Now()
	stopped := make(chan struct{})
	go func() { s.buyerStops[0](); close(stopped) }()
	if r, err := watch.Recv(); err != nil || r.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health while stopping: %v %v", r, err)
	}
	if _, err := watch.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("the health watch did not end: %v", err)
	}
	if err := <-paid; err != nil {
		t.Fatalf("the payment in flight: %v", err)
	}
	<-stopped
	if took := time.Since(start); took > 5*time.Second || took < 500*time.Millisecond {
		t.Fatalf("stopping took %s; it should wait for the payment (about 1 s) and no longer", took)
	}
	db := s.db(t)
	var state string
	if err := db.QueryRow(context.Background(), `SELECT status FROM orders WHERE id = $1`, o.Id).Scan(&state); err != nil || state != "AWAITING_SHIPMENT" {
		t.Fatalf("the order is %s (%v)", state, err)
	}
}
