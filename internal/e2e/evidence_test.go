package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
)

// Round two, point 13: evidence that cites messages is checked before the
// order is locked. Checked inside the locked transaction, on a second
// connection, concurrent evidence on one order held every connection of a
// small pool while each waited for one more: nothing went on.
func TestCitingMessagesNeverExhaustsThePool(t *testing.T) {
	s := startSystem(t, 1, func(c *app.Config) { c.DatabaseURL += "&pool_max_conns=4" })
	lamp := s.product("store-x", "Lamp", 1000, 100, 10)
	buyerCtx, sellerCtx := as(s.token(auth.RoleBuyer, "alice")), as(s.token(auth.RoleSeller, "store-x"))
	o := s.paidOrder(t, lamp)
	if _, err := s.seller.ShipOrder(sellerCtx, &sellerv1.ShipOrderRequest{OrderId: o.Id, Carrier: "DHL", TrackingNumber: "JD0001"}); err != nil {
		t.Fatal(err)
	}
	msg, err := s.seller.SendOrderMessage(sellerCtx, &sellerv1.SendOrderMessageRequest{OrderId: o.Id, Message: &orderv1.MessageInput{Text: "it left intact"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.buyer.OpenDispute(buyerCtx, &buyerv1.OpenDisputeRequest{OrderId: o.Id, Reason: "damaged", RefundAmount: usd(100),
		Evidence: &orderv1.EvidenceInput{Text: "broken", MessageIds: []string{msg.Message.Id}}}); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(sellerCtx, 10*time.Second)
			defer cancel()
			_, errs[i] = s.seller.AddDisputeEvidence(ctx, &sellerv1.AddDisputeEvidenceRequest{OrderId: o.Id,
				Evidence: &orderv1.EvidenceInput{Text: "see my message", MessageIds: []string{msg.Message.Id}}})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("evidence %d: %v", i, err)
		}
	}
	if got := countKinds(s.order("alice", o.Id))["dispute_evidence_added"]; got != n {
		t.Fatalf("%d pieces of evidence recorded, want %d", got, n)
	}
}
