-- Issue 14: late and partial provider days, revisions, calendar surprises.

-- A run whose session never passed the completeness gate before the deadline ends `incomplete`
-- (not success, not failed); its phase too. The morning catch-up then runs the session again, so an
-- incomplete automatic run no longer counts for "one automatic run per session".
ALTER TABLE pl_pipeline_runs DROP CONSTRAINT IF EXISTS pl_pipeline_runs_status_check;
ALTER TABLE pl_pipeline_runs ADD CONSTRAINT pl_pipeline_runs_status_check
    CHECK (status IN ('running', 'success', 'failed', 'cancelled', 'incomplete'));
ALTER TABLE pl_pipeline_phases DROP CONSTRAINT IF EXISTS pl_pipeline_phases_status_check;
ALTER TABLE pl_pipeline_phases ADD CONSTRAINT pl_pipeline_phases_status_check
    CHECK (status IN ('pending', 'running', 'success', 'failed', 'cancelled', 'skipped', 'incomplete'));
DROP INDEX IF EXISTS pl_pipeline_runs_one_automatic;
CREATE UNIQUE INDEX IF NOT EXISTS pl_pipeline_runs_one_automatic
    ON pl_pipeline_runs (environment, session_date) WHERE trigger_type = 'automatic' AND status <> 'incomplete';

-- Ad-hoc closures and early closes, consulted before the library calendar (market/overrides.py).
CREATE TABLE IF NOT EXISTS pl_calendar_overrides (
    day        date PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('closed', 'early_close')),
    close_time time,                 -- New York wall clock; early_close only
    reason     text NOT NULL DEFAULT '' CHECK (length(reason) <= 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'early_close') = (close_time IS NOT NULL))
);

-- Every bar the revisions pass changed (pipeline/revisions.py): old -> new close and volume.
CREATE TABLE IF NOT EXISTS pl_bar_revisions (
    revision_id  bigserial PRIMARY KEY,
    batch_id     uuid NOT NULL,
    session_date date NOT NULL,
    symbol       text NOT NULL,
    old_close    numeric,
    new_close    numeric,
    old_volume   bigint,
    new_volume   bigint,
    revised_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS pl_bar_revisions_session ON pl_bar_revisions (session_date, symbol);
CREATE INDEX IF NOT EXISTS pl_bar_revisions_batch ON pl_bar_revisions (batch_id);

-- The NYSE sessions with the overrides applied (closures left out, early closes moved): what a sync's
-- own statement reads (market/snapshot.py), as StoredCalendar answers in Python.
CREATE OR REPLACE VIEW pl_sessions_effective AS
SELECT s.session, s.open_utc,
       CASE WHEN o.kind = 'early_close'
            THEN least(s.close_utc, (s.session + o.close_time) AT TIME ZONE 'America/New_York')
            ELSE s.close_utc END AS close_utc
FROM pl_market_sessions s
LEFT JOIN pl_calendar_overrides o ON o.day = s.session
WHERE o.kind IS DISTINCT FROM 'closed';

-- One row per revisions pass; the scheduled pass runs once per New York day (after the morning time).
CREATE TABLE IF NOT EXISTS pl_revision_passes (
    batch_id     uuid PRIMARY KEY,
    environment  varchar(10) NOT NULL,
    trigger      text NOT NULL CHECK (trigger IN ('scheduled', 'cli', 'api')),
    market_day   date NOT NULL,          -- New York date of the market clock when it ran
    sessions     date[] NOT NULL,
    revisions    integer NOT NULL DEFAULT 0,
    sync_job_id  uuid,
    notes        jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS pl_revision_passes_one_scheduled
    ON pl_revision_passes (environment, market_day) WHERE trigger = 'scheduled';
