package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/souk-dev/souk/internal/catalog"
	"github.com/souk-dev/souk/internal/order"
)

const productColumns = `id, seller_id, title, currency, price_minor, shipping_fee_minor, stock, handling_days, created_at, updated_at,
	protection_days, payment_plan`

func scanProduct(row pgx.Row) (catalog.Product, error) {
	var p catalog.Product
	err := row.Scan(&p.ID, &p.SellerID, &p.Title, &p.Currency, &p.Price, &p.ShippingFee, &p.Stock, &p.HandlingDays,
		&p.CreatedAt, &p.UpdatedAt, &p.ProtectionDays, &p.Plan)
	return p, err
}

// CreateProduct stores a new product.
func (db *DB) CreateProduct(ctx context.Context, p catalog.Product) error {
	if err := p.Validate(); err != nil {
		return err
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO products (`+productColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)`,
		p.ID, p.SellerID, p.Title, p.Currency, p.Price, p.ShippingFee, p.Stock, p.HandlingDays, p.CreatedAt, p.UpdatedAt, p.ProtectionDays, p.Plan)
	if err != nil {
		return fmt.Errorf("insert product: %w", err)
	}
	return nil
}

// UpdateProduct applies fn to a seller's product in one transaction. A
// product of another seller is reported as not found.
func (db *DB) UpdateProduct(ctx context.Context, id, sellerID string, fn func(*catalog.Product) error) (catalog.Product, error) {
	var p catalog.Product
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		p, err = scanProduct(tx.QueryRow(ctx, `SELECT `+productColumns+` FROM products WHERE id = $1 AND seller_id = $2 FOR UPDATE`, id, sellerID))
		if isNoRows(err) {
			return fmt.Errorf("%w: %s", catalog.ErrNotFound, id)
		} else if err != nil {
			return fmt.Errorf("lock product: %w", err)
		}
		if err := fn(&p); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE products SET title = $2, price_minor = $3, shipping_fee_minor = $4, stock = $5,
			handling_days = $6, updated_at = $7, protection_days = $8, payment_plan = $9 WHERE id = $1`, p.ID, p.Title, p.Price, p.ShippingFee, p.Stock,
			p.HandlingDays, p.UpdatedAt, p.ProtectionDays, p.Plan)
		if err != nil {
			return fmt.Errorf("write product: %w", err)
		}
		return nil
	})
	return p, err
}

// ListProducts returns one page of a seller's products, newest first, and
// the token of the next page ("" on the last).
func (db *DB) ListProducts(ctx context.Context, sellerID string, pageSize int, pageToken string) ([]catalog.Product, string, error) {
	var f filter
	f.and("seller_id = ?", sellerID)
	if err := f.after(pageToken, "(created_at, id) < (?, ?::uuid)"); err != nil {
		return nil, "", err
	}
	where, args := f.where("ORDER BY created_at DESC, id DESC", pageSize+1)
	rows, _ := db.pool.Query(ctx, `SELECT `+productColumns+` FROM products `+where, args...)
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (catalog.Product, error) { return scanProduct(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list products: %w", err)
	}
	ps, next := trimPage(ps, pageSize, func(p catalog.Product) (time.Time, string) { return p.CreatedAt, p.ID })
	return ps, next, nil
}

// StockItem is a product and a quantity to reserve.
type StockItem struct {
	ProductID string
	Quantity  int64
}

// Reserve takes stock for every item of a checkout, all or nothing, and
// returns the products (as priced now) in the order of items. Reserving a
// checkout again returns its products without taking more stock.
func (db *DB) Reserve(ctx context.Context, checkoutID string, items []StockItem, now time.Time) ([]catalog.Product, error) {
	byID := map[string]catalog.Product{}
	reserve := func(tx pgx.Tx) error {
		// Reservations of one checkout (its retries) go one at a time; a
		// retry finds the first one's reservation, or, once the orders are
		// stored (which drops the reservation), the orders: either way it
		// takes nothing.
		var held bool
		if err := tx.QueryRow(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('reserve:' || $1::text, 0))::text = '',
			EXISTS (SELECT 1 FROM stock_reservations WHERE checkout_id = $1::uuid) OR EXISTS (SELECT 1 FROM orders WHERE checkout_id = $1::uuid)`,
			checkoutID).Scan(new(bool), &held); err != nil {
			return fmt.Errorf("check reservation: %w", err)
		}
		// Lock products in one order so concurrent checkouts cannot deadlock.
		sorted := slices.Clone(items)
		slices.SortFunc(sorted, func(a, b StockItem) int { return compareStrings(a.ProductID, b.ProductID) })
		for i, it := range sorted {
			if i > 0 && sorted[i-1].ProductID == it.ProductID {
				return fmt.Errorf("%w: product %s appears twice", order.ErrInvalid, it.ProductID)
			}
			take := it.Quantity
			if held {
				take = 0 // a replay: the stock was taken the first time
			}
			p, err := scanProduct(tx.QueryRow(ctx, `UPDATE products SET stock = stock - $2 WHERE id = $1 AND stock >= $2
				RETURNING `+productColumns, it.ProductID, take))
			if isNoRows(err) {
				if err := tx.QueryRow(ctx, `SELECT 1 FROM products WHERE id = $1`, it.ProductID).Scan(new(int)); isNoRows(err) {
					return fmt.Errorf("%w: %s", catalog.ErrNotFound, it.ProductID)
				}
				return fmt.Errorf("%w: product %s has fewer than %d units left", catalog.ErrOutOfStock, it.ProductID, it.Quantity)
			} else if err != nil {
				return fmt.Errorf("reserve stock: %w", err)
			}
			byID[p.ID] = p
			if held {
				continue
			}
			if _, err := tx.Exec(ctx, `INSERT INTO stock_reservations (checkout_id, product_id, quantity, created_at)
				VALUES ($1, $2, $3, $4)`, checkoutID, it.ProductID, it.Quantity, now); err != nil {
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && pgErr.Code == "23505" {
					return fmt.Errorf("%w: checkout %s is being reserved concurrently", errReservedConcurrently, checkoutID)
				}
				return fmt.Errorf("reserve stock: %w", err)
			}
		}
		return nil
	}
	// A request reserving the same checkout at the same time (a retried
	// checkout) makes the insert of the reservation wait for it; once it
	// committed, running again finds its reservation and takes nothing.
	err := db.inTx(ctx, reserve)
	if errors.Is(err, errReservedConcurrently) {
		err = db.inTx(ctx, reserve)
	}
	if errors.Is(err, errReservedConcurrently) {
		err = fmt.Errorf("%w: %w", order.ErrConflict, err)
	}
	if err != nil {
		return nil, err
	}
	out := make([]catalog.Product, len(items))
	for i, it := range items {
		out[i] = byID[it.ProductID]
	}
	return out, nil
}

// errReservedConcurrently means another transaction reserved the same checkout meanwhile.
var errReservedConcurrently = errors.New("reserved concurrently")

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Release gives back what a checkout reserved: all of it, or the products
// named. It returns the units released; releasing twice releases nothing.
func (db *DB) Release(ctx context.Context, checkoutID string, productIDs []string) (int64, error) {
	var n int64
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		n, err = releaseStock(ctx, tx, checkoutID, productIDs)
		return err
	})
	return n, err
}

// releaseSQL gives back a checkout's reservation ($1), of the products $2
// (all when empty), and returns the units released. releaseStock locks the
// products first.
const releaseSQL = `WITH released AS (
		DELETE FROM stock_reservations WHERE checkout_id = $1
		AND (cardinality($2::uuid[]) = 0 OR product_id = ANY($2::uuid[]))
		RETURNING product_id, quantity),
	restocked AS (
		UPDATE products p SET stock = p.stock + r.quantity FROM released r WHERE p.id = r.product_id
		RETURNING r.quantity)
	SELECT coalesce(sum(quantity), 0)::bigint FROM restocked`

// queueRestock queues giving the items' quantities back to their products
// (summed per product: one row each, however many orders a batch gives
// back), locking the products in id order first: checkouts take them in
// that order too, so the two cannot deadlock.
func queueRestock(b *pgx.Batch, items []order.Item) {
	sum := map[string]int64{}
	for _, it := range items {
		sum[it.ProductID] += it.Quantity
	}
	ids := slices.Sorted(maps.Keys(sum))
	qty := make([]int64, len(ids))
	for i, id := range ids {
		qty[i] = sum[id]
	}
	match, arg := keyIn(ids)
	b.Queue(`SELECT 1 FROM products WHERE id `+match+` ORDER BY id FOR UPDATE`, arg)
	b.Queue(`UPDATE products p SET stock = p.stock + v.quantity
		FROM unnest($1::uuid[], $2::bigint[]) AS v(id, quantity) WHERE p.id = v.id`, ids, qty)
}

func releaseStock(ctx context.Context, tx pgx.Tx, checkoutID string, productIDs []string) (int64, error) {
	if productIDs == nil {
		productIDs = []string{}
	}
	// Products are locked in id order, as checkouts lock them.
	if _, err := tx.Exec(ctx, `SELECT 1 FROM products WHERE id IN (SELECT product_id FROM stock_reservations
		WHERE checkout_id = $1 AND (cardinality($2::uuid[]) = 0 OR product_id = ANY($2::uuid[]))) ORDER BY id FOR UPDATE`,
		checkoutID, productIDs); err != nil {
		return 0, fmt.Errorf("release stock: %w", err)
	}
	var n int64
	if err := tx.QueryRow(ctx, releaseSQL, checkoutID, productIDs).Scan(&n); err != nil {
		return 0, fmt.Errorf("release stock: %w", err)
	}
	return n, nil
}

// ReleaseAbandoned releases reservations older than before: storing a
// checkout's orders deletes its reservation, so one still there was left by
// a checkout that failed between reserving and storing (or by a duplicate
// of a stored checkout whose release did not go through). It reads only
// the checkouts in flight, never the sales history, and returns the units
// released.
func (db *DB) ReleaseAbandoned(ctx context.Context, before time.Time) (int64, error) {
	rows, _ := db.pool.Query(ctx, `SELECT DISTINCT checkout_id::text FROM stock_reservations WHERE created_at < $1 LIMIT 500`, before)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("find abandoned reservations: %w", err)
	}
	var total int64
	for _, id := range ids {
		n, err := db.Release(ctx, id, nil)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// Quote reads products as Reserve would price them, reserving nothing: a
// product that does not exist is catalog.ErrNotFound, one with fewer units
// than asked catalog.ErrOutOfStock.
func (db *DB) Quote(ctx context.Context, items []StockItem) ([]catalog.Product, error) {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ProductID
	}
	rows, _ := db.pool.Query(ctx, `SELECT `+productColumns+` FROM products WHERE id = ANY($1::uuid[])`, ids)
	byID := map[string]catalog.Product{}
	for rows.Next() {
		p, err := scanProduct(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		byID[p.ID] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("quote products: %w", err)
	}
	out := make([]catalog.Product, len(items))
	for i, it := range items {
		p, ok := byID[it.ProductID]
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: %s", catalog.ErrNotFound, it.ProductID)
		case p.Stock < it.Quantity:
			return nil, fmt.Errorf("%w: product %s has fewer than %d units left", catalog.ErrOutOfStock, it.ProductID, it.Quantity)
		}
		out[i] = p
	}
	return out, nil
}
