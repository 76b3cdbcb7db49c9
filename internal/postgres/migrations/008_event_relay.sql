-- Publishing the outbox to a Redis stream. Each event gets its place in
-- the stream (stream_seq, the entry id "<stream_seq>-1") in one committed
-- step before it is added, so that a relay that dies between adding and
-- marking it adds it again under the same id, which Redis refuses: every
-- event is in the stream once. The order's status and version after the
-- change travel with the event.
ALTER TABLE order_events
    ADD COLUMN stream_seq    bigint,
    ADD COLUMN status_after  text NOT NULL DEFAULT '',
    ADD COLUMN version_after bigint NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX order_events_stream_seq_idx ON order_events (stream_seq);
CREATE INDEX order_events_unsequenced_idx ON order_events (id) WHERE stream_seq IS NULL;
CREATE INDEX order_events_unpublished_seq_idx ON order_events (stream_seq) WHERE published_at IS NULL AND stream_seq IS NOT NULL;
DROP INDEX order_events_unpublished_idx;
-- The stream keeps (and, after a loss, gets again) the retention period's events.
CREATE INDEX order_events_occurred_idx ON order_events (occurred_at);

-- The last place handed out, and the last place published (0 after the
-- stream lost its data, until the next publish).
CREATE TABLE event_relay (
    id            int PRIMARY KEY CHECK (id = 1),
    last_seq      bigint NOT NULL,
    published_seq bigint NOT NULL
);
INSERT INTO event_relay VALUES (1, 0, 0);
