-- The way to a distributed PostgreSQL (README, "Scaling PostgreSQL out"):
-- every table an order owns carries its store, the column a Citus
-- deployment would distribute by, so that an order and its children can
-- live on one shard. (refunds has it already.)
ALTER TABLE order_events ADD COLUMN seller_id text;
ALTER TABLE order_deadlines ADD COLUMN seller_id text;
ALTER TABLE payment_attempts ADD COLUMN seller_id text;
ALTER TABLE order_messages ADD COLUMN seller_id text;
UPDATE order_events c SET seller_id = o.seller_id FROM orders o WHERE o.id = c.order_id;
UPDATE order_deadlines c SET seller_id = o.seller_id FROM orders o WHERE o.id = c.order_id;
UPDATE payment_attempts c SET seller_id = o.seller_id FROM orders o WHERE o.id = c.order_id;
UPDATE order_messages c SET seller_id = o.seller_id FROM orders o WHERE o.id = c.order_id;
ALTER TABLE order_events ALTER COLUMN seller_id SET NOT NULL;
ALTER TABLE order_deadlines ALTER COLUMN seller_id SET NOT NULL;
ALTER TABLE payment_attempts ALTER COLUMN seller_id SET NOT NULL;
ALTER TABLE order_messages ALTER COLUMN seller_id SET NOT NULL;
