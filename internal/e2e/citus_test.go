package e2e

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/testenv"
)

// TestTwoStoreCheckoutIsAllOrNothing: a checkout of two stores' products
// stores both orders or neither. On Citus (make test's second run) the
// two stores are picked on two different workers, so the checkout is a
// distributed transaction: both stores' stock and orders commit on both
// nodes, and a checkout whose second store is out of stock leaves the
// first store's stock as it was.
func TestTwoStoreCheckoutIsAllOrNothing(t *testing.T) {
	s := startSystem(t, 1, nil)
	a, b := twoStores(t, s)
	lamp := s.product(a, "Lamp", 1000, 100, 5)
	mug := s.product(b, "Mug", 500, 100, 1)
	orders := s.checkout("alice", 1, lamp, mug)
	if len(orders) != 2 {
		t.Fatalf("%d orders, want one per store", len(orders))
	}
	stores := map[string]bool{}
	for _, o := range orders {
		got := s.order("alice", o.Id)
		if got.Status != orderv1.OrderStatus_ORDER_STATUS_PENDING_PAYMENT {
			t.Fatalf("order %s: %s", o.Id, got.Status)
		}
		stores[got.SellerId] = true
	}
	if !stores[a] || !stores[b] {
		t.Fatalf("the orders are of %v, want %s and %s", stores, a, b)
	}
	// The mug is sold out: the lamp's store gives back what it took.
	_, err := s.buyer.Checkout(as(s.token(auth.RoleBuyer, "alice")), &buyerv1.CheckoutRequest{Items: []*buyerv1.CheckoutItem{
		{ProductId: lamp.Id, Quantity: 2}, {ProductId: mug.Id, Quantity: 1}}})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("a checkout of a sold-out mug: %v, want FAILED_PRECONDITION", err)
	}
	if l, m := s.stock(lamp), s.stock(mug); l != 4 || m != 0 {
		t.Fatalf("stock after the refused checkout: lamp %d (want 4), mug %d (want 0)", l, m)
	}
	list, err := s.buyer.ListOrders(as(s.token(auth.RoleBuyer, "alice")), &buyerv1.ListOrdersRequest{PageSize: 10})
	if err != nil || len(list.Orders) != 2 {
		t.Fatalf("alice's orders: %d, %v; want the first checkout's 2", len(list.GetOrders()), err)
	}
}

// twoStores names two stores: on Citus, two whose shards are on
// different workers.
func twoStores(t *testing.T, s *system) (string, string) {
	t.Helper()
	if !testenv.OnCitus() {
		return "store-a", "store-b"
	}
	db := s.db(t)
	nodes := map[int]string{}
	for i := range 100 {
		store := fmt.Sprintf("store-%d", i)
		var port int
		if err := db.QueryRow(context.Background(), `SELECT p.nodeport FROM pg_dist_shard_placement p JOIN pg_dist_shard d USING (shardid)
			WHERE d.logicalrelid = 'orders'::regclass AND d.shardid = get_shard_id_for_distribution_column('orders', $1::text)`,
			store).Scan(&port); err != nil {
			t.Fatal(err)
		}
		nodes[port] = store
		if len(nodes) == 2 {
			var out []string
			for port, st := range nodes {
				out = append(out, st)
				t.Logf("%s: on the worker at port %d", st, port)
			}
			return out[0], out[1]
		}
	}
	t.Fatal("no two stores on two workers among 100")
	return "", ""
}
