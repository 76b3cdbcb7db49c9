package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
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
	if key, ok := order.KeyOf(p.ID); ok && key == order.StoreKey(p.SellerID) {
		if err := db.registerStore(ctx, p.SellerID); err != nil {
			return err
		}
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO products (`+productColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)`,
		p.ID, p.SellerID, p.Title, p.Currency, p.Price, p.ShippingFee, p.Stock, p.HandlingDays, p.CreatedAt, p.UpdatedAt, p.ProtectionDays, p.Plan)
	if isUnique(err, "products_pkey") {
		return fmt.Errorf("%w (product %s)", ErrIDTaken, p.ID)
	}
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
			handling_days = $6, updated_at = $7, protection_days = $8, payment_plan = $9 WHERE id = $1 AND seller_id = $10`, p.ID, p.Title, p.Price,
			p.ShippingFee, p.Stock, p.HandlingDays, p.UpdatedAt, p.ProtectionDays, p.Plan, p.SellerID)
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
	keys, err := db.productKeys(ctx, items)
	if err != nil {
		return nil, fmt.Errorf("reserve stock: %w", err)
	}
	store := make(map[string]string, len(keys))
	for _, k := range keys {
		store[k.id] = k.seller
	}
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
			seller, ok := store[canonical(it.ProductID)]
			if !ok {
				return fmt.Errorf("%w: %s", catalog.ErrNotFound, it.ProductID)
			}
			p, err := scanProduct(tx.QueryRow(ctx, `UPDATE products SET stock = stock - $2 WHERE id = $1 AND seller_id = $3 AND stock >= $2
				RETURNING `+productColumns, it.ProductID, take, seller))
			if isNoRows(err) {
				if err := tx.QueryRow(ctx, `SELECT 1 FROM products WHERE id = $1 AND seller_id = $2`, it.ProductID, seller).Scan(new(int)); isNoRows(err) {
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
			if _, err := tx.Exec(ctx, `INSERT INTO stock_reservations (checkout_id, product_id, quantity, created_at, seller_id)
				VALUES ($1, $2, $3, $4, $5)`, checkoutID, it.ProductID, it.Quantity, now, p.SellerID); err != nil {
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
	err = db.inTx(ctx, reserve)
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

// productKey names a product's row: its id and its store.
type productKey struct{ id, seller string }

// queueRestock queues giving quantities back to their products, a
// statement a product (summed: one however many orders of a batch give
// it back), in id order: checkouts lock products in that order too, so
// the two cannot deadlock.
func queueRestock(b *pgx.Batch, sum map[productKey]int64) {
	keys := slices.SortedFunc(maps.Keys(sum), func(a, b productKey) int { return strings.Compare(a.id, b.id) })
	for _, k := range keys {
		b.Queue(`UPDATE products SET stock = stock + $3 WHERE id = $1 AND seller_id = $2`, k.id, k.seller, sum[k])
	}
}

func releaseStock(ctx context.Context, tx pgx.Tx, checkoutID string, productIDs []string) (int64, error) {
	if productIDs == nil {
		productIDs = []string{}
	}
	// The reservation's products, with their stores (a checkout's span
	// stores: on Citus this read visits every shard), then each product
	// locked in id order, as checkouts lock them, and its units given back.
	rows, _ := tx.Query(ctx, `SELECT product_id::text, seller_id FROM stock_reservations
		WHERE checkout_id = $1 AND (cardinality($2::uuid[]) = 0 OR product_id = ANY($2::uuid[])) ORDER BY product_id`,
		checkoutID, productIDs)
	var keys []productKey
	var k productKey
	if _, err := pgx.ForEachRow(rows, []any{&k.id, &k.seller}, func() error {
		keys = append(keys, k)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("release stock: %w", err)
	}
	var n int64
	for _, k := range keys {
		var q int64
		err := tx.QueryRow(ctx, `WITH p AS (SELECT 1 FROM products WHERE id = $2 AND seller_id = $3 FOR UPDATE),
			released AS (DELETE FROM stock_reservations WHERE checkout_id = $1 AND product_id = $2 AND seller_id = $3
				AND EXISTS (SELECT 1 FROM p) RETURNING quantity)
			UPDATE products SET stock = stock + (SELECT quantity FROM released) WHERE id = $2 AND seller_id = $3
				AND EXISTS (SELECT 1 FROM released) RETURNING (SELECT quantity FROM released)`, checkoutID, k.id, k.seller).Scan(&q)
		if isNoRows(err) {
			continue // released meanwhile
		} else if err != nil {
			return 0, fmt.Errorf("release stock: %w", err)
		}
		n += q
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

// productKeys routes the items' products to their stores (keysOf).
func (db *DB) productKeys(ctx context.Context, items []StockItem) ([]orderKey, error) {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ProductID
	}
	return read(ctx, func() ([]orderKey, error) { return db.keysOf(ctx, "products", ids) })
}

// Quote reads products as Reserve would price them, reserving nothing: a
// product that does not exist is catalog.ErrNotFound, one with fewer units
// than asked catalog.ErrOutOfStock.
func (db *DB) Quote(ctx context.Context, items []StockItem) ([]catalog.Product, error) {
	keys, err := db.productKeys(ctx, items)
	if err != nil {
		return nil, fmt.Errorf("quote: %w", err)
	}
	match, args := keysIn("id", keys)
	if len(keys) == 0 {
		match, args = "false", nil
	}
	rows, _ := db.pool.Query(ctx, `SELECT `+productColumns+` FROM products WHERE `+match, args...)
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
