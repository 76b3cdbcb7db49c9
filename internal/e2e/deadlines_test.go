package e2e

import (
	"strings"
	"testing"
	"time"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
)

// deadlineCase is an order with one kind of deadline open and what firing
// it must leave: a status and history entries that must appear exactly once.
type deadlineCase struct {
	kind   string
	order  *orderv1.Order
	status orderv1.OrderStatus
	once   []string
}

// openEveryDeadline makes one order per deadline kind, each due within a
// few seconds.
func (s *system) openEveryDeadline(t *testing.T) []*deadlineCase {
	t.Helper()
	lamp := s.product("store-x", "Lamp", 1000, 100, 100)
	buyerCtx, sellerCtx := as(s.token(auth.RoleBuyer, "alice")), as(s.token(auth.RoleSeller, "store-x"))
	// has checks an order as an answer returned it: the deadline is open
	// (it may well have fired by the time every order is set up).
	has := func(o *orderv1.Order, kind string) {
		t.Helper()
		if deadline(o, kind).IsZero() {
			t.Fatalf("order %s has no %s deadline: %v", o.Id, kind, o.Deadlines)
		}
	}
	ship := func(o *orderv1.Order) *orderv1.Order {
		r, err := s.seller.ShipOrder(sellerCtx, &sellerv1.ShipOrderRequest{OrderId: o.Id, Carrier: "DHL", TrackingNumber: "JD1000"})
		if err != nil {
			t.Fatal(err)
		}
		return r.Order
	}
	unpaid := s.checkout("alice", 1, lamp)[0]
	has(unpaid, "payment")
	verifying := s.checkout("alice", 1, lamp)[0]
	has(s.pay(t, "alice", verifying, "4000000000003220", "dl-verify-1").Order, "verification")
	slow := s.checkout("alice", 1, lamp)[0]
	has(s.pay(t, "alice", slow, "4000000000000077", "dl-slow-01").Order, "processing")
	requested := s.paidOrder(t, lamp)
	r, err := s.buyer.RequestCancellation(buyerCtx, &buyerv1.RequestCancellationRequest{OrderId: requested.Id, Reason: "no_longer_needed"})
	if err != nil {
		t.Fatal(err)
	}
	has(r.Order, "cancel_answer")
	unshipped := s.paidOrder(t, lamp)
	has(unshipped, "ship_by")
	protected := s.paidOrder(t, lamp)
	has(ship(protected), "protection")
	disputedO := s.paidOrder(t, lamp)
	ship(disputedO)
	d, err := s.buyer.OpenDispute(buyerCtx, &buyerv1.OpenDisputeRequest{OrderId: disputedO.Id, Reason: "not_received", RefundAmount: usd(100),
		Evidence: &orderv1.EvidenceInput{Text: "nothing came"}})
	if err != nil {
		t.Fatal(err)
	}
	has(d.Order, "dispute_answer")
	return []*deadlineCase{
		{"payment", unpaid, cancelled, []string{"cancelled"}},
		// The code never comes: the attempt fails, then the payment window ends.
		{"verification", verifying, cancelled, []string{"payment_failed", "cancelled"}},
		// The provider is slower than the processing window: the attempt
		// fails, its late success is owed back, the payment window ends.
		// (Which comes first, the late success or the window's end, depends on timing.)
		{"processing", slow, cancelled, []string{"payment_failed", "late_payment|payment_after_cancellation", "refund_owed", "cancelled"}},
		{"cancel_answer", requested, cancelled, []string{"cancellation_accepted", "cancelled", "refund_owed"}},
		{"ship_by", unshipped, cancelled, []string{"cancelled", "refund_owed"}},
		{"protection", protected, completed, []string{"completed"}},
		{"dispute_answer", disputedO, disputed, []string{"dispute_escalated"}},
	}
}

// everyDeadlineWindow makes each window a second or two.
func everyDeadlineWindow(c *app.Config) {
	c.PaymentWindow = 2500 * time.Millisecond
	c.Policy.VerificationTTL = time.Second
	c.Policy.ProcessingTimeout = 200 * time.Millisecond // the slow card settles after 1s
	c.Policy.CancelAnswerWindow = time.Second
	c.Policy.HandlingDay = 700 * time.Millisecond     // 3 handling days: ~2s
	c.Policy.ProtectionDay = 16667 * time.Microsecond // 60 protection days: one second
	c.Policy.DisputeAnswerWindow = time.Second
	c.SweepInterval = 200 * time.Millisecond
}

// expectFiredOnce waits for every case's outcome and checks that each
// action happened once, and that nothing fires again afterwards.
func (s *system) expectFiredOnce(t *testing.T, cases []*deadlineCase) {
	t.Helper()
	check := func(final bool) bool {
		for _, c := range cases {
			got := s.order("alice", c.order.Id)
			n := countKinds(got)
			done := got.Status == c.status && (c.kind != "dispute_answer" || got.Dispute.Status == "ESCALATED")
			for _, k := range c.once {
				times := 0
				for _, alt := range strings.Split(k, "|") {
					times += n[alt]
				}
				if times > 1 {
					t.Fatalf("%s: %q happened %d times (history %v)", c.kind, k, times, n)
				}
				done = done && times == 1
			}
			if !done {
				if final {
					t.Fatalf("%s: order %s, history %v", c.kind, got.Status, n)
				}
				return false
			}
		}
		return true
	}
	for end := time.Now().Add(20 * time.Second); !check(false) && time.Now().Before(end); {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	check(true)
}

// TestEveryDeadlineFiresOnce opens every kind of deadline and checks each
// fires exactly once: with two replicas of each service, with the expired-key
// listener off, after Redis lost its keys, and when the services were down
// while the deadlines came due.
func TestEveryDeadlineFiresOnce(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replicas int
		tune     func(*app.Config)
		between  func(t *testing.T, s *system)
	}{
		{name: "two replicas", replicas: 2},
		{name: "listener off", replicas: 2, tune: func(c *app.Config) { c.Listener = false }},
		{name: "redis lost its keys", replicas: 1, between: func(t *testing.T, s *system) {
			if s.deleteKeys(t) == 0 {
				t.Fatal("no keys to lose")
			}
		}},
		{name: "services down while due", replicas: 2, between: func(t *testing.T, s *system) {
			s.stopAll()
			time.Sleep(4 * time.Second) // every deadline passes while nothing runs
			s.restart(2)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSystem(t, tc.replicas, func(c *app.Config) {
				everyDeadlineWindow(c)
				if tc.tune != nil {
					tc.tune(c)
				}
			})
			cases := s.openEveryDeadline(t)
			if tc.between != nil {
				tc.between(t, s)
			}
			s.expectFiredOnce(t, cases)
		})
	}
}
