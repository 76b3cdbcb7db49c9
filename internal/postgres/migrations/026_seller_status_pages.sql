-- A store's orders in one status, newest first: the seller's tabs (to
-- ship, disputed, waiting for payment) walk this index in order and stop
-- at the page. Walking the store's index and filtering by status read all
-- of a big store's orders to fill a page of a rare status (issue #25: at
-- ten million orders, the biggest store's page of orders to ship read
-- 450,000 blocks, 3 to 6 s; TestBigStorePagesReadTheirPage).
--
-- The build blocks writes to orders while it runs (22 s at ten
-- million orders on a developer's machine). An operator who cannot have
-- that runs, before upgrading,
--   CREATE INDEX CONCURRENTLY orders_seller_status_idx ON orders (seller_id, status, created_at DESC, id DESC);
-- and this migration then finds it made.
CREATE INDEX IF NOT EXISTS orders_seller_status_idx ON orders (seller_id, status, created_at DESC, id DESC);

-- The price of it: every order written (created, or changed: a change
-- is never a HOT update, updated_at being indexed) writes one more index
-- entry. It serves a store's disputed orders too, which had a partial
-- index of their own, no longer needed.
DROP INDEX IF EXISTS orders_open_disputes_idx;
