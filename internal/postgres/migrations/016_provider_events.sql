-- The payment provider's webhook events Souk has handled, by the provider's
-- event id: an event delivered again is acknowledged and changes nothing.
-- Kept as long as idempotency keys.
CREATE TABLE provider_events (
    id          text PRIMARY KEY,
    type        text NOT NULL,
    order_id    text NOT NULL,
    received_at timestamptz NOT NULL
);
CREATE INDEX provider_events_received_idx ON provider_events (received_at);
