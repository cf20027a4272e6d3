-- The ownership ledger (contract §5.5): every cache_entries row TickStockPL has written. A sync
-- changes or deletes a row it does not build only when this table says PL wrote it; any other
-- row is left byte-identical, whatever its type.
--   value_digest  md5 of the jsonb text PL wrote (NULL: written before the ledger existed)
--   row_xmin      the row version PL left; another writer changes it (then the digest decides
--                 whether the value was really edited)
CREATE TABLE IF NOT EXISTS pl_cache_ledger (
    environment  varchar(10) NOT NULL,
    type         text NOT NULL,
    name         text NOT NULL,
    key          text NOT NULL,
    family       text NOT NULL,
    value_digest text,
    row_xmin     xid,
    job_id       uuid,
    written_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (environment, type, name, key)
);

-- Rows of an earlier TickStockPL (before the ledger): a universe whose row still exists and whose
-- newest change-log entry by PL created or filled it counts as PL's. Its digest is unknown, so it
-- cannot be reported as edited; the first sync that writes it records the digest.
INSERT INTO pl_cache_ledger (environment, type, name, key, family)
SELECT c.environment, c.type, c.name, c.key, 'legacy'
FROM cache_entries c
WHERE EXISTS (
    SELECT 1 FROM pl_sync_changes s
    WHERE s.environment = c.environment AND s.universe = c.type || ':' || c.name || ':' || c.key
      AND s.action IN ('created', 'added')
      AND NOT EXISTS (SELECT 1 FROM pl_sync_changes later
                      WHERE later.environment = s.environment AND later.universe = s.universe
                        AND later.action = 'deleted' AND later.id > s.id))
ON CONFLICT DO NOTHING;

-- The change log also records rows taken over from the old synchronizer, rows found edited by
-- someone else, and rows an operator pruned.
ALTER TABLE pl_sync_changes DROP CONSTRAINT IF EXISTS pl_sync_changes_action_check;
ALTER TABLE pl_sync_changes ADD CONSTRAINT pl_sync_changes_action_check
    CHECK (action IN ('added', 'removed', 'updated', 'reordered', 'created', 'deleted', 'adopted', 'edited', 'pruned'));
