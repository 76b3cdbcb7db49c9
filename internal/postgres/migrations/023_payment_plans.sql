-- Payment plans and refunds across currencies (issue #24). How a product
-- may be paid in parts (NULL: at once), and the plan and parts an order
-- was split into at checkout (NULL: paid at once). Both are JSON with
-- explicit field names (order.Plan, order.Schedule).
ALTER TABLE products ADD COLUMN payment_plan jsonb;
ALTER TABLE orders ADD COLUMN schedule jsonb;

-- A refund in the buyer's currency as the store's books see it
-- (order.RefundFX): the store's debit at the payment's rate, and what the
-- platform paid at the rate of the day, whose difference is the
-- platform's. '{}' for refunds in the store's currency.
ALTER TABLE refunds ADD COLUMN fx jsonb NOT NULL DEFAULT '{}';
