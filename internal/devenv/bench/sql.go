package main

import (
	"fmt"
	"strings"
)

// The pgbench scripts of what each operation needs of PostgreSQL: the
// statements Souk sends, with the same transactions and the same
// pipelining (a batch is one pipeline; an update of an order sends BEGIN
// with its reads and COMMIT with its writes, pgx's own transactions send
// each alone), on the bench's copy of the record. Orders and products are
// named as the seed names them: bench_id('o' || n) (benchID).

// load is Souk's read of one order (the row, with its deadlines, which
// coupons it holds (the bench's orders hold none: Souk reads no more of
// them), its attempts, refunds and history) in one pipeline, after first (BEGIN, or
// nothing); id is an SQL expression.
func load(first, id, lock string) string {
	return "\\startpipeline\n" + first + loadStatements(id, "'bench-store'", lock) + "\\endpipeline\n"
}

// loadStatements are load's statements, one a line, of the order id of
// the store seller (SQL expressions).
func loadStatements(id, seller, lock string) string {
	return fmt.Sprintf(`SELECT * FROM orders WHERE id = %[1]s AND seller_id = %[3]s%[2]s;
SELECT order_id, coupon_id, checkout_id FROM order_coupons WHERE order_id = %[1]s AND seller_id = %[3]s;
SELECT * FROM payment_attempts WHERE order_id = %[1]s AND seller_id = %[3]s ORDER BY created_at, id;
SELECT * FROM refunds WHERE order_id = %[1]s AND seller_id = %[3]s ORDER BY created_at, id;
SELECT * FROM (SELECT * FROM order_events WHERE order_id = %[1]s AND seller_id = %[3]s ORDER BY sequence DESC LIMIT 200) e;
`, id, lock, seller)
}

const orderID = "bench_id('o' || (:n)::int)"

func pick(first, size int) string {
	return fmt.Sprintf("\\set n random(%d, %d)\n", first, first+size-1)
}

// event is the insert of one history event of the order, queued for the
// relay in the same statement, as Souk writes it.
func event(kind string) string {
	return `WITH e AS (INSERT INTO order_events (order_id, sequence, kind, actor, occurred_at, note, status_after, version_after, seller_id)
  VALUES (` + orderID + `, nextval('bench_seq'), '` + kind + `', 'system', now(), '', 'PENDING_PAYMENT', 2, 'bench-store') RETURNING id, occurred_at)
  INSERT INTO event_queue SELECT id, occurred_at FROM e;
`
}

// update is Souk's change of an order in two round trips: BEGIN with the
// reads (the row locked), then write.
func update(writes ...string) string {
	return load("BEGIN;\n", orderID, " FOR UPDATE") + write("", writes...)
}

// write is the second round trip of a change, after first: the row at its
// version (checked by souk_expect_changed, as Souk checks it), the other
// writes and COMMIT.
func write(first string, writes ...string) string {
	return `\startpipeline
` + first + `WITH changed AS (UPDATE orders o SET version = o.version + 1, updated_at = now(), shipping_fee_minor = o.shipping_fee_minor
  WHERE o.id = ` + orderID + ` AND o.seller_id = 'bench-store' RETURNING 1)
  SELECT souk_expect_changed(count(*), 1) FROM changed;
` + strings.Join(writes, "") + `COMMIT;
\endpipeline
`
}

func replaceDeadlines(kinds ...string) string {
	s := "DELETE FROM order_deadlines WHERE order_id = " + orderID + " AND seller_id = 'bench-store';\n"
	for _, k := range kinds {
		s += "INSERT INTO order_deadlines (order_id, kind, due_at, seller_id) VALUES (" + orderID + ", '" + k + "', now() + interval '3 days', 'bench-store');\n"
	}
	return s
}

func getOrderSQL(first, size int) string { return pick(first, size) + load("", orderID, "") }

// listOrdersSQL: a page of the buyer's orders (one more than the page, to
// know whether another follows), their deadlines on their rows.
const listOrdersSQL = `SELECT * FROM orders WHERE buyer_id = 'bench-buyer' ORDER BY created_at DESC, id DESC LIMIT 21;
`

// hotCoupon is the code of the platform coupon of "Checkout (hot coupon)".
const hotCoupon = "BENCHHOT"

// checkoutCouponSQL is checkoutSQL (spread) with the hot coupon: read by
// its code first, redeemed under its row lock and held by the order in the
// order's transaction.
var checkoutCouponSQL = strings.Replace(strings.Replace(checkoutSQL(false), "BEGIN;\nSELECT pg_advisory",
	"SELECT "+strings.ReplaceAll(couponCols, "\n", " ")+" FROM coupons WHERE seller_id = '' AND upper(code) = upper('"+hotCoupon+"');\nBEGIN;\nSELECT pg_advisory", 1),
	"COMMIT;\n\\endpipeline", `SELECT souk_redeem_coupon(md5('hot-coupon')::uuid, md5('c' || (:c)::bigint)::uuid, 'bench-buyer', 100,
  '{"code": "`+hotCoupon+`", "source": "PLATFORM", "kind": "AMOUNT_OFF", "currency": "USD", "amount": 100}'::jsonb);
INSERT INTO order_coupons (order_id, coupon_id, checkout_id, seller_id)
  VALUES (bench_id('x' || (:c)::bigint), md5('hot-coupon')::uuid, md5('c' || (:c)::bigint)::uuid, 'bench-store');
COMMIT;
\endpipeline`, 1)

// couponCols are the columns Souk reads of a coupon.
const couponCols = `id, code, source, seller_id, kind, currency, amount_minor, percent, cap_minor, min_subtotal_minor,
starts_at, ends_at, redemption_limit, per_buyer_limit, first_order_only, granted_only, product_ids, seller_ids, paused`

// checkoutSQL: claim the key; reserve the stock (seller-svc's transaction);
// store the order with its deadlines and history, dropping the
// reservation, in one pipeline with its BEGIN and COMMIT.
func checkoutSQL(hot bool) string {
	product := `\set p random(1, 1000)` + "\n"
	if hot {
		product = `\set p 0` + "\n"
	}
	return product + `\set c random(1, 9000000000000000000)
INSERT INTO idempotency_keys (scope, key, fingerprint, created_at) VALUES ('checkout' || chr(58) || 'bench-buyer', 'k' || (:c)::bigint, 'fp', now())
  ON CONFLICT (scope, key) DO NOTHING RETURNING fingerprint;
BEGIN;
SELECT pg_advisory_xact_lock(hashtextextended('reserve:' || (:c)::bigint, 0))::text = '',
  EXISTS (SELECT 1 FROM stock_reservations WHERE checkout_id = md5('c' || (:c)::bigint)::uuid) OR EXISTS (SELECT 1 FROM orders WHERE checkout_id = md5('c' || (:c)::bigint)::uuid);
UPDATE products SET stock = stock - 1 WHERE id = bench_id('p' || (:p)::int) AND seller_id = 'bench-store' AND stock >= 1 RETURNING *;
INSERT INTO stock_reservations (checkout_id, product_id, quantity, created_at, seller_id)
  VALUES (md5('c' || (:c)::bigint)::uuid, bench_id('p' || (:p)::int), 1, now(), 'bench-store');
COMMIT;
\startpipeline
BEGIN;
INSERT INTO orders (id, checkout_id, buyer_id, seller_id, status, currency, items, shipping_fee_minor, total_minor, handling_days,
  version, created_at, updated_at, payment_due_at, deadlines)
  VALUES (bench_id('x' || (:c)::bigint), md5('c' || (:c)::bigint)::uuid, 'bench-buyer', 'bench-store', 'PENDING_PAYMENT', 'USD',
  jsonb_build_array(jsonb_build_object('product_id', bench_id('p' || (:p)::int), 'quantity', 1, 'unit_price', 1000)), 0, 1000, 3, 1, now(), now(),
  now() + interval '20 days', jsonb_build_object('payment', now() + interval '20 days', 'remind_payment', now() + interval '19 days'));
DELETE FROM stock_reservations WHERE checkout_id = md5('c' || (:c)::bigint)::uuid;
INSERT INTO order_deadlines (order_id, kind, due_at, seller_id)
  SELECT order_id, kind, due_at, seller_id FROM jsonb_to_recordset(jsonb_build_array(
    jsonb_build_object('order_id', bench_id('x' || (:c)::bigint), 'kind', 'payment', 'due_at', now() + interval '20 days', 'seller_id', 'bench-store'),
    jsonb_build_object('order_id', bench_id('x' || (:c)::bigint), 'kind', 'remind_payment', 'due_at', now() + interval '19 days', 'seller_id', 'bench-store')))
  AS v(order_id uuid, kind text, due_at timestamptz, seller_id text);
WITH e AS (INSERT INTO order_events (order_id, sequence, kind, actor, occurred_at, note, status_after, version_after, seller_id)
  VALUES (bench_id('x' || (:c)::bigint), 1, 'created', 'buyer', now(), '', 'PENDING_PAYMENT', 1, 'bench-store') RETURNING id, occurred_at)
  INSERT INTO event_queue SELECT id, occurred_at FROM e;
COMMIT;
\endpipeline
`
}

// adjustSQL: the order read whole outside a transaction (the seller's
// ownership check before the lock), then the change written at the
// version read, with its BEGIN.
func adjustSQL(first, size int) string {
	return pick(first, size) + load("", orderID, "") + write("BEGIN;\n", event("price_adjusted"))
}

// payOrderSQL: the key claimed with the order's buyer read; the attempt
// opened; the provider's answer recorded (the payment deadlines give way
// to shipping's); the capture recorded.
func payOrderSQL(first, size int) string {
	attempt := func(status string) string {
		return `INSERT INTO payment_attempts (id, order_id, idempotency_key, fingerprint, status, amount_minor, currency, method, card_brand,
  card_last4, created_at, updated_at, seller_id) VALUES (md5('a' || (:n)::int)::uuid, ` + orderID + `, 'k' || (:n)::int, 'fp', '` + status + `', 1000, 'USD', 'card', 'visa',
  '4242', now(), now(), 'bench-store') ON CONFLICT (id, seller_id) DO UPDATE SET status = EXCLUDED.status, updated_at = EXCLUDED.updated_at;
`
	}
	return pick(first, size) + `WITH ins AS (INSERT INTO idempotency_keys (scope, key, fingerprint, created_at)
  VALUES ('buyer' || chr(58) || 'bench-buyer', 'k' || nextval('bench_seq'), 'fp', now()) ON CONFLICT (scope, key) DO NOTHING RETURNING fingerprint)
  SELECT (SELECT fingerprint FROM ins), (SELECT buyer_id FROM orders WHERE id = ` + orderID + ` AND seller_id = 'bench-store');
` + update(attempt("processing"), event("payment_started")) +
		update(attempt("succeeded"), replaceDeadlines("ship_by", "remind_ship_by"), event("paid")) +
		update(attempt("succeeded"), event("captured"))
}

func shipOrderSQL(first, size int) string {
	return pick(first, size) + update(replaceDeadlines("protection"), event("shipped"))
}
