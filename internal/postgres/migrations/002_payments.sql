-- Payments in depth: methods, structured declines, verification, capture,
-- refunds, idempotency keys.

ALTER TABLE payment_attempts
    ADD COLUMN account               text NOT NULL DEFAULT '',
    ADD COLUMN decline_advice        text NOT NULL DEFAULT '',
    ADD COLUMN decline_retryable     boolean NOT NULL DEFAULT false,
    ADD COLUMN verification_failures int NOT NULL DEFAULT 0,
    ADD COLUMN captured              boolean NOT NULL DEFAULT false;
-- Attempts a worker may have to capture or recover.
CREATE INDEX payment_attempts_unsettled_idx ON payment_attempts (updated_at)
    WHERE (status = 'SUCCEEDED' AND NOT captured) OR status = 'PROCESSING';

ALTER TABLE orders
    ADD COLUMN last_decline_advice    text NOT NULL DEFAULT '',
    ADD COLUMN last_decline_retryable boolean NOT NULL DEFAULT false;

-- Money owed back to buyers, written in the transaction that owes it and
-- carried out by buyer-svc's refund worker. The id is the idempotency key
-- of the refund at the provider.
CREATE TABLE refunds (
    id           uuid PRIMARY KEY,
    order_id     uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    buyer_id     text NOT NULL,
    seller_id    text NOT NULL,
    attempt_id   uuid NOT NULL REFERENCES payment_attempts (id),
    amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
    currency     char(3) NOT NULL,
    method       text NOT NULL,
    provider_ref text NOT NULL,
    status       text NOT NULL,
    reason       text NOT NULL,
    due_at       timestamptz NOT NULL,
    tries        int NOT NULL DEFAULT 0,
    next_try_at  timestamptz NOT NULL,
    last_error   text NOT NULL DEFAULT '',
    refund_ref   text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    completed_at timestamptz
);
CREATE INDEX refunds_todo_idx ON refunds (next_try_at) WHERE status IN ('PENDING', 'PROCESSING');
CREATE INDEX refunds_buyer_idx ON refunds (buyer_id, created_at DESC, id DESC);
CREATE INDEX refunds_order_idx ON refunds (order_id);

-- Idempotency keys of buyer actions: the fingerprint of the request a key
-- was first used with. Kept at least 30 days.
CREATE TABLE idempotency_keys (
    scope       text NOT NULL,
    key         text NOT NULL,
    fingerprint text NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);

-- The simulated payment provider's own ledger. It stands in for an
-- external system and shares the database only for convenience; Souk's
-- code never reads it. It keeps no card numbers either.
CREATE TABLE sim_payments (
    key          text PRIMARY KEY,
    ref          text NOT NULL UNIQUE,
    order_id     text NOT NULL,
    method       text NOT NULL,
    amount_minor bigint NOT NULL,
    currency     char(3) NOT NULL,
    card_brand   text NOT NULL DEFAULT '',
    card_last4   text NOT NULL DEFAULT '',
    account      text NOT NULL DEFAULT '',
    scenario     text NOT NULL,
    status       text NOT NULL,
    decline_code text NOT NULL DEFAULT '',
    settle_at    timestamptz,
    notified_at  timestamptz,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX sim_payments_to_settle_idx ON sim_payments (settle_at) WHERE notified_at IS NULL AND settle_at IS NOT NULL;

CREATE TABLE sim_refunds (
    key          text PRIMARY KEY,
    ref          text NOT NULL UNIQUE,
    payment_ref  text NOT NULL REFERENCES sim_payments (ref),
    amount_minor bigint NOT NULL,
    currency     char(3) NOT NULL,
    created_at   timestamptz NOT NULL
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
