-- What the ledger keeps of each value PL wrote, so that a sync need not read that value back while its row
-- is the one PL left (sync/store.READ_SQL, sync/encoding.py; issue 13: the daily sync with the rule
-- universes read 6.7 MB of values it had written itself the day before). Every existing row keeps its
-- columns; the new ones stay NULL until PL next writes the row (a NULL means: read the value).
--   members        the value's members in order (universes.model.members); '{}' for a value with none
--   text_digest    blake2b-128 (hex) of the exact JSON text PL sent for the value
--   recorded_xmin  the row version (cache_entries.xmin) these two describe: written with them and only with
--                  them, so a writer that moves row_xmin without them (a PL from before this migration)
--                  leaves a record that no longer matches the row, and the value is read again
ALTER TABLE pl_cache_ledger ADD COLUMN IF NOT EXISTS members text[];
ALTER TABLE pl_cache_ledger ADD COLUMN IF NOT EXISTS text_digest text;
ALTER TABLE pl_cache_ledger ADD COLUMN IF NOT EXISTS recorded_xmin xid;
