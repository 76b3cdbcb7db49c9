-- A buyer may hold only so many unpaid orders, and units in them: without
-- a limit, one buyer could reserve a store's whole stock for the 20 days
-- of the payment window. A checkout's transaction calls this after storing
-- its orders. The advisory lock (per buyer) makes concurrent checkouts of
-- one buyer count one after the other; the count is read after the lock,
-- so it sees what those committed.
CREATE INDEX orders_unpaid_buyer_idx ON orders (buyer_id) WHERE status IN ('PENDING_PAYMENT', 'PAYMENT_PROCESSING');

CREATE FUNCTION souk_check_unpaid(buyer text, max_orders bigint, max_units bigint) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    n bigint;
    units bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('souk-unpaid:' || buyer, 0));
    SELECT count(*), coalesce(sum((SELECT sum((i ->> 'quantity')::bigint) FROM jsonb_array_elements(o.items) i)), 0)
        INTO n, units
        FROM orders o WHERE o.buyer_id = buyer AND o.status IN ('PENDING_PAYMENT', 'PAYMENT_PROCESSING');
    IF (max_orders > 0 AND n > max_orders) OR (max_units > 0 AND units > max_units) THEN
        RAISE EXCEPTION 'the checkout would leave % unpaid orders holding % units', n, units
            USING ERRCODE = 'SK001', DETAIL = format('%s/%s', n, units);
    END IF;
END
$$;
