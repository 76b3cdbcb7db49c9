-- Buyer protection varies by product (15 to 180 days, default 60); an
-- order keeps the longest of its products' as it was at checkout.
ALTER TABLE products ADD COLUMN protection_days int NOT NULL DEFAULT 60
    CHECK (protection_days BETWEEN 15 AND 180);
ALTER TABLE orders ADD COLUMN protection_days int NOT NULL DEFAULT 60;
