-- An attempt failed because the provider had no record of it is asked
-- about once more at recheck_at: a request still on its way may land late,
-- and money taken then is owed back.
ALTER TABLE payment_attempts ADD COLUMN recheck_at timestamptz;
CREATE INDEX payment_attempts_recheck_idx ON payment_attempts (recheck_at) WHERE recheck_at IS NOT NULL;
