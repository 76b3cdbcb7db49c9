-- The conversation of each order between its buyer and its seller. Each
-- message is also an event of the order (kind message_sent, its id as the
-- note), written in the same transaction.
CREATE TABLE order_messages (
    id        uuid PRIMARY KEY,
    order_id  uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    author    text NOT NULL,
    author_id text NOT NULL,
    text      text NOT NULL,
    links     jsonb NOT NULL DEFAULT '[]',
    sent_at   timestamptz NOT NULL
);
CREATE INDEX order_messages_order_idx ON order_messages (order_id, sent_at, id);
