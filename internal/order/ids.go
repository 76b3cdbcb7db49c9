package order

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/google/uuid"
)

// NewID returns a new id for an order or a product of the given store,
// made now (NewIDAt).
func NewID(sellerID string) string { return NewIDAt(sellerID, time.Now()) }

// NewIDAt returns a new id for an order or a product of the given store
// made at t: a UUID (version 8) whose last eight bytes are the store's key
// (StoreKey), whose first two are the day of t (days since 1970, UTC; they
// wrap in 2149), and whose other 44 bits are random. An id alone thus says
// which store's shard holds the row on a database distributed by store
// (Citus), with no lookup per id: the store behind a key is written once
// (store_keys) and cached.
//
// The day comes first so that the rows a day makes sit together in every
// index that begins with an order's id (its key, its events', attempts'
// and deadlines' keys): the pages a day's orders are written into and
// read back from stay in the buffers, where ids random from their first
// byte put each new order, and each order the sweeper fires, in a page
// of its own anywhere in indexes of every order ever made. A store's ids
// of one day differ in 44 random bits: two alike (about one chance in
// 350,000 for a store taking 10,000 orders that day, one in 35 for a
// million) is refused by the key, and a checkout then makes its ids again
// (postgres.ErrIDTaken). The
// dashboard's short form of an id is the eight random digits after the
// day.
func NewIDAt(sellerID string, t time.Time) string {
	var random [6]byte
	_, _ = rand.Read(random[:]) // never fails (crypto/rand)
	return IDOf(sellerID, t, random)
}

// IDTries is how often an order's or a product's id is made when the one
// made is taken.
const IDTries = 3

// IDOf is the id NewIDAt makes with the given random bytes (the high
// half of the fifth gives way to the version): ids made again alike, as a
// benchmark's seed makes them.
func IDOf(sellerID string, t time.Time, random [6]byte) string {
	var id uuid.UUID
	binary.BigEndian.PutUint16(id[:2], uint16(max(t.Unix(), 0)/86400))
	copy(id[2:8], random[:])
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
