package payment

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/souk-dev/souk/internal/order"
)

// TestCard is a card number the simulated provider answers in a fixed way.
type TestCard struct {
	Number string
	// Scenario is "approve", a decline code (processing_error among them),
	// "verification_required", "slow_approve", "slow_decline" or
	// "answer_lost" (approved, but the answer never reaches the caller),
	// "capture_answer_lost" (approved; the first capture takes the money
	// but its answer never reaches the caller) or "slow_authorize" (being
	// checked, then authorized but not captured, as a risk review does).
	Scenario string
}

// TestCards are the simulated provider's documented cards (see README).
// Any other number is declined with do_not_honor.
var TestCards = []TestCard{
	{"4242424242424242", "approve"},
	{"5555555555554444", "approve"},
	{"2200000000000004", "approve"},
	{"4000000000000002", "do_not_honor"},
	{"4000000000000127", "incorrect_cvc"},
	{"4000000000009995", "insufficient_funds"},
	{"4000000000000069", "expired_card"},
	{"4000000000009987", "bank_restriction"},
	{"4000000000000119", "processing_error"},
	{"4000000000003220", "verification_required"},
	{"4000000000000077", "slow_approve"},
	{"4000000000000341", "slow_decline"},
	{"4000000000002014", "answer_lost"},
	{"4000000000000259", "capture_answer_lost"},
	{"4000000000000358", "slow_authorize"},
}

// The simulated provider's test wallet and bank accounts (see README).
const (
	// WalletApprove approves at once; any other wallet account rejects.
	WalletApprove = "approve@wallet.test"
	// WalletReject rejects (wallet_rejected).
	WalletReject = "reject@wallet.test"
	// PayLaterDecline starts pay-later accounts the provider's credit check
	// refuses (pay_later_declined); any other account is approved for up
	// to PayLaterLimit minor units (above it: pay_later_limit), paid to
	// Souk at once.
	PayLaterDecline = "decline"
	PayLaterLimit   = 100_000
	// BankFailPrefix starts bank accounts whose transfer fails
	// (transfer_failed) once settled; any other account's transfer succeeds.
	BankFailPrefix = "TESTFAIL"
	// VerificationCode is the one-time code of verification_required cards.
	VerificationCode = "123456"
)

// SimulatedConfig tunes the simulated provider.
type SimulatedConfig struct {
	// SettleAfter is how long asynchronous payments (slow cards, bank
	// transfers) stay processing before the provider decides.
	SettleAfter time.Duration
	// CallbackURL is where the provider reports asynchronous outcomes.
	CallbackURL string
	// WebhookSecret signs the reports.
	WebhookSecret []byte
	// PollInterval is how often it looks for payments to settle.
	PollInterval time.Duration
}

// Simulated is a payment provider in test mode. Its answers depend only on
// the test card number or account; it pays each idempotency key once; its
// ledger lives in the sim_* tables, so it outlives a restart of the
// service that calls it; and it reports asynchronous outcomes to Souk as
// signed events, retrying until Souk acknowledges them.
type Simulated struct {
	pool   *pgxpool.Pool
	cfg    SimulatedConfig
	now    func() time.Time
	log    *slog.Logger
	client *http.Client
	outage atomic.Bool
}

// NewSimulated returns a simulated provider keeping its ledger in pool.
func NewSimulated(pool *pgxpool.Pool, cfg SimulatedConfig, now func() time.Time, log *slog.Logger) *Simulated {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 200 * time.Millisecond
	}
	return &Simulated{pool: pool, cfg: cfg, now: now, log: log, client: &http.Client{Timeout: 10 * time.Second}}
}

// SetCallbackURL sets where asynchronous outcomes are reported (a service
// that listens on :0 knows its address only once started).
func (s *Simulated) SetCallbackURL(url string) { s.cfg.CallbackURL = url }

// SetOutage makes every call fail with ErrTransient while on, as a provider
// that is down.
func (s *Simulated) SetOutage(on bool) { s.outage.Store(on) }

func (s *Simulated) down() error {
	if s.outage.Load() {
		return fmt.Errorf("%w: simulated outage", ErrTransient)
	}
	return nil
}

// scenario decides what the request's test card or account does.
func (s *Simulated) scenario(req PaymentRequest) string {
	switch req.Method {
	case order.MethodWallet:
		if req.Account == WalletApprove {
			return "wallet_approve"
		}
		return "wallet_rejected"
	case order.MethodPayLater:
		switch {
		case strings.HasPrefix(req.Account, PayLaterDecline):
			return "pay_later_declined"
		case req.Amount.Amount > PayLaterLimit:
			return "pay_later_limit"
		}
		return "pay_later_approve"
	case order.MethodBankTransfer:
		if strings.HasPrefix(req.Account, BankFailPrefix) {
			return "bank_fail"
		}
		return "bank_confirm"
	}
	for _, tc := range TestCards {
		if tc.Number == req.Card.Number {
			now := s.now()
			if tc.Scenario == "approve" && (req.Card.ExpYear < now.Year() || req.Card.ExpYear == now.Year() && req.Card.ExpMonth < int(now.Month())) {
				return "expired_card"
			}
			return tc.Scenario
		}
	}
	return "do_not_honor"
}

// simPayment is a row of the provider's ledger.
type simPayment struct {
	ref, status, declineCode string
}

func (p simPayment) result() order.Result {
	r := order.Result{ProviderRef: p.ref}
	switch p.status {
	case "authorized":
		r.Kind = order.ResultSucceeded
	case "captured", "succeeded":
		r.Kind, r.Captured = order.ResultSucceeded, true
	case "requires_verification":
		r.Kind = order.ResultRequiresVerification
	case "processing":
		r.Kind = order.ResultProcessing
	case "voided":
		r.Kind, r.Decline = order.ResultFailed, order.DeclineVoided
	case "failed":
		r.Kind, r.Decline = order.ResultFailed, DeclineFor(p.declineCode)
	default:
		r.Kind, r.Decline = order.ResultDeclined, DeclineFor(p.declineCode)
	}
	return r
}

func (s *Simulated) lookup(ctx context.Context, q pgx.Tx, key string) (simPayment, bool, error) {
	var p simPayment
	err := q.QueryRow(ctx, `SELECT ref, status, decline_code FROM sim_payments WHERE key = $1`, key).Scan(&p.ref, &p.status, &p.declineCode)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, false, nil
	}
	return p, err == nil, err
}

// Pay answers as the test card or account says; a key seen before gets its
// first answer again.
func (s *Simulated) Pay(ctx context.Context, req PaymentRequest) (order.Result, error) {
	if err := s.down(); err != nil {
		return order.Result{}, err
	}
	scenario := s.scenario(req)
	var out simPayment
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		p, found, err := s.lookup(ctx, tx, req.Key)
		if err != nil || found {
			out = p
			return err
		}
		now := s.now()
		p = simPayment{ref: "pay_" + uuid.NewString()}
		var settleAt *time.Time
		switch scenario {
		case "approve", "answer_lost", "capture_answer_lost":
			p.status = "authorized"
		case "wallet_approve", "pay_later_approve":
			p.status = "captured"
		case "verification_required":
			p.status = "requires_verification"
		case "slow_approve", "slow_decline", "bank_confirm", "bank_fail", "slow_authorize":
			p.status = "processing"
			at := now.Add(s.cfg.SettleAfter)
			settleAt = &at
		case "processing_error":
			p.status, p.declineCode = "failed", scenario
		default:
			p.status, p.declineCode = "declined", scenario
		}
		_, err = tx.Exec(ctx, `INSERT INTO sim_payments (key, ref, order_id, method, amount_minor, currency, card_brand,
			card_last4, account, scenario, status, decline_code, settle_at, created_at, updated_at)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$14)`,
			req.Key, p.ref, req.OrderID, string(req.Method), req.Amount.Amount, req.Amount.Currency, brandOf(req),
			last4Of(req), MaskAccount(req.Account), scenario, p.status, p.declineCode, settleAt, now)
		out = p
		return err
	})
	if err != nil {
		return order.Result{}, fmt.Errorf("%w: %w", ErrTransient, err)
	}
	if scenario == "answer_lost" {
		return order.Result{}, fmt.Errorf("%w: the connection timed out before the answer arrived", ErrTransient)
	}
	return out.result(), nil
}

func brandOf(req PaymentRequest) string {
	if req.Method != order.MethodCard {
		return ""
	}
	return Brand(req.Card.Number)
}

func last4Of(req PaymentRequest) string {
	if req.Method != order.MethodCard {
		return ""
	}
	return Last4(req.Card.Number)
}

// Verify completes a payment waiting for its code (VerificationCode).
func (s *Simulated) Verify(ctx context.Context, key, code string) (order.Result, error) {
	if err := s.down(); err != nil {
		return order.Result{}, err
	}
	var out simPayment
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		p, found, err := s.lookup(ctx, tx, key)
		switch {
		case err != nil:
			return err
		case !found:
			return fmt.Errorf("%w: no payment %s", ErrRefused, key)
		case p.status != "requires_verification":
			out = p
			return nil
		case code != VerificationCode:
			return ErrWrongCode
		}
		p.status = "authorized"
		out = p
		_, err = tx.Exec(ctx, `UPDATE sim_payments SET status = 'authorized', updated_at = $2 WHERE key = $1`, key, s.now())
		return err
	})
	if errors.Is(err, ErrWrongCode) || errors.Is(err, ErrRefused) {
		return order.Result{}, err
	} else if err != nil {
		return order.Result{}, fmt.Errorf("%w: %w", ErrTransient, err)
	}
	return out.result(), nil
}

// Lookup returns the answer given to key.
func (s *Simulated) Lookup(ctx context.Context, key string) (order.Result, bool, error) {
	if err := s.down(); err != nil {
		return order.Result{}, false, err
	}
	var out simPayment
	var found bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		out, found, err = s.lookup(ctx, tx, key)
		return err
	})
	if err != nil {
		return order.Result{}, false, fmt.Errorf("%w: %w", ErrTransient, err)
	}
	return out.result(), found, nil
}

// transition moves a payment from one of the statuses in from to to.
func (s *Simulated) transition(ctx context.Context, ref, to string, already string, from ...string) error {
	if err := s.down(); err != nil {
		return err
	}
	var status string
	err := s.pool.QueryRow(ctx, `SELECT status FROM sim_payments WHERE ref = $1`, ref).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: no payment %s", ErrRefused, ref)
	} else if err != nil {
		return fmt.Errorf("%w: %w", ErrTransient, err)
	}
	if status == already {
		return nil
	}
	tag, err := s.pool.Exec(ctx, `UPDATE sim_payments SET status = $2, updated_at = $4 WHERE ref = $1 AND status = ANY($3)`,
		ref, to, from, s.now())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrTransient, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: payment %s is %s", ErrRefused, ref, status)
	}
	return nil
}

// Capture takes an authorized payment's money. As a real provider does,
// it refuses a second capture ("already captured"): a caller whose first
// capture's answer was lost must look the payment up to learn that it holds
// the money.
func (s *Simulated) Capture(ctx context.Context, ref string) error {
	if err := s.down(); err != nil {
		return err
	}
	var scenario string
	err := s.pool.QueryRow(ctx, `UPDATE sim_payments SET status = 'captured', updated_at = $2
		WHERE ref = $1 AND status = 'authorized' RETURNING scenario`, ref, s.now()).Scan(&scenario)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		var status string
		err := s.pool.QueryRow(ctx, `SELECT status FROM sim_payments WHERE ref = $1`, ref).Scan(&status)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("%w: no payment %s", ErrRefused, ref)
		case err != nil:
			return fmt.Errorf("%w: %w", ErrTransient, err)
		case status == "captured" || status == "succeeded":
			return fmt.Errorf("%w: payment %s is already captured", ErrRefused, ref)
		}
		return fmt.Errorf("%w: payment %s is %s", ErrRefused, ref, status)
	case err != nil:
		return fmt.Errorf("%w: %w", ErrTransient, err)
	case scenario == "capture_answer_lost":
		return fmt.Errorf("%w: the connection was reset before the capture's answer arrived", ErrTransient)
	}
	return nil
}

// Void cancels an authorization.
func (s *Simulated) Void(ctx context.Context, ref string) error {
	return s.transition(ctx, ref, "voided", "voided", "authorized", "requires_verification")
}

// Refund pays back up to what was taken; a key seen before returns its refund.
func (s *Simulated) Refund(ctx context.Context, req RefundRequest) (string, error) {
	if err := s.down(); err != nil {
		return "", err
	}
	var ref string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT ref FROM sim_refunds WHERE key = $1`, req.Key).Scan(&ref); err == nil {
			return nil
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		var status string
		var paid, refunded int64
		err := tx.QueryRow(ctx, `SELECT status, amount_minor, coalesce((SELECT sum(amount_minor) FROM sim_refunds r
			WHERE r.payment_ref = p.ref), 0) FROM sim_payments p WHERE ref = $1 FOR UPDATE`, req.PaymentRef).Scan(&status, &paid, &refunded)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: no payment %s", ErrRefused, req.PaymentRef)
		} else if err != nil {
			return err
		}
		if status != "captured" && status != "succeeded" {
			return fmt.Errorf("%w: payment %s is %s", ErrRefused, req.PaymentRef, status)
		}
		if refunded+req.Amount.Amount > paid {
			return fmt.Errorf("%w: refunds would exceed the %d paid", ErrRefused, paid)
		}
		ref = "re_" + uuid.NewString()
		_, err = tx.Exec(ctx, `INSERT INTO sim_refunds (key, ref, payment_ref, amount_minor, currency, created_at)
			VALUES ($1,$2,$3,$4,$5,$6)`, req.Key, ref, req.PaymentRef, req.Amount.Amount, req.Amount.Currency, s.now())
		return err
	})
	if errors.Is(err, ErrRefused) {
		return "", err
	} else if err != nil {
		return "", fmt.Errorf("%w: %w", ErrTransient, err)
	}
	return ref, nil
}

// Run settles asynchronous payments when they are due and reports their
// outcomes, until ctx ends. Replicas share the work (SKIP LOCKED); a report
// is retried until acknowledged, and reporting twice is harmless.
func (s *Simulated) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		if err := s.settle(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "simulated provider: settle", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Simulated) settle(ctx context.Context) error {
	if s.outage.Load() || s.cfg.CallbackURL == "" {
		return nil
	}
	var events []Event
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT key, ref, order_id, scenario, status, decline_code FROM sim_payments
			WHERE notified_at IS NULL AND settle_at <= $1 ORDER BY settle_at LIMIT 20 FOR UPDATE SKIP LOCKED`, s.now())
		type due struct{ Key, Ref, OrderID, Scenario, Status, Code string }
		dues, err := pgx.CollectRows(rows, pgx.RowToStructByPos[due])
		if err != nil {
			return err
		}
		for _, d := range dues {
			if d.Status == "processing" {
				switch d.Scenario {
				case "slow_approve", "bank_confirm":
					d.Status = "succeeded"
				case "slow_authorize":
					d.Status = "authorized"
				case "slow_decline":
					d.Status, d.Code = "declined", "do_not_honor"
				default:
					d.Status, d.Code = "failed", "transfer_failed"
				}
				if _, err := tx.Exec(ctx, `UPDATE sim_payments SET status = $2, decline_code = $3, updated_at = $4 WHERE key = $1`,
					d.Key, d.Status, d.Code, s.now()); err != nil {
					return err
				}
			}
			events = append(events, Event{ID: eventID(d.Key, d.Status), Type: eventTypes[d.Status], Created: s.now().Unix(),
				Data: EventData{OrderID: d.OrderID, AttemptID: d.Key, ProviderRef: d.Ref, DeclineCode: d.Code}})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, ev := range events {
		if err := s.deliver(ctx, ev); err != nil {
			s.log.WarnContext(ctx, "simulated provider: report event", "attempt_id", ev.Data.AttemptID, "err", err)
			continue
		}
		if _, err := s.pool.Exec(ctx, `UPDATE sim_payments SET notified_at = $2 WHERE key = $1`, ev.Data.AttemptID, s.now()); err != nil {
			return err
		}
	}
	return nil
}

// eventTypes names the event of each settled status.
var eventTypes = map[string]EventType{
	"succeeded": EventCaptured, "authorized": EventAuthorized, "declined": EventDeclined, "failed": EventFailed,
}

// eventID names the event of a payment's settled status: the same event
// keeps its id however often it is delivered.
func eventID(key, status string) string {
	sum := sha256.Sum256([]byte(key + "." + status))
	return "evt_" + hex.EncodeToString(sum[:12])
}

func (s *Simulated) deliver(ctx context.Context, ev Event) error {
	body, _ := json.Marshal(ev)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.CallbackURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(s.cfg.WebhookSecret, body, s.now()))
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("callback answered %s", resp.Status)
	}
	return nil
}

// LedgerPayment is a payment in the simulated provider's ledger, for tests.
type LedgerPayment struct {
	Key, Ref, OrderID, Status string
	Amount                    int64
	Refunded                  int64
	Refunds                   int
}

// Ledger returns every payment the simulated provider holds, for tests and demos.
func (s *Simulated) Ledger(ctx context.Context) ([]LedgerPayment, error) {
	rows, _ := s.pool.Query(ctx, `SELECT key, ref, order_id, status, amount_minor,
		coalesce((SELECT sum(amount_minor) FROM sim_refunds r WHERE r.payment_ref = p.ref), 0)::bigint,
		(SELECT count(*) FROM sim_refunds r WHERE r.payment_ref = p.ref)::int
		FROM sim_payments p ORDER BY created_at`)
	return pgx.CollectRows(rows, pgx.RowToStructByPos[LedgerPayment])
}
