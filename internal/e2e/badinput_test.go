package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/auth"
)

// snapshot fingerprints every table, to show that refused calls wrote nothing.
func (s *system) snapshot(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var parts []string
	// The events without the relay's bookkeeping (their place in the stream,
	// when they were published), which moves on its own.
	events := `(SELECT id, order_id, sequence, kind, actor, occurred_at, note, adjustment, status_after, version_after FROM order_events)`
	for _, table := range []string{"products", "stock_reservations", "orders", "order_deadlines", "payment_attempts", events, "order_messages"} {
		var sum string
		if err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM %s t`, table)).Scan(&sum); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, table+"="+sum)
	}
	return strings.Join(parts, " ")
}

// TestBadInput sends malformed requests to every RPC over gRPC and JSON:
// each is refused with INVALID_ARGUMENT (HTTP 400) naming the field, and
// the database is unchanged.
func TestBadInput(t *testing.T) {
	s := startSystem(t, 1, nil)
	lamp := s.product("store-x", "Lamp", 1000, 100, 100)
	order := s.checkout("alice", 1, lamp)[0]
	buyerTok, sellerTok, serviceTok := s.token(auth.RoleBuyer, "alice"), s.token(auth.RoleSeller, "store-x"), s.token(auth.RoleService, "buyer-svc")
	buyerConn, sellerConn := dial(t, s.buyers[0].GRPCAddr()), dial(t, s.sellers[0].GRPCAddr())
	internalConn, internalURL := dial(t, s.sellers[0].InternalGRPCAddr()), "http://"+s.sellers[0].InternalHTTPAddr()

	long := func(n int) string { return strings.Repeat("x", n) }
	card := `"card":{"number":"4242424242424242","exp_month":12,"exp_year":2099,"cvc":"123"}`
	money := func(amount any, cur string) string {
		return fmt.Sprintf(`{"amount_minor":%v,"currency":%q}`, amount, cur)
	}
	oid, pid := order.Id, lamp.Id

	type tc struct {
		name, method string // method: the gRPC full method
		verb, path   string // the gateway route (path parameters filled in)
		json         string // the request as JSON, for gRPC (protojson) and, less path parameters, for the gateway
		field        string // the field a violation must name ("" for domain errors)
	}
	const (
		checkout  = "/souk.buyer.v1.BuyerService/Checkout"
		listB     = "/souk.buyer.v1.BuyerService/ListOrders"
		getB      = "/souk.buyer.v1.BuyerService/GetOrder"
		pay       = "/souk.buyer.v1.BuyerService/PayOrder"
		cancel    = "/souk.buyer.v1.BuyerService/CancelOrder"
		confirm   = "/souk.buyer.v1.BuyerService/ConfirmReceipt"
		verify    = "/souk.buyer.v1.BuyerService/VerifyPayment"
		payMany   = "/souk.buyer.v1.BuyerService/PayOrders"
		refunds   = "/souk.buyer.v1.BuyerService/ListRefunds"
		reqCancel = "/souk.buyer.v1.BuyerService/RequestCancellation"
		askExt    = "/souk.buyer.v1.BuyerService/AskProtectionExtension"
		dispute   = "/souk.buyer.v1.BuyerService/OpenDispute"
		answerC   = "/souk.seller.v1.SellerService/AnswerCancellation"
		extend    = "/souk.seller.v1.SellerService/ExtendProtection"
		answerD   = "/souk.seller.v1.SellerService/AnswerDispute"
		decide    = "/souk.seller.v1.DisputeResolutionService/DecideDispute"
		create    = "/souk.seller.v1.SellerService/CreateProduct"
		update    = "/souk.seller.v1.SellerService/UpdateProduct"
		listP     = "/souk.seller.v1.SellerService/ListProducts"
		listS     = "/souk.seller.v1.SellerService/ListOrders"
		getS      = "/souk.seller.v1.SellerService/GetOrder"
		adjust    = "/souk.seller.v1.SellerService/AdjustOrderPrice"
		ship      = "/souk.seller.v1.SellerService/ShipOrder"
		reserve   = "/souk.seller.v1.CatalogService/ReserveStock"
		release   = "/souk.seller.v1.CatalogService/ReleaseStock"
		offerB    = "/souk.buyer.v1.BuyerService/MakeOffer"
		answerO   = "/souk.seller.v1.SellerService/AnswerOffer"
		sendB     = "/souk.buyer.v1.BuyerService/SendOrderMessage"
		listMB    = "/souk.buyer.v1.BuyerService/ListOrderMessages"
		sendS     = "/souk.seller.v1.SellerService/SendOrderMessage"
		listMS    = "/souk.seller.v1.SellerService/ListOrderMessages"
	)
	cases := []tc{
		{"checkout: no items", checkout, "POST", "/v1/checkout", `{"items":[]}`, "items"},
		{"checkout: zero quantity", checkout, "POST", "/v1/checkout", `{"items":[{"product_id":"` + pid + `","quantity":0}]}`, "items[0].quantity"},
		{"checkout: negative quantity", checkout, "POST", "/v1/checkout", `{"items":[{"product_id":"` + pid + `","quantity":-3}]}`, "items[0].quantity"},
		{"checkout: huge quantity", checkout, "POST", "/v1/checkout", `{"items":[{"product_id":"` + pid + `","quantity":"9223372036854775807"}]}`, "items[0].quantity"},
		{"checkout: empty product id", checkout, "POST", "/v1/checkout", `{"items":[{"product_id":"","quantity":1}]}`, "items[0].product_id"},
		{"checkout: malformed product id", checkout, "POST", "/v1/checkout", `{"items":[{"product_id":"lamp","quantity":1}]}`, "items[0].product_id"},
		{"checkout: product twice", checkout, "POST", "/v1/checkout", `{"items":[{"product_id":"` + pid + `","quantity":1},{"product_id":"` + pid + `","quantity":1}]}`, ""},
		{"list: negative page size", listB, "GET", "/v1/orders?page_size=-1", `{"page_size":-1}`, "page_size"},
		{"list: page size too large", listB, "GET", "/v1/orders?page_size=1000", `{"page_size":1000}`, "page_size"},
		{"list: forged page token", listB, "GET", "/v1/orders?page_token=bm9wZQ", `{"page_token":"bm9wZQ"}`, ""},
		{"list: oversized page token", listB, "GET", "/v1/orders?page_token=" + long(201), `{"page_token":"` + long(201) + `"}`, "page_token"},
		{"list: unknown status", listB, "GET", "/v1/orders?status=42", `{"status":42}`, "status"},
		{"get: malformed id", getB, "GET", "/v1/orders/abc", `{"order_id":"abc"}`, "order_id"},
		{"pay: no expected total", pay, "POST", "/v1/orders/" + oid + ":pay", `{"order_id":"` + oid + `","idempotency_key":"key-00001",` + card + `}`, "expected_total"},
		{"pay: unknown currency", pay, "POST", "/v1/orders/" + oid + ":pay", `{"order_id":"` + oid + `","expected_total":` + money(1100, "XXX") + `,"idempotency_key":"key-00001",` + card + `}`, "expected_total.currency"},
		{"pay: lowercase currency", pay, "POST", "/v1/orders/" + oid + ":pay", `{"order_id":"` + oid + `","expected_total":` + money(1100, "usd") + `,"idempotency_key":"key-00001",` + card + `}`, "expected_total.currency"},
		{"pay: negative amount", pay, "POST", "/v1/orders/" + oid + ":pay", `{"order_id":"` + oid + `","expected_total":` + money(-1100, "USD") + `,"idempotency_key":"key-00001",` + card + `}`, "expected_total.amount_minor"},
		{"pay: overflowing amount", pay, "POST", "/v1/orders/" + oid + ":pay", `{"order_id":"` + oid + `","expected_total":` + money(`"9223372036854775807"`, "USD") + `,"idempotency_key":"key-00001",` + card + `}`, "expected_total.amount_minor"},
		{"pay: short idempotency key", pay, "POST", "/v1/orders/" + oid + ":pay", `{"order_id":"` + oid + `","expected_total":` + money(1100, "USD") + `,"idempotency_key":"k",` + card + `}`, "idempotency_key"},
		{"pay: oversized idempotency key", pay, "POST", "/v1/orders/" + oid + ":pay", `{"order_id":"` + oid + `","expected_total":` + money(1100, "USD") + `,"idempotency_key":"` + long(129) + `",` + card + `}`, "idempotency_key"},
		{"pay: card number with letters", pay, "POST", "/v1/orders/" + oid + ":pay", `{"order_id":"` + oid + `","expected_total":` + money(1100, "USD") + `,"idempotency_key":"key-00001","card":{"number":"4242abcd42424242","exp_month":12,"exp_year":2099,"cvc":"123"}}`, "card.number"},
		{"pay: month 13", pay, "POST", "/v1/orders/" + oid + ":pay", `{"order_id":"` + oid + `","expected_total":` + money(1100, "USD") + `,"idempotency_key":"key-00001","card":{"number":"4242424242424242","exp_month":13,"exp_year":2099,"cvc":"123"}}`, "card.exp_month"},
		{"pay: short cvc", pay, "POST", "/v1/orders/" + oid + ":pay", `{"order_id":"` + oid + `","expected_total":` + money(1100, "USD") + `,"idempotency_key":"key-00001","card":{"number":"4242424242424242","exp_month":12,"exp_year":2099,"cvc":"12"}}`, "card.cvc"},
		{"pay: no method", pay, "POST", "/v1/orders/" + oid + ":pay", `{"order_id":"` + oid + `","expected_total":` + money(1100, "USD") + `,"idempotency_key":"key-00001"}`, "method"},
		{"pay: wallet without @", pay, "POST", "/v1/orders/" + oid + ":pay", `{"order_id":"` + oid + `","expected_total":` + money(1100, "USD") + `,"idempotency_key":"key-00001","wallet":{"account":"alice"}}`, "wallet.account"},
		{"pay: lowercase bank account", pay, "POST", "/v1/orders/" + oid + ":pay", `{"order_id":"` + oid + `","expected_total":` + money(1100, "USD") + `,"idempotency_key":"key-00001","bank_transfer":{"account_number":"de0012345678"}}`, "bank_transfer.account_number"},
		{"verify: letters in code", verify, "POST", "/v1/orders/" + oid + "/payments/" + oid + ":verify", `{"order_id":"` + oid + `","attempt_id":"` + oid + `","code":"12ab56"}`, "code"},
		{"verify: malformed attempt", verify, "POST", "/v1/orders/" + oid + "/payments/a1:verify", `{"order_id":"` + oid + `","attempt_id":"a1","code":"123456"}`, "attempt_id"},
		{"pay many: no orders", payMany, "POST", "/v1/orders:pay", `{"orders":[],"idempotency_key":"key-00001",` + card + `}`, "orders"},
		{"pay many: an order twice", payMany, "POST", "/v1/orders:pay", `{"orders":[{"order_id":"` + oid + `","expected_total":` + money(1100, "USD") + `},{"order_id":"` + oid + `","expected_total":` + money(1100, "USD") + `}],"idempotency_key":"key-00002",` + card + `}`, ""},
		{"pay many: no expected total", payMany, "POST", "/v1/orders:pay", `{"orders":[{"order_id":"` + oid + `"}],"idempotency_key":"key-00001",` + card + `}`, "orders[0].expected_total"},
		{"refunds: page size too large", refunds, "GET", "/v1/refunds?page_size=101", `{"page_size":101}`, "page_size"},
		{"request cancellation: unknown reason", reqCancel, "POST", "/v1/orders/" + oid + ":request-cancellation", `{"order_id":"` + oid + `","reason":"bored"}`, "reason"},
		{"request cancellation: oversized note", reqCancel, "POST", "/v1/orders/" + oid + ":request-cancellation", `{"order_id":"` + oid + `","reason":"other","note":"` + long(501) + `"}`, "note"},
		{"ask extension: 0 days", askExt, "POST", "/v1/orders/" + oid + ":ask-protection-extension", `{"order_id":"` + oid + `","days":0}`, "days"},
		{"dispute: unknown reason", dispute, "POST", "/v1/orders/" + oid + "/dispute", `{"order_id":"` + oid + `","reason":"meh","refund_amount":` + money(100, "USD") + `,"evidence":{"text":"x"}}`, "reason"},
		{"dispute: negative amount", dispute, "POST", "/v1/orders/" + oid + "/dispute", `{"order_id":"` + oid + `","reason":"damaged","refund_amount":` + money(-1, "USD") + `,"evidence":{"text":"x"}}`, "refund_amount.amount_minor"},
		{"dispute: bad link", dispute, "POST", "/v1/orders/" + oid + "/dispute", `{"order_id":"` + oid + `","reason":"damaged","refund_amount":` + money(100, "USD") + `,"evidence":{"text":"x","links":["not a link"]}}`, "evidence.links[0]"},
		{"dispute: no evidence", dispute, "POST", "/v1/orders/" + oid + "/dispute", `{"order_id":"` + oid + `","reason":"damaged","refund_amount":` + money(100, "USD") + `}`, "evidence"},
		{"answer cancellation: oversized note", answerC, "POST", "/v1/orders/" + oid + ":answer-cancellation", `{"order_id":"` + oid + `","note":"` + long(501) + `"}`, "note"},
		{"extend: 91 days", extend, "POST", "/v1/orders/" + oid + ":extend-protection", `{"order_id":"` + oid + `","days":91}`, "days"},
		{"answer dispute: no answer", answerD, "POST", "/v1/orders/" + oid + "/dispute:answer", `{"order_id":"` + oid + `"}`, "answer"},
		{"answer dispute: counter-offer without amount", answerD, "POST", "/v1/orders/" + oid + "/dispute:answer", `{"order_id":"` + oid + `","counter_offer":{"note":"x"}}`, "counter_offer.amount"},
		{"decide: no note", decide, "POST", "/admin/v1/orders/" + oid + "/dispute:decide", `{"order_id":"` + oid + `","refund_amount":` + money(0, "USD") + `}`, "note"},
		{"cancel: no reason", cancel, "POST", "/v1/orders/" + oid + ":cancel", `{"order_id":"` + oid + `","reason":""}`, "reason"},
		{"cancel: oversized reason", cancel, "POST", "/v1/orders/" + oid + ":cancel", `{"order_id":"` + oid + `","reason":"` + long(501) + `"}`, "reason"},
		{"confirm: empty id", confirm, "POST", "/v1/orders/%20:confirm-receipt", `{"order_id":" "}`, "order_id"},
		{"create: empty title", create, "POST", "/v1/products", `{"title":"","price":` + money(100, "USD") + `,"shipping_fee":` + money(0, "USD") + `,"stock":1,"handling_days":1}`, "title"},
		{"create: oversized title", create, "POST", "/v1/products", `{"title":"` + long(201) + `","price":` + money(100, "USD") + `,"shipping_fee":` + money(0, "USD") + `,"stock":1,"handling_days":1}`, "title"},
		{"create: negative price", create, "POST", "/v1/products", `{"title":"Pen","price":` + money(-100, "USD") + `,"shipping_fee":` + money(0, "USD") + `,"stock":1,"handling_days":1}`, "price.amount_minor"},
		{"create: unknown currency", create, "POST", "/v1/products", `{"title":"Pen","price":` + money(100, "ABC") + `,"shipping_fee":` + money(0, "ABC") + `,"stock":1,"handling_days":1}`, "price.currency"},
		{"create: mixed currencies", create, "POST", "/v1/products", `{"title":"Pen","price":` + money(100, "USD") + `,"shipping_fee":` + money(0, "EUR") + `,"stock":1,"handling_days":1}`, ""},
		{"create: negative stock", create, "POST", "/v1/products", `{"title":"Pen","price":` + money(100, "USD") + `,"shipping_fee":` + money(0, "USD") + `,"stock":-1,"handling_days":1}`, "stock"},
		{"create: no handling time", create, "POST", "/v1/products", `{"title":"Pen","price":` + money(100, "USD") + `,"shipping_fee":` + money(0, "USD") + `,"stock":1,"handling_days":0}`, "handling_days"},
		{"update: malformed id", update, "PATCH", "/v1/products/xyz", `{"product_id":"xyz","stock":"3"}`, "product_id"},
		{"update: other currency", update, "PATCH", "/v1/products/" + pid, `{"product_id":"` + pid + `","price":` + money(100, "EUR") + `}`, ""},
		{"update: negative stock", update, "PATCH", "/v1/products/" + pid, `{"product_id":"` + pid + `","stock":"-5"}`, "stock"},
		{"products: page size too large", listP, "GET", "/v1/products?page_size=201", `{"page_size":201}`, "page_size"},
		{"seller list: bad page size", listS, "GET", "/v1/orders?page_size=101", `{"page_size":101}`, "page_size"},
		{"seller get: malformed id", getS, "GET", "/v1/orders/1", `{"order_id":"1"}`, "order_id"},
		{"adjust: nothing to adjust", adjust, "POST", "/v1/orders/" + oid + ":adjust-price", `{"order_id":"` + oid + `","reason":"x"}`, "request"},
		{"adjust: no reason", adjust, "POST", "/v1/orders/" + oid + ":adjust-price", `{"order_id":"` + oid + `","shipping_fee":` + money(0, "USD") + `}`, "reason"},
		{"adjust: negative price", adjust, "POST", "/v1/orders/" + oid + ":adjust-price", `{"order_id":"` + oid + `","item_prices":[{"product_id":"` + pid + `","unit_price":` + money(-1, "USD") + `}],"reason":"x"}`, "item_prices[0].unit_price.amount_minor"},
		{"adjust: product not in order", adjust, "POST", "/v1/orders/" + oid + ":adjust-price", `{"order_id":"` + oid + `","item_prices":[{"product_id":"` + oid + `","unit_price":` + money(1, "USD") + `}],"reason":"x"}`, ""},
		{"adjust: other currency", adjust, "POST", "/v1/orders/" + oid + ":adjust-price", `{"order_id":"` + oid + `","shipping_fee":` + money(0, "EUR") + `,"reason":"x"}`, ""},
		{"message: too long", sendB, "POST", "/v1/orders/" + oid + "/messages", `{"order_id":"` + oid + `","message":{"text":"` + long(2001) + `"}}`, "message.text"},
		{"message: javascript link", sendS, "POST", "/v1/orders/" + oid + "/messages", `{"order_id":"` + oid + `","message":{"text":"see","links":["javascript:alert(1)"]}}`, "message.links[0]"},
		{"message: none", sendB, "POST", "/v1/orders/" + oid + "/messages", `{"order_id":"` + oid + `"}`, "message"},
		{"message: empty", sendS, "POST", "/v1/orders/" + oid + "/messages", `{"order_id":"` + oid + `","message":{"text":""}}`, "message"},
		{"message: only spaces", sendB, "POST", "/v1/orders/" + oid + "/messages", `{"order_id":"` + oid + `","message":{"text":"   "}}`, ""},
		{"messages: page size too large", listMB, "GET", "/v1/orders/" + oid + "/messages?page_size=1000", `{"order_id":"` + oid + `","page_size":1000}`, "page_size"},
		{"messages: malformed order id", listMS, "GET", "/v1/orders/abc/messages", `{"order_id":"abc"}`, "order_id"},
		{"offer: no kind", offerB, "POST", "/v1/orders/" + oid + "/offer", `{"order_id":"` + oid + `","amount":` + money(100, "USD") + `}`, "kind"},
		{"offer: unknown kind", offerB, "POST", "/v1/orders/" + oid + "/offer", `{"order_id":"` + oid + `","kind":9,"amount":` + money(100, "USD") + `}`, "kind"},
		{"offer: no amount", offerB, "POST", "/v1/orders/" + oid + "/offer", `{"order_id":"` + oid + `","kind":"OFFER_KIND_TOTAL"}`, "amount"},
		{"offer: negative amount", offerB, "POST", "/v1/orders/" + oid + "/offer", `{"order_id":"` + oid + `","kind":"OFFER_KIND_TOTAL","amount":` + money(-1, "USD") + `}`, "amount.amount_minor"},
		{"offer: above the total", offerB, "POST", "/v1/orders/" + oid + "/offer", `{"order_id":"` + oid + `","kind":"OFFER_KIND_TOTAL","amount":` + money(99999, "USD") + `}`, ""},
		{"offer answer: note too long", answerO, "POST", "/v1/orders/" + oid + "/offer:answer", `{"order_id":"` + oid + `","note":"` + long(501) + `"}`, "note"},
		{"ship: no carrier", ship, "POST", "/v1/orders/" + oid + ":ship", `{"order_id":"` + oid + `","carrier":"","tracking_number":"JD0001"}`, "carrier"},
		{"ship: bad tracking number", ship, "POST", "/v1/orders/" + oid + ":ship", `{"order_id":"` + oid + `","carrier":"DHL","tracking_number":"a b c d"}`, "tracking_number"},
		{"ship: bad tracking url", ship, "POST", "/v1/orders/" + oid + ":ship", `{"order_id":"` + oid + `","carrier":"DHL","tracking_number":"JD0001","tracking_url":"not a url"}`, "tracking_url"},
		{"reserve: malformed checkout", reserve, "POST", "/internal/v1/reservations", `{"checkout_id":"c1","items":[{"product_id":"` + pid + `","quantity":1}]}`, "checkout_id"},
		{"reserve: no items", reserve, "POST", "/internal/v1/reservations", `{"checkout_id":"` + oid + `","items":[]}`, "items"},
		{"release: malformed product", release, "POST", "/internal/v1/reservations/" + oid + ":release", `{"checkout_id":"` + oid + `","product_ids":["p"]}`, "product_ids[0]"},
	}
	before := s.snapshot(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, tok, base := buyerConn, buyerTok, s.buyerURL("")
			if strings.HasPrefix(c.method, "/souk.seller.v1.SellerService/") {
				conn, tok, base = sellerConn, sellerTok, s.sellerURL("")
			} else if strings.HasPrefix(c.method, "/souk.seller.v1.CatalogService/") {
				conn, tok, base = internalConn, serviceTok, internalURL
			} else if strings.HasPrefix(c.method, "/souk.seller.v1.DisputeResolutionService/") {
				conn, tok, base = internalConn, s.token(auth.RoleAdmin, "mod"), internalURL
			}
			req, resp := messagesOf(t, c.method)
			if err := protojson.Unmarshal([]byte(c.json), req); err != nil {
				t.Fatalf("case JSON: %v", err)
			}
			err := conn.Invoke(as(tok), c.method, req, resp)
			st := status.Convert(err)
			if st.Code() != codes.InvalidArgument {
				t.Fatalf("gRPC: %v, want INVALID_ARGUMENT", err)
			}
			if c.field != "" && !hasViolation(st, c.field) {
				t.Errorf("gRPC: %v does not name field %s", st.Details(), c.field)
			}
			var body any
			if c.verb != "GET" {
				body = c.json
			}
			code, out := jsonCall(t, c.verb, base+c.path, tok, body)
			if code != http.StatusBadRequest || get(out, "code") != float64(codes.InvalidArgument) || str(out, "message") == "" {
				t.Fatalf("JSON: %d %v, want 400 INVALID_ARGUMENT with a message", code, out)
			}
		})
	}
	// Malformed JSON never reaches the service.
	for _, raw := range []string{`{"items": [`, `{"items": "lamp"}`, `{"items":[{"product_id":"` + pid + `","quantity":"99999999999999999999"}]}`, `{"unknown_field": 1}`, `[]`} {
		if code, out := jsonCall(t, "POST", s.buyerURL("/v1/checkout"), buyerTok, raw); code != http.StatusBadRequest {
			t.Errorf("checkout with body %s: %d %v, want 400", raw, code, out)
		}
	}
	if after := s.snapshot(t); after != before {
		t.Fatalf("the database changed:\nbefore %s\nafter  %s", before, after)
	}
}

func hasViolation(st *status.Status, field string) bool {
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.FieldViolations {
				if v.Field == field {
					return true
				}
			}
		}
	}
	return false
}

// messagesOf returns empty request and response messages of a method.
func messagesOf(t *testing.T, method string) (proto.Message, proto.Message) {
	t.Helper()
	for _, sd := range []grpc.ServiceDesc{buyerv1.BuyerService_ServiceDesc, buyerv1.ProviderCallbackService_ServiceDesc, sellerv1.SellerService_ServiceDesc, sellerv1.CatalogService_ServiceDesc, sellerv1.DisputeResolutionService_ServiceDesc, sellerv1.CouponAdminService_ServiceDesc} {
		for _, m := range sd.Methods {
			if "/"+sd.ServiceName+"/"+m.MethodName != method {
				continue
			}
			var req proto.Message
			_, _ = m.Handler(nil, context.Background(), func(v any) error { req = v.(proto.Message); return errStop }, nil)
			return req, req.ProtoReflect().Type().New().Interface() // response type is unused by Invoke on error
		}
	}
	t.Fatalf("no method %s", method)
	return nil, nil
}

var errStop = fmt.Errorf("stop")
