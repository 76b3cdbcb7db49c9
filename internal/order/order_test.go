package order_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/souk-dev/souk/internal/order"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func newOrder(tb testing.TB) *order.Order {
	tb.Helper()
	o, err := order.New(order.NewOrderParams{
		ID: "o1", CheckoutID: "c1", BuyerID: "alice", SellerID: "store-x", Currency: "USD",
		Items:       []order.Item{{ProductID: "p1", Title: "Lamp", Quantity: 2, UnitPrice: 1000}, {ProductID: "p2", Title: "Cable", Quantity: 1, UnitPrice: 300}},
		ShippingFee: 500, HandlingDays: 3, PaymentWindow: 20 * 24 * time.Hour, Now: t0,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return o
}

// inStatus returns a stored order in status s with its payment deadline
// and, past payment, the captured attempt that paid it.
func inStatus(tb testing.TB, s order.Status) *order.Order {
	st := newOrder(tb).Stored()
	st.Status, st.History = s, nil
	if s == order.StatusPartiallyPaid {
		partlyPaid(&st)
	} else if s != order.StatusPendingPayment && s != order.StatusPaymentProcessing {
		a := attempt("k0")
		a.Status, a.Amount, a.ProviderRef, a.Captured = order.AttemptSucceeded, order.Money{Amount: 2800, Currency: "USD"}, "p0", true
		st.Attempts, st.PaidAttemptID = []order.Attempt{a}, a.ID
	}
	return order.UnmarshalFromDatabase(st)
}

func attempt(key string) order.Attempt {
	return order.Attempt{ID: "a-" + key, IdempotencyKey: key, Fingerprint: "fp-" + key, Method: "card", CardBrand: "visa", CardLast4: "4242"}
}

func TestNewComputesTotalsAndOpensPaymentWindow(t *testing.T) {
	o := newOrder(t)
	if got, want := o.Total(), (order.Money{Amount: 2*1000 + 300 + 500, Currency: "USD"}); got != want {
		t.Fatalf("total = %v, want %v", got, want)
	}
	if got, want := o.Deadlines()[order.DeadlinePayment], t0.Add(20*24*time.Hour); !got.Equal(want) {
		t.Fatalf("payment deadline = %v, want %v", got, want)
	}
	if h := o.History(); len(h) != 1 || h[0].Kind != "created" || h[0].Sequence != 1 {
		t.Fatalf("history = %+v", h)
	}
}

func TestNewRejects(t *testing.T) {
	base := order.NewOrderParams{ID: "o", CheckoutID: "c", BuyerID: "b", SellerID: "s", Currency: "USD",
		Items: []order.Item{{ProductID: "p", Quantity: 1, UnitPrice: 1}}, PaymentWindow: time.Hour, Now: t0}
	for name, mutate := range map[string]func(*order.NewOrderParams){
		"no items":          func(p *order.NewOrderParams) { p.Items = nil },
		"zero quantity":     func(p *order.NewOrderParams) { p.Items[0].Quantity = 0 },
		"negative price":    func(p *order.NewOrderParams) { p.Items[0].UnitPrice = -1 },
		"overflowing total": func(p *order.NewOrderParams) { p.Items[0].UnitPrice, p.Items[0].Quantity = order.MaxAmount, 1000 },
		"product twice":     func(p *order.NewOrderParams) { p.Items = append(p.Items, p.Items[0]) },
		"bad currency":      func(p *order.NewOrderParams) { p.Currency = "US" },
		"no buyer":          func(p *order.NewOrderParams) { p.BuyerID = "" },
		"no window":         func(p *order.NewOrderParams) { p.PaymentWindow = 0 },
	} {
		t.Run(name, func(t *testing.T) {
			p := base
			p.Items = append([]order.Item(nil), base.Items...)
			mutate(&p)
			if _, err := order.New(p); !errors.Is(err, order.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

// TestTransitions tries every action in every status: the allowed ones
// succeed, the rest fail with ErrIllegalTransition and change nothing.
func TestTransitions(t *testing.T) {
	fee := order.Money{Amount: 0, Currency: "USD"}
	actions := map[string]struct {
		allowed []order.Status
		do      func(*order.Order) error
	}{
		"cancel": {[]order.Status{order.StatusPendingPayment}, func(o *order.Order) error { return o.Cancel(t0, "alice", "changed my mind") }},
		"adjust": {[]order.Status{order.StatusPendingPayment}, func(o *order.Order) error {
			return o.AdjustPrice(t0, order.PriceChange{ShippingFee: &fee, Reason: "free shipping"})
		}},
		"pay": {[]order.Status{order.StatusPendingPayment, order.StatusPartiallyPaid}, func(o *order.Order) error {
			return o.BeginPayment(t0, o.Due(), attempt("k1"))
		}},
		"ship": {[]order.Status{order.StatusAwaitingShipment}, func(o *order.Order) error {
			return o.Ship(t0, order.Shipment{Carrier: "DHL", TrackingNumber: "JD01"}, order.DefaultPolicy)
		}},
		"confirm receipt": {[]order.Status{order.StatusShipped}, func(o *order.Order) error { return o.ConfirmReceipt(t0) }},
	}
	for _, status := range order.Statuses {
		for name, a := range actions {
			t.Run(string(status)+"/"+name, func(t *testing.T) {
				o := inStatus(t, status)
				before := o.Stored()
				err := a.do(o)
				if slices.Contains(a.allowed, status) {
					if err != nil {
						t.Fatalf("allowed action failed: %v", err)
					}
					return
				}
				if !errors.Is(err, order.ErrIllegalTransition) {
					t.Fatalf("err = %v, want ErrIllegalTransition", err)
				}
				if after := o.Stored(); !reflect.DeepEqual(before, after) {
					t.Fatalf("refused action changed the order:\n%+v\n%+v", before, after)
				}
			})
		}
	}
}

func TestAdjustPriceRecordsOldAndNewTotals(t *testing.T) {
	o := newOrder(t)
	fee := order.Money{Amount: 0, Currency: "USD"}
	err := o.AdjustPrice(t0.Add(time.Hour), order.PriceChange{
		UnitPrices: map[string]order.Money{"p1": {Amount: 800, Currency: "USD"}}, ShippingFee: &fee, Reason: "bulk discount",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := o.Total().Amount; got != 2*800+300 {
		t.Fatalf("total = %d", got)
	}
	ev := o.NewEvents()[len(o.NewEvents())-1]
	want := &order.PriceAdjustment{OldTotal: 2800, NewTotal: 1900, OldShippingFee: 500, NewShippingFee: 0, Reason: "bulk discount"}
	if ev.Kind != "price_adjusted" || !reflect.DeepEqual(ev.Adjustment, want) || ev.Actor != "seller:store-x" {
		t.Fatalf("event = %+v, adjustment %+v", ev, ev.Adjustment)
	}
	for name, c := range map[string]order.PriceChange{
		"unknown product": {UnitPrices: map[string]order.Money{"p9": {Amount: 1, Currency: "USD"}}, Reason: "x"},
		"other currency":  {UnitPrices: map[string]order.Money{"p1": {Amount: 1, Currency: "EUR"}}, Reason: "x"},
		"no reason":       {ShippingFee: &fee},
		"overflow":        {UnitPrices: map[string]order.Money{"p1": {Amount: order.MaxAmount, Currency: "USD"}}, Reason: "x"},
	} {
		if err := o.AdjustPrice(t0, c); !errors.Is(err, order.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestPaymentAttempts(t *testing.T) {
	o := newOrder(t)
	if err := o.BeginPayment(t0, order.Money{Amount: 1, Currency: "USD"}, attempt("k0")); !errors.Is(err, order.ErrTotalMismatch) {
		t.Fatalf("wrong expected total: %v", err)
	}
	if err := o.BeginPayment(t0, o.Total(), attempt("k1")); err != nil {
		t.Fatal(err)
	}
	fee := order.Money{Currency: "USD"}
	if err := o.AdjustPrice(t0, order.PriceChange{ShippingFee: &fee, Reason: "x"}); !errors.Is(err, order.ErrPaymentInProgress) {
		t.Fatalf("adjust during payment: %v", err)
	}
	if err := o.Cancel(t0, "alice", "x"); !errors.Is(err, order.ErrPaymentInProgress) {
		t.Fatalf("cancel during payment: %v", err)
	}
	if err := o.BeginPayment(t0, o.Total(), attempt("k2")); !errors.Is(err, order.ErrPaymentInProgress) {
		t.Fatalf("second attempt: %v", err)
	}
	decline := order.Decline{Code: "insufficient_funds", Message: "no money"}
	if err := o.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultDeclined, Decline: decline}, order.DefaultPolicy); err != nil {
		t.Fatal(err)
	}
	if o.Status() != order.StatusPendingPayment || o.LastDecline() != decline || !o.Deadlines()[order.DeadlinePayment].Equal(t0.Add(20*24*time.Hour)) {
		t.Fatalf("after decline: %s %+v %v", o.Status(), o.LastDecline(), o.Deadlines())
	}
	if err := o.BeginPayment(t0, o.Total(), order.Attempt{ID: "x", IdempotencyKey: "k1", Fingerprint: "other"}); !errors.Is(err, order.ErrIdempotencyKeyReused) {
		t.Fatalf("key reuse: %v", err)
	}
	if err := o.BeginPayment(t0, o.Total(), attempt("k3")); err != nil {
		t.Fatal(err)
	}
	if err := o.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultSucceeded}, order.DefaultPolicy); !errors.Is(err, order.ErrAlreadyFinal) {
		t.Fatalf("completing a closed attempt: %v", err)
	}
	if err := o.ApplyResult(t0, "a-k3", order.Result{Kind: order.ResultSucceeded, ProviderRef: "ch_1"}, order.DefaultPolicy); err != nil {
		t.Fatal(err)
	}
	// Paid: the payment window closes and the ship-by date (3 handling days)
	// opens, with its reminder a day before.
	if d := o.Deadlines(); o.Status() != order.StatusAwaitingShipment || len(d) != 2 || !d[order.DeadlineShipBy].Equal(t0.Add(3*24*time.Hour)) ||
		!d[order.DeadlineRemindShipBy].Equal(t0.Add(2*24*time.Hour)) || o.LastDecline() != (order.Decline{}) {
		t.Fatalf("after approval: %s %v %+v", o.Status(), o.Deadlines(), o.LastDecline())
	}
	if a, _ := o.Attempt("a-k3"); a.Status != order.AttemptSucceeded || a.Amount != o.Total() {
		t.Fatalf("attempt = %+v", a)
	}
}

func TestFailPaymentReopensTheOrder(t *testing.T) {
	o := newOrder(t)
	if err := o.BeginPayment(t0, o.Total(), attempt("k1")); err != nil {
		t.Fatal(err)
	}
	if err := o.FailPayment(t0, "a-k1", order.Decline{Code: "processing_error"}); err != nil {
		t.Fatal(err)
	}
	if a, _ := o.Attempt("a-k1"); a.Status != order.AttemptFailed || o.Status() != order.StatusPendingPayment {
		t.Fatalf("attempt %s, order %s", a.Status, o.Status())
	}
	if err := o.FailPayment(t0, "a-k1", order.Decline{}); !errors.Is(err, order.ErrIllegalTransition) {
		t.Fatalf("failing twice: %v", err)
	}
}

func TestPaymentDeadline(t *testing.T) {
	o := newOrder(t)
	due := t0.Add(20 * 24 * time.Hour)
	if err := o.FireDeadline(due.Add(-time.Millisecond), order.DeadlinePayment, order.DefaultPolicy); !errors.Is(err, order.ErrNotDue) {
		t.Fatalf("early: %v", err)
	}
	if err := o.FireDeadline(due, order.DeadlinePayment, order.DefaultPolicy); err != nil {
		t.Fatal(err)
	}
	if o.Status() != order.StatusCancelled || o.CancelReason() != order.ReasonPaymentTimeout || !o.ReleasesStock() || len(o.Deadlines()) != 0 {
		t.Fatalf("after expiry: %s %q release=%v %v", o.Status(), o.CancelReason(), o.ReleasesStock(), o.Deadlines())
	}
	if err := o.FireDeadline(due, order.DeadlinePayment, order.DefaultPolicy); !errors.Is(err, order.ErrNotDue) {
		t.Fatalf("second firing: %v", err)
	}
	if n := len(o.NewEvents()); n != 2 {
		t.Fatalf("%d events, want created and cancelled", n)
	}
}

// TestIDsCarryTheirStore: an id made for a store gives back the store's
// key, a different store's ids another key, and a random UUID (an id made
// before ids carried their store) none; the ids are distinct, valid UUIDs,
// and so are their short forms (the dashboard's eight digits after the
// day).
func TestIDsCarryTheirStore(t *testing.T) {
	seen, short := map[string]bool{}, map[string]bool{}
	for range 1000 {
		id := order.NewID("store-1")
		if seen[id] {
			t.Fatalf("id %s made twice", id)
		}
		seen[id], short[id[4:8]+id[9:13]] = true, true
		key, ok := order.KeyOf(id)
		if !ok || key != order.StoreKey("store-1") {
			t.Fatalf("order.KeyOf(%s) = %x, %v; want %x", id, key, ok, order.StoreKey("store-1"))
		}
	}
	if len(short) < 990 {
		t.Fatalf("1000 ids of a store have %d distinct short forms", len(short))
	}
	if order.StoreKey("store-1") == order.StoreKey("store-2") {
		t.Fatal("two stores share a key")
	}
	if _, ok := order.KeyOf("6f1c4f5e-7d1a-4b1e-9a55-3c2f3f0a9b10"); ok {
		t.Fatal("a random (version 4) UUID has a store key")
	}
	if _, ok := order.KeyOf("not an id"); ok {
		t.Fatal("a malformed id has a store key")
	}
}

// TestIDsBeginWithTheirDay: an id begins with the UTC day it was made
// (days since 1970), so a day's ids sort together and after the day
// before's, whatever their random part and store; the store's key and the
// version are kept.
func TestIDsBeginWithTheirDay(t *testing.T) {
	day := time.Date(2026, 12, 6, 23, 59, 59, 0, time.UTC)
	next := day.Add(time.Second)
	want := fmt.Sprintf("%04x", day.Unix()/86400)
	var last string
	for i := range 200 {
		store := fmt.Sprintf("store-%d", i%7)
		id, after := order.NewIDAt(store, day), order.NewIDAt(store, next)
		if id[:4] != want {
			t.Fatalf("id %s made on %s does not begin with its day %s", id, day, want)
		}
		if after <= id || after[:4] == want {
			t.Fatalf("id %s of the next day does not sort after %s", after, id)
		}
		if last != "" && last > after {
			t.Fatalf("an id of the next day %s sorts before another one %s", after, last)
		}
		last = id
		u := uuid.MustParse(id)
		if key, ok := order.KeyOf(id); !ok || key != order.StoreKey(store) || u.Version() != 8 {
			t.Fatalf("id %s: key %x, %v, version %d; want %x, version 8", id, key, ok, u.Version(), order.StoreKey(store))
		}
	}
}
