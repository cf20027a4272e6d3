-- The change log stores a run of per-symbol changes as ONE row (issue 16: a first run logged 30,000 rows,
-- each with four index entries, slower than the whole legacy rebuild). Every existing row stays as it is.
--   symbols   the symbols of a run of consecutive changes with the same job, universe, action and reason,
--             in the order they were logged; NULL in a row of one change (every row written before 0011,
--             and every change of a universe as a whole, whose symbol is NULL)
--   symbol_count   cardinality(symbols), NULL with it: readers that page by position skip a run by it
--             without reading (detoasting) its symbols
--   id        the id of the run's first change: its k-th symbol (from 1) is change id + k - 1. A writer
--             reserves the ids of all its changes at once (sync/changelog.py: setval under a
--             transaction-level advisory lock), so no id is given to two changes.
-- Read the log one change per row through the view pl_sync_change_rows (the API and the demo do).
ALTER TABLE pl_sync_changes ADD COLUMN IF NOT EXISTS symbols text[];
ALTER TABLE pl_sync_changes ADD COLUMN IF NOT EXISTS symbol_count integer;
ALTER TABLE pl_sync_changes DROP CONSTRAINT IF EXISTS pl_sync_changes_run_shape;
ALTER TABLE pl_sync_changes ADD CONSTRAINT pl_sync_changes_run_shape
    CHECK ((symbols IS NULL AND symbol_count IS NULL)
           OR (symbol IS NULL AND symbol_count = cardinality(symbols) AND symbol_count > 0 AND array_ndims(symbols) = 1
               AND array_lower(symbols, 1) = 1 AND array_position(symbols, NULL) IS NULL));

-- One change per row, exactly as the table held them before 0011 (same ids, same columns). `run_id` and
-- `ordinal` order the changes like `id` does, and a reader that sorts by them (ORDER BY run_id, ordinal)
-- walks the primary key and stops at its LIMIT instead of expanding every run first.
CREATE OR REPLACE VIEW pl_sync_change_rows AS
SELECT c.id + s.ordinal - 1 AS id, c.job_id, c.environment, c.universe, s.symbol, c.action, c.reason, c.metadata,
       c.created_at, c.id AS run_id, s.ordinal
FROM pl_sync_changes c
CROSS JOIN LATERAL unnest(coalesce(c.symbols, ARRAY[c.symbol])) WITH ORDINALITY AS s(symbol, ordinal);
