-- The daily pipeline's own tables: its schedule, its runs and their phases, and the import log.
-- (AppV2 owns `processing_runs`; nothing here uses that name.)

-- One row: the schedule every `serve` process reads (edited through POST /api/processing/schedule).
CREATE TABLE IF NOT EXISTS pl_pipeline_schedule (
    id           smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    enabled      boolean NOT NULL DEFAULT true,
    trigger_time text NOT NULL DEFAULT '16:10' CHECK (trigger_time ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'),
    timezone     text NOT NULL DEFAULT 'America/New_York',
    market_check boolean NOT NULL DEFAULT true,
    universes    jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(universes) = 'array'),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO pl_pipeline_schedule (id) VALUES (1) ON CONFLICT (id) DO NOTHING;

CREATE TABLE IF NOT EXISTS pl_pipeline_runs (
    run_id               uuid PRIMARY KEY,
    environment          varchar(10) NOT NULL,
    trigger_type         text NOT NULL CHECK (trigger_type IN ('automatic', 'manual')),
    session_date         date NOT NULL,
    phases               text[] NOT NULL,
    universe             text,
    status               text NOT NULL CHECK (status IN ('running', 'success', 'failed', 'cancelled')),
    current_phase        text,
    progress             real NOT NULL DEFAULT 0,
    symbols_total        integer NOT NULL DEFAULT 0,
    symbols_processed    integer NOT NULL DEFAULT 0,
    symbols_failed       integer NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now(),
    start_time           timestamptz NOT NULL DEFAULT now(),
    end_time             timestamptz,
    estimated_completion timestamptz,
    cancel_requested     boolean NOT NULL DEFAULT false,
    error                text,
    owner                text
);
-- Single-flight, behind the advisory lock (locks.PIPELINE): one live run per environment.
CREATE UNIQUE INDEX IF NOT EXISTS pl_pipeline_runs_one_live
    ON pl_pipeline_runs (environment) WHERE status = 'running';
-- The scheduler can never run a session twice, however many `serve` processes fire.
CREATE UNIQUE INDEX IF NOT EXISTS pl_pipeline_runs_one_automatic
    ON pl_pipeline_runs (environment, session_date) WHERE trigger_type = 'automatic';
CREATE INDEX IF NOT EXISTS pl_pipeline_runs_start ON pl_pipeline_runs (start_time DESC);

-- Per-phase timings and counts of a run.
CREATE TABLE IF NOT EXISTS pl_pipeline_phases (
    run_id     uuid NOT NULL REFERENCES pl_pipeline_runs (run_id) ON DELETE CASCADE,
    phase      text NOT NULL,
    position   smallint NOT NULL,
    status     text NOT NULL CHECK (status IN ('pending', 'running', 'success', 'failed', 'cancelled', 'skipped')),
    start_time timestamptz,
    end_time   timestamptz,
    counts     jsonb NOT NULL DEFAULT '{}'::jsonb,
    error      text,
    PRIMARY KEY (run_id, phase)
);

-- One row per session written into ohlcv_daily by the importer (a session is written whole or not at all).
CREATE TABLE IF NOT EXISTS pl_import_sessions (
    session_date    date PRIMARY KEY,
    provider        text NOT NULL,
    rows_imported   integer NOT NULL,
    rows_rejected   integer NOT NULL,
    unknown_tickers integer NOT NULL,
    rejections      jsonb NOT NULL DEFAULT '[]'::jsonb,  -- a capped sample: [{ticker, reason}]
    run_id          uuid,
    imported_at     timestamptz NOT NULL DEFAULT now()
);
