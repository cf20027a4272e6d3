-- A run of the change log may hold a reason per change (issue 16: the rule universes word a reason for each
-- symbol, "entered: percentile 3.1% within 0%-85% ...", so a run broke at every symbol: a first run at
-- 12,000 symbols logged 9,800 rows for 19,800 changes, about 0.1 s of COPY with four indexes).
--   reasons   NULL: every change of the run has the run's `reason` (every row written before 0015, and
--             every run whose changes share one reason); otherwise the reason of each change, aligned with
--             `symbols` (reasons[k] is the reason of the k-th symbol), and `reason` holds reasons[1]
-- Every existing row stays as it is. Readers go through the view pl_sync_change_rows, whose `reason` is
-- now reasons[ordinal] where a run has them (same columns, same order, same types as before).
ALTER TABLE pl_sync_changes ADD COLUMN IF NOT EXISTS reasons text[];
ALTER TABLE pl_sync_changes DROP CONSTRAINT IF EXISTS pl_sync_changes_reasons_shape;
ALTER TABLE pl_sync_changes ADD CONSTRAINT pl_sync_changes_reasons_shape
    CHECK (reasons IS NULL
           OR (symbols IS NOT NULL AND cardinality(reasons) = symbol_count AND array_ndims(reasons) = 1
               AND array_lower(reasons, 1) = 1 AND array_position(reasons, NULL) IS NULL
               AND reason = reasons[1]));

-- The reasons are unnested beside the symbols (unnest of two arrays: NULL reasons give NULLs), so a run's
-- arrays are read once per run: `c.reasons[s.ordinal]` read (detoasted) the whole array again for every change.
CREATE OR REPLACE VIEW pl_sync_change_rows AS
SELECT c.id + s.ordinal - 1 AS id, c.job_id, c.environment, c.universe, s.symbol, c.action,
       coalesce(s.reason, c.reason) AS reason, c.metadata, c.created_at, c.id AS run_id, s.ordinal
FROM pl_sync_changes c
CROSS JOIN LATERAL unnest(coalesce(c.symbols, ARRAY[c.symbol]), c.reasons) WITH ORDINALITY AS s(symbol, reason, ordinal);
