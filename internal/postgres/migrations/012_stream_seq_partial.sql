-- The stream places' index holds placed events only. Every event is
-- written without a place and gets one from the relay moments later, so
-- the full index took an entry of NULL for each new event that the
-- relay's update left dead at once; nothing reads NULL places through it
-- (the unsequenced index serves that), so nothing marked those entries
-- dead, and each insert that met a full page checked the heap for them:
-- 137 buffers and 4.7 kB of WAL per event insert, against 19 and 0.6 kB.
-- Every read of places (stream_seq > $1) implies NOT NULL and uses it.
-- Building it holds off writes of events while it reads the table:
-- migrations run in a transaction, so it cannot be built CONCURRENTLY.
CREATE UNIQUE INDEX order_events_stream_place_idx ON order_events (stream_seq) WHERE stream_seq IS NOT NULL;
DROP INDEX order_events_stream_seq_idx;
