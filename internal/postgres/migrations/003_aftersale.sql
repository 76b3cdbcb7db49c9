-- After payment: cancellation requests, disputes, and to whom a
-- cancellation is attributed (the seller's cancellation rate).
ALTER TABLE orders
    ADD COLUMN cancelled_by text NOT NULL DEFAULT '',
    ADD COLUMN cancellation jsonb,
    ADD COLUMN dispute      jsonb;
CREATE INDEX orders_open_cancellations_idx ON orders (seller_id) WHERE cancellation->>'Status' = 'OPEN';
CREATE INDEX orders_open_disputes_idx ON orders (seller_id) WHERE status = 'DISPUTED';
