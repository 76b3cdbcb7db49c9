package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/payment"
	"github.com/souk-dev/souk/internal/testenv"
)

// chaos is the state of a randomized fault run.
type chaos struct {
	t      *testing.T
	s      *system
	seed   uint64
	logs   logBuffer
	env    []string
	mu     sync.Mutex
	counts map[string]int
	// windows are the fault windows (with a grace period after each): a
	// transient error inside one is expected, outside one it is a defect.
	windows [][2]time.Time
	// faults counts the faults injected, by kind.
	faults    map[string]int
	bad       []string
	transient []transientErr

	replicas []*chaosReplica
	orders   []chaosOrder
	products []*sellerv1.Product
	initial  map[string]int64
}

type chaosReplica struct {
	mu       sync.Mutex
	grpcAddr string
	httpAddr string
	p        *process
	client   buyerv1.BuyerServiceClient
}

type chaosOrder struct {
	id, buyer, seller string
}

const (
	chaosTraffic = 40 * time.Second
	chaosWorkers = 4
	callTimeout  = 8 * time.Second
	faultGrace   = 3 * time.Second
)

// TestRandomFaults runs a random mix of every buyer and seller action
// against two replicas of each service while it kills and restarts a
// buyer-svc replica (SIGKILL), pauses one past the lock TTL (SIGSTOP),
// restarts Redis with its data lost and restarts PostgreSQL. Once it all
// settles it checks the money and the stock against the record and the
// provider's ledger. SOUK_FAULT_SEED replays a run.
func TestRandomFaults(t *testing.T) { randomFaults(t, false) }

// TestRandomFaultsOnCitus is TestRandomFaults on a private Citus cluster
// (a coordinator and two workers, the schema distributed by store, 4
// shards a table): the same actions and invariants, with a Citus worker
// restarted among the faults, and "restart postgres" restarting the
// coordinator.
func TestRandomFaultsOnCitus(t *testing.T) { randomFaults(t, true) }

func randomFaults(t *testing.T, onCitus bool) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SOUK_FAULT_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("SOUK_FAULT_SEED: %v", err)
		}
	}
	t.Logf("seed %d (replay with SOUK_FAULT_SEED=%d)", seed, seed)
	c := &chaos{t: t, seed: seed, counts: map[string]int{}, faults: map[string]int{}, initial: map[string]int64{}}
	pol := func(cfg *app.Config) {
		cfg.PaymentWindow = 6 * time.Second
		cfg.LockTTL = time.Second
		cfg.SweepInterval = 200 * time.Millisecond
		cfg.Policy.ProcessingTimeout = 8 * time.Second
		cfg.Policy.VerificationTTL = 4 * time.Second
		cfg.Policy.HandlingDay = 3 * time.Second
		cfg.Policy.ProtectionDay = 83333 * time.Microsecond
		cfg.Policy.DisputeAnswerWindow = 3 * time.Second
		cfg.Policy.RefundBankingDays = 1
		cfg.Policy.RefundLease = 5 * time.Second
	}
	var (
		s       *system
		pg      *testenv.PostgresServer
		rd      *testenv.RedisServer
		workers []*testenv.PostgresServer
	)
	if onCitus {
		var cluster *testenv.CitusCluster
		s, cluster, rd = privateCitusSystem(t, 2, options{tune: pol, noBuyers: true})
		pg, workers = cluster.Coordinator, cluster.Workers
	} else {
		s, pg, rd = privateSystem(t, 2, options{tune: pol, noBuyers: true})
	}
	c.s = s
	c.env = []string{"SOUK_PAYMENT_WINDOW=6s", "SOUK_PROCESSING_TIMEOUT=8s", "SOUK_VERIFICATION_TTL=4s", "SOUK_HANDLING_DAY=3s",
		"SOUK_PROTECTION_DAY=83333us", "SOUK_DISPUTE_ANSWER_WINDOW=3s", "SOUK_REFUND_BANKING_DAYS=1", "SOUK_REFUND_LEASE=5s", "SOUK_SIM_SETTLE_AFTER=1s",
		"SOUK_LOG_LEVEL=warn", "SOUK_FINGERPRINT_SECRET=test-fingerprint-secret", "SOUK_PROVIDER_TIMEOUT=2s",
		"SOUK_MAX_UNPAID_ORDERS=0", "SOUK_MAX_UNPAID_UNITS=0"}
	for range 2 {
		r := &chaosReplica{grpcAddr: freeAddr(t), httpAddr: freeAddr(t)}
		c.start(r)
		c.replicas = append(c.replicas, r)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("buyer-svc errors:\n%s", errorLines(c.logs.String()))
			t.Logf("buyer-svc logs (warnings and errors):\n%s", lastLines(c.logs.String(), 200))
		}
	})
	for i, store := range []string{"store-a", "store-b"} {
		for j := range 3 {
			p := s.product(store, fmt.Sprintf("Item %d-%d", i, j), int64(500+100*j), 100, 300)
			c.products = append(c.products, p)
			c.initial[p.Id] = 300
		}
	}
	// Products paid in parts, each in a store of its own (one store's
	// products under two plans are bought apart): pre-sales whose balance
	// is due 4 s after checkout with 2 s of grace, one keeping its
	// deposit when the balance is never paid, and instalments every 3 s.
	for _, pp := range []struct {
		store string
		plan  *orderv1.PaymentPlan
	}{
		{"store-c", &orderv1.PaymentPlan{Kind: orderv1.PaymentPlanKind_PAYMENT_PLAN_KIND_DEPOSIT, DepositPercent: 30,
			BalanceWindow: durationpb.New(4 * time.Second), Grace: durationpb.New(2 * time.Second)}},
		{"store-d", &orderv1.PaymentPlan{Kind: orderv1.PaymentPlanKind_PAYMENT_PLAN_KIND_DEPOSIT, DepositAmountMinor: 200, KeepDeposit: true,
			BalanceWindow: durationpb.New(4 * time.Second), Grace: durationpb.New(2 * time.Second)}},
		{"store-e", &orderv1.PaymentPlan{Kind: orderv1.PaymentPlanKind_PAYMENT_PLAN_KIND_INSTALMENTS, Instalments: 3,
			Every: durationpb.New(3 * time.Second), Grace: durationpb.New(2 * time.Second)}},
	} {
		resp, err := s.seller.CreateProduct(as(s.token(auth.RoleSeller, pp.store)), &sellerv1.CreateProductRequest{Title: "Plan " + pp.store,
			Price: usd(1000), ShippingFee: usd(100), Stock: 300, HandlingDays: 1, PaymentPlan: pp.plan})
		if err != nil {
			t.Fatal(err)
		}
		c.products = append(c.products, resp.Product)
		c.initial[resp.Product.Id] = 300
	}

	// An internal consumer that lags behind reads the feed throughout.
	audit := &auditor{seen: map[string]bool{}}
	auditCtx, stopAudit := context.WithCancel(context.Background())
	auditDone := make(chan struct{})
	go func() { defer close(auditDone); audit.run(auditCtx, s) }()
	defer func() { stopAudit(); <-auditDone }()

	ctx, stop := context.WithTimeout(context.Background(), chaosTraffic)
	defer stop()
	var wg sync.WaitGroup
	for w := range chaosWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.work(ctx, rand.New(rand.NewPCG(seed, uint64(w))))
		}()
	}
	c.injectFaults(ctx, rand.New(rand.NewPCG(seed, 99)), pg, rd, workers)
	wg.Wait()
	for _, r := range c.replicas {
		c.ensureRunning(r)
	}
	c.judgeTransient()
	c.settle()
	c.check()
	audit.check(t, s.cfg.DatabaseURL)

	c.mu.Lock()
	keys := make([]string, 0, len(c.counts))
	for k := range c.counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %-40s %d\n", k, c.counts[k])
	}
	t.Logf("seed %d; %d orders; faults %v; operations by outcome:\n%s", seed, len(c.orders), c.faults, b.String())
	for _, bad := range c.bad {
		t.Error(bad)
	}
	c.mu.Unlock()
}

// errorLines returns the error records of a JSON log: an internal error's
// cause, which a tail of a busy log can miss.
func errorLines(s string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, `"level":"ERROR"`) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return strings.Join(out, "\n")
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func (c *chaos) start(r *chaosReplica) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.p = c.s.startBuyerProcessAt(c.t, &c.logs, r.grpcAddr, r.httpAddr, c.env...)
	if r.client == nil {
		r.client = buyerv1.NewBuyerServiceClient(dial(c.t, r.grpcAddr))
	}
}

// ensureRunning resumes a paused replica and restarts a dead one.
func (c *chaos) ensureRunning(r *chaosReplica) {
	r.mu.Lock()
	p := r.p
	r.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	select {
	case <-p.exited:
		c.start(r)
	default:
	}
}

func (c *chaos) fault(kind string, r *rand.Rand, do func(), undo func()) {
	start := time.Now()
	do()
	time.Sleep(time.Duration(800+r.IntN(1500)) * time.Millisecond)
	undo()
	c.mu.Lock()
	c.faults[kind]++
	c.windows = append(c.windows, [2]time.Time{start, time.Now().Add(faultGrace)})
	c.mu.Unlock()
}

// injectFaults runs one fault after another until ctx ends: every kind
// once, in random order, then again.
func (c *chaos) injectFaults(ctx context.Context, r *rand.Rand, pg *testenv.PostgresServer, rd *testenv.RedisServer,
	workers []*testenv.PostgresServer) {
	kinds := []string{"kill buyer-svc", "pause buyer-svc past the lock TTL", "restart redis (data lost)", "restart postgres"}
	if len(workers) > 0 {
		kinds = append(kinds, "restart a citus worker")
	}
	var queue []string
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(1500+r.IntN(2000)) * time.Millisecond):
		}
		if len(queue) == 0 {
			queue = slices.Clone(kinds)
			r.Shuffle(len(queue), func(i, j int) { queue[i], queue[j] = queue[j], queue[i] })
		}
		kind := queue[0]
		queue = queue[1:]
		rep := c.replicas[r.IntN(len(c.replicas))]
		switch kind {
		case "kill buyer-svc":
			c.fault(kind, r, func() {
				rep.mu.Lock()
				_ = rep.p.cmd.Process.Kill()
				<-rep.p.exited
				rep.mu.Unlock()
			}, func() { c.start(rep) })
		case "pause buyer-svc past the lock TTL":
			c.fault(kind, r, func() { _ = rep.p.cmd.Process.Signal(syscall.SIGSTOP); time.Sleep(1500 * time.Millisecond) },
				func() { _ = rep.p.cmd.Process.Signal(syscall.SIGCONT) })
		case "restart redis (data lost)":
			c.fault(kind, r, rd.Stop, rd.Start)
		case "restart postgres":
			c.fault(kind, r, pg.Stop, pg.Start)
		case "restart a citus worker":
			w := workers[r.IntN(len(workers))]
			c.fault(kind, r, w.Stop, w.Start)
		}
	}
}

// record counts an operation's outcome and judges its error: an internal
// error is a defect; a transient one (UNAVAILABLE, a time-out) is judged
// against the fault windows once the run is over.
func (c *chaos) record(op string, start time.Time, err error) {
	code := status.Code(err)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[op+" "+code.String()]++
	switch code {
	case codes.Internal, codes.Unknown, codes.DataLoss:
		c.bad = append(c.bad, fmt.Sprintf("%s at %s: %v", op, start.Format(time.StampMilli), err))
	case codes.Unavailable, codes.DeadlineExceeded:
		c.transient = append(c.transient, transientErr{op: op, start: start, end: time.Now(), err: err})
	}
}

// transientErr is a transient failure of an operation, to judge later.
type transientErr struct {
	op         string
	start, end time.Time
	err        error
}

// judgeTransient reports every transient failure that overlaps no fault window.
func (c *chaos) judgeTransient() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, te := range c.transient {
		if !slices.ContainsFunc(c.windows, func(w [2]time.Time) bool { return !te.end.Before(w[0]) && !te.start.After(w[1]) }) {
			c.bad = append(c.bad, fmt.Sprintf("%s failed outside every fault window at %s: %v", te.op, te.start.Format(time.StampMilli), te.err))
		}
	}
}

func (c *chaos) buyer(r *rand.Rand) buyerv1.BuyerServiceClient {
	rep := c.replicas[r.IntN(len(c.replicas))]
	rep.mu.Lock()
	defer rep.mu.Unlock()
	return rep.client
}

func (c *chaos) seller(r *rand.Rand) sellerv1.SellerServiceClient {
	return sellerv1.NewSellerServiceClient(dial(c.t, c.s.sellers[r.IntN(len(c.s.sellers))].GRPCAddr()))
}

// call runs one operation with a time-out and records it.
func (c *chaos) call(op string, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	start := time.Now()
	err := fn(ctx)
	c.record(op, start, err)
	return err
}

func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted:
		return true
	}
	return false
}

var chaosCards = func() []string {
	var out []string
	for _, tc := range payment.TestCards {
		out = append(out, tc.Number)
	}
	return out
}()

// work runs random operations until ctx ends.
func (c *chaos) work(ctx context.Context, r *rand.Rand) {
	buyers := []string{"buyer-1", "buyer-2", "buyer-3"}
	for ctx.Err() == nil {
		time.Sleep(time.Duration(10+r.IntN(30)) * time.Millisecond) // a user's pace, not a benchmark's
		c.mu.Lock()
		n := len(c.orders)
		var o chaosOrder
		if n > 0 {
			o = c.orders[r.IntN(n)]
		}
		c.mu.Unlock()
		if n < 5 || r.IntN(4) == 0 {
			c.checkout(r, buyers[r.IntN(len(buyers))])
			continue
		}
		c.act(r, o)
	}
}

func (c *chaos) checkout(r *rand.Rand, buyer string) {
	// A quarter of the buyers pay in euros; half ask for instalments.
	req := &buyerv1.CheckoutRequest{IdempotencyKey: fmt.Sprintf("chaos-%d-%d", c.seed, r.Uint64()), PayInInstalments: r.IntN(2) == 0}
	if r.IntN(4) == 0 {
		req.Currency = "EUR"
	}
	for _, i := range r.Perm(len(c.products))[:1+r.IntN(2)] {
		req.Items = append(req.Items, &buyerv1.CheckoutItem{ProductId: c.products[i].Id, Quantity: int64(1 + r.IntN(2))})
	}
	ctxTok := c.s.token(auth.RoleBuyer, buyer)
	for try := range 4 {
		var resp *buyerv1.CheckoutResponse
		err := c.call("checkout", func(ctx context.Context) error {
			var err error
			resp, err = c.buyer(r).Checkout(withToken(ctx, ctxTok), req)
			return err
		})
		if err == nil {
			c.mu.Lock()
			for _, o := range resp.Orders {
				if !slices.ContainsFunc(c.orders, func(x chaosOrder) bool { return x.id == o.Id }) {
					c.orders = append(c.orders, chaosOrder{id: o.Id, buyer: buyer, seller: o.SellerId})
				}
			}
			c.mu.Unlock()
			return
		}
		if !retryable(err) {
			return
		}
		time.Sleep(time.Duration(200*(try+1)) * time.Millisecond)
	}
}

// act looks an order up and does something its status allows.
func (c *chaos) act(r *rand.Rand, o chaosOrder) {
	buyerTok, sellerTok := c.s.token(auth.RoleBuyer, o.buyer), c.s.token(auth.RoleSeller, o.seller)
	var got *orderv1.Order
	if err := c.call("get", func(ctx context.Context) error {
		resp, err := c.buyer(r).GetOrder(withToken(ctx, buyerTok), &buyerv1.GetOrderRequest{OrderId: o.id})
		if err == nil {
			got = resp.Order
		}
		return err
	}); err != nil {
		return
	}
	b := func(op string, fn func(ctx context.Context, cl buyerv1.BuyerServiceClient) error) {
		_ = c.call(op, func(ctx context.Context) error { return fn(withToken(ctx, buyerTok), c.buyer(r)) })
	}
	sl := func(op string, fn func(ctx context.Context, cl sellerv1.SellerServiceClient) error) {
		_ = c.call(op, func(ctx context.Context) error { return fn(withToken(ctx, sellerTok), c.seller(r)) })
	}
	dice := r.IntN(10)
	// A cancellation request waits for the seller, partly paid or paid.
	if cr := got.CancellationRequest; cr != nil && cr.Status == "OPEN" && (got.Status == partly || got.Status == paidStatus) {
		sl("answer cancellation", func(ctx context.Context, cl sellerv1.SellerServiceClient) error {
			_, err := cl.AnswerCancellation(ctx, &sellerv1.AnswerCancellationRequest{OrderId: o.id, Accept: dice < 5, Note: "packed already"})
			return err
		})
		return
	}
	switch got.Status {
	case pending, partly:
		for _, a := range got.PaymentAttempts {
			if a.Status == aVerify {
				code := "123456"
				if dice == 0 {
					code = "000000"
				}
				b("verify", func(ctx context.Context, cl buyerv1.BuyerServiceClient) error {
					_, err := cl.VerifyPayment(ctx, &buyerv1.VerifyPaymentRequest{OrderId: o.id, AttemptId: a.Id, Code: code})
					return err
				})
				return
			}
		}
		if got.Status == partly {
			// The next part is paid, the buyer asks to cancel, or the part
			// falls due (and may pass its grace).
			switch {
			case dice < 6:
				c.pay(r, o, got, buyerTok)
			case dice < 7:
				b("request cancellation", func(ctx context.Context, cl buyerv1.BuyerServiceClient) error {
					_, err := cl.RequestCancellation(ctx, &buyerv1.RequestCancellationRequest{OrderId: o.id, Reason: "seller_asked_to_cancel"})
					return err
				})
			}
			return
		}
		switch {
		case dice < 6:
			c.pay(r, o, got, buyerTok)
		case dice < 7:
			sl("adjust", func(ctx context.Context, cl sellerv1.SellerServiceClient) error {
				fee := usd(int64(r.IntN(200)))
				_, err := cl.AdjustOrderPrice(ctx, &sellerv1.AdjustOrderPriceRequest{OrderId: o.id, Reason: "discount", ShippingFee: fee})
				return err
			})
		case dice < 8:
			b("cancel", func(ctx context.Context, cl buyerv1.BuyerServiceClient) error {
				_, err := cl.CancelOrder(ctx, &buyerv1.CancelOrderRequest{OrderId: o.id, Reason: "changed my mind"})
				return err
			})
		default: // left unpaid: its window will pass
		}
	case paidStatus:
		switch {
		case dice < 5:
			sl("ship", func(ctx context.Context, cl sellerv1.SellerServiceClient) error {
				_, err := cl.ShipOrder(ctx, &sellerv1.ShipOrderRequest{OrderId: o.id, Carrier: "DHL", TrackingNumber: "JD0001"})
				return err
			})
		case dice < 7:
			b("request cancellation", func(ctx context.Context, cl buyerv1.BuyerServiceClient) error {
				_, err := cl.RequestCancellation(ctx, &buyerv1.RequestCancellationRequest{OrderId: o.id, Reason: "no_longer_needed"})
				return err
			})
		default: // the seller is slow: ship-by may pass
		}
	case orderv1.OrderStatus_ORDER_STATUS_SHIPPED:
		switch {
		case dice < 3:
			b("confirm receipt", func(ctx context.Context, cl buyerv1.BuyerServiceClient) error {
				_, err := cl.ConfirmReceipt(ctx, &buyerv1.ConfirmReceiptRequest{OrderId: o.id})
				return err
			})
		case dice < 6:
			amount := &orderv1.Money{AmountMinor: got.AmountPaid.AmountMinor, Currency: got.AmountPaid.Currency}
			if dice < 5 {
				amount.AmountMinor = 1 + r.Int64N(amount.AmountMinor)
			}
			b("open dispute", func(ctx context.Context, cl buyerv1.BuyerServiceClient) error {
				_, err := cl.OpenDispute(ctx, &buyerv1.OpenDisputeRequest{OrderId: o.id, Reason: "damaged", RefundAmount: amount,
					Evidence: &orderv1.EvidenceInput{Text: "broken"}})
				return err
			})
		}
	case disputed:
		switch d := got.Dispute; {
		case d.Status == "OPEN" && dice < 3:
			sl("accept dispute", func(ctx context.Context, cl sellerv1.SellerServiceClient) error {
				_, err := cl.AnswerDispute(ctx, &sellerv1.AnswerDisputeRequest{OrderId: o.id, Answer: &sellerv1.AnswerDisputeRequest_Accept{Accept: &sellerv1.AcceptDispute{}}})
				return err
			})
		case d.Status == "OPEN" && dice < 6:
			sl("counter-offer", func(ctx context.Context, cl sellerv1.SellerServiceClient) error {
				_, err := cl.AnswerDispute(ctx, &sellerv1.AnswerDisputeRequest{OrderId: o.id, Answer: &sellerv1.AnswerDisputeRequest_CounterOffer{
					CounterOffer: &sellerv1.CounterOffer{Amount: &orderv1.Money{AmountMinor: max(1, d.RequestedAmount.AmountMinor/2),
						Currency: d.RequestedAmount.Currency}, Note: "half"}}})
				return err
			})
		case d.Status == "COUNTER_OFFERED" && dice < 6:
			b("answer counter-offer", func(ctx context.Context, cl buyerv1.BuyerServiceClient) error {
				_, err := cl.AnswerCounterOffer(ctx, &buyerv1.AnswerCounterOfferRequest{OrderId: o.id, Accept: dice < 4})
				return err
			})
		}
	}
}

// pay pays with a random method, retrying with the same key after a
// transient error or a lost race, as a careful client does.
func (c *chaos) pay(r *rand.Rand, o chaosOrder, got *orderv1.Order, tok string) {
	req := &buyerv1.PayOrderRequest{OrderId: o.id, ExpectedTotal: got.AmountDue, IdempotencyKey: fmt.Sprintf("pay-%d", r.Uint64())}
	switch r.IntN(8) {
	case 0:
		acct := payment.WalletApprove
		if r.IntN(3) == 0 {
			acct = payment.WalletReject
		}
		req.Method = &buyerv1.PayOrderRequest_Wallet{Wallet: &buyerv1.Wallet{Account: acct}}
	case 1:
		acct := "DE89370400440532013000"
		if r.IntN(3) == 0 {
			acct = "TESTFAIL0001"
		}
		req.Method = &buyerv1.PayOrderRequest_BankTransfer{BankTransfer: &buyerv1.BankTransfer{AccountNumber: acct}}
	default:
		number := "4242424242424242"
		if r.IntN(2) == 0 {
			number = chaosCards[r.IntN(len(chaosCards))]
		}
		req.Method = &buyerv1.PayOrderRequest_Card{Card: &buyerv1.Card{Number: number, ExpMonth: 12, ExpYear: 2099, Cvc: "123"}}
	}
	// Half the payments meet a message of the seller's while the provider
	// answers: the order's version moves, the payment must not care.
	var talk sync.WaitGroup
	if r.IntN(2) == 0 {
		sellerTok, seller := c.s.token(auth.RoleSeller, o.seller), c.seller(r)
		talk.Add(1)
		go func() {
			defer talk.Done()
			_ = c.call("message during payment", func(ctx context.Context) error {
				_, err := seller.SendOrderMessage(withToken(ctx, sellerTok), &sellerv1.SendOrderMessageRequest{OrderId: o.id,
					Message: &orderv1.MessageInput{Text: "thanks, packing it"}})
				return err
			})
		}()
	}
	defer talk.Wait()
	for try := range 3 {
		err := c.call("pay", func(ctx context.Context) error {
			_, err := c.buyer(r).PayOrder(withToken(ctx, tok), req)
			return err
		})
		if !retryable(err) {
			return
		}
		time.Sleep(time.Duration(300*(try+1)) * time.Millisecond)
	}
}

// settle waits until nothing is left to do: no refund or capture owed, no
// attempt without an answer, no deadline past due or due within two
// seconds (one that fires while check reads would change an order under
// it: a ship-by that fired just after an earlier, laxer settle looked, and
// just before check, showed a cancelled order whose refund was not paid
// yet).
func (c *chaos) settle() {
	var pending string
	defer func() {
		if c.t.Failed() {
			c.t.Logf("left to settle: %s", pending)
		}
	}()
	testenv.Eventually(c.t, 90*time.Second, "the system settles", func() bool {
		pool := checkPool(c.t, c.s.cfg.DatabaseURL)
		defer pool.Close()
		err := pool.QueryRow(context.Background(), `SELECT
			(SELECT count(*) FROM refunds WHERE status IN ('PENDING', 'PROCESSING'))::text || ' refunds, ' ||
			(SELECT count(*) FROM (`+orderPayments+`) a JOIN orders o ON o.id = a.order_id
				WHERE NOT a.captured AND o.status <> 'CANCELLED')::text || ' captures, ' ||
			(SELECT count(*) FROM payment_attempts WHERE status = 'PROCESSING' OR
				status = 'CANCELED' AND provider_ref = '' AND decline_code = '')::text || ' unanswered attempts, ' ||
			(SELECT count(*) FROM order_deadlines WHERE due_at < now() + interval '2 seconds')::text || ' deadlines due, ' ||
			(SELECT count(*) FROM sim_payments WHERE notified_at IS NULL AND settle_at IS NOT NULL)::text || ' provider reports'`).Scan(&pending)
		if err != nil {
			pending = err.Error()
			return false
		}
		return pending == "0 refunds, 0 captures, 0 unanswered attempts, 0 deadlines due, 0 provider reports"
	})
}

// check holds the record and the provider's ledger to the invariants.
func (c *chaos) check() {
	ctx := context.Background()
	pool := checkPool(c.t, c.s.cfg.DatabaseURL)
	defer pool.Close()
	fail := func(format string, args ...any) {
		c.mu.Lock()
		c.bad = append(c.bad, fmt.Sprintf(format, args...))
		c.mu.Unlock()
	}
	// Money, order by order: what the provider holds of the buyer's money
	// is what the order's state implies, counting every payment the order
	// holds (the one that paid it, or each part's).
	rows, err := pool.Query(ctx, `SELECT o.id::text, o.status, o.cancel_reason, o.total_minor, o.quote IS NOT NULL,
		coalesce(sum(pa.amount_minor), 0)::bigint, coalesce(bool_and(pa.captured), false), count(pa.id),
		coalesce(sum((SELECT sum(amount_minor) FROM refunds r WHERE r.attempt_id = pa.id AND r.status = 'SUCCEEDED')), 0)::bigint,
		coalesce(sum(pa.amount_minor) FILTER (WHERE pa.id::text IN (SELECT e.detail->>'attempt_id' FROM order_events e
			WHERE e.order_id = o.id AND e.kind = 'deposit_kept')), 0)::bigint,
		coalesce((SELECT sum(p.amount_minor - coalesce((SELECT sum(x.amount_minor) FROM sim_refunds x WHERE x.payment_ref = p.ref), 0))
			FROM sim_payments p WHERE p.order_id = o.id::text AND p.status IN ('captured', 'succeeded')), 0)::bigint,
		(SELECT count(*) FROM order_events e WHERE e.order_id = o.id AND e.kind = 'cancelled'),
		(SELECT count(*) FROM order_events e WHERE e.order_id = o.id AND e.kind = 'completed'),
		(SELECT count(*) FROM order_events e WHERE e.order_id = o.id AND e.kind = 'paid')
		FROM orders o LEFT JOIN (`+orderPayments+`) pa ON pa.order_id = o.id
		GROUP BY o.id, o.seller_id, o.status, o.cancel_reason, o.total_minor, o.quote`)
	if err != nil {
		c.t.Fatal(err)
	}
	for rows.Next() {
		var id, st, reason string
		var total, paidAmount, payments, refunded, kept, held, cancels, completes, paids int64
		var quoted, captured bool
		if err := rows.Scan(&id, &st, &reason, &total, &quoted, &paidAmount, &captured, &payments, &refunded, &kept, &held,
			&cancels, &completes, &paids); err != nil {
			c.t.Fatal(err)
		}
		want := int64(0)
		switch st {
		case "AWAITING_SHIPMENT", "SHIPPED", "DISPUTED", "COMPLETED":
			want = paidAmount - refunded
			// A foreign buyer's payments are in their currency.
			if payments == 0 || !captured || !quoted && paidAmount != total {
				fail("order %s is %s but its %d payments are captured=%v, %d of %d", id, st, payments, captured, paidAmount, total)
			}
		case "PARTIALLY_PAID":
			want = paidAmount - refunded
			if payments == 0 || refunded != 0 {
				fail("partly paid order %s: %d payments, %d refunded", id, payments, refunded)
			}
		case "CANCELLED":
			want = kept
			if refunded != paidAmount-kept {
				fail("cancelled paid order %s (%s): %d of %d refunded, %d kept", id, reason, refunded, paidAmount, kept)
			}
		}
		if held != want {
			fail("order %s (%s): the provider holds %d, the order implies %d", id, st, held, want)
		}
		if cancels > 1 || completes > 1 || cancels+completes > 1 {
			fail("order %s ended %d times (cancelled %d, completed %d)", id, cancels+completes, cancels, completes)
		}
		if paids > 1 {
			fail("order %s was paid %d times", id, paids)
		}
	}
	if err := rows.Err(); err != nil {
		c.t.Fatal(err)
	}
	// The run paid parts and foreign currencies, or it proved nothing of them.
	var parts, unpaid, kept, foreign int
	if err := pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM order_events WHERE kind = 'part_paid'),
		(SELECT count(*) FROM orders WHERE cancel_reason = 'balance_unpaid'),
		(SELECT count(*) FROM order_events WHERE kind = 'deposit_kept'),
		(SELECT count(*) FROM orders WHERE quote IS NOT NULL AND paid_attempt_id IS NOT NULL)`).Scan(&parts, &unpaid, &kept, &foreign); err != nil {
		c.t.Fatal(err)
	}
	c.t.Logf("%d parts paid, %d orders cancelled for an unpaid part (%d deposits kept), %d foreign-currency orders paid", parts, unpaid, kept, foreign)
	if parts == 0 || foreign == 0 {
		fail("the run paid %d parts and %d foreign-currency orders; it must pay both", parts, foreign)
	}
	// No refund pays back more than its payment took, no authorization is
	// left holding the buyer's money, and no refund failed. (A payment left
	// waiting for a one-time code holds nothing; the provider lets it lapse.)
	var over, held, failed int
	if err := pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM sim_payments p WHERE (SELECT coalesce(sum(amount_minor), 0) FROM sim_refunds x WHERE x.payment_ref = p.ref) > p.amount_minor),
		(SELECT count(*) FROM sim_payments WHERE status IN ('authorized', 'processing')),
		(SELECT count(*) FROM refunds WHERE status = 'FAILED')`).Scan(&over, &held, &failed); err != nil {
		c.t.Fatal(err)
	}
	if over > 0 || held > 0 || failed > 0 {
		fail("%d payments refunded more than they took, %d authorizations left hanging, %d refunds failed", over, held, failed)
		rows, _ := pool.Query(ctx, `SELECT p.key || ' ' || p.status || ' ' || p.scenario || ': order ' || o.status || ' ' || o.cancel_reason ||
			', attempt ' || coalesce(a.status, '?') || ' ' || coalesce(a.decline_code, '') || ', refunds ' ||
			coalesce((SELECT string_agg(r.status || ' ' || r.reason || ' ' || r.last_error, '; ') FROM refunds r WHERE r.attempt_id::text = p.key), '-') ||
			', history ' || (SELECT string_agg(e.kind, ',' ORDER BY e.sequence) FROM order_events e WHERE e.order_id = o.id)
			FROM sim_payments p JOIN orders o ON o.id::text = p.order_id LEFT JOIN payment_attempts a ON a.id::text = p.key
			WHERE p.status IN ('authorized', 'processing')`)
		for rows.Next() {
			var line string
			_ = rows.Scan(&line)
			fail("left hanging: %s", line)
		}
		rows.Close()
	}
	// Deadlines: every order's row holds the deadlines the sweeper's index
	// holds for it, no more, no fewer.
	var apart int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM orders o WHERE EXISTS (
		(SELECT key, value::timestamptz FROM jsonb_each_text(coalesce(o.deadlines, '{}'))
			EXCEPT SELECT kind, due_at FROM order_deadlines d WHERE d.order_id = o.id AND d.seller_id = o.seller_id)
		UNION ALL
		(SELECT kind, due_at FROM order_deadlines d WHERE d.order_id = o.id AND d.seller_id = o.seller_id
			EXCEPT SELECT key, value::timestamptz FROM jsonb_each_text(coalesce(o.deadlines, '{}'))))`).Scan(&apart); err != nil {
		c.t.Fatal(err)
	}
	if apart > 0 {
		fail("%d orders' rows hold other deadlines than the sweeper's index", apart)
	}
	// Stock: what each product started with is on the shelf, in a
	// reservation, or in an order that kept its goods.
	for _, p := range c.products {
		var stock, inOrders, reserved int64
		if err := pool.QueryRow(ctx, `SELECT (SELECT stock FROM products WHERE id = $1::uuid),
			coalesce((SELECT sum((it->>'quantity')::bigint) FROM orders o, jsonb_array_elements(o.items) it
				WHERE it->>'product_id' = $2 AND NOT (o.status = 'CANCELLED' AND o.cancel_reason <> 'refunded_in_full')), 0)::bigint,
			coalesce((SELECT sum(quantity) FROM stock_reservations WHERE product_id = $1::uuid), 0)::bigint`, p.Id, p.Id).Scan(&stock, &inOrders, &reserved); err != nil {
			c.t.Fatal(err)
		}
		if stock+inOrders+reserved != c.initial[p.Id] {
			fail("product %s: %d on the shelf + %d in orders + %d reserved != %d", p.Id, stock, inOrders, reserved, c.initial[p.Id])
		}
	}
}

// orderPayments selects the payment attempts whose money orders hold: the
// one that paid an order, and those that paid its parts.
const orderPayments = `SELECT a.* FROM orders o JOIN payment_attempts a ON a.order_id = o.id
	WHERE a.id = o.paid_attempt_id OR a.id::text IN (SELECT p->>'attempt_id' FROM jsonb_array_elements(coalesce(o.schedule->'parts', '[]')) p
		WHERE p->>'status' = 'PAID')`

// withToken adds a bearer token to a call's context.
func withToken(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

// snapshotTables are the tables the checks read that Citus distributes or
// replicates.
var snapshotTables = []string{"orders", "payment_attempts", "refunds", "order_events", "order_deadlines", "products", "stock_reservations"}

// checkPool opens a pool for the checks' SQL on the database at url. On
// Citus, whose planner refuses their correlated subqueries over several
// distributed tables, the pool's one connection first copies Souk's
// tables into temporary tables of the same names, which the checks then
// read (the system has settled, or the check looks again).
func checkPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		var citus bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')`).Scan(&citus); err != nil || !citus {
			return err
		}
		for _, table := range snapshotTables {
			if _, err := conn.Exec(ctx, "CREATE TEMP TABLE "+table+" AS SELECT * FROM public."+table); err != nil {
				return fmt.Errorf("snapshot %s: %w", table, err)
			}
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}
