package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/order"
)

// fieldOf returns the field a refusal's google.rpc.BadRequest names ("" if none).
func fieldOf(err error) string {
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.FieldViolations) > 0 {
			return br.FieldViolations[0].Field
		}
	}
	return ""
}

// reasonOf returns a refusal's google.rpc.ErrorInfo.
func reasonOf(err error) *errdetails.ErrorInfo {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return &errdetails.ErrorInfo{}
}

// Round two, point 15: every domain refusal of bad input names its field
// (google.rpc.BadRequest), and the refusals a client acts on carry a stable
// reason (google.rpc.ErrorInfo), TOTAL_CHANGED with the total to confirm.
func TestRefusalsNameTheirFieldAndReason(t *testing.T) {
	s := startSystem(t, 1, nil)
	lamp := s.product("store-x", "Lamp", 1000, 100, 10)
	buyerTok := s.token(auth.RoleBuyer, "alice")
	buyerCtx, sellerCtx := as(buyerTok), as(s.token(auth.RoleSeller, "store-x"))
	o := s.checkout("alice", 1, lamp)[0]
	send := func(text string, links ...string) error {
		_, err := s.buyer.SendOrderMessage(buyerCtx, &buyerv1.SendOrderMessageRequest{OrderId: o.Id, Message: &orderv1.MessageInput{Text: text, Links: links}})
		return err
	}
	offer := func(m *orderv1.Money) error {
		_, err := s.buyer.MakeOffer(buyerCtx, &buyerv1.MakeOfferRequest{OrderId: o.Id, Kind: orderv1.OfferKind_OFFER_KIND_TOTAL, Amount: m})
		return err
	}
	for _, tc := range []struct {
		name  string
		err   error
		field string
	}{
		{"a blank message", send("   "), "message.text"},
		{"a link with no host", send("see", "https://"), "message.links[0]"},
		{"an offer in another currency", offer(&orderv1.Money{AmountMinor: 900, Currency: "EUR"}), "amount.currency"},
		{"an offer not below the total", offer(usd(5000)), "amount"},
	} {
		if status.Code(tc.err) != codes.InvalidArgument || fieldOf(tc.err) != tc.field {
			t.Errorf("%s: %v (field %q), want INVALID_ARGUMENT naming %q", tc.name, tc.err, fieldOf(tc.err), tc.field)
		}
	}
	if err := offer(usd(900)); err != nil {
		t.Fatal(err)
	}
	if err := offer(usd(800)); reasonOf(err).Reason != "OFFER_OPEN" || reasonOf(err).Domain != "souk.dev" {
		t.Fatalf("a second offer: %v, want reason OFFER_OPEN", err)
	}
	_, err := s.seller.AnswerOffer(sellerCtx, &sellerv1.AnswerOfferRequest{OrderId: o.Id, Accept: false})
	if status.Code(err) != codes.InvalidArgument || fieldOf(err) != "note" {
		t.Fatalf("declining without a note: %v", err)
	}
	_, err = s.buyer.PayOrder(buyerCtx, payCard(&orderv1.Order{Id: o.Id, Total: usd(1)}, "4242424242424242", "stale-total-1"))
	if info := reasonOf(err); status.Code(err) != codes.FailedPrecondition || info.Reason != "TOTAL_CHANGED" ||
		info.Metadata["total_minor"] != "1100" || info.Metadata["currency"] != "USD" {
		t.Fatalf("paying a stale total: %v, info %v", err, info)
	}
	// PayOrders answers each order's refusal as a google.rpc.Status.
	many, err := s.buyer.PayOrders(buyerCtx, &buyerv1.PayOrdersRequest{IdempotencyKey: "stale-total-2",
		Orders: []*buyerv1.OrderPayment{{OrderId: o.Id, ExpectedTotal: usd(1)}},
		Method: &buyerv1.PayOrdersRequest_Card{Card: &buyerv1.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2099, Cvc: "123"}}})
	if err != nil {
		t.Fatal(err)
	}
	st := status.FromProto(many.Results[0].Status)
	if st.Code() != codes.FailedPrecondition || reasonOf(st.Err()).Reason != "TOTAL_CHANGED" {
		t.Fatalf("PayOrders' result: %v", many.Results[0])
	}
	// The gateway passes the details on.
	code, body := jsonCall(t, "POST", s.buyerURL("/v1/orders/"+o.Id+"/messages"), buyerTok, map[string]any{"text": " "})
	if code != http.StatusBadRequest || str(body, "details", 0, "field_violations", 0, "field") != "message.text" {
		t.Fatalf("a blank message over JSON: %d %v", code, body)
	}
}

// TestStoreKeyTakenIsAFailedPrecondition (#25): a store whose routing key
// another store holds (written here, as real keys collide one time in
// 2^62) cannot add a product: FAILED_PRECONDITION with STORE_KEY_TAKEN and
// both stores named, not an internal error.
func TestStoreKeyTakenIsAFailedPrecondition(t *testing.T) {
	s := startSystem(t, 1, nil)
	if _, err := s.db(t).Exec(context.Background(), `INSERT INTO store_keys (key, seller_id) VALUES ($1, 'store-first')`, order.StoreKey("store-second")); err != nil {
		t.Fatal(err)
	}
	_, err := s.seller.CreateProduct(as(s.token(auth.RoleSeller, "store-second")), &sellerv1.CreateProductRequest{
		Title: "Lamp", Price: usd(1000), ShippingFee: usd(100), Stock: 5, HandlingDays: 3,
	})
	msg := status.Convert(err).Message()
	if status.Code(err) != codes.FailedPrecondition || reasonOf(err).Reason != "STORE_KEY_TAKEN" ||
		!strings.Contains(msg, "store-first") || !strings.Contains(msg, "store-second") {
		t.Fatalf("a product of a store whose key is taken: %v (%v), want FAILED_PRECONDITION STORE_KEY_TAKEN naming both stores", err, reasonOf(err))
	}
}
