-- The exchange-rate quote of an order whose buyer pays in another currency
-- than the store's (NULL: the store's): fixed at checkout, renewed when it
-- expires before payment.
ALTER TABLE orders ADD COLUMN quote jsonb;
