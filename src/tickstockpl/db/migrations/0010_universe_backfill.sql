-- The membership history rebuilt from bars (issue 13, `tickstockpl universes backfill`, universes/backfill.py).
-- PL's own tables; the backfill writes pl_universe_membership rows with job_id = its fixed id (BACKFILL_JOB).
--   pl_backfill_runs        one per environment: the range fixed by the first run (a later run resumes it)
--                           and whether the last session's members stay open (no live history then, through
--                           the newest session with bars) and the session whose closes scale today's caps
--                           (the newest with bars then: a resumed run reads the same)
--   pl_backfill_boundaries  per universe with live history when the backfill started: its first live session.
--                           The backfill writes that universe only for the sessions before it; a member of its
--                           last one continues the live row that starts there (whose valid_from becomes the
--                           true entry date)
--   pl_backfill_sessions    one per session written (in that session's transaction): resuming skips them
CREATE TABLE IF NOT EXISTS pl_backfill_runs (
    environment     varchar(10) PRIMARY KEY,
    from_session    date NOT NULL,
    through_session date NOT NULL,
    open_end        boolean NOT NULL,
    symbols_session date NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);

CREATE TABLE IF NOT EXISTS pl_backfill_boundaries (
    environment varchar(10) NOT NULL,
    universe    text NOT NULL,
    live_from   date NOT NULL,
    PRIMARY KEY (environment, universe)
);

CREATE TABLE IF NOT EXISTS pl_backfill_sessions (
    environment varchar(10) NOT NULL,
    session     date NOT NULL,
    opened      integer NOT NULL,
    closed      integer NOT NULL,
    merged      integer NOT NULL,
    written_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (environment, session)
);
