package e2e

import (
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
