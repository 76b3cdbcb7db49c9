package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/souk-dev/souk/internal/order"
)

const couponColumns = `id::text, code, source, seller_id, kind, currency, amount_minor, percent, cap_minor, min_subtotal_minor,
	starts_at, ends_at, redemption_limit, per_buyer_limit, first_order_only, granted_only, product_ids, seller_ids, paused`

// couponJSON is a coupon's terms as a redemption keeps them (the terms at
// checkout, whatever the coupon's issuer changes later).
type couponJSON struct {
	ID             string    `json:"id"`
	Code           string    `json:"code"`
	Source         string    `json:"source"`
	SellerID       string    `json:"seller_id,omitempty"`
	Kind           string    `json:"kind"`
	Currency       string    `json:"currency"`
	Amount         int64     `json:"amount,omitempty"`
	Percent        int64     `json:"percent,omitempty"`
	Cap            int64     `json:"cap,omitempty"`
	MinSubtotal    int64     `json:"min_subtotal,omitempty"`
	StartsAt       time.Time `json:"starts_at"`
	EndsAt         time.Time `json:"ends_at"`
	Limit          int64     `json:"limit,omitempty"`
	PerBuyer       int64     `json:"per_buyer,omitempty"`
	FirstOrderOnly bool      `json:"first_order_only,omitempty"`
	GrantedOnly    bool      `json:"granted_only,omitempty"`
	ProductIDs     []string  `json:"product_ids,omitempty"`
	SellerIDs      []string  `json:"seller_ids,omitempty"`
	Paused         bool      `json:"paused,omitempty"`
}

func termsOf(c order.Coupon) couponJSON {
	return couponJSON{ID: c.ID, Code: c.Code, Source: string(c.Source), SellerID: c.SellerID, Kind: string(c.Kind), Currency: c.Currency,
		Amount: c.Amount, Percent: c.Percent, Cap: c.Cap, MinSubtotal: c.MinSubtotal, StartsAt: c.StartsAt, EndsAt: c.EndsAt,
		Limit: c.Limit, PerBuyer: c.PerBuyer, FirstOrderOnly: c.FirstOrderOnly, GrantedOnly: c.GrantedOnly,
		ProductIDs: c.ProductIDs, SellerIDs: c.SellerIDs, Paused: c.Paused}
}

func (j couponJSON) coupon() order.Coupon {
	return order.Coupon{ID: j.ID, Code: j.Code, Source: order.CouponSource(j.Source), SellerID: j.SellerID, Kind: order.CouponKind(j.Kind),
		Currency: j.Currency, Amount: j.Amount, Percent: j.Percent, Cap: j.Cap, MinSubtotal: j.MinSubtotal, StartsAt: j.StartsAt,
		EndsAt: j.EndsAt, Limit: j.Limit, PerBuyer: j.PerBuyer, FirstOrderOnly: j.FirstOrderOnly, GrantedOnly: j.GrantedOnly,
		ProductIDs: j.ProductIDs, SellerIDs: j.SellerIDs, Paused: j.Paused}
}

// StoredCoupon is a coupon with how many checkouts hold or used it.
type StoredCoupon struct {
	order.Coupon
	Used      int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

func scanCoupon(row pgx.Row, extra ...any) (order.Coupon, error) {
	var c order.Coupon
	var source, kind string
	err := row.Scan(append([]any{&c.ID, &c.Code, &source, &c.SellerID, &kind, &c.Currency, &c.Amount, &c.Percent, &c.Cap,
		&c.MinSubtotal, &c.StartsAt, &c.EndsAt, &c.Limit, &c.PerBuyer, &c.FirstOrderOnly, &c.GrantedOnly, &c.ProductIDs,
		&c.SellerIDs, &c.Paused}, extra...)...)
	c.Source, c.Kind = order.CouponSource(source), order.CouponKind(kind)
	return c, err
}

// ErrCouponCodeTaken is a code its issuer already uses for another coupon.
var ErrCouponCodeTaken = fmt.Errorf("%w: coupon code taken", order.ErrConflict)

// CreateCoupon stores a new, validated coupon under a new id, which it
// returns.
func (db *DB) CreateCoupon(ctx context.Context, c order.Coupon) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	c.ID = uuid.NewString()
	_, err := db.pool.Exec(ctx, `INSERT INTO coupons (`+couponWriteColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19)`,
		couponArgs(c)...)
	if isUnique(err, "coupons_code_idx") {
		return "", fmt.Errorf("%w: %s", ErrCouponCodeTaken, c.Code)
	}
	if err != nil {
		return "", fmt.Errorf("create coupon: %w", err)
	}
	return c.ID, nil
}

// couponWriteColumns are the columns a coupon's definition is written to,
// in the order of couponArgs.
const couponWriteColumns = `id, code, source, seller_id, kind, currency, amount_minor, percent, cap_minor, min_subtotal_minor,
	starts_at, ends_at, redemption_limit, per_buyer_limit, first_order_only, granted_only, product_ids, seller_ids, paused`

// couponArgs are a coupon's values for couponWriteColumns.
func couponArgs(c order.Coupon) []any {
	return []any{c.ID, c.Code, string(c.Source), c.SellerID, string(c.Kind), c.Currency, c.Amount, c.Percent, c.Cap, c.MinSubtotal,
		c.StartsAt, c.EndsAt, c.Limit, c.PerBuyer, c.FirstOrderOnly, c.GrantedOnly, nonNil(c.ProductIDs), nonNil(c.SellerIDs), c.Paused}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// UpdateCoupon changes a coupon of issuer (a store's id, or "" for the
// platform) under its row lock; fn's result is validated. Whatever it
// changes applies to checkouts from then on: a redemption keeps the terms
// it was made with. Another issuer's coupon is not found.
func (db *DB) UpdateCoupon(ctx context.Context, id, issuer string, fn func(*order.Coupon) error) (StoredCoupon, error) {
	var out StoredCoupon
	if _, err := uuid.Parse(id); err != nil {
		return out, fmt.Errorf("%w: coupon %s", order.ErrNotFound, id)
	}
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		c, err := scanCoupon(tx.QueryRow(ctx, `SELECT `+couponColumns+` FROM coupons WHERE id = $1 AND seller_id = $2 FOR UPDATE`, id, issuer))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: coupon %s", order.ErrNotFound, id)
		} else if err != nil {
			return err
		}
		code, source, seller := c.Code, c.Source, c.SellerID
		if err := fn(&c); err != nil {
			return err
		}
		c.ID, c.Source, c.SellerID = id, source, seller
		if err := c.Validate(); err != nil {
			return err
		}
		if c.Code != code {
			return invalidField("code", "a coupon's code cannot change: create another")
		}
		out.Coupon = c
		// Every column as CreateCoupon writes it (id, code, source and
		// store as they were), and the time of the change.
		return tx.QueryRow(ctx, `UPDATE coupons SET (`+couponWriteColumns+`) = ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19),
			updated_at = now() WHERE id = $1 RETURNING used, created_at, updated_at`, couponArgs(c)...).Scan(&out.Used, &out.CreatedAt, &out.UpdatedAt)
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23514" {
		return out, invalidField("limit", "the limit is below the redemptions the coupon already has")
	}
	return out, err
}

func invalidField(field, msg string) error { return &order.FieldError{Field: field, Msg: msg} }

// CouponByCode reads the coupon of issuer ("" for the platform) with code,
// in any case.
func (db *DB) CouponByCode(ctx context.Context, issuer, code string) (order.Coupon, error) {
	c, err := scanCoupon(db.pool.QueryRow(ctx, `SELECT `+couponColumns+` FROM coupons WHERE seller_id = $1 AND upper(code) = upper($2)`, issuer, code))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("%w: no coupon %q", order.ErrNotFound, code)
	}
	return c, err
}

// GrantCoupon grants a platform coupon to a buyer (again: nothing more).
func (db *DB) GrantCoupon(ctx context.Context, couponID, buyerID string) error {
	if _, err := uuid.Parse(couponID); err != nil {
		return fmt.Errorf("%w: coupon %s", order.ErrNotFound, couponID)
	}
	tag, err := db.pool.Exec(ctx, `INSERT INTO coupon_grants (coupon_id, buyer_id)
		SELECT id, $2 FROM coupons WHERE id = $1 AND source = 'PLATFORM' ON CONFLICT DO NOTHING`, couponID, buyerID)
	if err != nil {
		return fmt.Errorf("grant coupon: %w", err)
	}
	if tag.RowsAffected() == 0 {
		var ok bool
		if err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM coupon_grants WHERE coupon_id = $1 AND buyer_id = $2)`, couponID, buyerID).Scan(&ok); err != nil || !ok {
			return fmt.Errorf("%w: platform coupon %s", order.ErrNotFound, couponID)
		}
	}
	return nil
}

// BuyerCoupon is a platform coupon granted to a buyer, and how often the
// buyer holds or used it.
type BuyerCoupon struct {
	order.Coupon
	Uses int64
}

// GrantedCoupons lists the coupons granted to a buyer that have not ended
// at now, those ending first first.
func (db *DB) GrantedCoupons(ctx context.Context, buyerID string, now time.Time) ([]BuyerCoupon, error) {
	rows, _ := db.pool.Query(ctx, `SELECT `+prefixed("c.", couponColumns)+`,
		(SELECT count(*) FROM coupon_redemptions r WHERE r.coupon_id = c.id AND r.buyer_id = $1 AND r.state IN ('RESERVED', 'CONSUMED'))
		FROM coupon_grants g JOIN coupons c ON c.id = g.coupon_id WHERE g.buyer_id = $1 AND c.ends_at > $2 ORDER BY c.ends_at, c.id`, buyerID, now)
	defer rows.Close()
	var out []BuyerCoupon
	for rows.Next() {
		var b BuyerCoupon
		c, err := scanCoupon(rows, &b.Uses)
		if err != nil {
			return nil, err
		}
		b.Coupon = c
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("granted coupons: %w", err)
	}
	return out, nil
}

// prefixed qualifies each column of couponColumns with p.
func prefixed(p, columns string) string {
	parts := strings.Split(columns, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// CouponUse is what a coupon's redemptions came to: how many checkouts
// hold it unpaid, used it, gave it back or lost it, and what the used ones
// cost its issuer.
type CouponUse struct {
	order.Coupon
	Reserved, Consumed, Released, Lapsed int64
	// Cost is what the consumed redemptions took off, in the coupon's currency.
	Cost int64
}

// CouponUses reports the use of issuer's coupons ("" for the platform's).
func (db *DB) CouponUses(ctx context.Context, issuer string) ([]CouponUse, error) {
	rows, _ := db.pool.Query(ctx, `SELECT `+prefixed("c.", couponColumns)+`,
		count(*) FILTER (WHERE r.state = 'RESERVED'), count(*) FILTER (WHERE r.state = 'CONSUMED'),
		count(*) FILTER (WHERE r.state = 'RELEASED'), count(*) FILTER (WHERE r.state = 'LAPSED'),
		coalesce(sum(r.amount_minor) FILTER (WHERE r.state = 'CONSUMED'), 0)
		FROM coupons c LEFT JOIN coupon_redemptions r ON r.coupon_id = c.id
		WHERE c.seller_id = $1 GROUP BY c.id ORDER BY c.created_at DESC, c.id`, issuer)
	defer rows.Close()
	var out []CouponUse
	for rows.Next() {
		var u CouponUse
		c, err := scanCoupon(rows, &u.Reserved, &u.Consumed, &u.Released, &u.Lapsed, &u.Cost)
		if err != nil {
			return nil, err
		}
		u.Coupon = c
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("coupon uses: %w", err)
	}
	return out, nil
}

// CouponRefusedError is a coupon the checkout's transaction could not
// reserve; Reason says why (paused, not_started, ended, exhausted,
// per_buyer, first_order, not_granted, unknown).
type CouponRefusedError struct {
	Reason, Message string
}

func (e *CouponRefusedError) Error() string {
	return fmt.Sprintf("%s: %s", order.ErrIllegalTransition, e.Message)
}

// Unwrap makes the refusal a FAILED_PRECONDITION.
func (e *CouponRefusedError) Unwrap() error { return order.ErrIllegalTransition }

// queueRedemptions queues, in a checkout's transaction, the reservation of
// every coupon its orders use (souk_redeem_coupon, which checks the
// limits under the coupon's row lock) and the rows saying which order
// holds which coupon. Coupons are reserved in the order of their ids, so
// that two checkouts of the same coupons never wait for each other in a
// circle.
func queueRedemptions(b *pgx.Batch, orders []*order.Order) {
	terms := map[string]order.Coupon{}
	taken := map[string]int64{}
	type hold struct{ order, coupon, seller string }
	var holds []hold
	for _, o := range orders {
		for _, h := range o.Coupons() {
			terms[h.Coupon.ID] = h.Coupon
			holds = append(holds, hold{o.ID(), h.Coupon.ID, o.SellerID()})
		}
		for _, it := range o.Items() {
			for _, d := range it.Discounts {
				taken[d.CouponID] += d.Amount
			}
		}
	}
	if len(terms) == 0 {
		return
	}
	ids := make([]string, 0, len(terms))
	for id := range terms {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	checkout, buyer := orders[0].CheckoutID(), orders[0].BuyerID()
	for _, id := range ids {
		b.Queue(`SELECT souk_redeem_coupon($1, $2, $3, $4, $5)`, id, checkout, buyer, taken[id], termsOf(terms[id]))
	}
	for _, h := range holds {
		b.Queue(`INSERT INTO order_coupons (order_id, coupon_id, checkout_id, seller_id) VALUES ($1, $2, $3, $4)`,
			h.order, h.coupon, checkout, h.seller)
	}
}

// couponRefusal turns souk_redeem_coupon's refusal into a CouponRefusedError.
func couponRefusal(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "SK002" {
		return &CouponRefusedError{Reason: pgErr.Detail, Message: pgErr.Message}
	}
	return nil
}

// holdRow is an order's hold of a coupon, as order_coupons has it.
type holdRow struct{ order, coupon, checkout string }

// queueHoldRows queues the read of which coupons the orders of keys hold
// (a router read of order_coupons: most orders hold none) into holds.
func queueHoldRows(b *pgx.Batch, keys []orderKey, holds *[]holdRow) {
	match, args := keysIn("order_id", keys)
	b.Queue(`SELECT order_id::text, coupon_id::text, checkout_id::text FROM order_coupons WHERE `+match, args...).Query(func(rows pgx.Rows) error {
		var h holdRow
		_, err := pgx.ForEachRow(rows, []any{&h.order, &h.coupon, &h.checkout}, func() error {
			*holds = append(*holds, h)
			return nil
		})
		return err
	})
}

// loadHolds reads the coupons of the holds queueHoldRows found into
// found's orders, in a second round trip that only orders holding a
// coupon take. With lock, each checkout's redemption is locked before
// the other orders sharing it are read, so that they are read as their
// changes committed: of two orders of a checkout cancelled at once, the
// second sees the first cancelled and releases the coupon. (The orders'
// own rows are locked already; no transaction waits for an order while
// holding a redemption, so the two locks cannot wait in a circle.)
func loadHolds(ctx context.Context, q querier, found map[string]*order.Stored, holds []holdRow, lock bool) error {
	holds = slices.DeleteFunc(holds, func(h holdRow) bool { return found[h.order] == nil }) // skipped by SKIP LOCKED
	if len(holds) == 0 {
		return nil
	}
	coupons, checkouts := make([]string, len(holds)), make([]string, len(holds))
	for i, h := range holds {
		coupons[i], checkouts[i] = h.coupon, h.checkout
	}
	b := &pgx.Batch{}
	if lock {
		b.Queue(`SELECT 1 FROM coupon_redemptions WHERE (coupon_id, checkout_id) IN
			(SELECT * FROM unnest($1::uuid[], $2::uuid[])) ORDER BY coupon_id, checkout_id FOR UPDATE`, coupons, checkouts)
	}
	// The terms are the checkout's; the end is the coupon's as it stands
	// (an issuer may end it early): it decides a release.
	type redemption struct {
		state string
		terms couponJSON
		ends  time.Time
	}
	redemptions := map[[2]string]redemption{}
	b.Queue(`SELECT r.coupon_id::text, r.checkout_id::text, r.state, r.terms, c.ends_at
		FROM coupon_redemptions r JOIN coupons c ON c.id = r.coupon_id
		WHERE (r.coupon_id, r.checkout_id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))`, coupons, checkouts).Query(func(rows pgx.Rows) error {
		var coupon, checkout string
		var r redemption
		_, err := pgx.ForEachRow(rows, []any{&coupon, &checkout, &r.state, &r.terms, &r.ends}, func() error {
			redemptions[[2]string{coupon, checkout}] = r
			return nil
		})
		return err
	})
	// The orders of the checkouts (other stores' too) holding the coupons
	// and not cancelled.
	holders := map[[2]string][]string{}
	b.Queue(`SELECT o.coupon_id::text, o.checkout_id::text, o.order_id::text FROM order_coupons o
		JOIN orders x ON x.id = o.order_id AND x.seller_id = o.seller_id
		WHERE o.coupon_id = ANY($1::uuid[]) AND o.checkout_id = ANY($2::uuid[]) AND x.status <> 'CANCELLED'
		ORDER BY o.order_id`, coupons, checkouts).Query(func(rows pgx.Rows) error {
		var coupon, checkout, id string
		_, err := pgx.ForEachRow(rows, []any{&coupon, &checkout, &id}, func() error {
			k := [2]string{coupon, checkout}
			holders[k] = append(holders[k], id)
			return nil
		})
		return err
	})
	if err := q.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("load coupon holds: %w", err)
	}
	for _, h := range holds {
		k := [2]string{h.coupon, h.checkout}
		r, ok := redemptions[k]
		s := found[h.order]
		if !ok || s == nil {
			continue
		}
		c := r.terms.coupon()
		c.EndsAt = r.ends
		var shared []string
		for _, id := range holders[k] {
			if id != h.order {
				shared = append(shared, id)
			}
		}
		s.Coupons = append(s.Coupons, order.CouponHold{Coupon: c, State: order.HoldState(r.state), SharedWith: shared})
	}
	// A store's coupon before the platform's, then by coupon.
	for _, s := range found {
		slices.SortStableFunc(s.Coupons, func(a, b order.CouponHold) int {
			if a.Coupon.Source != b.Coupon.Source {
				return -strings.Compare(string(a.Coupon.Source), string(b.Coupon.Source))
			}
			return strings.Compare(a.Coupon.ID, b.Coupon.ID)
		})
	}
	return nil
}

// queueHoldChanges queues the write of what a change did to its order's
// coupons: consumed, released (the coupon counts one use less) or lapsed.
// Each only from RESERVED, so that a redemption changes once.
func queueHoldChanges(b *pgx.Batch, s, old order.Stored) {
	for _, h := range s.Coupons {
		i := indexHold(old.Coupons, h.Coupon.ID)
		if i < 0 || old.Coupons[i].State == h.State || old.Coupons[i].State != order.HoldReserved {
			continue
		}
		b.Queue(`WITH r AS (UPDATE coupon_redemptions SET state = $3, updated_at = now()
				WHERE coupon_id = $1 AND checkout_id = $2 AND state = 'RESERVED' RETURNING state)
			UPDATE coupons SET used = used - 1 WHERE id = $1 AND EXISTS (SELECT 1 FROM r WHERE state = 'RELEASED')`,
			h.Coupon.ID, s.CheckoutID, string(h.State))
	}
}

func indexHold(hs []order.CouponHold, id string) int {
	for i, h := range hs {
		if h.Coupon.ID == id {
			return i
		}
	}
	return -1
}

// CouponRefusal says why buyer could not redeem the coupon now (nil if it
// could): what a checkout's transaction would find, for a preview.
func (db *DB) CouponRefusal(ctx context.Context, couponID, buyer string) error {
	var reason, msg *string
	if err := db.pool.QueryRow(ctx, `SELECT reason, message FROM souk_coupon_refusal($1, $2)`, couponID, buyer).Scan(&reason, &msg); err != nil {
		return fmt.Errorf("check coupon: %w", err)
	}
	if reason == nil {
		return nil
	}
	return &CouponRefusedError{Reason: *reason, Message: *msg}
}
