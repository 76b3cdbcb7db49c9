-- The kind-specific part of an event that the event feed carries beyond
-- its note (the amount of a payment or refund, the text of a message, the
-- offer made), as JSON; NULL for the kinds that have none.
ALTER TABLE order_events ADD COLUMN detail jsonb;
