package e2e

import (
	"net/http"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/testenv"
)

// privateSystem starts replicas of both services on a PostgreSQL and a
// Redis of the test's own, which it may stop and start.
// privateCitusSystem is privateSystem on a private Citus cluster, its
// tables with 4 shards each.
func privateCitusSystem(t *testing.T, replicas int, opts options) (*system, *testenv.CitusCluster, *testenv.RedisServer) {
	t.Helper()
	cluster, rd := testenv.StartCitus(t, "souk", 4), testenv.StartRedis(t)
	cfg := testenv.ConfigOn(cluster.URL, rd.Addr, "souk-faults:")
	opts.cfg = &cfg
	return startSystemWith(t, replicas, opts), cluster, rd
}

func privateSystem(t *testing.T, replicas int, opts options) (*system, *testenv.PostgresServer, *testenv.RedisServer) {
	t.Helper()
	pg, rd := testenv.StartPostgres(t), testenv.StartRedis(t)
	cfg := testenv.ConfigOn(pg.Database("souk"), rd.Addr, "souk-faults:")
	opts.cfg = &cfg
	return startSystemWith(t, replicas, opts), pg, rd
}

// unavailable checks that err is UNAVAILABLE with a retry hint.
func unavailable(t *testing.T, what string, err error) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.Unavailable {
		t.Fatalf("%s: %v, want UNAVAILABLE", what, err)
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.RetryDelay.AsDuration() > 0 {
			return
		}
	}
	t.Fatalf("%s: UNAVAILABLE without a retry hint: %v", what, st.Details())
}

// Scenario 11: while PostgreSQL or Redis is down, calls fail with
// UNAVAILABLE (HTTP 503) and a retry hint, not INTERNAL (500, "do not
// retry"); once it is back they succeed again.
func TestTransientFaultsAreUnavailable(t *testing.T) {
	s, pg, rd := privateSystem(t, 1, options{})
	lamp := s.product("store-x", "Lamp", 1000, 100, 10)
	o := s.checkout("alice", 1, lamp)[0]
	buyerTok := s.token(auth.RoleBuyer, "alice")

	pg.Stop()
	_, err := s.buyer.GetOrder(as(buyerTok), &buyerv1.GetOrderRequest{OrderId: o.Id})
	unavailable(t, "a read while PostgreSQL is down", err)
	_, err = s.buyer.PayOrder(as(buyerTok), payCard(o, "4242424242424242", "fault-key-1"))
	unavailable(t, "a payment while PostgreSQL is down", err)
	if code, body := jsonCall(t, "GET", s.buyerURL("/v1/orders/"+o.Id), buyerTok, nil); code != http.StatusServiceUnavailable {
		t.Fatalf("gateway while PostgreSQL is down: %d %v, want 503", code, body)
	}
	pg.Start()
	testenv.Eventually(t, 15*time.Second, "reads work again", func() bool {
		_, err = s.buyer.GetOrder(as(buyerTok), &buyerv1.GetOrderRequest{OrderId: o.Id})
		return err == nil
	})

	rd.Stop()
	_, err = s.buyer.PayOrder(as(buyerTok), payCard(o, "4242424242424242", "fault-key-2"))
	unavailable(t, "a payment while Redis is down (no lock)", err)
	rd.Start()
	testenv.Eventually(t, 15*time.Second, "payments work again", func() bool {
		resp, err := s.buyer.PayOrder(as(buyerTok), payCard(o, "4242424242424242", "fault-key-2"))
		return err == nil && resp.Order.Status == paidStatus
	})
	s.moneyOf(t, s.order("alice", o.Id))
}
