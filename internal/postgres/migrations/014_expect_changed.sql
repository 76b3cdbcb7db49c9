-- A change writes its order at the version it read, then its events,
-- deadlines and attempts, and COMMIT, all sent at once. An order that moved
-- on since it was read updates no row, but the statements after the UPDATE
-- still run and the COMMIT still commits: the change's events would be
-- stored without it. The UPDATE now ends in this check, which aborts the
-- whole transaction as a serialization failure (SQLSTATE 40001), the error
-- a caller retries on.
CREATE FUNCTION souk_expect_changed(changed bigint, expected bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF changed <> expected THEN
        RAISE EXCEPTION '% of % orders changed since they were read', expected - changed, expected
            USING ERRCODE = 'serialization_failure';
    END IF;
END
$$;
