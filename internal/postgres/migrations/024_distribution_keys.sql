-- Keys for a distributed PostgreSQL (issue #25). On Citus every table an
-- order owns is distributed by seller_id, co-located with orders, and a
-- primary key, unique index or foreign key between them must include
-- seller_id. The keys are the same on plain PostgreSQL, so that one set of
-- statements serves both engines. The id comes first: a read by id alone
-- (an order id a buyer holds, before its store is known) still uses it.
-- Migrate distributes the tables after the last migration when the citus
-- extension is installed (distribute.go).

-- The foreign keys go first: they hang on the keys being replaced.
ALTER TABLE order_deadlines DROP CONSTRAINT order_deadlines_order_id_fkey;
ALTER TABLE order_events DROP CONSTRAINT order_events_order_id_fkey;
ALTER TABLE order_messages DROP CONSTRAINT order_messages_order_id_fkey;
ALTER TABLE payment_attempts DROP CONSTRAINT payment_attempts_order_id_fkey;
ALTER TABLE refunds DROP CONSTRAINT refunds_attempt_id_fkey;
ALTER TABLE refunds DROP CONSTRAINT refunds_order_id_fkey;
ALTER TABLE stock_reservations DROP CONSTRAINT stock_reservations_product_id_fkey;

ALTER TABLE orders DROP CONSTRAINT orders_pkey, ADD PRIMARY KEY (id, seller_id);
ALTER TABLE products DROP CONSTRAINT products_pkey, ADD PRIMARY KEY (id, seller_id);
ALTER TABLE order_deadlines DROP CONSTRAINT order_deadlines_pkey, ADD PRIMARY KEY (order_id, kind, seller_id);
ALTER TABLE order_events DROP CONSTRAINT order_events_pkey, ADD PRIMARY KEY (id, seller_id);
ALTER TABLE order_events DROP CONSTRAINT order_events_order_id_sequence_key, ADD UNIQUE (order_id, sequence, seller_id);
ALTER TABLE order_messages DROP CONSTRAINT order_messages_pkey, ADD PRIMARY KEY (id, seller_id);
ALTER TABLE payment_attempts DROP CONSTRAINT payment_attempts_pkey, ADD PRIMARY KEY (id, seller_id);
ALTER TABLE payment_attempts DROP CONSTRAINT payment_attempts_order_id_idempotency_key_key,
    ADD UNIQUE (order_id, idempotency_key, seller_id);
ALTER TABLE refunds DROP CONSTRAINT refunds_pkey, ADD PRIMARY KEY (id, seller_id);

-- A reservation holds a store's product: it carries the store.
ALTER TABLE stock_reservations ADD COLUMN seller_id text;
UPDATE stock_reservations r SET seller_id = p.seller_id FROM products p WHERE p.id = r.product_id;
ALTER TABLE stock_reservations ALTER COLUMN seller_id SET NOT NULL;
ALTER TABLE stock_reservations DROP CONSTRAINT stock_reservations_pkey, ADD PRIMARY KEY (checkout_id, product_id, seller_id);

-- So does an order's hold of a coupon.
ALTER TABLE order_coupons ADD COLUMN seller_id text;
UPDATE order_coupons c SET seller_id = o.seller_id FROM orders o WHERE o.id = c.order_id;
ALTER TABLE order_coupons ALTER COLUMN seller_id SET NOT NULL;
ALTER TABLE order_coupons DROP CONSTRAINT order_coupons_pkey, ADD PRIMARY KEY (order_id, coupon_id, seller_id);

ALTER TABLE order_deadlines ADD FOREIGN KEY (order_id, seller_id) REFERENCES orders (id, seller_id) ON DELETE CASCADE;
ALTER TABLE order_events ADD FOREIGN KEY (order_id, seller_id) REFERENCES orders (id, seller_id) ON DELETE CASCADE;
ALTER TABLE order_messages ADD FOREIGN KEY (order_id, seller_id) REFERENCES orders (id, seller_id) ON DELETE CASCADE;
ALTER TABLE payment_attempts ADD FOREIGN KEY (order_id, seller_id) REFERENCES orders (id, seller_id) ON DELETE CASCADE;
ALTER TABLE refunds ADD FOREIGN KEY (order_id, seller_id) REFERENCES orders (id, seller_id) ON DELETE CASCADE;
ALTER TABLE refunds ADD FOREIGN KEY (attempt_id, seller_id) REFERENCES payment_attempts (id, seller_id);
ALTER TABLE order_coupons ADD FOREIGN KEY (order_id, seller_id) REFERENCES orders (id, seller_id) ON DELETE CASCADE;
ALTER TABLE stock_reservations ADD FOREIGN KEY (product_id, seller_id) REFERENCES products (id, seller_id);

-- The stores whose key an order's or a product's id carries (order.NewID):
-- the key of a store is the last eight bytes of its ids, so an id alone
-- names the store whose shard holds it. Written once per store; a
-- reference table on Citus (a copy on every node).
CREATE TABLE store_keys (
    key       bigint PRIMARY KEY,
    seller_id text NOT NULL UNIQUE
);
