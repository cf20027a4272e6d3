-- Per-symbol rolling statistics of the rule universes (issue 13, market/liquidity.py), kept up to date at
-- import time one session at a time, so a sync never reads 200 sessions of bars.
--   through         the last NYSE session folded in (every row of a table kept by update_session holds the same)
--   first_session   the first session with a bar of the symbol (IPO age = sessions from it through `through`)
--   sessions_seen   sessions from first_session through `through`, both included
--   dollar_volumes  close × volume of each of the last min(sessions_seen, WINDOW) sessions, oldest first;
--                   NULL where the session has no valid bar (no bar, close not positive/finite, volume NULL/negative).
--                   real (float4, 7 significant digits): 252 of them stay inline (about 1 KB, no TOAST), so
--                   the daily update rewrites each row in place (fillfactor leaves room for HOT updates)
--   last_close, last_valid_session   the close and date of the newest valid bar
CREATE TABLE IF NOT EXISTS pl_symbol_liquidity (
    symbol             varchar(20) PRIMARY KEY,
    through            date NOT NULL,
    first_session      date NOT NULL,
    sessions_seen      integer NOT NULL CHECK (sessions_seen >= 1),
    dollar_volumes     real[] NOT NULL,
    last_close         float8,
    last_valid_session date,
    updated_at         timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 45);
