package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/testenv"
)

var (
	buildOnce sync.Once
	buyerBin  string
	buildErr  error
)

// buyerBinary builds buyer-svc once per test run.
func buyerBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "souk-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buyerBin = filepath.Join(dir, "buyer-svc")
		out, err := exec.Command("go", "build", "-o", buyerBin, "github.com/souk-dev/souk/buyer-svc").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buyerBin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// process is buyer-svc running as its own process.
type process struct {
	cmd      *exec.Cmd
	grpcAddr string
	exited   chan error
}

// logBuffer collects the output of processes, safe for concurrent writers.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startBuyerProcess runs buyer-svc against the system's database, Redis and
// seller-svc, with extra environment, and waits until it serves.
func (s *system) startBuyerProcess(t *testing.T, logs *logBuffer, extra ...string) *process {
	t.Helper()
	return s.startBuyerProcessAt(t, logs, freeAddr(t), freeAddr(t), extra...)
}

// startBuyerProcessAt is startBuyerProcess on given addresses (a replica
// restarted where it ran before).
func (s *system) startBuyerProcessAt(t *testing.T, logs *logBuffer, grpcAddr, httpAddr string, extra ...string) *process {
	t.Helper()
	p := &process{grpcAddr: grpcAddr, exited: make(chan error, 1)}
	p.cmd = exec.Command(buyerBinary(t))
	p.cmd.Env = append(os.Environ(),
		"SOUK_DATABASE_URL="+s.cfg.DatabaseURL, "SOUK_REDIS_ADDR="+s.cfg.RedisAddr, "SOUK_REDIS_PREFIX="+s.cfg.RedisPrefix,
		"SOUK_ENV="+s.cfg.Env, "SOUK_JWT_SECRET="+s.cfg.JWTSecret, "SOUK_SERVICE_JWT_SECRET="+s.cfg.ServiceJWTSecret, "SOUK_BUYER_GRPC_ADDR="+p.grpcAddr, "SOUK_BUYER_HTTP_ADDR="+httpAddr,
		"SOUK_SELLER_INTERNAL_GRPC_ADDR="+s.sellers[0].InternalGRPCAddr(), "SOUK_BUYER_INTERNAL_HTTP_ADDR=127.0.0.1:0", "SOUK_PROVIDER_WEBHOOK_SECRET="+webhookSecret,
		"SOUK_LOCK_TTL=1s", "SOUK_PROVIDER_TIMEOUT=1s", "SOUK_WORKER_INTERVAL=200ms", "SOUK_SWEEP_INTERVAL=200ms", "SOUK_LOG_LEVEL=debug")
	p.cmd.Env = append(p.cmd.Env, extra...)
	p.cmd.Stdout, p.cmd.Stderr = logs, logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	health := healthpb.NewHealthClient(dial(t, p.grpcAddr))
	testenv.Eventually(t, 20*time.Second, "buyer-svc process serves", func() bool {
		r, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{})
		return err == nil && r.Status == healthpb.HealthCheckResponse_SERVING
	})
	return p
}

// stop sends SIGTERM and waits for a graceful exit.
func (p *process) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("buyer-svc did not exit cleanly: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("buyer-svc did not stop within 20s of SIGTERM")
	}
}

// TestCrashBetweenAuthorizationAndCommit kills buyer-svc (SIGKILL) right
// after the provider approved a payment and before the order recorded it.
// The fault comes from the test, not from the service: a trigger holds the
// write-back of a successful attempt in PostgreSQL while the process is
// killed. A retry with the same key after a restart, or the worker's
// reconciliation without one, completes the payment: one charge, the order
// consistent.
func TestCrashBetweenAuthorizationAndCommit(t *testing.T) {
	s := startSystem(t, 1, nil)
	lamp := s.product("store-x", "Lamp", 1000, 100, 10)
	retried, recovered := s.checkout("alice", 1, lamp)[0], s.checkout("alice", 1, lamp)[0]
	var logs logBuffer
	db := s.db(t)
	ctx := context.Background()
	if _, err := db.Exec(ctx, `CREATE FUNCTION hold_success() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_sleep(3); RETURN NEW; END $$;
		CREATE TRIGGER hold_success BEFORE UPDATE ON payment_attempts
		FOR EACH ROW WHEN (NEW.status = 'SUCCEEDED') EXECUTE FUNCTION hold_success()`); err != nil {
		t.Fatal(err)
	}

	crashOn := func(o *orderv1.Order, key string) {
		t.Helper()
		p := s.startBuyerProcess(t, &logs)
		client := buyerv1.NewBuyerServiceClient(dial(t, p.grpcAddr))
		paid := make(chan error, 1)
		go func() {
			_, err := client.PayOrder(as(s.token(auth.RoleBuyer, "alice")), payCard(o, "4242424242424242", key))
			paid <- err
		}()
		testenv.Eventually(t, 10*time.Second, "the provider authorizes", func() bool {
			var n int
			_ = db.QueryRow(ctx, `SELECT count(*) FROM sim_payments WHERE order_id = $1 AND status = 'authorized'`, o.Id).Scan(&n)
			return n == 1
		})
		if err := p.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-p.exited
		if err := <-paid; status.Code(err) != codes.Unavailable {
			t.Fatalf("pay on a killed service: %v, want UNAVAILABLE", err)
		}
		// The held transaction dies with its connection.
		testenv.Eventually(t, 10*time.Second, "the write-back rolls back", func() bool {
			got := s.order("alice", o.Id)
			return got.Status == pending && got.PaymentAttempts[0].Status == aProc
		})
	}
	crashOn(retried, "crash-key-1")
	crashOn(recovered, "crash-key-2")
	if _, err := db.Exec(ctx, `DROP TRIGGER hold_success ON payment_attempts`); err != nil {
		t.Fatal(err)
	}
	ledger, _ := s.provider.Ledger(ctx)
	if len(ledger) != 2 || ledger[0].Status != "authorized" {
		t.Fatalf("provider ledger after the crashes: %+v, want two authorizations", ledger)
	}

	p := s.startBuyerProcess(t, &logs)
	client := buyerv1.NewBuyerServiceClient(dial(t, p.grpcAddr))
	var resp *buyerv1.PayOrderResponse
	var err error
	// The dead process's lock lives for its TTL (1s); the retry waits for it.
	testenv.Eventually(t, 10*time.Second, "the retry goes through", func() bool {
		resp, err = client.PayOrder(as(s.token(auth.RoleBuyer, "alice")), payCard(retried, "4242424242424242", "crash-key-1"))
		return status.Code(err) != codes.Aborted
	})
	if err != nil || resp.Order.Status != paidStatus || resp.Attempt.Status != aSucceeded {
		t.Fatalf("retry: %v %v", resp, err)
	}
	testenv.Eventually(t, 10*time.Second, "the worker recovers the attempt nobody retried", func() bool {
		return s.order("alice", recovered.Id).Status == paidStatus
	})
	for _, o := range []*orderv1.Order{retried, recovered} {
		got := s.order("alice", o.Id)
		if len(got.PaymentAttempts) != 1 || countKinds(got)["paid"] != 1 {
			t.Fatalf("order %s: %d attempts, history %v", o.Id, len(got.PaymentAttempts), countKinds(got))
		}
		testenv.Eventually(t, 10*time.Second, "the payment is captured", func() bool { return s.capturedFor(t, o.Id) == 1 })
	}
	if ledger, _ := s.provider.Ledger(ctx); len(ledger) != 2 {
		t.Fatalf("provider ledger: %+v, want still two payments", ledger)
	}
	p.stop(t)
}

func payCard(o *orderv1.Order, number, key string) *buyerv1.PayOrderRequest {
	return &buyerv1.PayOrderRequest{OrderId: o.Id, ExpectedTotal: o.Total, IdempotencyKey: key,
		Method: &buyerv1.PayOrderRequest_Card{Card: &buyerv1.Card{Number: number, ExpMonth: 12, ExpYear: 2099, Cvc: "321"}}}
}

// TestCardNumbersAreNeverKept pays with test cards through gRPC and JSON on a
// buyer-svc process logging at debug level, then looks for the numbers and
// CVC in its logs and in a full dump of the database.
func TestCardNumbersAreNeverKept(t *testing.T) {
	s := startSystem(t, 1, nil)
	lamp := s.product("store-x", "Lamp", 1000, 100, 10)
	var logs logBuffer
	p := s.startBuyerProcess(t, &logs)
	client := buyerv1.NewBuyerServiceClient(dial(t, p.grpcAddr))
	tok := s.token(auth.RoleBuyer, "alice")
	numbers := []string{"4000000000009995", "5555555555554444", "4000000000003220"}
	for i, number := range numbers {
		o := s.checkout("alice", 1, lamp)[0]
		if _, err := client.PayOrder(as(tok), payCard(o, number, fmt.Sprintf("scan-key-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	p.stop(t)

	dump, err := exec.Command(pgDump(t), "--data-only", "--inserts", s.cfg.DatabaseURL).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	if !bytes.Contains(dump, []byte("9995")) {
		t.Fatal("the dump does not even hold the last four digits: is it the right database?")
	}
	logged := logs.String()
	if !strings.Contains(logged, "rpc") {
		t.Fatal("the logs hold no request: were they captured?")
	}
	// The numbers, and the CVC as a JSON or SQL string.
	for _, secret := range append(numbers, `"321"`, `'321'`) {
		if bytes.Contains(dump, []byte(secret)) {
			t.Errorf("the database dump contains %s", secret)
		}
		if strings.Contains(logged, secret) {
			t.Errorf("the logs contain %s", secret)
		}
	}
}

// pgDump finds pg_dump next to the PostgreSQL the tests run on.
func pgDump(t *testing.T) string {
	t.Helper()
	if path, err := exec.LookPath("pg_dump"); err == nil {
		return path
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_dump")
	if len(matches) == 0 {
		t.Fatal("pg_dump not found")
	}
	return matches[len(matches)-1]
}
