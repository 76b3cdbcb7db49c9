-- A checkout's orders are found by orders_checkout_seller_idx (checkout_id,
-- seller_id), the key that makes a checkout's orders be stored once, which
-- begins with the checkout's id. orders_checkout_idx (checkout_id) served
-- the same reads before that key existed; each order written still added an
-- entry to it, at a place as random as a checkout's id.
DROP INDEX IF EXISTS orders_checkout_idx;
