package order

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"

	"github.com/google/uuid"
)

// NewID returns a new id for an order or a product of the given store: a
// UUID (version 8) whose last eight bytes are the store's key (StoreKey)
// and whose first are random (60 bits; the start of an id, which the
// dashboard shows as its short form, differs from order to order). An id
// alone thus says which store's shard holds the row on a database
// distributed by store (Citus), with no lookup per id: the store behind a
// key is written once (store_keys) and cached.
func NewID(sellerID string) string {
	var id uuid.UUID
	_, _ = rand.Read(id[:8])  // never fails (crypto/rand)
	id[6] = id[6]&0x0f | 0x80 // version 8
	binary.BigEndian.PutUint64(id[8:], uint64(StoreKey(sellerID)))
	return id.String()
}

// StoreKey is the key a store's ids end with: eight bytes of SHA-256 of
// its id, with the RFC 9562 variant in the first byte's high bits. Two
// stores sharing a key (a chance of one in 2^62 a pair) are refused when
// the second is registered.
func StoreKey(sellerID string) int64 {
	sum := sha256.Sum256([]byte("souk-store:" + sellerID))
	sum[0] = sum[0]&0x3f | 0x80
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// KeyOf returns the store key an id made by NewID ends with, and false
// for any other id (a random UUID made before ids carried their store).
func KeyOf(id string) (int64, bool) {
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 8 || u.Variant() != uuid.RFC4122 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(u[8:])), true
}
