package postgres

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/souk-dev/souk/internal/order"
)

// change is one order's write: the domain object after its change, the
// order as it was read (old; empty for a new order) and as it now stands
// (now), at the version it was read.
type change struct {
	o        *order.Order
	old, now order.Stored
}

// deadlineRow and eventRow are rows of order_deadlines and order_events
// in the same JSON form.
type deadlineRow struct {
	OrderID  string    `json:"order_id"`
	Kind     string    `json:"kind"`
	DueAt    time.Time `json:"due_at"`
	SellerID string    `json:"seller_id"`
}

type eventRow struct {
	OrderID      string                 `json:"order_id"`
	Sequence     int64                  `json:"sequence"`
	Kind         string                 `json:"kind"`
	Actor        string                 `json:"actor"`
	OccurredAt   time.Time              `json:"occurred_at"`
	Note         string                 `json:"note"`
	Adjustment   *order.PriceAdjustment `json:"adjustment"`
	Detail       *order.Detail          `json:"detail"`
	StatusAfter  string                 `json:"status_after"`
	VersionAfter int64                  `json:"version_after"`
	SellerID     string                 `json:"seller_id"`
}

func jsonParam(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Every value here is made of plain fields and strings.
		panic(fmt.Sprintf("encode rows: %v", err))
	}
	return b
}

// queueUpdates queues the write-back of changed orders: one statement for
// the order rows (aborting the transaction as a serialization failure
// unless every one was still at the version read), then queueDetails.
func queueUpdates(b *pgx.Batch, cs []change) {
	// An order that moved on since it was read aborts the transaction
	// (souk_expect_changed): the writes queued after it must not commit.
	var sellers []string
	for _, c := range cs {
		if !slices.Contains(sellers, c.now.SellerID) {
			sellers = append(sellers, c.now.SellerID)
		}
	}
	match, stores := oneOrAny(3, "text", sellers)
	b.Queue(updateOrdersSQL[match], updateRows(cs), len(cs), stores)
	queueDetails(b, cs)
}

// queueDetails queues the writes of what changes did besides the order
// rows, in a fixed number of statements for the common parts: deadlines
// (of the orders whose deadlines changed), new history events and the
// stock given back (one statement per product, whatever the number of
// orders); payment attempts, refunds and messages, rare in a batch, a
// statement each. Events record the version the change gives its order.
func queueDetails(b *pgx.Batch, cs []change) {
	var (
		replaced  []orderKey
		deadlines []deadlineRow
		events    []eventRow
		restock   = map[productKey]int64{}
	)
	for _, c := range cs {
		s, old := c.now, c.old
		if !sameDeadlines(old.Deadlines, s.Deadlines) {
			if old.ID != "" {
				replaced = append(replaced, orderKey{s.ID, s.SellerID})
			}
			for kind, due := range s.Deadlines {
				deadlines = append(deadlines, deadlineRow{OrderID: s.ID, Kind: string(kind), DueAt: pgTime(due), SellerID: s.SellerID})
			}
		}
		for _, e := range c.o.NewEvents() {
			events = append(events, eventRow{OrderID: s.ID, Sequence: e.Sequence, Kind: e.Kind, Actor: e.Actor, OccurredAt: pgTime(e.OccurredAt),
				Note: e.Note, Adjustment: e.Adjustment, Detail: e.Detail, StatusAfter: string(s.Status), VersionAfter: s.Version + 1,
				SellerID: s.SellerID})
		}
		if old.ID != "" {
			queueHoldChanges(b, s, old)
		}
		queueAttempts(b, s, old)
		queueRefunds(b, s, old)
		queueMessages(b, c.o)
		if c.o.ReleasesStock() {
			for _, it := range s.Items {
				restock[productKey{it.ProductID, s.SellerID}] += it.Quantity
			}
		}
	}
	if len(replaced) > 0 {
		match, args := keysIn("order_id", replaced)
		b.Queue(`DELETE FROM order_deadlines WHERE `+match, args...)
	}
	if len(deadlines) > 0 {
		b.Queue(`INSERT INTO order_deadlines (order_id, kind, due_at, seller_id)
			SELECT order_id, kind, due_at, seller_id FROM jsonb_to_recordset($1::jsonb)
			AS v(order_id uuid, kind text, due_at timestamptz, seller_id text)`, jsonParam(deadlines))
	}
	if len(events) > 0 {
		// Each event joins the relay's queue of events without a stream
		// place, in the same statement.
		b.Queue(`WITH e AS (INSERT INTO order_events (order_id, sequence, kind, actor, occurred_at, note, adjustment, detail, status_after,
				version_after, seller_id)
			SELECT order_id, sequence, kind, actor, occurred_at, note, nullif(adjustment, 'null'), nullif(detail, 'null'), status_after,
				version_after, seller_id
			FROM jsonb_to_recordset($1::jsonb) AS v(order_id uuid, sequence bigint, kind text, actor text, occurred_at timestamptz,
				note text, adjustment jsonb, detail jsonb, status_after text, version_after bigint, seller_id text)
			RETURNING id, occurred_at)
			INSERT INTO event_queue (event_id, occurred_at) SELECT id, occurred_at FROM e`, jsonParam(events))
	}
	if len(restock) > 0 {
		queueRestock(b, restock)
	}
}

// queueAttempts queues the insert of new payment attempts and the
// write-back of changed ones.
func queueAttempts(b *pgx.Batch, s, old order.Stored) {
	for _, a := range s.Attempts {
		if slices.Contains(old.Attempts, a) {
			continue
		}
		b.Queue(`INSERT INTO payment_attempts (id, order_id, idempotency_key, fingerprint, status,
			amount_minor, currency, method, card_brand, card_last4, account, decline_code, decline_message,
			decline_advice, decline_retryable, provider_ref, verification_failures, captured, created_at, updated_at,
			capture_tries, next_capture_at, seller_id, recheck_at)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24)
			ON CONFLICT (id, seller_id) DO UPDATE SET status = EXCLUDED.status, decline_code = EXCLUDED.decline_code,
			decline_message = EXCLUDED.decline_message, decline_advice = EXCLUDED.decline_advice,
			decline_retryable = EXCLUDED.decline_retryable, provider_ref = EXCLUDED.provider_ref,
			verification_failures = EXCLUDED.verification_failures, captured = EXCLUDED.captured,
			updated_at = EXCLUDED.updated_at, capture_tries = EXCLUDED.capture_tries,
			next_capture_at = EXCLUDED.next_capture_at, recheck_at = EXCLUDED.recheck_at`,
			a.ID, s.ID, a.IdempotencyKey, a.Fingerprint, string(a.Status), a.Amount.Amount, a.Amount.Currency,
			string(a.Method), a.CardBrand, a.CardLast4, a.Account, a.Decline.Code, a.Decline.Message, a.Decline.Advice,
			a.Decline.Retryable, a.ProviderRef, a.VerificationFailures, a.Captured, a.CreatedAt, a.UpdatedAt,
			a.CaptureTries, nullTime(a.NextCaptureAt), s.SellerID, nullTime(a.RecheckAt))
	}
}
