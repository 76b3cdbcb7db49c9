-- Buyer offers: the latest offer of an order, and the discount an accepted
-- offer of a lower total takes off items and shipping.
ALTER TABLE orders
    ADD COLUMN offer          jsonb,
    ADD COLUMN discount_minor bigint NOT NULL DEFAULT 0 CHECK (discount_minor >= 0);
