package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/souk-dev/souk/internal/order"
)

// routes knows which store holds a row named by id alone (an order id a
// buyer holds): the store keys ids begin with (order.NewID), as
// store_keys has them. A key's store never changes, so what was read once
// is kept for the life of the process.
//
// A key store_keys does not hold (an id made up, or made by another
// system) is remembered as missing for missTTL, so that calls naming it
// go straight to the lookup by id instead of asking store_keys each time.
// The lookup by id finds any row whatever its key, so a miss remembered
// while its store registers delays nothing but the shortcut.
type routes struct {
	stores sync.Map // int64 key → string seller id
	mu     sync.Mutex
	misses map[int64]time.Time // key → when its miss is forgotten
}

// missTTL is how long a key store_keys did not hold is not asked again;
// maxMisses bounds the keys remembered (made-up ids are anyone's to send).
const (
	missTTL   = 5 * time.Second
	maxMisses = 10_000
)

// missing reports whether key was looked up and not found less than
// missTTL ago.
func (r *routes) missing(key int64, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	until, ok := r.misses[key]
	return ok && now.Before(until)
}

// missed remembers keys store_keys did not hold, forgetting every miss
// when there are too many to keep.
func (r *routes) missed(keys []int64, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.misses == nil || len(r.misses)+len(keys) > maxMisses {
		r.misses = make(map[int64]time.Time)
	}
	for _, k := range keys {
		r.misses[k] = now.Add(missTTL)
	}
}

// found forgets a miss of key (its store registered here).
func (r *routes) found(key int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.misses, key)
}

// orderKey names an order's row as a table distributed by store keys it:
// its id and its store.
type orderKey struct{ id, seller string }

// registerStore records the key the store's new ids begin with, once per
// process and store. A different store already holding the key (one
// chance in 2^62 a pair) is an error: its ids would route elsewhere.
func (db *DB) registerStore(ctx context.Context, sellerID string) error {
	key := order.StoreKey(sellerID)
	if s, ok := db.routes.stores.Load(key); ok && s == sellerID {
		return nil
	}
	// Read first: a store registers once, and every process meets it
	// again. On Citus store_keys is a reference table, read from the
	// node's own copy, while a write to it (even one that conflicts) is a
	// two-phase commit with every node.
	var holder string
	err := db.pool.QueryRow(ctx, `SELECT seller_id FROM store_keys WHERE key = $1`, key).Scan(&holder)
	if errors.Is(err, pgx.ErrNoRows) {
		err = db.pool.QueryRow(ctx, `WITH ins AS (INSERT INTO store_keys (key, seller_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING seller_id)
			SELECT seller_id FROM ins UNION ALL SELECT seller_id FROM store_keys WHERE key = $1`, key, sellerID).Scan(&holder)
	}
	if err != nil {
		return fmt.Errorf("register store %s: %w", sellerID, err)
	}
	if holder != sellerID {
		return fmt.Errorf("%w: store %s's ids would carry key %016x, which store %s holds; give the store another id",
			order.ErrStoreKeyTaken, sellerID, uint64(key), holder)
	}
	db.routes.stores.Store(key, sellerID)
	db.routes.found(key)
	return nil
}

// keysOf returns the stores holding the rows of table (orders or products)
// with the given ids, in the order of ids, leaving out ids that are not
// UUIDs or name no row. An id made by order.NewID is routed by its key (a
// read of store_keys the first time a process meets the key); an older,
// random one by a read of table by id alone (on Citus, an index probe on
// every shard).
func (db *DB) keysOf(ctx context.Context, table string, ids []string) ([]orderKey, error) {
	// Keys this process has not met, nor missed lately: none on nearly
	// every call, which then allocates nothing and reads no clock.
	var unknown map[int64]bool
	var now time.Time
	for _, id := range ids {
		key, ok := order.KeyOf(id)
		if !ok {
			continue
		}
		if _, ok := db.routes.stores.Load(key); ok {
			continue
		}
		if unknown == nil {
			unknown, now = map[int64]bool{}, time.Now()
		}
		if !db.routes.missing(key, now) {
			unknown[key] = true
		}
	}
	if len(unknown) > 0 {
		match, arg := oneOrAny(1, "bigint", slices.Collect(maps.Keys(unknown)))
		rows, _ := db.pool.Query(ctx, `SELECT key, seller_id FROM store_keys WHERE key `+match, arg)
		var key int64
		var s string
		if _, err := pgx.ForEachRow(rows, []any{&key, &s}, func() error {
			db.routes.stores.Store(key, s)
			delete(unknown, key)
			return nil
		}); err != nil {
			return nil, fmt.Errorf("route ids: %w", err)
		}
		db.routes.missed(slices.Collect(maps.Keys(unknown)), now)
	}
	seller := make(map[string]string, len(ids))
	// What no key routes: ids made before ids carried their store (or
	// with a key no store registered), looked up by id.
	var legacy []string
	for _, id := range ids {
		u, err := uuid.Parse(id)
		if err != nil {
			continue
		}
		if key, ok := order.KeyOf(id); ok {
			if s, ok := db.routes.stores.Load(key); ok {
				seller[u.String()] = s.(string)
				continue
			}
		}
		legacy = append(legacy, u.String())
	}
	if len(legacy) > 0 {
		match, arg := oneOrAny(1, "uuid", legacy)
		rows, _ := db.pool.Query(ctx, `SELECT id::text, seller_id FROM `+table+` WHERE id `+match, arg)
		var id, s string
		if _, err := pgx.ForEachRow(rows, []any{&id, &s}, func() error {
			seller[id] = s
			return nil
		}); err != nil {
			return nil, fmt.Errorf("route ids: %w", err)
		}
	}
	out := make([]orderKey, 0, len(ids))
	for _, id := range ids {
		if s, ok := seller[canonical(id)]; ok {
			out = append(out, orderKey{canonical(id), s})
		}
	}
	return out, nil
}

// keyOf is keysOf for one order; an id that names no order is ErrNotFound.
// It tries once: a caller that retries a read wraps it with read.
func (db *DB) keyOf(ctx context.Context, id string) (orderKey, error) {
	ks, err := db.keysOf(ctx, "orders", []string{id})
	if err != nil {
		return orderKey{}, err
	}
	if len(ks) == 0 {
		return orderKey{}, fmt.Errorf("%w: order %s", order.ErrNotFound, id)
	}
	return ks[0], nil
}

// canonical is a UUID's canonical text, or id as it is if it is none.
func canonical(id string) string {
	if u, err := uuid.Parse(id); err == nil {
		return u.String()
	}
	return id
}
