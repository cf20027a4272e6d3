-- The rule universes' window statistics, kept at import time (issue 13: "screens that do not read 200
-- sessions of bars per sync"). market/liquidity.py computes them from pl_symbol_liquidity's windows
-- (Matrix.stats, numpy) whenever it moves that table, in the same transaction; a sync reads these
-- narrow rows instead of the 252-session windows.
--   pl_liquidity_stats        one row per row of pl_symbol_liquidity:
--       sessions_seen, last_close   copied from pl_symbol_liquidity
--       streak                      consecutive sessions with a valid bar, ending at `through`
--       medians, means, coverages   per window of pl_liquidity_stats_state.windows, in that order:
--                                   median and mean dollar volume over the valid bars (NaN: none),
--                                   how many of the sessions have a valid bar
--   pl_liquidity_stats_state  one row: the session the statistics stand at, their windows, and `source`,
--                             the state of pl_symbol_liquidity they were computed from (the same text
--                             as sync/fingerprint.LIQUIDITY_STATE): a sync that finds another state
--                             there (the table was moved without them) computes them again first.
CREATE TABLE IF NOT EXISTS pl_liquidity_stats (
    symbol        varchar(20) PRIMARY KEY,
    sessions_seen integer NOT NULL,
    last_close    float8,
    streak        integer NOT NULL,
    medians       float8[] NOT NULL,
    means         float8[] NOT NULL,
    coverages     integer[] NOT NULL
);

CREATE TABLE IF NOT EXISTS pl_liquidity_stats_state (
    only_row     boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    through      date,
    windows      integer[] NOT NULL,
    source       text NOT NULL,
    refreshed_at timestamptz NOT NULL DEFAULT now()
);
