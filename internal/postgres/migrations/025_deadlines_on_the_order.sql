-- An order's open deadlines are kept on its row too (kind: due time, as a
-- JSON object), read with it: a page of orders or an order's load reads
-- no second index per order, whose depth grows with the data (issue #25's
-- scale run: three blocks of order_deadlines' key per order on a page at
-- ten million orders, two at ten thousand). order_deadlines stays the
-- sweeper's index of what is due; Souk writes both in the order's
-- transaction. NULL: none.
ALTER TABLE orders ADD COLUMN deadlines jsonb;

-- The copy, from the index onto the rows. Run again, it mends rows that
-- replicas of an earlier version left behind while they ran beside this
-- one (they write the index alone): an order with no deadline left reads
-- none, the others read the index's.
UPDATE orders o SET deadlines = NULL WHERE deadlines IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM order_deadlines d WHERE d.order_id = o.id AND d.seller_id = o.seller_id);

UPDATE orders o SET deadlines = d.deadlines
    FROM (SELECT order_id, seller_id, jsonb_object_agg(kind, due_at) AS deadlines
        FROM order_deadlines GROUP BY order_id, seller_id) d
    WHERE o.id = d.order_id AND o.seller_id = d.seller_id;
