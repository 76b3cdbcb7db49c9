package postgres

import (
	"cmp"
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
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/souk-dev/souk/internal/order"
)

// itemJSON is how an order's items are kept in its items column.
type itemJSON struct {
	ProductID string `json:"product_id"`
	Title     string `json:"title"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
	// Discounts are the line's coupon shares.
	Discounts []order.Discount `json:"discounts,omitempty"`
	// RefundedUnits were refunded, for Refunded in all.
	RefundedUnits int64 `json:"refunded_units,omitempty"`
	Refunded      int64 `json:"refunded,omitempty"`
}

// shipmentJSON is how a shipment is kept in the shipment column.
type shipmentJSON struct {
	Carrier        string    `json:"carrier"`
	TrackingNumber string    `json:"tracking_number"`
	TrackingURL    string    `json:"tracking_url"`
	ShippedAt      time.Time `json:"shipped_at"`
}

// querier is what both a pool and a transaction offer.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// load reads an order with its deadlines, payment attempts, refunds and
// history; lock ("", forUpdate or forUpdateSkipLocked) locks the order's
// row first.
func (db *DB) load(ctx context.Context, q querier, id string, lock string) (order.Stored, error) {
	k, err := db.keyOf(ctx, id)
	if err != nil {
		return order.Stored{}, err
	}
	ss, err := db.loadKeys(ctx, q, []orderKey{k}, lock, true)
	if err != nil {
		return order.Stored{}, err
	}
	if len(ss) == 0 {
		return order.Stored{}, fmt.Errorf("%w: order %s", order.ErrNotFound, id)
	}
	return ss[0], nil
}

// loadKeys reads whole orders in one round trip (two for orders holding
// coupons), in the order of keys, leaving out those that do not exist
// (or, with forUpdateSkipLocked, that another transaction holds). Five
// statements read them, whatever their number. Without history, the
// orders come with the sequence of their last event instead of their
// events (order.Stored.LastSequence). On Citus the keys are read a store
// at a time (each store's statements go to its shard alone); a lock
// there needs keys of one store (a statement that locks rows on several
// shards is refused).
func (db *DB) loadKeys(ctx context.Context, q querier, keys []orderKey, lock string, history bool) ([]order.Stored, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	found := make(map[string]*order.Stored, len(keys))
	var holds []holdRow
	b := &pgx.Batch{}
	for _, group := range db.byStore(keys) {
		queueLoad(b, group, lock, history, found, &holds)
	}
	if err := q.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("load orders: %w", err)
	}
	if err := loadHolds(ctx, q, found, holds, lock != ""); err != nil {
		return nil, err
	}
	out := make([]order.Stored, 0, len(keys))
	for _, k := range keys {
		if s, ok := found[k.id]; ok {
			out = append(out, *s)
			delete(found, k.id) // an id asked for twice is returned once
		}
	}
	return out, nil
}

// byStore is keys in one group on plain PostgreSQL, and in a group per
// store on Citus.
func (db *DB) byStore(keys []orderKey) [][]orderKey {
	if !db.citus {
		return [][]orderKey{keys}
	}
	return groupKeys(keys, func(k orderKey) string { return k.seller })
}

// groupKeys groups keys by of, in the order each group first appears.
func groupKeys[K comparable](keys []orderKey, of func(orderKey) K) [][]orderKey {
	var groups [][]orderKey
	at := map[K]int{}
	for _, k := range keys {
		i, ok := at[of(k)]
		if !ok {
			i = len(groups)
			at[of(k)] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], k)
	}
	return groups
}

// byShard is keys in one group on plain PostgreSQL, and in a group per
// shard of orders on Citus: the stores of one shard are locked and written
// in one transaction (a group per store made the sweeper a distributed
// transaction per due deadline, most stores having one: 8.7 ms each at a
// million orders, against 0.2 ms on plain PostgreSQL).
func (db *DB) byShard(ctx context.Context, keys []orderKey) ([][]orderKey, error) {
	if !db.citus || len(keys) < 2 {
		return [][]orderKey{keys}, nil
	}
	var sellers []string
	for _, k := range keys {
		if !slices.Contains(sellers, k.seller) {
			sellers = append(sellers, k.seller)
		}
	}
	if len(sellers) == 1 {
		return [][]orderKey{keys}, nil
	}
	rows, _ := db.pool.Query(ctx, `SELECT s, get_shard_id_for_distribution_column('orders', s) FROM unnest($1::text[]) s`, sellers)
	shardOf := map[string]int64{}
	var seller string
	var shard int64
	if _, err := pgx.ForEachRow(rows, []any{&seller, &shard}, func() error { shardOf[seller] = shard; return nil }); err != nil {
		return nil, fmt.Errorf("the stores' shards: %w", err)
	}
	return groupKeys(keys, func(k orderKey) int64 { return shardOf[k.seller] }), nil
}

// oneOrAny returns how a column is matched against vals as the n-th
// parameter, of SQL type typ ("= $n::typ" for one value, "= ANY($n::typ[])"
// for more), and the statement's argument. PostgreSQL costs the generic
// plan of an array parameter for ten elements, so with one value it would
// plan "= ANY($n)" anew on every execution (the custom plan always looks
// cheaper): in a read of one order that was over half of PostgreSQL's
// time. From about ten values on, the generic plan wins.
func oneOrAny[T any](n int, typ string, vals []T) (match string, arg any) {
	one, many := paramMatches(n, typ)
	if len(vals) == 1 {
		return one, vals[0]
	}
	return many, vals
}

// paramMatches are oneOrAny's two matches of the n-th parameter.
func paramMatches(n int, typ string) (one, many string) {
	p := "$" + strconv.Itoa(n) + "::" + typ
	return "= " + p, "= ANY(" + p + "[])"
}

// keysIn is the condition on the id column col and on seller_id (which
// names the shard on Citus) of order keys, with its two arguments.
func keysIn(col string, keys []orderKey) (match string, args []any) {
	ids := make([]pgtype.UUID, len(keys))
	for i, k := range keys {
		ids[i] = pgUUID(k.id)
	}
	idMatch, idArg := oneOrAny(1, "uuid", ids)
	sellerMatch, sellerArg := oneOrAny(2, "text", storesOf(keys))
	return col + " " + idMatch + " AND seller_id " + sellerMatch, []any{idArg, sellerArg}
}

// storesOf returns the stores of keys, each once.
func storesOf(keys []orderKey) []string {
	var sellers []string
	for _, k := range keys {
		if !slices.Contains(sellers, k.seller) {
			sellers = append(sellers, k.seller)
		}
	}
	return sellers
}

// pgUUID is a canonical id as pgx encodes it without parsing text.
func pgUUID(id string) pgtype.UUID { return pgtype.UUID{Bytes: uuid.MustParse(id), Valid: true} }

// Row locks load can take.
const (
	forUpdate           = " FOR UPDATE"
	forUpdateSkipLocked = " FOR UPDATE SKIP LOCKED"
)

// queueLoad queues the reads of the orders with the given (canonical)
// keys into b, with their history or only its last sequence; once b is
// sent, found holds the orders found by id.
func queueLoad(b *pgx.Batch, keys []orderKey, lock string, history bool, found map[string]*order.Stored, holds *[]holdRow) {
	match, args := keysIn("id", keys)
	b.Queue(`SELECT `+orderColumns+` FROM orders WHERE `+match+` ORDER BY id`+lock, args...).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			s, err := scanOrder(rows)
			if err != nil {
				return err
			}
			found[s.ID] = &s
		}
		return rows.Err()
	})
	queueHoldRows(b, keys, holds)
	// of returns the loaded order a child row belongs to, or nil for an
	// order the lock skipped.
	of := func(id string) *order.Stored { return found[id] }
	match, args = keysIn("order_id", keys)
	b.Queue(`SELECT id, idempotency_key, fingerprint, status, amount_minor, currency, method,
		card_brand, card_last4, account, decline_code, decline_message, decline_advice, decline_retryable,
		provider_ref, verification_failures, captured, created_at, updated_at, capture_tries,
		coalesce(next_capture_at, 'epoch'), coalesce(recheck_at, 'epoch'), order_id::text
		FROM payment_attempts WHERE `+match+` ORDER BY order_id, created_at, id`, args...).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var a order.Attempt
			var status, method, id string
			if err := rows.Scan(&a.ID, &a.IdempotencyKey, &a.Fingerprint, &status, &a.Amount.Amount, &a.Amount.Currency,
				&method, &a.CardBrand, &a.CardLast4, &a.Account, &a.Decline.Code, &a.Decline.Message, &a.Decline.Advice,
				&a.Decline.Retryable, &a.ProviderRef, &a.VerificationFailures, &a.Captured, &a.CreatedAt, &a.UpdatedAt,
				&a.CaptureTries, &a.NextCaptureAt, &a.RecheckAt, &id); err != nil {
				return err
			}
			a.Status, a.Method = order.AttemptStatus(status), order.Method(method)
			a.NextCaptureAt, a.RecheckAt = notEpoch(a.NextCaptureAt), notEpoch(a.RecheckAt)
			if s := of(id); s != nil {
				s.Attempts = append(s.Attempts, a)
			}
		}
		return rows.Err()
	})
	b.Queue(`SELECT `+refundColumns+`, order_id::text FROM refunds WHERE `+match+`
		ORDER BY order_id, created_at, id`, args...).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			r, err := scanRefund(rows, &id)
			if err != nil {
				return err
			}
			if s := of(id); s != nil {
				s.Refunds = append(s.Refunds, r)
			}
		}
		return rows.Err()
	})
	if !history {
		b.Queue(`SELECT order_id::text, max(sequence) FROM order_events WHERE `+match+` GROUP BY order_id`, args...).Query(func(rows pgx.Rows) error {
			var id string
			var last int64
			_, err := pgx.ForEachRow(rows, []any{&id, &last}, func() error {
				if s := of(id); s != nil {
					s.LastSequence = last
				}
				return nil
			})
			return err
		})
		return
	}
	// Each order's latest HistoryWindow events, newest first (the rest
	// are paged by ListHistory); a message's text and links stay out: the
	// conversation is read where it is shown (ListOrderMessages).
	// The ids as keysIn passes them ($1): one, or an array of more.
	keyRows := "(SELECT $1::uuid AS id) k"
	if len(keys) > 1 {
		keyRows = "unnest($1::uuid[]) AS k(id)"
	}
	sellers, _ := oneOrAny(2, "text", storesOf(keys))
	b.Queue(`SELECT e.sequence, e.kind, e.actor, e.occurred_at, e.note, e.adjustment, e.detail, k.id::text FROM `+keyRows+`
		CROSS JOIN LATERAL (SELECT sequence, kind, actor, occurred_at, note, adjustment, detail - 'text' - 'links' AS detail
			FROM order_events WHERE order_id = k.id AND seller_id `+sellers+` ORDER BY sequence DESC LIMIT `+strconv.Itoa(HistoryWindow)+`) e`,
		args...).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var e order.Event
			var id string
			if err := rows.Scan(&e.Sequence, &e.Kind, &e.Actor, &e.OccurredAt, &e.Note, &e.Adjustment, &e.Detail, &id); err != nil {
				return err
			}
			if s := of(id); s != nil {
				s.History = append(s.History, e)
			}
		}
		for _, s := range found {
			slices.SortFunc(s.History, func(a, b order.Event) int { return cmp.Compare(a.Sequence, b.Sequence) })
		}
		return rows.Err()
	})
}

// HistoryWindow is how many of its latest events an order is loaded with:
// what an order shows, and what its changes may look back on. Older ones
// are paged with ListHistory.
const HistoryWindow = 200

// ListHistory returns one page of an order's history, oldest first, and
// the token of the next page ("" on the last).
func (db *DB) ListHistory(ctx context.Context, orderID string, pageSize int, pageToken string) ([]order.Event, string, error) {
	var after int64
	if pageToken != "" {
		n, err := strconv.ParseInt(pageToken, 10, 64)
		if err != nil || n < 0 {
			return nil, "", fmt.Errorf("%w: page_token is not one this list gave", order.ErrInvalid)
		}
		after = n
	}
	evs, err := read(ctx, func() ([]order.Event, error) {
		k, err := db.keyOf(ctx, orderID)
		if err != nil {
			return nil, err
		}
		rows, _ := db.pool.Query(ctx, `SELECT sequence, kind, actor, occurred_at, note, adjustment FROM order_events
			WHERE order_id = $1 AND seller_id = $3 AND sequence > $2 ORDER BY sequence LIMIT `+strconv.Itoa(pageSize+1), k.id, after, k.seller)
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (order.Event, error) {
			var e order.Event
			err := r.Scan(&e.Sequence, &e.Kind, &e.Actor, &e.OccurredAt, &e.Note, &e.Adjustment)
			return e, err
		})
	})
	if err != nil {
		return nil, "", fmt.Errorf("list history: %w", err)
	}
	next := ""
	if len(evs) > pageSize {
		evs = evs[:pageSize]
		next = strconv.FormatInt(evs[len(evs)-1].Sequence, 10)
	}
	return evs, next, nil
}

// Get returns an order with its deadlines, payment attempts, refunds and history.
func (db *DB) Get(ctx context.Context, id string) (*order.Order, error) {
	s, err := read(ctx, func() (order.Stored, error) { return db.load(ctx, db.pool, id, "") })
	if err != nil {
		return nil, err
	}
	return order.UnmarshalFromDatabase(s), nil
}

// Parties returns the buyer and the seller of an order, for an ownership
// check that needs nothing else (before taking the order's lock).
func (db *DB) Parties(ctx context.Context, id string) (buyerID, sellerID string, err error) {
	h, err := db.Header(ctx, id)
	return h.BuyerID, h.SellerID, err
}

// OrderHeader is an order's parties and currency: what a read of its
// history or messages needs of it.
type OrderHeader struct {
	BuyerID, SellerID, Currency string
}

// Header reads an order's parties and currency, one row of one index.
func (db *DB) Header(ctx context.Context, id string) (OrderHeader, error) {
	h, err := read(ctx, func() (OrderHeader, error) {
		var h OrderHeader
		k, err := db.keyOf(ctx, id)
		if err != nil {
			return h, err
		}
		err = db.pool.QueryRow(ctx, `SELECT buyer_id, seller_id, currency FROM orders WHERE id = $1 AND seller_id = $2`, k.id, k.seller).
			Scan(&h.BuyerID, &h.SellerID, &h.Currency)
		return h, err
	})
	if isNoRows(err) {
		return OrderHeader{}, fmt.Errorf("%w: order %s", order.ErrNotFound, id)
	} else if err != nil {
		return OrderHeader{}, fmt.Errorf("order header: %w", err)
	}
	return h, nil
}

// getMany reads whole orders in one round trip, in the order of ids,
// leaving out any that do not exist.
func (db *DB) getMany(ctx context.Context, ids []string) ([]*order.Order, error) {
	ss, err := read(ctx, func() ([]order.Stored, error) {
		keys, err := db.keysOf(ctx, "orders", ids)
		if err != nil {
			return nil, err
		}
		return db.loadKeys(ctx, db.pool, keys, "", true)
	})
	if err != nil {
		return nil, err
	}
	out := make([]*order.Order, len(ss))
	for i, s := range ss {
		out[i] = order.UnmarshalFromDatabase(s)
	}
	return out, nil
}

// ErrCheckoutExists means a checkout's orders were stored by an earlier
// (or concurrent) request with the same checkout id.
var ErrCheckoutExists = fmt.Errorf("%w: checkout exists", order.ErrConflict)

// ErrIDTaken means a new order's or product's id is another's of its store
// already (two ids of a store's day alike, order.NewIDAt): nothing was
// stored, and it may be made again with a new id.
var ErrIDTaken = fmt.Errorf("%w: id taken", order.ErrConflict)

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
	for _, o := range orders {
		if key, ok := order.KeyOf(o.ID()); ok && key == order.StoreKey(o.SellerID()) {
			if err := db.registerStore(ctx, o.SellerID()); err != nil {
				return err
			}
		}
	}
	return retryRace(ctx, func() error { return db.createOrders(ctx, orders) })
}

// createOrders stores the orders in one round trip: BEGIN, the writes and
// COMMIT in one pipeline.
func (db *DB) createOrders(ctx context.Context, orders []*order.Order) error {
	tx, err := db.pipelined(ctx)
	if err != nil {
		return err
	}
	defer tx.release(ctx)
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	if db.citus {
		b.Queue(sequentialSQL) // the buyer's unpaid orders, then a coupon's redemption
	}
	cs := make([]change, 0, len(orders))
	for _, o := range orders {
		c := change{o: o, now: o.Stored()}
		b.Queue(insertOrderSQL, insertArgs(&c)...)
		cs = append(cs, c)
		// The orders now say what is held; the reservation has done its work.
		b.Queue(`DELETE FROM stock_reservations WHERE checkout_id = $1`, c.now.CheckoutID)
	}
	queueDetails(b, cs)
	if l := db.unpaid; l.Orders > 0 || l.Units > 0 {
		b.Queue(`SELECT souk_check_unpaid($1, $2, $3)`, orders[0].BuyerID(), l.Orders, l.Units)
	}
	// Last before COMMIT: a coupon's row lock, which every checkout of a
	// sale's coupon waits for, is held for the commit alone.
	queueRedemptions(b, orders)
	tx.queueCommit(b)
	if err := tx.conn.SendBatch(ctx, b).Close(); err != nil {
		if isUnique(err, "orders_checkout_seller_idx") {
			return fmt.Errorf("%w: checkout %s is stored already", ErrCheckoutExists, orders[0].CheckoutID())
		}
		if isUnique(err, "orders_pkey") {
			return fmt.Errorf("%w (checkout %s)", ErrIDTaken, orders[0].CheckoutID())
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "SK001" {
			return &UnpaidLimitError{Limits: db.unpaid}
		}
		if refused := couponRefusal(err); refused != nil {
			return refused
		}
		return fmt.Errorf("insert orders: %w", err)
	}
	return nil
}

// UnpaidLimits bound what one buyer may hold unpaid: orders waiting for
// payment (or being checked) and the units in them; zero is no limit.
type UnpaidLimits struct {
	Orders int64
	Units  int64
}

// LimitUnpaid makes CreateOrders refuse a checkout that would leave its
// buyer over l.
func (db *DB) LimitUnpaid(l UnpaidLimits) { db.unpaid = l }

// UnpaidLimitError is a checkout refused because its buyer would hold more
// unpaid orders or units than the limits allow.
type UnpaidLimitError struct {
	Limits UnpaidLimits
}

func (e *UnpaidLimitError) Error() string {
	return fmt.Sprintf("%s: a buyer may hold at most %d unpaid orders and %d units in them; pay or cancel some first",
		order.ErrIllegalTransition, e.Limits.Orders, e.Limits.Units)
}

// Unwrap makes the refusal a FAILED_PRECONDITION.
func (e *UnpaidLimitError) Unwrap() error { return order.ErrIllegalTransition }

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
//
// With a request (WithRequest) seen before, it changes nothing and returns
// the order as it stands with ErrReplayed.
func (db *DB) Update(ctx context.Context, id string, fn func(*order.Order) error) (*order.Order, error) {
	if o, seen, err := db.replayed(ctx, id); seen {
		return o, err
	}
	o, err := db.update(ctx, id, forUpdate, fn)
	if isRequestRepeat(err) {
		o, _, err = db.replayed(ctx, id)
	}
	return o, err
}

// update is Update with the given row lock, in two round trips: BEGIN
// travels with the reads, COMMIT with the writes (pgx's own transactions
// would send each alone, four round trips in all). A connection left in
// a transaction by an error is rolled back before it goes back to the pool.
func (db *DB) update(ctx context.Context, id, lock string, fn func(*order.Order) error) (*order.Order, error) {
	var out *order.Order
	err := retryRace(ctx, func() error {
		var err error
		out, err = db.updateOnce(ctx, id, lock, fn)
		return err
	})
	return out, err
}

// Seen is an order as read outside any transaction: whose it is, and the
// version a change decided from it is written at (UpdateSeen).
type Seen struct{ s order.Stored }

// SellerID returns the seller of the order seen.
func (sn *Seen) SellerID() string { return sn.s.SellerID }

// See reads an order whole, outside any transaction, for an ownership
// check before the order's lock is taken and a change made from it after
// (UpdateSeen): one read serves both.
func (db *DB) See(ctx context.Context, id string) (*Seen, error) {
	s, err := read(ctx, func() (order.Stored, error) { return db.load(ctx, db.pool, id, "") })
	if err != nil {
		return nil, err
	}
	return &Seen{s: s}, nil
}

// UpdateSeen applies fn to the order as seen and writes the result at the
// seen version: BEGIN, the writes and COMMIT in one round trip, with no
// read in the transaction. If the order moved on since it was seen,
// nothing is written and the change is made as Update makes it, on the
// order read anew FOR UPDATE; so is a change fn refuses, which the order
// as it is now may allow. fn may run twice.
func (db *DB) UpdateSeen(ctx context.Context, seen *Seen, fn func(*order.Order) error) (*order.Order, error) {
	if o, found, err := db.replayed(ctx, seen.s.ID); found {
		return o, err
	}
	o := order.UnmarshalFromDatabase(seen.s)
	if err := fn(o); err != nil {
		return db.Update(ctx, seen.s.ID, fn)
	}
	out, err := db.writeSeen(ctx, o, seen.s)
	if lostRace(err) {
		return db.Update(ctx, seen.s.ID, fn)
	}
	if isRequestRepeat(err) {
		out, _, err = db.replayed(ctx, seen.s.ID)
	}
	return out, err
}

func (db *DB) writeSeen(ctx context.Context, o *order.Order, seen order.Stored) (*order.Order, error) {
	tx, b, err := db.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.release(ctx)
	return writeChange(ctx, tx, b, o, seen)
}

// writeChange queues the writes of o's change from old and COMMIT after
// what b holds, sends them, and returns the order as stored.
func writeChange(ctx context.Context, tx *pipelined, b *pgx.Batch, o *order.Order, old order.Stored) (*order.Order, error) {
	n := o.Stored()
	nameRefunds(n.Refunds)
	// The request's record goes first: a retry racing the first request
	// fails on it, not on what the request created (a message's id).
	queueRequest(ctx, b, n.ID, n.UpdatedAt)
	queueUpdates(b, []change{{o: o, old: old, now: n}})
	tx.queueCommit(b)
	if err := tx.conn.SendBatch(ctx, b).Close(); err != nil {
		if lostRace(err) {
			return nil, err
		}
		return nil, fmt.Errorf("write order: %w", err)
	}
	n.Version++
	out := order.UnmarshalFromDatabase(n)
	out.SetPriorDeadlines(old.Deadlines)
	return out, nil
}

func (db *DB) updateOnce(ctx context.Context, id, lock string, fn func(*order.Order) error) (*order.Order, error) {
	k, err := read(ctx, func() (orderKey, error) { return db.keyOf(ctx, id) })
	if err != nil {
		return nil, err
	}
	tx, b, err := db.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.release(ctx)
	found := map[string]*order.Stored{}
	var holds []holdRow
	queueLoad(b, []orderKey{k}, lock, true, found, &holds)
	if err := tx.conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("load order: %w", err)
	}
	if err := loadHolds(ctx, tx.conn, found, holds, lock != ""); err != nil {
		return nil, err
	}
	s, ok := found[k.id]
	if !ok {
		return nil, fmt.Errorf("%w: order %s", order.ErrNotFound, id)
	}
	o := order.UnmarshalFromDatabase(*s)
	if err := fn(o); err != nil {
		return nil, err
	}
	return writeChange(ctx, tx, &pgx.Batch{}, o, *s)
}

// FireDeadline carries out one order's deadline of the given kind if it is
// due at now, in a transaction of its own. It returns the changed order and
// when the deadline was due, or a nil order: a deadline that is not due,
// already handled, or of an order another transaction holds (skipLocked:
// the sweeper does not wait, the holder's change re-arms it) changes
// nothing.
func (db *DB) FireDeadline(ctx context.Context, id string, kind order.DeadlineKind, now time.Time, pol order.Policy, skipLocked bool) (*order.Order, time.Time, error) {
	now, err := db.notAfterClock(ctx, now)
	if err != nil {
		return nil, time.Time{}, err
	}
	lock := forUpdate
	if skipLocked {
		lock = forUpdateSkipLocked
	}
	var due time.Time
	o, err := db.update(ctx, id, lock, func(o *order.Order) error {
		due = o.Deadlines()[kind]
		return o.FireDeadline(now, kind, pol)
	})
	switch {
	case errors.Is(err, order.ErrNotDue), errors.Is(err, order.ErrNotFound):
		return nil, time.Time{}, nil
	case err != nil:
		return nil, time.Time{}, err
	}
	return o, due, nil
}

// FiredDeadline is a deadline a batch carried out, with its order after
// the change and when it was due.
type FiredDeadline struct {
	Deadline
	Order *order.Order
}

// FailedDeadline is a deadline a batch could not carry out, and why.
type FailedDeadline struct {
	Deadline
	Err error
}

// Fired is what FireDeadlines did: the deadlines it carried out, those of
// orders another transaction held (Busy: not touched, to be tried again),
// those not due yet by the database's clock (Early: the caller's clock runs
// ahead) and those that cannot be carried out (Failed: their order is left
// as it was). Deadlines already handled, or of orders that do not exist,
// are in none of them.
type Fired struct {
	Fired  []FiredDeadline
	Busy   []Deadline
	Early  []Deadline
	Failed []FailedDeadline
}

// notAfterClock returns now, or PostgreSQL's clock if that is earlier: a
// replica whose clock runs ahead must not fire a payment window or a
// ship-by date early. The database's clock is the one every replica shares.
func (db *DB) notAfterClock(ctx context.Context, now time.Time) (time.Time, error) {
	var dbNow time.Time
	if err := db.pool.QueryRow(ctx, `SELECT now()`).Scan(&dbNow); err != nil {
		return time.Time{}, fmt.Errorf("read the database's clock: %w", err)
	}
	if dbNow.Before(now) {
		return dbNow.UTC(), nil
	}
	return now, nil
}

// FireDeadlines carries out the given deadlines that are due at now, many
// orders in one transaction: the orders are read and locked in one round
// trip (skipping those another transaction holds), each goes through its
// own domain method and version bump, and the writes go back in a fixed
// number of statements (one per table, and one per product for the stock
// given back). now is never taken past PostgreSQL's clock: a deadline due
// by the caller's clock but not by the database's is Early. An error means
// nothing was written; the caller can then fire the deadlines one by one
// to set the failing one apart.
func (db *DB) FireDeadlines(ctx context.Context, ds []Deadline, now time.Time, pol order.Policy) (Fired, error) {
	now, err := db.notAfterClock(ctx, now)
	if err != nil {
		return Fired{}, fmt.Errorf("fire deadlines: %w", err)
	}
	byOrder := map[string][]Deadline{}
	var ids []string
	for _, d := range ds {
		u, err := uuid.Parse(d.OrderID)
		if err != nil {
			continue
		}
		d.OrderID = u.String()
		if _, ok := byOrder[d.OrderID]; !ok {
			ids = append(ids, d.OrderID)
		}
		byOrder[d.OrderID] = append(byOrder[d.OrderID], d)
	}
	keys, err := read(ctx, func() ([]orderKey, error) { return db.keysOf(ctx, "orders", ids) })
	if err != nil {
		return Fired{}, fmt.Errorf("fire deadlines: %w", err)
	}
	// On Citus a transaction locks the orders of one shard: a batch of
	// many stores is a batch per shard.
	groups, err := read(ctx, func() ([][]orderKey, error) { return db.byShard(ctx, keys) })
	if err != nil {
		return Fired{}, fmt.Errorf("fire deadlines: %w", err)
	}
	var res Fired
	for _, group := range groups {
		r, err := db.fireDeadlines(ctx, group, byOrder, now, pol)
		if err != nil {
			return res, err
		}
		res.Fired = append(res.Fired, r.Fired...)
		res.Busy = append(res.Busy, r.Busy...)
		res.Early = append(res.Early, r.Early...)
		res.Failed = append(res.Failed, r.Failed...)
	}
	return res, nil
}

// fireDeadlines is FireDeadlines for the orders of keys, in one transaction.
func (db *DB) fireDeadlines(ctx context.Context, keys []orderKey, byOrder map[string][]Deadline, now time.Time, pol order.Policy) (Fired, error) {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.id
	}
	var res Fired
	var cs []change
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		res, cs = Fired{}, nil
		// A batch of deadlines reads no history: nothing shows these
		// orders, and a long history would cost each of up to 1,000 orders.
		ss, err := db.loadKeys(ctx, tx, keys, forUpdateSkipLocked, false)
		if err != nil {
			return err
		}
		locked := make(map[string]bool, len(ss))
		type firing struct {
			o     *order.Order
			s     order.Stored
			fired []FiredDeadline
		}
		var done []firing
		for _, s := range ss {
			locked[s.ID] = true
			o := order.UnmarshalFromDatabase(s)
			var fired []FiredDeadline
			var failed error
			for _, d := range byOrder[s.ID] {
				due := s.Deadlines[d.Kind]
				// A deadline that is not open (or not due) is ErrNotDue.
				switch err := o.FireDeadline(now, d.Kind, pol); {
				case errors.Is(err, order.ErrNotDue) && now.Before(due):
					res.Early = append(res.Early, Deadline{OrderID: s.ID, Kind: d.Kind, DueAt: due})
				case errors.Is(err, order.ErrNotDue):
				case err != nil:
					res.Failed = append(res.Failed, FailedDeadline{Deadline: Deadline{OrderID: s.ID, Kind: d.Kind, DueAt: due}, Err: err})
					failed = err
				default:
					fired = append(fired, FiredDeadline{Deadline: Deadline{OrderID: s.ID, Kind: d.Kind, DueAt: due}})
				}
			}
			if failed != nil || len(fired) == 0 {
				continue // the order is written back only if all went well
			}
			done = append(done, firing{o, s, fired})
		}
		// Orders of one checkout that expired together each read the
		// others as waiting: the coupons they shared are released once.
		cancelled := map[string]bool{}
		for _, f := range done {
			if f.o.Status() == order.StatusCancelled {
				cancelled[f.o.ID()] = true
			}
		}
		for _, f := range done {
			f.o.OthersCancelled(now, cancelled)
			n := f.o.Stored()
			nameRefunds(n.Refunds)
			cs = append(cs, change{o: f.o, old: f.s, now: n})
			for _, fd := range f.fired {
				fd.Order = f.o
				res.Fired = append(res.Fired, fd)
			}
		}
		for _, id := range ids {
			if !locked[id] {
				res.Busy = append(res.Busy, byOrder[id]...)
			}
		}
		if len(cs) == 0 {
			return nil
		}
		b := &pgx.Batch{}
		queueUpdates(b, cs)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return Fired{}, fmt.Errorf("fire deadlines: %w", err)
	}
	// What the callers get: each order as stored, with the deadlines it had.
	stored := make(map[*order.Order]*order.Order, len(cs))
	for _, c := range cs {
		n := c.now
		n.Version++
		out := order.UnmarshalFromDatabase(n)
		out.SetPriorDeadlines(c.old.Deadlines)
		stored[c.o] = out
	}
	for i := range res.Fired {
		res.Fired[i].Order = stored[res.Fired[i].Order]
	}
	return res, nil
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
		var f filter
		if !before.IsZero() {
			f.and("due_at < ?", before)
		}
		f.and("(due_at, order_id, kind) > (?, ?::uuid, ?)", after.DueAt, after.OrderID, string(after.Kind))
		where, args := f.where("ORDER BY due_at, order_id, kind", batch)
		rows, _ := db.pool.Query(ctx, `SELECT order_id::text, kind, due_at FROM order_deadlines `+where, args...)
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
	var f filter
	f.and(col+" = ?", q.PartyID)
	if q.Status != "" {
		f.and("status = ?", string(q.Status))
	}
	if !q.CreatedAfter.IsZero() {
		f.and("created_at >= ?", q.CreatedAfter)
	}
	if !q.CreatedBefore.IsZero() {
		f.and("created_at < ?", q.CreatedBefore)
	}
	if q.OpenCancellation {
		f.and("cancellation->>'Status' = 'OPEN'")
	}
	if err := f.after(q.PageToken, "(created_at, id) < (?, ?::uuid)"); err != nil {
		return nil, "", err
	}
	where, args := f.where("ORDER BY created_at DESC, id DESC", q.PageSize+1)
	// The page's orders, their deadlines on their rows: one statement, one
	// index walk.
	// A party's page filtered by the party, its time and the page token
	// walks the party's index in order and stops at the page, whatever
	// the party's size. A connection settles on a generic plan of
	// the statement, which takes any party for the average one (a few
	// orders) and may well fetch them all and sort them: for the biggest
	// store, every order it has (TestBigStorePagesReadTheirPage saw it
	// while the page read each order's deadlines beside; it is the
	// planner's costing, not a given). Sorting is ruled out for the
	// statement, in a transaction of its own sent with it. A store's page
	// filtered by a status walks the store's index by status
	// (orders_seller_status_idx) the same way; a buyer's, the buyer's
	// index, filtering (a buyer's orders are few). A page of open
	// cancellations is left to the planner (a partial index of a store's
	// few; on Citus each worker plans its shard's statement with the store
	// named). The generic plan is also forced: left to choose, PostgreSQL
	// planned the biggest store's page anew every time, its custom plan costed a
	// little under the generic one (84 µs of planning a page at 10 million
	// orders, more than the page's run; TestStorePagesAreNotReplanned), and
	// without sorting, the generic plan is the walk that reads the page.
	inOrder := !db.citus && !q.OpenCancellation
	var stored []order.Stored
	b := &pgx.Batch{}
	if inOrder {
		b.Queue(`BEGIN`)
		b.Queue(`SELECT set_config('enable_sort', 'off', true), set_config('plan_cache_mode', 'force_generic_plan', true)`)
	}
	b.Queue(`SELECT `+orderColumns+` FROM orders `+where, args...).Query(func(rows pgx.Rows) (err error) {
		stored, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (order.Stored, error) { return scanOrder(r) })
		return err
	})
	if inOrder {
		b.Queue(`COMMIT`)
	}
	if err := db.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, "", fmt.Errorf("list orders: %w", err)
	}
	stored, next := trimPage(stored, q.PageSize, func(s order.Stored) (time.Time, string) { return s.CreatedAt, s.ID })
	out := make([]*order.Order, len(stored))
	for i, s := range stored {
		out[i] = order.UnmarshalFromDatabase(s)
	}
	return out, next, nil
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

// notEpoch is t, or the zero time for the epoch that stands for NULL in a
// coalesced column.
func notEpoch(t time.Time) time.Time {
	if t.Equal(time.Unix(0, 0)) {
		return time.Time{}
	}
	return t
}
