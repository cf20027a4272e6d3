-- TickStockPL's own tables for the cache sync: jobs, change log, membership history, event outbox.

CREATE TABLE IF NOT EXISTS pl_sync_jobs (
    job_id        uuid PRIMARY KEY,
    environment   varchar(10) NOT NULL,
    mode          text NOT NULL CHECK (mode IN ('full', 'market_cap', 'themes', 'ipos')),
    force         boolean NOT NULL DEFAULT false,
    triggered_by  text NOT NULL CHECK (triggered_by IN ('api', 'scheduler', 'pipeline', 'cli')),
    status        text NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    as_of         date,
    created_at    timestamptz NOT NULL DEFAULT now(),
    start_time    timestamptz,
    end_time      timestamptz,
    error_details text,
    result        jsonb,
    progress      jsonb,
    owner         text
);
-- Single-flight, second line of defence behind the advisory lock: one live job per environment.
CREATE UNIQUE INDEX IF NOT EXISTS pl_sync_jobs_one_live
    ON pl_sync_jobs (environment) WHERE status IN ('pending', 'running');
CREATE INDEX IF NOT EXISTS pl_sync_jobs_created ON pl_sync_jobs (created_at DESC);

CREATE TABLE IF NOT EXISTS pl_sync_changes (
    id          bigserial PRIMARY KEY,
    job_id      uuid NOT NULL,
    environment varchar(10) NOT NULL,
    universe    text NOT NULL,           -- "type:name:key"
    symbol      text,                    -- NULL for a change of the universe as a whole
    action      text NOT NULL CHECK (action IN ('added', 'removed', 'updated', 'reordered', 'created', 'deleted')),
    reason      text NOT NULL,
    metadata    jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS pl_sync_changes_created ON pl_sync_changes (created_at);
CREATE INDEX IF NOT EXISTS pl_sync_changes_universe ON pl_sync_changes (universe, created_at);
CREATE INDEX IF NOT EXISTS pl_sync_changes_job ON pl_sync_changes (job_id);

-- Point-in-time membership: a symbol belongs to a universe on day d when valid_from <= d < valid_to.
CREATE TABLE IF NOT EXISTS pl_universe_membership (
    environment varchar(10) NOT NULL,
    universe    text NOT NULL,
    symbol      text NOT NULL,
    valid_from  date NOT NULL,
    valid_to    date,
    job_id      uuid,
    PRIMARY KEY (environment, universe, symbol, valid_from)
);
CREATE UNIQUE INDEX IF NOT EXISTS pl_universe_membership_open
    ON pl_universe_membership (environment, universe, symbol) WHERE valid_to IS NULL;

-- Transactional outbox: written in the transaction that makes the change, relayed to Redis after commit.
CREATE TABLE IF NOT EXISTS pl_event_outbox (
    id           bigserial PRIMARY KEY,
    channel      text NOT NULL,
    event        text NOT NULL,
    message      text NOT NULL,          -- the exact JSON text published
    created_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text
);
CREATE INDEX IF NOT EXISTS pl_event_outbox_pending ON pl_event_outbox (id) WHERE delivered_at IS NULL;
CREATE INDEX IF NOT EXISTS pl_event_outbox_delivered ON pl_event_outbox (delivered_at) WHERE delivered_at IS NOT NULL;

-- NYSE sessions, filled from exchange_calendars by `tickstockpl db upgrade` so that the sync
-- process itself never has to import the calendar library.
CREATE TABLE IF NOT EXISTS pl_market_sessions (
    session   date PRIMARY KEY,
    open_utc  timestamptz NOT NULL,
    close_utc timestamptz NOT NULL
);
