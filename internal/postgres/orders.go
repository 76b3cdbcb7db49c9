package postgres

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/souk-dev/souk/internal/order"
)

const orderColumns = `id, checkout_id, buyer_id, seller_id, status, currency, items, shipping_fee_minor,
	handling_days, version, created_at, updated_at, cancel_reason, last_decline_code, last_decline_message, shipment,
	last_decline_advice, last_decline_retryable, cancelled_by, cancellation, dispute, payment_due_at,
	protection_days, discount_minor, offer, coalesce(paid_attempt_id::text, '')`

// itemJSON is how an order's items are kept in its items column.
type itemJSON struct {
	ProductID string `json:"product_id"`
	Title     string `json:"title"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
}

// shipmentJSON is how a shipment is kept in the shipment column.
type shipmentJSON struct {
	Carrier        string    `json:"carrier"`
	TrackingNumber string    `json:"tracking_number"`
	TrackingURL    string    `json:"tracking_url"`
	ShippedAt      time.Time `json:"shipped_at"`
}

func scanOrder(row pgx.Row) (order.Stored, error) {
	var (
		s           order.Stored
		status      string
		cancelledBy string
		items       []itemJSON
		shipment    *shipmentJSON
	)
	err := row.Scan(&s.ID, &s.CheckoutID, &s.BuyerID, &s.SellerID, &status, &s.Currency, &items, &s.ShippingFee,
		&s.HandlingDays, &s.Version, &s.CreatedAt, &s.UpdatedAt, &s.CancelReason, &s.LastDecline.Code,
		&s.LastDecline.Message, &shipment, &s.LastDecline.Advice, &s.LastDecline.Retryable, &cancelledBy,
		&s.Cancellation, &s.Dispute, &s.PaymentDueAt, &s.ProtectionDays, &s.Discount, &s.Offer, &s.PaidAttemptID)
	s.CancelledBy = order.Party(cancelledBy)
	if err != nil {
		return s, err
	}
	s.Status = order.Status(status)
	for _, it := range items {
		s.Items = append(s.Items, order.Item(it))
	}
	if shipment != nil {
		sh := order.Shipment(*shipment)
		s.Shipment = &sh
	}
	return s, nil
}

// querier is what both a pool and a transaction offer.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// load reads an order with its deadlines, payment attempts, refunds and
// history in one round trip; lock ("", forUpdate or forUpdateSkipLocked)
// locks the order's row first.
func load(ctx context.Context, q querier, id string, lock string) (order.Stored, error) {
	b := &pgx.Batch{}
	s, found := queueLoad(b, id, lock)
	if err := q.SendBatch(ctx, b).Close(); err != nil {
		return *s, fmt.Errorf("load order: %w", err)
	}
	if !*found {
		return *s, fmt.Errorf("%w: order %s", order.ErrNotFound, id)
	}
	return *s, nil
}

// Row locks load can take.
const (
	forUpdate           = " FOR UPDATE"
	forUpdateSkipLocked = " FOR UPDATE SKIP LOCKED"
)

// queueLoad queues the reads of one order into b; once b is sent, *found
// says whether the order exists and *s holds it.
func queueLoad(b *pgx.Batch, id string, lock string) (*order.Stored, *bool) {
	s, found := &order.Stored{}, new(bool)
	b.Queue(`SELECT `+orderColumns+` FROM orders WHERE id = $1`+lock, id).QueryRow(func(row pgx.Row) error {
		var err error
		if *s, err = scanOrder(row); isNoRows(err) {
			return nil
		}
		*found = err == nil
		return err
	})
	b.Queue(`SELECT kind, due_at FROM order_deadlines WHERE order_id = $1`, id).Query(func(rows pgx.Rows) error {
		s.Deadlines = map[order.DeadlineKind]time.Time{}
		var kind string
		var due time.Time
		_, err := pgx.ForEachRow(rows, []any{&kind, &due}, func() error { s.Deadlines[order.DeadlineKind(kind)] = due; return nil })
		return err
	})
	b.Queue(`SELECT id, idempotency_key, fingerprint, status, amount_minor, currency, method,
		card_brand, card_last4, account, decline_code, decline_message, decline_advice, decline_retryable,
		provider_ref, verification_failures, captured, created_at, updated_at, capture_tries,
		coalesce(next_capture_at, 'epoch')
		FROM payment_attempts WHERE order_id = $1 ORDER BY created_at, id`, id).Query(func(rows pgx.Rows) error {
		var err error
		s.Attempts, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (order.Attempt, error) {
			var a order.Attempt
			var status, method string
			err := r.Scan(&a.ID, &a.IdempotencyKey, &a.Fingerprint, &status, &a.Amount.Amount, &a.Amount.Currency,
				&method, &a.CardBrand, &a.CardLast4, &a.Account, &a.Decline.Code, &a.Decline.Message, &a.Decline.Advice,
				&a.Decline.Retryable, &a.ProviderRef, &a.VerificationFailures, &a.Captured, &a.CreatedAt, &a.UpdatedAt,
				&a.CaptureTries, &a.NextCaptureAt)
			a.Status, a.Method = order.AttemptStatus(status), order.Method(method)
			if a.NextCaptureAt.Equal(time.Unix(0, 0)) {
				a.NextCaptureAt = time.Time{}
			}
			return a, err
		})
		return err
	})
	b.Queue(`SELECT `+refundColumns+` FROM refunds WHERE order_id = $1 ORDER BY created_at, id`, id).Query(func(rows pgx.Rows) error {
		var err error
		s.Refunds, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (order.Refund, error) { return scanRefund(r) })
		return err
	})
	b.Queue(`SELECT sequence, kind, actor, occurred_at, note, adjustment, detail
		FROM order_events WHERE order_id = $1 ORDER BY sequence`, id).Query(func(rows pgx.Rows) error {
		var err error
		s.History, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (order.Event, error) {
			var e order.Event
			err := r.Scan(&e.Sequence, &e.Kind, &e.Actor, &e.OccurredAt, &e.Note, &e.Adjustment, &e.Detail)
			return e, err
		})
		return err
	})
	return s, found
}

func loadDeadlinesOf(ctx context.Context, q querier, ids []string) (map[string]map[order.DeadlineKind]time.Time, error) {
	rows, err := q.Query(ctx, `SELECT order_id, kind, due_at FROM order_deadlines WHERE order_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("load deadlines: %w", err)
	}
	defer rows.Close()
	out := make(map[string]map[order.DeadlineKind]time.Time, len(ids))
	for rows.Next() {
		var id, kind string
		var due time.Time
		if err := rows.Scan(&id, &kind, &due); err != nil {
			return nil, fmt.Errorf("load deadlines: %w", err)
		}
		if out[id] == nil {
			out[id] = map[order.DeadlineKind]time.Time{}
		}
		out[id][order.DeadlineKind(kind)] = due
	}
	return out, rows.Err()
}

// Get returns an order with its deadlines, payment attempts, refunds and history.
func (db *DB) Get(ctx context.Context, id string) (*order.Order, error) {
	s, err := read(ctx, func() (order.Stored, error) { return load(ctx, db.pool, id, "") })
	if err != nil {
		return nil, err
	}
	return order.UnmarshalFromDatabase(s), nil
}

// Parties returns the buyer and the seller of an order, for an ownership
// check that needs nothing else (before taking the order's lock).
func (db *DB) Parties(ctx context.Context, id string) (buyerID, sellerID string, err error) {
	type parties struct{ buyer, seller string }
	p, err := read(ctx, func() (parties, error) {
		var p parties
		err := db.pool.QueryRow(ctx, `SELECT buyer_id, seller_id FROM orders WHERE id = $1`, id).Scan(&p.buyer, &p.seller)
		return p, err
	})
	if isNoRows(err) {
		return "", "", fmt.Errorf("%w: order %s", order.ErrNotFound, id)
	} else if err != nil {
		return "", "", fmt.Errorf("order parties: %w", err)
	}
	return p.buyer, p.seller, nil
}

// getMany reads whole orders in one round trip, in the order of ids,
// leaving out any that do not exist.
func (db *DB) getMany(ctx context.Context, ids []string) ([]*order.Order, error) {
	b := &pgx.Batch{}
	type loaded struct {
		s     *order.Stored
		found *bool
	}
	ls := make([]loaded, len(ids))
	for i, id := range ids {
		ls[i].s, ls[i].found = queueLoad(b, id, "")
	}
	if len(ids) > 0 {
		if err := db.pool.SendBatch(ctx, b).Close(); err != nil {
			return nil, fmt.Errorf("load orders: %w", err)
		}
	}
	out := make([]*order.Order, 0, len(ids))
	for _, l := range ls {
		if *l.found {
			out = append(out, order.UnmarshalFromDatabase(*l.s))
		}
	}
	return out, nil
}

// ErrCheckoutExists means a checkout's orders were stored by an earlier
// (or concurrent) request with the same checkout id.
var ErrCheckoutExists = fmt.Errorf("%w: checkout exists", order.ErrConflict)

// CheckoutOrders returns a buyer's orders of one checkout, oldest first.
func (db *DB) CheckoutOrders(ctx context.Context, buyerID, checkoutID string) ([]*order.Order, error) {
	ids, err := read(ctx, func() ([]string, error) {
		rows, _ := db.pool.Query(ctx, `SELECT id::text FROM orders WHERE checkout_id = $1 AND buyer_id = $2
			ORDER BY created_at, id`, checkoutID, buyerID)
		return pgx.CollectRows(rows, pgx.RowTo[string])
	})
	if err != nil {
		return nil, fmt.Errorf("checkout orders: %w", err)
	}
	return db.getMany(ctx, ids)
}

// CreateOrders stores new orders, all or none, in one round trip, and
// deletes their checkout's stock reservation: from now on the orders'
// items say what a cancellation gives back. A checkout stored before
// returns ErrCheckoutExists.
func (db *DB) CreateOrders(ctx context.Context, orders []*order.Order) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, o := range orders {
			s := o.Stored()
			b.Queue(`INSERT INTO orders (`+insertColumns+`, total_minor)
				VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27)`,
				s.ID, s.CheckoutID, s.BuyerID, s.SellerID, string(s.Status), s.Currency, itemsJSON(s.Items), s.ShippingFee,
				s.HandlingDays, 1, s.CreatedAt, s.UpdatedAt, s.CancelReason, s.LastDecline.Code, s.LastDecline.Message,
				shipmentOf(s.Shipment), s.LastDecline.Advice, s.LastDecline.Retryable, string(s.CancelledBy),
				s.Cancellation, s.Dispute, s.PaymentDueAt, s.ProtectionDays, s.Discount, s.Offer, nullUUID(s.PaidAttemptID), o.Total().Amount)
			queueDetails(b, o, s, order.Stored{}, 1)
			// The orders now say what is held; the reservation has done its work.
			b.Queue(`DELETE FROM stock_reservations WHERE checkout_id = $1`, s.CheckoutID)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.ConstraintName == "orders_checkout_seller_idx" {
				return fmt.Errorf("%w: checkout %s is stored already", ErrCheckoutExists, orders[0].CheckoutID())
			}
			return fmt.Errorf("insert orders: %w", err)
		}
		return nil
	})
}

// insertColumns are orderColumns as an INSERT names them.
var insertColumns = strings.Replace(orderColumns, "coalesce(paid_attempt_id::text, '')", "paid_attempt_id", 1)

// nullTime is NULL for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// nullUUID is NULL for "" and the uuid otherwise.
func nullUUID(id string) *string {
	if id == "" {
		return nil
	}
	return &id
}

func itemsJSON(items []order.Item) []itemJSON {
	out := make([]itemJSON, len(items))
	for i, it := range items {
		out[i] = itemJSON(it)
	}
	return out
}

func shipmentOf(s *order.Shipment) *shipmentJSON {
	if s == nil {
		return nil
	}
	sj := shipmentJSON(*s)
	return &sj
}

// queueDetails queues the writes of what a change did besides the order
// row: deadlines (when they changed), payment attempts and refunds (new or
// changed since old), new history events and, when the order gives its
// stock back, the release of its reservation.
func queueDetails(b *pgx.Batch, o *order.Order, s, old order.Stored, version int64) {
	if !sameDeadlines(old.Deadlines, s.Deadlines) {
		b.Queue(`DELETE FROM order_deadlines WHERE order_id = $1`, s.ID)
		for kind, due := range s.Deadlines {
			b.Queue(`INSERT INTO order_deadlines (order_id, kind, due_at, seller_id) VALUES ($1, $2, $3, $4)`, s.ID, string(kind), due, s.SellerID)
		}
	}
	for _, a := range s.Attempts {
		if slices.Contains(old.Attempts, a) {
			continue
		}
		b.Queue(`INSERT INTO payment_attempts (id, order_id, idempotency_key, fingerprint, status,
			amount_minor, currency, method, card_brand, card_last4, account, decline_code, decline_message,
			decline_advice, decline_retryable, provider_ref, verification_failures, captured, created_at, updated_at,
			capture_tries, next_capture_at, seller_id)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23)
			ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, decline_code = EXCLUDED.decline_code,
			decline_message = EXCLUDED.decline_message, decline_advice = EXCLUDED.decline_advice,
			decline_retryable = EXCLUDED.decline_retryable, provider_ref = EXCLUDED.provider_ref,
			verification_failures = EXCLUDED.verification_failures, captured = EXCLUDED.captured,
			updated_at = EXCLUDED.updated_at, capture_tries = EXCLUDED.capture_tries,
			next_capture_at = EXCLUDED.next_capture_at`,
			a.ID, s.ID, a.IdempotencyKey, a.Fingerprint, string(a.Status), a.Amount.Amount, a.Amount.Currency,
			string(a.Method), a.CardBrand, a.CardLast4, a.Account, a.Decline.Code, a.Decline.Message, a.Decline.Advice,
			a.Decline.Retryable, a.ProviderRef, a.VerificationFailures, a.Captured, a.CreatedAt, a.UpdatedAt,
			a.CaptureTries, nullTime(a.NextCaptureAt), s.SellerID)
	}
	queueRefunds(b, s, old)
	queueMessages(b, o)
	for _, e := range o.NewEvents() {
		b.Queue(`INSERT INTO order_events (order_id, sequence, kind, actor, occurred_at, note, adjustment, detail, status_after, version_after, seller_id)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)`, s.ID, e.Sequence, e.Kind, e.Actor, e.OccurredAt, e.Note, e.Adjustment, e.Detail, string(s.Status), version,
			s.SellerID)
	}
	if o.ReleasesStock() {
		queueRestock(b, s.Items)
	}
}

func sameDeadlines(a, b map[order.DeadlineKind]time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !w.Equal(v) {
			return false
		}
	}
	return true
}

// Update applies fn to the order with the given id in one transaction: it
// reads the order FOR UPDATE, calls fn, and writes the result back with its
// version increased, with its events, attempts and deadlines. Any error
// from fn rolls everything back and is returned as it is.
func (db *DB) Update(ctx context.Context, id string, fn func(*order.Order) error) (*order.Order, error) {
	var out *order.Order
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = updateTx(ctx, tx, id, forUpdate, fn)
		return err
	})
	return out, err
}

// updateTx reads the order FOR UPDATE (one round trip), applies fn and
// writes the result back (another).
func updateTx(ctx context.Context, tx pgx.Tx, id string, lock string, fn func(*order.Order) error) (*order.Order, error) {
	s, err := load(ctx, tx, id, lock)
	if err != nil {
		return nil, err
	}
	o := order.UnmarshalFromDatabase(s)
	if err := fn(o); err != nil {
		return nil, err
	}
	n := o.Stored()
	nameRefunds(n.Refunds)
	b := &pgx.Batch{}
	b.Queue(`UPDATE orders SET status = $3, items = $4, shipping_fee_minor = $5, total_minor = $6,
		version = version + 1, updated_at = $7, cancel_reason = $8, last_decline_code = $9,
		last_decline_message = $10, shipment = $11, last_decline_advice = $12, last_decline_retryable = $13,
		cancelled_by = $14, cancellation = $15, dispute = $16, paid_attempt_id = $17, discount_minor = $18, offer = $19
		WHERE id = $1 AND version = $2`,
		n.ID, n.Version, string(n.Status), itemsJSON(n.Items), n.ShippingFee, o.Total().Amount, n.UpdatedAt,
		n.CancelReason, n.LastDecline.Code, n.LastDecline.Message, shipmentOf(n.Shipment), n.LastDecline.Advice,
		n.LastDecline.Retryable, string(n.CancelledBy), n.Cancellation, n.Dispute, nullUUID(n.PaidAttemptID), n.Discount, n.Offer).Exec(func(tag pgconn.CommandTag) error {
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("%w: order %s changed", order.ErrConflict, id)
		}
		return nil
	})
	queueDetails(b, o, n, s, n.Version+1)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		if errors.Is(err, order.ErrConflict) {
			return nil, err
		}
		return nil, fmt.Errorf("write order: %w", err)
	}
	n.Version++
	return order.UnmarshalFromDatabase(n), nil
}

// FireDeadline carries out one order's deadline of the given kind if it is
// due at now, in a transaction of its own. It returns the changed order and
// when the deadline was due, or a nil order: a deadline that is not due,
// already handled, or of an order another transaction holds (skipLocked:
// the sweeper does not wait, the holder's change re-arms it) changes
// nothing.
func (db *DB) FireDeadline(ctx context.Context, id string, kind order.DeadlineKind, now time.Time, pol order.Policy, skipLocked bool) (*order.Order, time.Time, error) {
	lock := forUpdate
	if skipLocked {
		lock = forUpdateSkipLocked
	}
	var o *order.Order
	var due time.Time
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		o, err = updateTx(ctx, tx, id, lock, func(o *order.Order) error {
			due = o.Deadlines()[kind]
			return o.FireDeadline(now, kind, pol)
		})
		return err
	})
	switch {
	case errors.Is(err, order.ErrNotDue), errors.Is(err, order.ErrNotFound):
		return nil, time.Time{}, nil
	case err != nil:
		return nil, time.Time{}, err
	}
	return o, due, nil
}

// DueDeadlines returns up to limit deadlines due at now, in due order,
// after the one named by after (zero: from the first). The sweeper pages
// through them with it, so that deadlines it cannot fire do not hide the
// ones behind them.
func (db *DB) DueDeadlines(ctx context.Context, now time.Time, after Deadline, limit int) ([]Deadline, error) {
	if after.OrderID == "" {
		after.OrderID = "00000000-0000-0000-0000-000000000000"
	}
	rows, _ := db.pool.Query(ctx, `SELECT order_id::text, kind, due_at FROM order_deadlines
		WHERE due_at <= $1 AND (due_at, order_id, kind) > ($2, $3::uuid, $4)
		ORDER BY due_at, order_id, kind LIMIT $5`, now, after.DueAt, after.OrderID, string(after.Kind), limit)
	ds, err := pgx.CollectRows(rows, scanDeadline)
	if err != nil {
		return nil, fmt.Errorf("due deadlines: %w", err)
	}
	return ds, nil
}

func scanDeadline(r pgx.CollectableRow) (Deadline, error) {
	var d Deadline
	var kind string
	err := r.Scan(&d.OrderID, &kind, &d.DueAt)
	d.Kind = order.DeadlineKind(kind)
	return d, err
}

// Deadline is an open deadline of an order.
type Deadline struct {
	OrderID string
	Kind    order.DeadlineKind
	DueAt   time.Time
}

// OpenDeadlines calls fn with the open deadlines due before before (zero:
// all of them), soonest first, in batches, so that the caller can re-arm
// them without holding them all in memory.
func (db *DB) OpenDeadlines(ctx context.Context, before time.Time, fn func([]Deadline) error) error {
	const batch = 1000
	var after Deadline
	after.OrderID = "00000000-0000-0000-0000-000000000000"
	for {
		rows, _ := db.pool.Query(ctx, `SELECT order_id::text, kind, due_at FROM order_deadlines
			WHERE ($1::timestamptz IS NULL OR due_at < $1) AND (due_at, order_id, kind) > ($2, $3::uuid, $4)
			ORDER BY due_at, order_id, kind LIMIT $5`, nullTime(before), after.DueAt, after.OrderID, string(after.Kind), batch)
		ds, err := pgx.CollectRows(rows, scanDeadline)
		if err != nil {
			return fmt.Errorf("list open deadlines: %w", err)
		}
		if len(ds) == 0 {
			return nil
		}
		if err := fn(ds); err != nil {
			return err
		}
		after = ds[len(ds)-1]
	}
}

// Party says whose orders a list is of.
type Party int

// The parties an order list can be for.
const (
	Buyer Party = iota
	Seller
)

// ListQuery filters and pages a list of orders.
type ListQuery struct {
	Party         Party
	PartyID       string
	Status        order.Status // empty: any
	CreatedAfter  time.Time    // zero: no bound
	CreatedBefore time.Time    // zero: no bound
	// OpenCancellation keeps only orders whose cancellation request waits
	// for an answer.
	OpenCancellation bool
	PageSize         int
	PageToken        string
}

// ErrBadPageToken means a page token was not one this store handed out.
var ErrBadPageToken = fmt.Errorf("%w: malformed page token", order.ErrInvalid)

// List returns one page of a party's orders, newest first, with their
// deadlines, and the token of the next page ("" on the last).
func (db *DB) List(ctx context.Context, q ListQuery) ([]*order.Order, string, error) {
	col := "buyer_id"
	if q.Party == Seller {
		col = "seller_id"
	}
	afterAt, afterID, err := pageAfter(q.PageToken)
	if err != nil {
		return nil, "", err
	}
	rows, _ := db.pool.Query(ctx, `SELECT `+orderColumns+` FROM orders WHERE `+col+` = $1
		AND ($2 = '' OR status = $2)
		AND ($3::timestamptz IS NULL OR created_at >= $3)
		AND ($4::timestamptz IS NULL OR created_at < $4)
		AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6::uuid))
		AND (NOT $8 OR cancellation->>'Status' = 'OPEN')
		ORDER BY created_at DESC, id DESC LIMIT $7`,
		q.PartyID, string(q.Status), nullTime(q.CreatedAfter), nullTime(q.CreatedBefore), afterAt, afterID, q.PageSize+1, q.OpenCancellation)
	stored, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (order.Stored, error) { return scanOrder(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list orders: %w", err)
	}
	stored, next := trimPage(stored, q.PageSize, func(s order.Stored) (time.Time, string) { return s.CreatedAt, s.ID })
	ids := make([]string, len(stored))
	for i, s := range stored {
		ids[i] = s.ID
	}
	deadlines, err := loadDeadlinesOf(ctx, db.pool, ids)
	if err != nil {
		return nil, "", err
	}
	out := make([]*order.Order, len(stored))
	for i, s := range stored {
		s.Deadlines = deadlines[s.ID]
		out[i] = order.UnmarshalFromDatabase(s)
	}
	return out, next, nil
}

// pageAfter decodes a page token into the keyset of the last row of the
// previous page; the first page has none.
func pageAfter(token string) (*time.Time, *string, error) {
	if token == "" {
		return nil, nil, nil
	}
	at, id, err := decodeToken(token)
	if err != nil {
		return nil, nil, err
	}
	return &at, &id, nil
}

// trimPage cuts a page fetched with one row more than size and returns the
// next page's token ("" when there is no next page).
func trimPage[T any](rows []T, size int, key func(T) (time.Time, string)) ([]T, string) {
	if len(rows) <= size {
		return rows, ""
	}
	rows = rows[:size]
	return rows, encodeToken(key(rows[size-1]))
}

func encodeToken(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixMicro(), 10) + "/" + id))
}

func decodeToken(tok string) (time.Time, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return time.Time{}, "", ErrBadPageToken
	}
	micros, id, ok := strings.Cut(string(raw), "/")
	us, err := strconv.ParseInt(micros, 10, 64)
	if _, uerr := uuid.Parse(id); !ok || err != nil || uerr != nil {
		return time.Time{}, "", ErrBadPageToken
	}
	return time.UnixMicro(us), id, nil
}
