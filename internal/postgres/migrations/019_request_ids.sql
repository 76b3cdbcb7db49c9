-- Mutations a mobile app retries carry a request id: the first request
-- that changes the order records it in the same transaction, and a retry
-- finds it and changes nothing. Kept as long as idempotency keys.
CREATE TABLE request_ids (
    scope       text NOT NULL,
    id          text NOT NULL,
    fingerprint text NOT NULL,
    order_id    uuid NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (scope, id)
);
CREATE INDEX request_ids_created_idx ON request_ids (created_at);
