-- The state of pl_symbol_liquidity in one row, kept by a trigger (issue 13: the sync's snapshot statement
-- scanned the whole table, about 1 KB of window per symbol, for its sessions, newest stamp and row count:
-- 7-11 ms of every sync at 12,000 symbols, and it grows with the symbols). Every statement that writes the
-- table (INSERT, UPDATE, DELETE, TRUNCATE, COPY; PL's or anyone's) recomputes the row from the table at its
-- end, in its transaction: the same numbers the scan gave, paid once per write at import time instead of
-- once per read. PL's writers take the lock locks.LIQUIDITY first (market/liquidity.py), so two writes never
-- compute it at once. A missing row reads as an empty table: the next sync that writes rebuilds the table,
-- and the rebuild's statements put the row back.
--   low, high  min and max of `through`; stamp: max of `updated_at`; n: the row count
CREATE TABLE IF NOT EXISTS pl_symbol_liquidity_state (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    low      date,
    high     date,
    stamp    timestamptz,
    n        bigint NOT NULL
);

CREATE OR REPLACE FUNCTION pl_symbol_liquidity_state_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pl_symbol_liquidity_state AS s (only_row, low, high, stamp, n)
    SELECT true, min(through), max(through), max(updated_at), count(*) FROM pl_symbol_liquidity
    ON CONFLICT (only_row) DO UPDATE SET low = EXCLUDED.low, high = EXCLUDED.high, stamp = EXCLUDED.stamp,
        n = EXCLUDED.n;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS pl_symbol_liquidity_state ON pl_symbol_liquidity;
CREATE TRIGGER pl_symbol_liquidity_state AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pl_symbol_liquidity
    FOR EACH STATEMENT EXECUTE FUNCTION pl_symbol_liquidity_state_refresh();

INSERT INTO pl_symbol_liquidity_state AS s (only_row, low, high, stamp, n)
SELECT true, min(through), max(through), max(updated_at), count(*) FROM pl_symbol_liquidity
ON CONFLICT (only_row) DO UPDATE SET low = EXCLUDED.low, high = EXCLUDED.high, stamp = EXCLUDED.stamp, n = EXCLUDED.n;
