-- A refund the provider refused for good stays FAILED, counted and shown,
-- until an admin retries it or records it as paid by other means (who and
-- why).
ALTER TABLE refunds
    ADD COLUMN settled_by      text NOT NULL DEFAULT '',
    ADD COLUMN settlement_note text NOT NULL DEFAULT '';
CREATE INDEX refunds_failed_idx ON refunds (updated_at, id) WHERE status = 'FAILED';
