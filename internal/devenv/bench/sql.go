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
// named as the seed names them: md5('o' || n)::uuid.

// load is Souk's read of one order (the row, the coupons it holds, with
// their redemptions locked first in a change, its deadlines, attempts,
// refunds and history) in one pipeline, after first (BEGIN, or nothing);
// id is an SQL expression.
func load(first, id, lock string) string {
	holds := ""
	if lock != "" {
		holds = `SELECT 1 FROM coupon_redemptions WHERE (coupon_id, checkout_id) IN
  (SELECT coupon_id, checkout_id FROM order_coupons WHERE order_id = %[1]s) ORDER BY coupon_id, checkout_id FOR UPDATE;
`
	}
	holds += `SELECT oc.order_id, r.state, r.terms, c.ends_at, ARRAY(SELECT o2.order_id FROM order_coupons o2 JOIN orders x ON x.id = o2.order_id
  WHERE o2.coupon_id = oc.coupon_id AND o2.checkout_id = oc.checkout_id AND o2.order_id <> oc.order_id AND x.status <> 'CANCELLED')
  FROM order_coupons oc JOIN coupon_redemptions r ON r.coupon_id = oc.coupon_id AND r.checkout_id = oc.checkout_id
  JOIN coupons c ON c.id = oc.coupon_id WHERE oc.order_id = %[1]s;
`
	return fmt.Sprintf(`\startpipeline
%[3]sSELECT * FROM orders WHERE id = %[1]s%[2]s;
`+holds+`SELECT kind, due_at FROM order_deadlines WHERE order_id = %[1]s;
SELECT * FROM payment_attempts WHERE order_id = %[1]s ORDER BY created_at, id;
SELECT * FROM refunds WHERE order_id = %[1]s ORDER BY created_at, id;
SELECT * FROM (SELECT * FROM order_events WHERE order_id = %[1]s ORDER BY sequence DESC LIMIT 200) e;
\endpipeline
`, id, lock, first)
}

const orderID = "md5('o' || (:n)::int)::uuid"

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
  WHERE o.id = ` + orderID + ` RETURNING 1)
  SELECT souk_expect_changed(count(*), 1) FROM changed;
` + strings.Join(writes, "") + `COMMIT;
\endpipeline
`
}

func replaceDeadlines(kinds ...string) string {
	s := "DELETE FROM order_deadlines WHERE order_id = " + orderID + ";\n"
	for _, k := range kinds {
		s += "INSERT INTO order_deadlines (order_id, kind, due_at, seller_id) VALUES (" + orderID + ", '" + k + "', now() + interval '3 days', 'bench-store');\n"
	}
	return s
}

func getOrderSQL(first, size int) string { return pick(first, size) + load("", orderID, "") }

// listOrdersSQL: a page of the buyer's orders (one more than the page, to
// know whether another follows) with their deadlines.
const listOrdersSQL = `SELECT *, d.kinds, d.dues FROM orders
  LEFT JOIN LATERAL (SELECT array_agg(kind) AS kinds, array_agg(due_at) AS dues FROM order_deadlines WHERE order_id = orders.id) d ON true
  WHERE buyer_id = 'bench-buyer' ORDER BY created_at DESC, id DESC LIMIT 21;
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
INSERT INTO order_coupons (order_id, coupon_id, checkout_id) VALUES (md5('x' || (:c)::bigint)::uuid, md5('hot-coupon')::uuid, md5('c' || (:c)::bigint)::uuid);
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
UPDATE products SET stock = stock - 1 WHERE id = md5('p' || (:p)::int)::uuid AND stock >= 1 RETURNING *;
INSERT INTO stock_reservations (checkout_id, product_id, quantity, created_at) VALUES (md5('c' || (:c)::bigint)::uuid, md5('p' || (:p)::int)::uuid, 1, now());
COMMIT;
\startpipeline
BEGIN;
INSERT INTO orders (id, checkout_id, buyer_id, seller_id, status, currency, items, shipping_fee_minor, total_minor, handling_days,
  version, created_at, updated_at, payment_due_at)
  VALUES (md5('x' || (:c)::bigint)::uuid, md5('c' || (:c)::bigint)::uuid, 'bench-buyer', 'bench-store', 'PENDING_PAYMENT', 'USD',
  jsonb_build_array(jsonb_build_object('product_id', md5('p' || (:p)::int)::uuid, 'quantity', 1, 'unit_price', 1000)), 0, 1000, 3, 1, now(), now(),
  now() + interval '20 days');
DELETE FROM stock_reservations WHERE checkout_id = md5('c' || (:c)::bigint)::uuid;
INSERT INTO order_deadlines (order_id, kind, due_at, seller_id)
  SELECT order_id, kind, due_at, seller_id FROM jsonb_to_recordset(jsonb_build_array(
    jsonb_build_object('order_id', md5('x' || (:c)::bigint)::uuid, 'kind', 'payment', 'due_at', now() + interval '20 days', 'seller_id', 'bench-store'),
    jsonb_build_object('order_id', md5('x' || (:c)::bigint)::uuid, 'kind', 'remind_payment', 'due_at', now() + interval '19 days', 'seller_id', 'bench-store')))
  AS v(order_id uuid, kind text, due_at timestamptz, seller_id text);
WITH e AS (INSERT INTO order_events (order_id, sequence, kind, actor, occurred_at, note, status_after, version_after, seller_id)
  VALUES (md5('x' || (:c)::bigint)::uuid, 1, 'created', 'buyer', now(), '', 'PENDING_PAYMENT', 1, 'bench-store') RETURNING id, occurred_at)
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
  '4242', now(), now(), 'bench-store') ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, updated_at = EXCLUDED.updated_at;
`
	}
	return pick(first, size) + `WITH ins AS (INSERT INTO idempotency_keys (scope, key, fingerprint, created_at)
  VALUES ('buyer' || chr(58) || 'bench-buyer', 'k' || nextval('bench_seq'), 'fp', now()) ON CONFLICT (scope, key) DO NOTHING RETURNING fingerprint)
  SELECT (SELECT fingerprint FROM ins), (SELECT buyer_id FROM orders WHERE id = ` + orderID + `);
` + update(attempt("processing"), event("payment_started")) +
		update(attempt("succeeded"), replaceDeadlines("ship_by", "remind_ship_by"), event("paid")) +
		update(attempt("succeeded"), event("captured"))
}

func shipOrderSQL(first, size int) string {
	return pick(first, size) + update(replaceDeadlines("protection"), event("shipped"))
}
