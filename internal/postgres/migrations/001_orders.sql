-- Souk's record: the catalog with its stock reservations, and the orders
-- with their deadlines, payment attempts and history (the event outbox).

CREATE TABLE products (
    id                 uuid PRIMARY KEY,
    seller_id          text NOT NULL,
    title              text NOT NULL,
    currency           char(3) NOT NULL,
    price_minor        bigint NOT NULL CHECK (price_minor >= 0),
    shipping_fee_minor bigint NOT NULL CHECK (shipping_fee_minor >= 0),
    stock              bigint NOT NULL CHECK (stock >= 0),
    handling_days      int NOT NULL CHECK (handling_days > 0),
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);
CREATE INDEX products_seller_idx ON products (seller_id, created_at DESC, id DESC);

-- Stock held for a checkout. A row exists while its units are out of
-- products.stock; deleting it (and adding the units back) releases them.
CREATE TABLE stock_reservations (
    checkout_id uuid NOT NULL,
    product_id  uuid NOT NULL REFERENCES products (id),
    quantity    bigint NOT NULL CHECK (quantity > 0),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (checkout_id, product_id)
);
CREATE INDEX stock_reservations_created_idx ON stock_reservations (created_at);

CREATE TABLE orders (
    id                   uuid PRIMARY KEY,
    checkout_id          uuid NOT NULL,
    buyer_id             text NOT NULL,
    seller_id            text NOT NULL,
    status               text NOT NULL,
    currency             char(3) NOT NULL,
    items                jsonb NOT NULL,
    shipping_fee_minor   bigint NOT NULL CHECK (shipping_fee_minor >= 0),
    total_minor          bigint NOT NULL CHECK (total_minor >= 0),
    handling_days        int NOT NULL,
    version              bigint NOT NULL,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    cancel_reason        text NOT NULL DEFAULT '',
    last_decline_code    text NOT NULL DEFAULT '',
    last_decline_message text NOT NULL DEFAULT '',
    shipment             jsonb
);
CREATE INDEX orders_buyer_idx ON orders (buyer_id, created_at DESC, id DESC);
CREATE INDEX orders_seller_idx ON orders (seller_id, created_at DESC, id DESC);
CREATE INDEX orders_checkout_idx ON orders (checkout_id);

-- Open deadlines: the truth behind the Redis TTL keys.
CREATE TABLE order_deadlines (
    order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    kind     text NOT NULL,
    due_at   timestamptz NOT NULL,
    PRIMARY KEY (order_id, kind)
);
CREATE INDEX order_deadlines_due_idx ON order_deadlines (due_at);

CREATE TABLE payment_attempts (
    id              uuid PRIMARY KEY,
    order_id        uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    idempotency_key text NOT NULL,
    fingerprint     text NOT NULL,
    status          text NOT NULL,
    amount_minor    bigint NOT NULL,
    currency        char(3) NOT NULL,
    method          text NOT NULL,
    card_brand      text NOT NULL,
    card_last4      text NOT NULL,
    decline_code    text NOT NULL DEFAULT '',
    decline_message text NOT NULL DEFAULT '',
    provider_ref    text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (order_id, idempotency_key)
);

-- The order's history, written in the same transaction as each change; rows
-- with published_at NULL are the outbox of the event stream.
CREATE TABLE order_events (
    id           bigserial PRIMARY KEY,
    order_id     uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    sequence     bigint NOT NULL,
    kind         text NOT NULL,
    actor        text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    note         text NOT NULL DEFAULT '',
    adjustment   jsonb,
    published_at timestamptz,
    UNIQUE (order_id, sequence)
);
CREATE INDEX order_events_unpublished_idx ON order_events (id) WHERE published_at IS NULL;
