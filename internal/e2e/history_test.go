package e2e

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/postgres"
)

// Round two, point 12: an order is loaded with its latest entries only, and
// shows them with history_truncated; ListOrderEvents pages the whole
// history, and changes go on numbering it without a gap.
func TestLongHistoryIsPaged(t *testing.T) {
	s := startSystem(t, 1, nil)
	lamp := s.product("store-x", "Lamp", 1000, 100, 10)
	buyerCtx, sellerCtx := as(s.token(auth.RoleBuyer, "alice")), as(s.token(auth.RoleSeller, "store-x"))
	o := s.checkout("alice", 1, lamp)[0]
	for range 100 { // both parties' most for a day: 201 entries with "created"
		if _, err := s.buyer.SendOrderMessage(buyerCtx, &buyerv1.SendOrderMessageRequest{OrderId: o.Id, Message: &orderv1.MessageInput{Text: "hi"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.seller.SendOrderMessage(sellerCtx, &sellerv1.SendOrderMessageRequest{OrderId: o.Id, Message: &orderv1.MessageInput{Text: "hello"}}); err != nil {
			t.Fatal(err)
		}
	}
	got := s.order("alice", o.Id)
	if n := len(got.History); n != postgres.HistoryWindow || !got.HistoryTruncated || got.History[0].Sequence != 2 || got.History[n-1].Sequence != 201 {
		t.Fatalf("GetOrder shows %d entries (%d to %d), truncated %v; want the latest %d", n, got.History[0].Sequence, got.History[n-1].Sequence,
			got.HistoryTruncated, postgres.HistoryWindow)
	}
	// A change after them numbers its entry 202.
	if _, err := s.buyer.CancelOrder(buyerCtx, &buyerv1.CancelOrderRequest{OrderId: o.Id, Reason: "changed my mind"}); err != nil {
		t.Fatal(err)
	}
	var all []*orderv1.HistoryEntry
	for token := ""; ; {
		page, err := s.seller.ListOrderEvents(sellerCtx, &sellerv1.ListOrderEventsRequest{OrderId: o.Id, PageSize: 100, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Events...)
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	for i, e := range all {
		if e.Sequence != int64(i+1) {
			t.Fatalf("entry %d has sequence %d", i, e.Sequence)
		}
	}
	if len(all) != 202 || all[0].Kind != "created" || all[201].Kind != "cancelled" {
		t.Fatalf("%d entries, first %s, last %s; want 202 from created to cancelled", len(all), all[0].Kind, all[len(all)-1].Kind)
	}
	if _, err := s.buyer.ListOrderEvents(as(s.token(auth.RoleBuyer, "mallory")), &buyerv1.ListOrderEventsRequest{OrderId: o.Id}); status.Code(err) != codes.NotFound {
		t.Fatalf("a stranger's page: %v, want NOT_FOUND", err)
	}
	if _, err := s.seller.ListOrderEvents(as(s.token(auth.RoleSeller, "another-store")), &sellerv1.ListOrderEventsRequest{OrderId: o.Id}); status.Code(err) != codes.NotFound {
		t.Fatalf("another store's page: %v, want NOT_FOUND", err)
	}
	if _, err := s.buyer.ListOrderEvents(buyerCtx, &buyerv1.ListOrderEventsRequest{OrderId: "6a1c4f5e-7d1a-4b1e-9a55-3c2f3f0a9b10"}); status.Code(err) != codes.NotFound {
		t.Fatalf("no such order: %v, want NOT_FOUND", err)
	}
	if _, err := s.buyer.ListOrderEvents(buyerCtx, &buyerv1.ListOrderEventsRequest{OrderId: o.Id, PageToken: "soon"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a forged page token: %v, want INVALID_ARGUMENT", err)
	}
	first, err := s.buyer.ListOrderEvents(buyerCtx, &buyerv1.ListOrderEventsRequest{OrderId: o.Id, PageSize: 1})
	if err != nil || len(first.Events) != 1 || first.Events[0].Kind != "created" || first.NextPageToken == "" {
		t.Fatalf("the buyer's first page: %v %v", first, err)
	}
}
