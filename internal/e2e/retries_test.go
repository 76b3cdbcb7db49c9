package e2e

import (
	"context"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/auth"
)

// Round two, point 17: the mutations a mobile app retries take a request
// id. A retry (or a race of retries) changes the order once and answers as
// the first did; the id with other parameters is refused; without an id
// every call counts.
func TestRetriedMutationsApplyOnce(t *testing.T) {
	s := startSystem(t, 1, nil)
	lamp := s.product("store-x", "Lamp", 1000, 100, 10)
	buyerCtx, sellerCtx := as(s.token(auth.RoleBuyer, "alice")), as(s.token(auth.RoleSeller, "store-x"))
	o := s.checkout("alice", 1, lamp)[0]

	send := func(id, text string) (*buyerv1.SendOrderMessageResponse, error) {
		return s.buyer.SendOrderMessage(buyerCtx, &buyerv1.SendOrderMessageRequest{OrderId: o.Id, RequestId: id, Message: &orderv1.MessageInput{Text: text}})
	}
	var wg sync.WaitGroup
	answers := make([]*buyerv1.SendOrderMessageResponse, 5)
	errs := make([]error, len(answers))
	for i := range answers {
		wg.Add(1)
		go func() { defer wg.Done(); answers[i], errs[i] = send("msg-0001", "is there a discount?") }()
	}
	wg.Wait()
	for i := range answers {
		if errs[i] != nil || answers[i].Message.Id != answers[0].Message.Id || answers[i].Message.Text != "is there a discount?" {
			t.Fatalf("retry %d: %v %v", i, answers[i], errs[i])
		}
	}
	if _, err := send("msg-0001", "another text"); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("the request id with another message: %v, want FAILED_PRECONDITION", err)
	}
	if _, err := send("", "no id"); err != nil {
		t.Fatal(err)
	}
	if _, err := send("", "no id"); err != nil {
		t.Fatal(err)
	}
	list, err := s.buyer.ListOrderMessages(buyerCtx, &buyerv1.ListOrderMessagesRequest{OrderId: o.Id})
	if err != nil || len(list.Messages) != 3 {
		t.Fatalf("%d messages (%v), want the retried one once and both without an id", len(list.GetMessages()), err)
	}
	// The same id is another party's own: the seller's message with it is new.
	if _, err := s.seller.SendOrderMessage(sellerCtx, &sellerv1.SendOrderMessageRequest{OrderId: o.Id, RequestId: "msg-0001",
		Message: &orderv1.MessageInput{Text: "5% off"}}); err != nil {
		t.Fatal(err)
	}

	adjust := &sellerv1.AdjustOrderPriceRequest{OrderId: o.Id, RequestId: "adj-0001", Reason: "bulk discount",
		ItemPrices: []*sellerv1.ItemPrice{{ProductId: lamp.Id, UnitPrice: usd(900)}}}
	for range 2 {
		if _, err := s.seller.AdjustOrderPrice(sellerCtx, adjust); err != nil {
			t.Fatal(err)
		}
	}
	got := s.order("alice", o.Id)
	if n := countKinds(got); n["price_adjusted"] != 1 || n["message_sent"] != 4 {
		t.Fatalf("history %v, want one adjustment and four messages", n)
	}
	paid := s.pay(t, "alice", got, "4242424242424242", "retries-pay-1").Order
	ship := &sellerv1.ShipOrderRequest{OrderId: paid.Id, RequestId: "ship-0001", Carrier: "DHL", TrackingNumber: "JD0001"}
	first, err := s.seller.ShipOrder(sellerCtx, ship)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.seller.ShipOrder(sellerCtx, ship)
	if err != nil || again.Order.Status != first.Order.Status || again.Order.Version != first.Order.Version {
		t.Fatalf("a retried shipment: %v %v, want the first's answer", again.GetOrder().GetStatus(), err)
	}
	open := &buyerv1.OpenDisputeRequest{OrderId: paid.Id, RequestId: "dispute-0001", Reason: "damaged", RefundAmount: usd(100),
		Evidence: &orderv1.EvidenceInput{Text: "broken"}}
	for range 2 {
		if _, err := s.buyer.OpenDispute(buyerCtx, open); err != nil {
			t.Fatal(err)
		}
	}
	evidence := &buyerv1.AddDisputeEvidenceRequest{OrderId: paid.Id, RequestId: "evidence-0001", Evidence: &orderv1.EvidenceInput{Text: "photo"}}
	for range 3 {
		if _, err := s.buyer.AddDisputeEvidence(buyerCtx, evidence); err != nil {
			t.Fatal(err)
		}
	}
	if n := countKinds(s.order("alice", paid.Id)); n["shipped"] != 1 || n["dispute_opened"] != 1 || n["dispute_evidence_added"] != 1 {
		t.Fatalf("history %v, want each retried change once", n)
	}
}

// TestCheckoutMakesNewIDsWhenOneIsTaken: an order id another order of its
// store has (two ids of a store's day alike, order.NewIDAt) is refused by
// the key, and the checkout makes its orders again with new ids, up to
// three times; after that it is ABORTED (CONFLICT, retry) with its stock
// given back. A new product's id taken is made again too. The collisions
// come from triggers that refuse the next inserts as the key would (a
// sequence counts them, since a refused transaction rolls back anything
// else it wrote).
func TestCheckoutMakesNewIDsWhenOneIsTaken(t *testing.T) {
	s := startSystem(t, 1, nil)
	db := s.db(t)
	ctx := context.Background()
	if _, err := db.Exec(ctx, `CREATE SEQUENCE product_inserts;
		CREATE FUNCTION take_product_id() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF nextval('product_inserts') = 1 THEN
				RAISE unique_violation USING CONSTRAINT = 'products_pkey',
					MESSAGE = 'duplicate key value violates unique constraint "products_pkey"';
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER take_product_id BEFORE INSERT ON products FOR EACH ROW EXECUTE FUNCTION take_product_id()`); err != nil {
		t.Fatal(err)
	}
	lamp := s.product("store-x", "Lamp", 1000, 100, 10)
	var productInserts int64
	if err := db.QueryRow(ctx, `SELECT last_value FROM product_inserts`).Scan(&productInserts); err != nil || productInserts != 2 {
		t.Fatalf("the product took %d inserts (%v); want 2 (one refused, then stored)", productInserts, err)
	}
	if _, err := db.Exec(ctx, `CREATE SEQUENCE order_inserts;
		CREATE FUNCTION take_id() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF nextval('order_inserts') <= 4 THEN
				RAISE unique_violation USING CONSTRAINT = 'orders_pkey',
					MESSAGE = 'duplicate key value violates unique constraint "orders_pkey"',
					DETAIL = format('Key (id, seller_id)=(%s, %s) already exists.', NEW.id, NEW.seller_id);
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER take_id BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION take_id()`); err != nil {
		t.Fatal(err)
	}
	inserts := func() (n int64) {
		t.Helper()
		if err := db.QueryRow(ctx, `SELECT last_value FROM order_inserts`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	tok := as(s.token(auth.RoleBuyer, "alice"))

	// Three ids taken in a row: refused, nothing kept.
	_, err := s.buyer.Checkout(tok, &buyerv1.CheckoutRequest{Items: []*buyerv1.CheckoutItem{{ProductId: lamp.Id, Quantity: 3}}})
	if status.Code(err) != codes.Aborted || reasonOf(err).Reason != "CONFLICT" {
		t.Fatalf("a checkout whose ids are taken three times: %v; want ABORTED, CONFLICT", err)
	}
	if n := inserts(); n != 3 {
		t.Fatalf("the checkout tried %d inserts; want 3", n)
	}
	if got := s.stock(lamp); got != 10 {
		t.Fatalf("stock after the refused checkout: %d; want 10", got)
	}

	// One id taken: the checkout is stored with new ids, once.
	orders := s.checkout("alice", 2, lamp)
	if n := inserts(); n != 5 {
		t.Fatalf("the checkout tried %d inserts in all; want 5 (one refused, then stored)", n)
	}
	if len(orders) != 1 || orders[0].Status != pending {
		t.Fatalf("checkout: %v", orders)
	}
	if got := s.order("alice", orders[0].Id); got.Total.AmountMinor != 2100 {
		t.Fatalf("the stored order's total: %d; want 2100", got.Total.AmountMinor)
	}
	var stored int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM orders WHERE checkout_id = $1`, orders[0].CheckoutId).Scan(&stored); err != nil || stored != 1 {
		t.Fatalf("%d orders stored for the checkout (%v); want 1", stored, err)
	}
	if got := s.stock(lamp); got != 8 {
		t.Fatalf("stock after the checkout: %d; want 8", got)
	}
}
