-- Stream places are kept apart from the events. The relay gave each event
-- its place by updating the event row, and a change to an indexed column
-- is never a HOT update: every event was written twice, with a new entry in
-- each of its indexes, and the inserts that followed paid for clearing the
-- dead ones. Now a change writes its events and, in the same statement, one
-- small row per event to the queue of events without a place; the relay
-- moves them from the queue to the places, in the order of their ids, and
-- never touches the event rows. Places carry when their event occurred, so
-- the stream's retention is read from them alone; the relay drops the places
-- of events trimmed from the stream (nothing reads them, and events are never
-- deleted, so places need no foreign key).
CREATE TABLE event_queue (
    event_id    bigint PRIMARY KEY,
    occurred_at timestamptz NOT NULL
);
CREATE TABLE event_places (
    seq         bigint PRIMARY KEY,
    event_id    bigint NOT NULL,
    occurred_at timestamptz NOT NULL
);
INSERT INTO event_places (seq, event_id, occurred_at)
    SELECT stream_seq, id, occurred_at FROM order_events WHERE stream_seq IS NOT NULL;
INSERT INTO event_queue (event_id, occurred_at)
    SELECT id, occurred_at FROM order_events WHERE stream_seq IS NULL;
DROP INDEX order_events_stream_place_idx;
DROP INDEX order_events_unsequenced_idx;
ALTER TABLE order_events DROP COLUMN stream_seq;
