-- An event is in the stream once its place is at or below sent_seq: places
-- have no gaps and are published in order, so one number says what a
-- per-row published_at said, without writing every event row twice.
-- published_at stays for the rows that have it; nothing writes it now.
ALTER TABLE event_relay ADD COLUMN sent_seq bigint;
UPDATE event_relay SET sent_seq = coalesce(
    (SELECT min(stream_seq) - 1 FROM order_events WHERE published_at IS NULL AND stream_seq IS NOT NULL),
    last_seq);
ALTER TABLE event_relay ALTER COLUMN sent_seq SET NOT NULL;
DROP INDEX order_events_unpublished_seq_idx;
