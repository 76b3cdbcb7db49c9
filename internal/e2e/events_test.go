package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	eventsv1 "github.com/souk-dev/souk/gen/go/souk/events/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
)

// feed is a watch seen by a test: events as they arrive, and how it ended.
type feed struct {
	t      *testing.T
	events chan *orderv1.OrderEvent
	beats  chan string
	done   chan error
	cancel context.CancelFunc
}

// watchGRPC runs a watch on a gRPC stream until the test ends or cancel.
func watchGRPC[R any, PR interface {
	*R
	GetEvent() *orderv1.OrderEvent
	GetHeartbeat() *orderv1.EventHeartbeat
}](t *testing.T, open func(ctx context.Context) (grpc.ServerStreamingClient[R], error)) *feed {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := &feed{t: t, events: make(chan *orderv1.OrderEvent, 10000), beats: make(chan string, 1000), done: make(chan error, 1), cancel: cancel}
	stream, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			msg, err := stream.Recv()
			if err != nil {
				f.done <- err
				return
			}
			r := PR(msg)
			if e := r.GetEvent(); e != nil {
				f.events <- e
			} else {
				f.beats <- r.GetHeartbeat().GetCursor()
			}
		}
	}()
	return f
}

// watchJSON runs a watch on the gateway's JSON stream, as a browser's
// fetch() with a bearer token would.
func watchJSON(t *testing.T, url, tok string) *feed {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := &feed{t: t, events: make(chan *orderv1.OrderEvent, 10000), beats: make(chan string, 1000), done: make(chan error, 1), cancel: cancel}
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("watch: HTTP %d", resp.StatusCode)
	}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line struct {
				Result *json.RawMessage `json:"result"`
				Error  *struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				f.done <- fmt.Errorf("line %q: %w", sc.Text(), err)
				return
			}
			if line.Error != nil {
				f.done <- status.Error(codes.Code(line.Error.Code), line.Error.Message)
				return
			}
			var r sellerv1.WatchOrderEventsResponse
			if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(*line.Result, &r); err != nil {
				f.done <- err
				return
			}
			if e := r.GetEvent(); e != nil {
				f.events <- e
			} else {
				f.beats <- r.GetHeartbeat().GetCursor()
			}
		}
		f.done <- sc.Err()
	}()
	return f
}

// began waits for the heartbeat a watch starts with, and returns its cursor.
func (f *feed) began() string {
	f.t.Helper()
	select {
	case c := <-f.beats:
		return c
	case err := <-f.done:
		f.t.Fatalf("the watch ended: %v", err)
	case <-time.After(5 * time.Second):
		f.t.Fatal("no heartbeat")
	}
	return ""
}

// until takes events until one of kind on order id arrives, and returns
// them all.
func (f *feed) until(orderID, kind string, within time.Duration) []*orderv1.OrderEvent {
	f.t.Helper()
	var got []*orderv1.OrderEvent
	timeout := time.After(within)
	for {
		select {
		case e := <-f.events:
			got = append(got, e)
			if e.OrderId == orderID && e.Kind == kind {
				return got
			}
		case err := <-f.done:
			f.t.Fatalf("the watch ended waiting for %s on %s: %v", kind, orderID, err)
		case <-timeout:
			f.t.Fatalf("no %s on %s within %s; got %d events", kind, orderID, within, len(got))
		}
	}
}

// take takes n events, then makes sure no other comes within quiet.
func (f *feed) take(n int, quiet time.Duration) []*orderv1.OrderEvent {
	f.t.Helper()
	var got []*orderv1.OrderEvent
	timeout := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case e := <-f.events:
			got = append(got, e)
		case err := <-f.done:
			f.t.Fatalf("the watch ended after %d of %d events: %v", len(got), n, err)
		case <-timeout:
			f.t.Fatalf("%d of %d events", len(got), n)
		}
	}
	select {
	case e := <-f.events:
		f.t.Fatalf("an event more than the %d expected: %s %d on %s", n, e.Kind, e.Sequence, e.OrderId)
	case <-time.After(quiet):
	}
	return got
}

// contiguous checks that each order's events come in their sequence
// without gaps or repeats, from first[order] on (1 if absent).
func contiguous(t *testing.T, evs []*orderv1.OrderEvent, first map[string]int64) {
	t.Helper()
	next := map[string]int64{}
	seen := map[string]bool{}
	for _, e := range evs {
		if seen[e.EventId] {
			t.Fatalf("event %s twice", e.EventId)
		}
		seen[e.EventId] = true
		want, ok := next[e.OrderId]
		if !ok {
			want = max(first[e.OrderId], 1)
		}
		if e.Sequence != want {
			t.Fatalf("order %s: event %d (%s) where %d was due", e.OrderId, e.Sequence, e.Kind, want)
		}
		next[e.OrderId] = want + 1
	}
}

func find(evs []*orderv1.OrderEvent, orderID, kind string) *orderv1.OrderEvent {
	for _, e := range evs {
		if e.OrderId == orderID && e.Kind == kind {
			return e
		}
	}
	return nil
}

// TestWatchOrderEvents: a store watching over the gateway sees a new
// purchase order within a second; a buyer watching over gRPC sees the price
// change with both totals, the offer, the messages and the refund of the
// order, with the order's status and version after each; neither sees an
// event of another buyer's or another store's order.
func TestWatchOrderEvents(t *testing.T) {
	s := startSystem(t, 1, nil)
	lamp := s.product("store-x", "Lamp", 1000, 100, 100)
	mug := s.product("store-z", "Mug", 500, 50, 100)
	aliceTok, storeTok := s.token(auth.RoleBuyer, "alice"), s.token(auth.RoleSeller, "store-x")
	alice, store := as(aliceTok), as(storeTok)

	seller := watchJSON(t, s.sellerURL("/v1/events"), storeTok)
	buyer := watchGRPC(t, func(ctx context.Context) (grpc.ServerStreamingClient[buyerv1.WatchOrderEventsResponse], error) {
		return s.buyer.WatchOrderEvents(authorized(ctx, aliceTok), &buyerv1.WatchOrderEventsRequest{})
	})
	seller.began()
	buyer.began()

	start := time.Now()
	o := s.checkout("alice", 1, lamp)[0]
	created := seller.until(o.Id, "created", 5*time.Second)
	if took := time.Since(start); took > time.Second {
		t.Errorf("the store saw the purchase order %s after the checkout, want within 1 s", took)
	}
	if e := created[len(created)-1]; e.Status != orderv1.OrderStatus_ORDER_STATUS_PENDING_PAYMENT || e.Version != 1 || e.BuyerId != "alice" ||
		e.SellerId != "store-x" || e.Sequence != 1 || e.Cursor == "" {
		t.Fatalf("created: %v", e)
	}
	bobs := s.checkout("bob", 1, lamp)[0]
	mine := s.checkout("alice", 1, mug)[0]

	if _, err := s.seller.AdjustOrderPrice(store, &sellerv1.AdjustOrderPriceRequest{OrderId: o.Id, ShippingFee: usd(50), Reason: "cheaper post"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.buyer.MakeOffer(alice, &buyerv1.MakeOfferRequest{OrderId: o.Id, Kind: orderv1.OfferKind_OFFER_KIND_TOTAL, Amount: usd(1000), Note: "round it down?"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.seller.AnswerOffer(store, &sellerv1.AnswerOfferRequest{OrderId: o.Id, Note: "sorry, no"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.buyer.SendOrderMessage(alice, &buyerv1.SendOrderMessageRequest{OrderId: o.Id, Message: &orderv1.MessageInput{Text: "Fine, paying now"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.seller.SendOrderMessage(store, &sellerv1.SendOrderMessageRequest{OrderId: o.Id, Message: &orderv1.MessageInput{Text: "Thanks!",
		Links: []string{"https://store-x.example/care"}}}); err != nil {
		t.Fatal(err)
	}
	s.pay(t, "alice", s.order("alice", o.Id), "4242424242424242", "watch-pay-"+o.Id)
	if _, err := s.buyer.RequestCancellation(alice, &buyerv1.RequestCancellationRequest{OrderId: o.Id, Reason: "no_longer_needed"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.seller.AnswerCancellation(store, &sellerv1.AnswerCancellationRequest{OrderId: o.Id, Accept: true}); err != nil {
		t.Fatal(err)
	}

	evs := buyer.until(o.Id, "refund_succeeded", 15*time.Second)
	contiguous(t, evs, nil)
	for _, e := range evs {
		if e.BuyerId != "alice" || (e.OrderId != o.Id && e.OrderId != mine.Id) {
			t.Fatalf("alice saw an event of another's order: %v", e)
		}
	}
	if find(evs, mine.Id, "created") == nil {
		t.Fatal("alice did not see her order from another store")
	}
	adj := find(evs, o.Id, "price_adjusted").GetPriceAdjustment()
	if adj.GetOldTotal().GetAmountMinor() != 1100 || adj.GetNewTotal().GetAmountMinor() != 1050 || adj.GetNewShippingFee().GetAmountMinor() != 50 ||
		adj.GetReason() != "cheaper post" || adj.GetNewTotal().GetCurrency() != "USD" {
		t.Fatalf("price change: %v", adj)
	}
	if of := find(evs, o.Id, "offer_made").GetOffer(); of.GetKind() != orderv1.OfferKind_OFFER_KIND_TOTAL || of.GetAmount().GetAmountMinor() != 1000 || of.GetNote() != "round it down?" {
		t.Fatalf("offer: %v", of)
	}
	if e := find(evs, o.Id, "offer_declined"); e == nil || e.Actor != "seller:store-x" {
		t.Fatalf("offer declined: %v", e)
	}
	var texts []string
	for _, e := range evs {
		if e.Kind == "message_sent" {
			texts = append(texts, e.GetMessage().GetAuthor()+": "+e.GetMessage().GetText())
		}
	}
	if fmt.Sprint(texts) != "[buyer: Fine, paying now seller: Thanks!]" || find(evs, o.Id, "message_sent").GetMessage().GetId() == "" {
		t.Fatalf("messages: %q", texts)
	}
	if p := find(evs, o.Id, "paid"); p.GetPayment().GetAmount().GetAmountMinor() != 1050 || p.Status != orderv1.OrderStatus_ORDER_STATUS_AWAITING_SHIPMENT {
		t.Fatalf("paid: %v", p)
	}
	owed, done := find(evs, o.Id, "refund_owed"), find(evs, o.Id, "refund_succeeded")
	if owed.GetRefund().GetAmount().GetAmountMinor() != 1050 || done.GetRefund().GetAmount().GetAmountMinor() != 1050 || done.GetRefund().GetRefundId() == "" ||
		owed.Status != orderv1.OrderStatus_ORDER_STATUS_CANCELLED {
		t.Fatalf("refund events: %v / %v", owed, done)
	}
	final := s.order("alice", o.Id)
	if last := evs[len(evs)-1]; last.Version != final.Version || last.Sequence != int64(len(final.History)) {
		t.Fatalf("the last event says version %d, sequence %d; the order is at %d with %d entries", last.Version, last.Sequence, final.Version, len(final.History))
	}

	// The store saw bob's order and its own, never the mug's.
	sev := seller.until(o.Id, "refund_succeeded", 5*time.Second)
	sev = append(created, sev...)
	contiguous(t, sev, nil)
	if find(sev, bobs.Id, "created") == nil {
		t.Fatal("the store did not see bob's order")
	}
	for _, e := range sev {
		if e.SellerId != "store-x" {
			t.Fatalf("store-x saw another store's event: %v", e)
		}
	}

	// Filters: one order, some kinds; another's order is not found.
	only := watchJSON(t, s.buyerURL("/v1/events?cursor=0&filter.order_id="+o.Id+"&filter.kinds=message_sent&filter.kinds=refund_succeeded&filter.kinds=reminder.*"), aliceTok)
	only.began()
	var kinds []string
	for _, e := range only.take(3, 300*time.Millisecond) {
		kinds = append(kinds, e.Kind)
	}
	if fmt.Sprint(kinds) != "[message_sent message_sent refund_succeeded]" {
		t.Fatalf("filtered kinds: %v", kinds)
	}
	// A kind no event has (here "_*", a name, not a family) is refused
	// rather than a watch that stays silent.
	if code, body := jsonCall(t, "GET", s.buyerURL("/v1/events?cursor=0&filter.kinds=offer_*"), aliceTok, nil); code != http.StatusBadRequest ||
		!strings.Contains(str(body, "error", "message"), "filter.kinds[0]") {
		t.Fatalf("an unknown kind: HTTP %d %v", code, body)
	}
	// Every row an order owns carries the order's store (the distribution
	// column of a sharded deployment): each finds its order by id and store.
	for _, table := range []string{"order_events", "order_deadlines", "payment_attempts", "order_messages", "refunds"} {
		var rows, found int
		if err := s.db(t).QueryRow(context.Background(), `SELECT (SELECT count(*) FROM `+table+`),
			(SELECT count(*) FROM `+table+` c JOIN orders o ON o.id = c.order_id AND o.seller_id = c.seller_id)`).Scan(&rows, &found); err != nil ||
			found != rows || (rows == 0 && table != "order_deadlines") {
			t.Fatalf("%s: %d rows, %d of them with their order's store (%v)", table, rows, found, err)
		}
	}
	stranger, err := s.buyer.WatchOrderEvents(as(s.token(auth.RoleBuyer, "mallory")), &buyerv1.WatchOrderEventsRequest{Filter: &orderv1.EventFilter{OrderId: o.Id}})
	if err == nil {
		_, err = stranger.Recv()
	}
	if status.Code(err) != codes.NotFound {
		t.Fatalf("a stranger watches alice's order: %v", err)
	}
}

// authorized adds a bearer token to a context of the test's own.
func authorized(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

// TestWatchResume: a store's watcher disconnects; 200 events happen on its
// 20 orders from concurrent writers (and others on another store's); it
// watches again from its cursor and gets exactly those 200, each order's in
// sequence, none twice. A cursor the stream no longer keeps is OUT_OF_RANGE,
// over gRPC and over the gateway.
func TestWatchResume(t *testing.T) {
	s := startSystem(t, 1, nil)
	lamp := s.product("store-x", "Lamp", 1000, 100, 1000)
	mug := s.product("store-z", "Mug", 500, 50, 1000)
	storeTok := s.token(auth.RoleSeller, "store-x")
	watch := func(cursor string) *feed {
		return watchGRPC(t, func(ctx context.Context) (grpc.ServerStreamingClient[sellerv1.WatchOrderEventsResponse], error) {
			return s.seller.WatchOrderEvents(authorized(ctx, storeTok), &sellerv1.WatchOrderEventsRequest{Cursor: cursor})
		})
	}
	first := watch("")
	first.began()
	var orders, others []*orderv1.Order
	for i := range 20 {
		orders = append(orders, s.checkout(fmt.Sprintf("buyer-%d", i%5), 1, lamp)[0])
		others = append(others, s.checkout("zed", 1, mug)[0])
	}
	got := first.take(20, 200*time.Millisecond)
	cursor := got[len(got)-1].Cursor
	first.cancel()

	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				o := orders[(w*5+i)%20]
				ctx := as(storeTok)
				var err error
				if i%2 == 0 {
					_, err = s.buyer.SendOrderMessage(as(s.token(auth.RoleBuyer, o.BuyerId)), &buyerv1.SendOrderMessageRequest{OrderId: o.Id,
						Message: &orderv1.MessageInput{Text: fmt.Sprintf("question %d from writer %d", i, w)}})
				} else {
					_, err = s.seller.SendOrderMessage(ctx, &sellerv1.SendOrderMessageRequest{OrderId: o.Id,
						Message: &orderv1.MessageInput{Text: fmt.Sprintf("answer %d from writer %d", i, w)}})
				}
				if err != nil {
					t.Error(err)
					return
				}
				z := others[i%20]
				if _, err := s.buyer.SendOrderMessage(as(s.token(auth.RoleBuyer, "zed")), &buyerv1.SendOrderMessageRequest{OrderId: z.Id,
					Message: &orderv1.MessageInput{Text: "not store-x's"}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	again := watch(cursor)
	evs := again.take(200, time.Second)
	again.began()
	perOrder := map[string]int{}
	firstSeq := map[string]int64{}
	for _, o := range orders {
		firstSeq[o.Id] = 2
	}
	contiguous(t, evs, firstSeq)
	for _, e := range evs {
		if e.SellerId != "store-x" || e.Kind != "message_sent" {
			t.Fatalf("resumed watch got %v", e)
		}
		perOrder[e.OrderId]++
	}
	for _, o := range orders {
		if perOrder[o.Id] != 10 {
			t.Fatalf("order %s: %d events after the cursor, want 10", o.Id, perOrder[o.Id])
		}
	}

	// The stream drops its oldest entries (as trimming by age does): the
	// old cursor is out of range; a recent one still works.
	c, _ := strconv.ParseInt(cursor, 10, 64)
	if err := s.redis(t).XTrimMinID(context.Background(), app.EventStream(s.cfg), strconv.FormatInt(c+2, 10)+"-0").Err(); err != nil {
		t.Fatal(err)
	}
	stale, err := s.seller.WatchOrderEvents(as(storeTok), &sellerv1.WatchOrderEventsRequest{Cursor: cursor})
	if err == nil {
		_, err = stale.Recv()
	}
	if status.Code(err) != codes.OutOfRange {
		t.Fatalf("an expired cursor: %v", err)
	}
	code, body := jsonCall(t, "GET", s.sellerURL("/v1/events?cursor="+cursor), storeTok, nil)
	if code != http.StatusBadRequest || str(body, "error", "message") == "" {
		t.Fatalf("an expired cursor over the gateway: %d %v", code, body)
	}
	code, _ = jsonCall(t, "GET", s.sellerURL("/v1/events?cursor=soon"), storeTok, nil)
	if code != http.StatusBadRequest {
		t.Fatalf("a cursor that is not one: %d", code)
	}
	want := 0
	for _, e := range evs {
		if n, _ := strconv.ParseInt(e.Cursor, 10, 64); n > c+1 {
			want++
		}
	}
	recent := watch(strconv.FormatInt(c+1, 10))
	if e := recent.take(want, 300*time.Millisecond); len(e) != want {
		t.Fatalf("from the oldest cursor kept: %d events, want %d", len(e), want)
	}
}

// TestEventConsumerGroups: two groups each get every event; within a group
// a consumer that stopped before acknowledging gets its events again when
// it comes back, and what it acknowledged never comes again.
func TestEventConsumerGroups(t *testing.T) {
	s := startSystem(t, 1, nil)
	lamp := s.product("store-x", "Lamp", 1000, 100, 1000)
	svcTok := s.token(auth.RoleService, "notifier")
	client := eventsv1.NewOrderEventServiceClient(dial(t, s.sellers[0].InternalGRPCAddr()))
	watch := func(group, consumer, cursor string) *feed {
		return watchGRPC(t, func(ctx context.Context) (grpc.ServerStreamingClient[eventsv1.WatchOrderEventsResponse], error) {
			return client.WatchOrderEvents(authorized(ctx, svcTok), &eventsv1.WatchOrderEventsRequest{Group: group, Consumer: consumer, Cursor: cursor})
		})
	}
	// A buyer's token may not.
	st, err := client.WatchOrderEvents(as(s.token(auth.RoleBuyer, "alice")), &eventsv1.WatchOrderEventsRequest{})
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a buyer watches every order: %v", err)
	}
	for range 10 {
		s.checkout("alice", 1, lamp)
	}
	notify := watch("notify", "n1", "0")
	notify.began()
	got := notify.take(10, 300*time.Millisecond)
	var acks []string
	for _, e := range got[:6] {
		acks = append(acks, e.Cursor)
	}
	r, err := client.AckOrderEvents(as(svcTok), &eventsv1.AckOrderEventsRequest{Group: "notify", Cursors: acks})
	if err != nil || r.Acknowledged != 6 {
		t.Fatalf("ack: %v %v", r, err)
	}
	notify.cancel() // n1 stops with four unacknowledged

	analytics := watch("analytics", "a1", "0")
	analytics.began()
	if n := len(analytics.take(10, 300*time.Millisecond)); n != 10 {
		t.Fatalf("analytics got %d", n)
	}
	more := s.checkout("bob", 1, lamp)[0]
	if e := analytics.take(1, 200*time.Millisecond)[0]; e.OrderId != more.Id {
		t.Fatalf("analytics: %v", e)
	}

	back := watch("notify", "n1", "")
	back.began()
	again := back.take(5, 300*time.Millisecond)
	var cursors []string
	for _, e := range again {
		cursors = append(cursors, e.Cursor)
	}
	want := []string{got[6].Cursor, got[7].Cursor, got[8].Cursor, got[9].Cursor}
	if fmt.Sprint(cursors[:4]) != fmt.Sprint(want) || again[4].OrderId != more.Id {
		t.Fatalf("n1 came back to %v, want %v then bob's order", cursors, want)
	}
	if _, err := client.AckOrderEvents(as(svcTok), &eventsv1.AckOrderEventsRequest{Group: "notify", Cursors: cursors}); err != nil {
		t.Fatal(err)
	}
	back.cancel()
	// Everything acknowledged: a new consumer of the group gets only what is new.
	third := s.checkout("carol", 1, lamp)[0]
	n2 := watch("notify", "n2", "")
	n2.began()
	if e := n2.take(1, 500*time.Millisecond)[0]; e.OrderId != third.Id {
		t.Fatalf("n2 got %v", e)
	}
	st, err = client.WatchOrderEvents(as(svcTok), &eventsv1.WatchOrderEventsRequest{Group: "notify"})
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a group without a consumer name: %v", err)
	}
}

// TestStoppingReplicaEndsWatches: a replica that stops ends its watches at
// once with UNAVAILABLE (watch again, elsewhere) instead of holding its
// graceful stop until they end, which they never do by themselves.
func TestStoppingReplicaEndsWatches(t *testing.T) {
	s := startSystem(t, 1, nil)
	storeTok := s.token(auth.RoleSeller, "store-x")
	grpcWatch := watchGRPC(t, func(ctx context.Context) (grpc.ServerStreamingClient[sellerv1.WatchOrderEventsResponse], error) {
		return s.seller.WatchOrderEvents(authorized(ctx, storeTok), &sellerv1.WatchOrderEventsRequest{})
	})
	jsonWatch := watchJSON(t, s.sellerURL("/v1/events"), storeTok)
	grpcWatch.began()
	jsonWatch.began()
	start := time.Now()
	s.stopAll()
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("stopping took %s with two watches open", took)
	}
	select {
	case err := <-grpcWatch.done:
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("the gRPC watch ended with %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("the gRPC watch did not end")
	}
	select {
	case err := <-jsonWatch.done:
		if code := status.Code(err); code != codes.Unavailable && err != nil {
			t.Fatalf("the JSON watch ended with %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("the JSON watch did not end")
	}
}
