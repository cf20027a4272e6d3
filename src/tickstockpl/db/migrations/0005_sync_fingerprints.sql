-- Fingerprints of a completed sync's inputs and outputs (sync/fingerprint.py): a rerun whose
-- inputs and outputs still match the newest completed sync of its mode skips the build.
ALTER TABLE pl_sync_jobs ADD COLUMN IF NOT EXISTS inputs_digest text;
ALTER TABLE pl_sync_jobs ADD COLUMN IF NOT EXISTS outputs_digest text;
CREATE INDEX IF NOT EXISTS pl_sync_jobs_fingerprint ON pl_sync_jobs (environment, mode, end_time DESC)
    WHERE status = 'completed' AND inputs_digest IS NOT NULL;
