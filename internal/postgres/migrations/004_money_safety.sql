-- Money safety (issue #7): the attempt that paid an order, the payment
-- window kept past its deadline, per-attempt capture back-off, idempotent
-- checkouts, reservations deleted once their orders exist, and bounded
-- scans.

ALTER TABLE orders
    ADD COLUMN paid_attempt_id uuid,
    ADD COLUMN payment_due_at  timestamptz;
-- The paying attempt of orders paid before this column: the first success.
UPDATE orders o SET paid_attempt_id = (SELECT a.id FROM payment_attempts a
    WHERE a.order_id = o.id AND a.status = 'SUCCEEDED' ORDER BY a.created_at, a.id LIMIT 1)
    WHERE o.status NOT IN ('PENDING_PAYMENT', 'PAYMENT_PROCESSING');
UPDATE orders o SET payment_due_at = coalesce((SELECT d.due_at FROM order_deadlines d
    WHERE d.order_id = o.id AND d.kind = 'payment'), o.created_at + interval '20 days');
ALTER TABLE orders ALTER COLUMN payment_due_at SET NOT NULL;

-- One order per seller and checkout: a retried checkout finds its orders.
CREATE UNIQUE INDEX orders_checkout_seller_idx ON orders (checkout_id, seller_id);
DROP INDEX orders_checkout_idx;

-- Each uncaptured payment backs off on its own, so failing ones cannot
-- starve the others.
ALTER TABLE payment_attempts
    ADD COLUMN capture_tries   int NOT NULL DEFAULT 0,
    ADD COLUMN next_capture_at timestamptz;
UPDATE payment_attempts SET next_capture_at = updated_at WHERE status = 'SUCCEEDED' AND NOT captured;
CREATE INDEX payment_attempts_capture_idx ON payment_attempts (next_capture_at)
    WHERE status = 'SUCCEEDED' AND NOT captured;
-- Attempts whose provider answer is unknown (the reconciliation worker's).
CREATE INDEX payment_attempts_unanswered_idx ON payment_attempts (updated_at)
    WHERE provider_ref = '' AND (status = 'PROCESSING' OR status = 'CANCELED' AND decline_code = '');
DROP INDEX payment_attempts_unsettled_idx;

-- A reservation lives only until its checkout's orders are stored; the
-- orders' items then say what a cancellation gives back.
DELETE FROM stock_reservations r WHERE EXISTS (SELECT 1 FROM orders o WHERE o.checkout_id = r.checkout_id);

-- Disputes waiting for the platform, oldest first.
CREATE INDEX orders_escalated_idx ON orders (updated_at, id)
    WHERE status = 'DISPUTED' AND dispute->>'Status' = 'ESCALATED';

-- Fingerprints no longer keep a card's expiry in plain text: new ones are
-- keyed hashes; the old ones are hashed too.
UPDATE idempotency_keys SET fingerprint = 'sha256:' || encode(sha256(convert_to(fingerprint, 'UTF8')), 'hex')
    WHERE fingerprint NOT LIKE 'hmac:%';
UPDATE payment_attempts SET fingerprint = 'sha256:' || encode(sha256(convert_to(fingerprint, 'UTF8')), 'hex')
    WHERE fingerprint NOT LIKE 'hmac:%';
