-- Each consumer group's position in the event feed, kept in PostgreSQL: the
-- place up to which every event was acknowledged. A group Redis lost (a
-- restart without persistence) is made again from here, not from the
-- stream's end, so "every event at least once" holds through the loss.
CREATE TABLE consumer_groups (
    name       text PRIMARY KEY,
    acked_to   bigint NOT NULL,
    updated_at timestamptz NOT NULL
);
