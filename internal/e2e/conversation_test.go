package e2e

import (
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/auth"
)

// TestOrderConversation: buyer and seller write on an order (gRPC and
// JSON), each reads the whole conversation page by page, each message is an
// event of the order, strangers see nothing, and dispute evidence cites
// messages of its own order only.
func TestOrderConversation(t *testing.T) {
	s := startSystem(t, 1, nil)
	lamp := s.product("store-x", "Lamp", 1000, 100, 10)
	o := s.checkout("alice", 1, lamp)[0]
	other := s.checkout("alice", 1, lamp)[0]
	buyerTok, sellerTok := s.token(auth.RoleBuyer, "alice"), s.token(auth.RoleSeller, "store-x")
	buyerCtx, sellerCtx := as(buyerTok), as(sellerTok)

	first, err := s.buyer.SendOrderMessage(buyerCtx, &buyerv1.SendOrderMessageRequest{OrderId: o.Id,
		Message: &orderv1.MessageInput{Text: "  Could you ship it for free?  ", Links: []string{"https://img.example/lamp.jpg"}}})
	if err != nil {
		t.Fatal(err)
	}
	if m := first.Message; m.Author != "buyer" || m.AuthorId != "alice" || m.Text != "Could you ship it for free?" || len(m.Links) != 1 || m.SentAt == nil {
		t.Fatalf("sent %+v", m)
	}
	code, body := jsonCall(t, "POST", s.sellerURL("/v1/orders/"+o.Id+"/messages"), sellerTok,
		map[string]any{"text": "Yes, I'll lower the shipping fee."})
	if code != http.StatusOK || str(body, "message", "author") != "seller" || str(body, "message", "author_id") != "store-x" {
		t.Fatalf("seller's reply: %d %v", code, body)
	}
	if _, err := s.buyer.SendOrderMessage(buyerCtx, &buyerv1.SendOrderMessageRequest{OrderId: o.Id, Message: &orderv1.MessageInput{Text: strings.Repeat("é", 2000)}}); err != nil {
		t.Fatalf("a message of 2000 characters: %v", err)
	}

	// Both read all three, oldest first, two a page.
	var texts []string
	token := ""
	for page := 0; ; page++ {
		resp, err := s.seller.ListOrderMessages(sellerCtx, &sellerv1.ListOrderMessagesRequest{OrderId: o.Id, PageSize: 2, PageToken: token})
		if err != nil || page > 2 {
			t.Fatalf("page %d: %v", page, err)
		}
		for _, m := range resp.Messages {
			texts = append(texts, m.Text)
		}
		if token = resp.NextPageToken; token == "" {
			break
		}
	}
	if len(texts) != 3 || texts[0] != "Could you ship it for free?" || texts[1] != "Yes, I'll lower the shipping fee." {
		t.Fatalf("the seller reads %q", texts)
	}
	code, body = jsonCall(t, "GET", s.buyerURL("/v1/orders/"+o.Id+"/messages"), buyerTok, nil)
	if msgs, _ := get(body, "messages").([]any); code != http.StatusOK || len(msgs) != 3 {
		t.Fatalf("the buyer reads: %d %v", code, body)
	}
	if n := countKinds(s.order("alice", o.Id))["message_sent"]; n != 3 {
		t.Fatalf("%d message events, want 3", n)
	}

	// Strangers: NOT_FOUND, as for the order itself.
	if _, err := s.buyer.SendOrderMessage(as(s.token(auth.RoleBuyer, "mallory")), &buyerv1.SendOrderMessageRequest{OrderId: o.Id,
		Message: &orderv1.MessageInput{Text: "hi"}}); status.Code(err) != codes.NotFound {
		t.Fatalf("a stranger writes: %v", err)
	}
	if _, err := s.seller.ListOrderMessages(as(s.token(auth.RoleSeller, "store-z")), &sellerv1.ListOrderMessagesRequest{OrderId: o.Id}); status.Code(err) != codes.NotFound {
		t.Fatalf("another store reads: %v", err)
	}

	// The conversation stays open after payment and serves as evidence.
	s.pay(t, "alice", o, "4242424242424242", "conversation-key-1")
	if _, err := s.seller.ShipOrder(sellerCtx, &sellerv1.ShipOrderRequest{OrderId: o.Id, Carrier: "DHL", TrackingNumber: "JD0001"}); err != nil {
		t.Fatal(err)
	}
	elsewhere, err := s.buyer.SendOrderMessage(buyerCtx, &buyerv1.SendOrderMessageRequest{OrderId: other.Id, Message: &orderv1.MessageInput{Text: "other order"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.buyer.OpenDispute(buyerCtx, &buyerv1.OpenDisputeRequest{OrderId: o.Id, Reason: "damaged", RefundAmount: usd(100),
		Evidence: &orderv1.EvidenceInput{Text: "see our talk", MessageIds: []string{first.Message.Id, elsewhere.Message.Id}}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("citing another order's message: %v, want INVALID_ARGUMENT", err)
	}
	d, err := s.buyer.OpenDispute(buyerCtx, &buyerv1.OpenDisputeRequest{OrderId: o.Id, Reason: "damaged", RefundAmount: usd(100),
		Evidence: &orderv1.EvidenceInput{Text: "the seller promised free shipping", MessageIds: []string{first.Message.Id}}})
	if err != nil {
		t.Fatal(err)
	}
	if ev := d.Order.Dispute.Evidence[0]; len(ev.MessageIds) != 1 || ev.MessageIds[0] != first.Message.Id {
		t.Fatalf("evidence %+v", ev)
	}
}
