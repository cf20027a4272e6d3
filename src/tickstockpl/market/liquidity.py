"""Per-symbol rolling liquidity statistics (`pl_symbol_liquidity`, migration 0009), maintained at import time.

The rule universes screen on "200-session median dollar volume", "valid close on 180 of the last 200
sessions" and the like. Reading 200 sessions of bars per sync would cost every sync; instead each symbol's
row keeps the dollar volumes of its last WINDOW sessions (oldest first) and the table is moved forward one
session at a time, reading only that session's bars:

    update_session(conn, day)   fold session `day` in: the table must stand at the session before `day`
                                (the NYSE session before it, pl_market_sessions); a state check and one statement. Already
                                folded: nothing happens (returns 0). Empty table or a gap: LiquidityError
                                (call `rebuild` or `catch_up`).
    rebuild(conn, through)      recompute every row from ohlcv_daily as of session `through` (deletes and
                                refills the table, PL's own; one transaction of the caller's)
    catch_up(conn, through)     rebuild when the table is empty, ahead of `through` or its rows disagree,
                                else fold each missing session in order
    after_import(conn, written) the importer's call, in the transaction that wrote the bars: catch up to
                                the newest session written, or rebuild when bars of a session already
                                folded in changed (a re-import, a revision)
    load(conn)                  every row as a LiquidityRow
    window_stats(row, windows)  median / mean dollar volume and coverage over each window, the streak
    load_matrix(conn)           every row at once as arrays (the windows in binary, one numpy matrix), and
                                Matrix.stats(windows): window_stats for every row at once, the same numbers,
                                as one StatsTable (by column)

The statistics themselves are kept too (pl_liquidity_stats, migration 0012), so that a sync reads a few
numbers per symbol instead of 252-session windows:

    refresh_stats(conn, windows)   load_matrix + Matrix.stats, written to pl_liquidity_stats with its state
                                   row (session, windows, the table state they come from); every writer
                                   above (update_session, rebuild, catch_up, after_import) calls it at its
                                   end, in its transaction, so an import leaves them current
    load_stats(conn, ...)          the kept statistics as a StatsTable of numpy arrays, NaN for a NULL last
                                   close (the sync's read, one statement)
    StatsState.serves(...)         whether they serve a session and windows (the sync checks the state row
                                   its snapshot statement reads; when they do not, a sync that writes
                                   refreshes them for its windows, a dry run computes them without keeping)

Every writer takes the transaction lock `locks.LIQUIDITY` first (an import and a sync catching up at
the same time would otherwise both append the same session): the second waits for the first to commit,
then finds the table current.

A *valid bar* has a close above 0 and below 1e15 (NaN is not) and a volume of 0 or more; its dollar volume
is close × volume, kept as a `real` (7 significant digits: a 252-session window stays inline in its row,
about 1 KB, and the daily update rewrites rows in place). A session without a valid bar of the symbol is a NULL in the window. A symbol's
window starts at its first bar on a session (so its length is min(sessions_seen, WINDOW)); a symbol that
stops trading keeps its row, which fills with NULLs (it then fails every coverage screen).

Re-importing a session already folded in (corrected bars) is not picked up by update_session: call
`rebuild(conn, through)` after it (`after_import` does).
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from tickstockpl.db import copytext, locks
from tickstockpl.errors import LiquidityError  # noqa: F401 - raised here; errors.py holds it

if TYPE_CHECKING:
    import numpy as np  # imported where used: a sync that skips (unchanged inputs) never pays its 70 ms

WINDOW = 252  # sessions kept per symbol (one trading year; universes/rules/definition.MAX_WINDOW)


_VALID = "o.close > 0 AND o.close < 1e15 AND o.volume >= 0"

STATE_SQL = (
    "SELECT (SELECT max(session) FROM pl_market_sessions WHERE session < %(day)s),"
    " EXISTS (SELECT 1 FROM pl_market_sessions WHERE session = %(day)s),"
    " (SELECT low FROM pl_symbol_liquidity_state), (SELECT high FROM pl_symbol_liquidity_state)"
)

UPDATE_SQL = f"""
WITH bars AS (
    SELECT o.symbol,
           CASE WHEN {_VALID} THEN o.close::float8 END AS close,
           CASE WHEN {_VALID} THEN (o.close::float8 * o.volume::float8)::real END AS dv
    FROM ohlcv_daily o
    WHERE o.date = %(day)s
), moved AS (
    UPDATE pl_symbol_liquidity l SET
        through = %(day)s,
        sessions_seen = l.sessions_seen + 1,
        dollar_volumes = CASE WHEN cardinality(l.dollar_volumes) >= %(window)s
                              THEN array_append(l.dollar_volumes[cardinality(l.dollar_volumes) - %(window)s + 2:], b.dv)
                              ELSE array_append(l.dollar_volumes, b.dv) END,
        last_close = CASE WHEN b.dv IS NOT NULL THEN b.close ELSE l.last_close END,
        last_valid_session = CASE WHEN b.dv IS NOT NULL THEN %(day)s::date ELSE l.last_valid_session END,
        updated_at = now()
    FROM pl_symbol_liquidity l0
    LEFT JOIN bars b ON b.symbol = l0.symbol
    WHERE l.symbol = l0.symbol
    RETURNING 1
), added AS (
    INSERT INTO pl_symbol_liquidity
           (symbol, through, first_session, sessions_seen, dollar_volumes, last_close, last_valid_session, updated_at)
    SELECT b.symbol, %(day)s, %(day)s, 1, ARRAY[b.dv], b.close, CASE WHEN b.dv IS NOT NULL THEN %(day)s::date END, now()
    FROM bars b
    WHERE NOT EXISTS (SELECT 1 FROM pl_symbol_liquidity l WHERE l.symbol = b.symbol)
    RETURNING 1
)
SELECT (SELECT count(*) FROM moved) + (SELECT count(*) FROM added)
"""

REBUILD_SQL = f"""
WITH days AS (
    SELECT session, row_number() OVER (ORDER BY session) AS pos
    FROM pl_market_sessions WHERE session <= %(day)s
), last AS (
    SELECT max(pos) AS pos FROM days
), win AS (
    SELECT session, pos FROM days WHERE pos > (SELECT pos FROM last) - %(window)s
), firsts AS (
    SELECT o.symbol, min(d.pos) AS pos
    FROM ohlcv_daily o JOIN days d ON d.session = o.date
    GROUP BY o.symbol
), recent AS (
    SELECT o.symbol, o.date,
           CASE WHEN {_VALID} THEN (o.close::float8 * o.volume::float8)::real END AS dv
    FROM ohlcv_daily o
    WHERE o.date >= (SELECT min(session) FROM win) AND o.date <= %(day)s
), windows AS (
    SELECT f.symbol, array_agg(r.dv ORDER BY w.pos) AS dollar_volumes,
           max(w.session) FILTER (WHERE r.dv IS NOT NULL) AS last_valid
    FROM firsts f
    JOIN win w ON w.pos >= f.pos
    LEFT JOIN recent r ON r.symbol = f.symbol AND r.date = w.session
    GROUP BY f.symbol
)
INSERT INTO pl_symbol_liquidity
       (symbol, through, first_session, sessions_seen, dollar_volumes, last_close, last_valid_session, updated_at)
SELECT f.symbol, %(day)s, fd.session, (SELECT pos FROM last) - f.pos + 1, w.dollar_volumes, n.close, n.date, now()
FROM firsts f
JOIN days fd ON fd.pos = f.pos
JOIN windows w ON w.symbol = f.symbol
LEFT JOIN LATERAL (
    -- the newest valid bar on a session: the window's, found through the (symbol, date) index; only a
    -- symbol without one in its window looks further back
    SELECT o.close::float8 AS close, o.date
    FROM ohlcv_daily o
    WHERE o.symbol = f.symbol AND o.date <= coalesce(w.last_valid, %(day)s) AND {_VALID}
      AND EXISTS (SELECT 1 FROM pl_market_sessions m WHERE m.session = o.date)
    ORDER BY o.date DESC
    LIMIT 1
) n ON true
"""

# real[] read as float8[]: the text form of a real is its shortest decimal, which is not always the stored value
LOAD_SQL = ("SELECT symbol, through, first_session, sessions_seen, dollar_volumes::float8[], last_close, last_valid_session"
            " FROM pl_symbol_liquidity ORDER BY symbol")


@dataclass(frozen=True, slots=True)
class LiquidityRow:
    symbol: str
    through: dt.date
    first_session: dt.date
    sessions_seen: int
    dollar_volumes: tuple[float | None, ...]
    last_close: float | None
    last_valid_session: dt.date | None


@dataclass(frozen=True, slots=True)
class WindowStats:
    median_dollar_volume: dict[int, float | None]
    mean_dollar_volume: dict[int, float | None]
    coverage: dict[int, int]
    streak: int


def _lock(conn) -> None:
    """The writers' transaction lock (re-entrant within a transaction; released at its end)."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (locks.LIQUIDITY,))


def update_session(conn, day: dt.date) -> int:
    """Fold session `day` into the table (see the module docstring) and refresh the statistics; returns
    the rows written (0: already folded, nothing happens)."""
    written = _fold(conn, day)
    if written:
        refresh_stats(conn)
    return written


def _fold(conn, day: dt.date) -> int:
    _lock(conn)
    previous, is_session, low, high = conn.execute(STATE_SQL, {"day": day}).fetchone()
    if not is_session:
        raise LiquidityError(f"liquidity statistics: {day.isoformat()} is not an NYSE session (pl_market_sessions)")
    if high is None:
        raise LiquidityError("liquidity statistics: pl_symbol_liquidity is empty: rebuild it first")
    if low != high:
        raise LiquidityError(f"liquidity statistics: rows stand at different sessions ({low} .. {high}): rebuild")
    if high >= day:
        if high == day:
            return 0
        raise LiquidityError(f"liquidity statistics: the table already stands at {high}, after {day}: rebuild")
    if high != previous:
        raise LiquidityError(f"liquidity statistics: the table stands at {high}, not at {previous} (the session "
                             f"before {day}): catch up or rebuild")
    return conn.execute(UPDATE_SQL, {"day": day, "window": WINDOW}).fetchone()[0]


def rebuild(conn, through: dt.date) -> int:
    """Every row recomputed from ohlcv_daily as of session `through`, then the statistics; returns the
    rows written."""
    written = _rebuild(conn, through)
    refresh_stats(conn)
    return written


def _rebuild(conn, through: dt.date) -> int:
    if not conn.execute("SELECT EXISTS (SELECT 1 FROM pl_market_sessions WHERE session = %s)", (through,)).fetchone()[0]:
        raise LiquidityError(f"liquidity statistics: {through.isoformat()} is not an NYSE session (pl_market_sessions)")
    _lock(conn)
    conn.execute("DELETE FROM pl_symbol_liquidity")
    return conn.execute(REBUILD_SQL, {"day": through, "window": WINDOW}).rowcount


def catch_up(conn, through: dt.date) -> int:
    """Bring the table to `through`: rebuild when it is empty, ahead or its rows stand at different
    sessions, else fold each missing session; then refresh the statistics when anything moved or they
    are not those of the table."""
    _lock(conn)
    low, high = conn.execute(f"SELECT low, high FROM ({STATE_ROW}) AS liquidity").fetchone()
    if high is None or high > through or low != high:
        written = _rebuild(conn, through)
    else:
        days = [r[0] for r in conn.execute(
            "SELECT session FROM pl_market_sessions WHERE session > %s AND session <= %s ORDER BY session",
            (high, through))]
        written = sum(_fold(conn, day) for day in days)
    if written or not stats_current(conn):
        refresh_stats(conn)
    return written


# The importer's state check: where the table stands, and which of the dates written are NYSE sessions.
_AFTER_IMPORT_SQL = (
    "SELECT (SELECT low FROM pl_symbol_liquidity_state), (SELECT high FROM pl_symbol_liquidity_state),"
    " ARRAY(SELECT session FROM pl_market_sessions WHERE session = ANY(%s) ORDER BY session)")


def after_import(conn, written: Mapping[dt.date, int]) -> tuple[str, dt.date | None]:
    """Keep the table current after an import, inside the transaction that wrote the bars.

    `written`: each session imported -> the bars inserted or changed (0: the provider sent the same bars
    again). Sessions that are no NYSE session are ignored (the statistics count sessions only). Returns
    (what was done, where the table stands): ("none", ...) when no session was imported or nothing moved,
    ("catch_up", day) after folding in the sessions up to the newest one imported, ("rebuild", day) when
    the table was empty, its rows disagreed, or bars of a session it had already folded in changed
    (a re-import or a revision: the window holds that session's old dollar volumes)."""
    if not written:
        return "none", None
    _lock(conn)
    low, high, sessions = conn.execute(_AFTER_IMPORT_SQL, (sorted(written),)).fetchone()
    if not sessions:
        return "none", high
    newest = sessions[-1]
    changed_before = any(written.get(day, 0) > 0 and high is not None and day <= high for day in sessions)
    if high is None or low != high or changed_before:
        target = max(newest, high) if high is not None else newest
        rebuild(conn, target)
        return "rebuild", target
    if newest <= high:
        return "none", high
    catch_up(conn, newest)
    return "catch_up", newest


def load(conn) -> list[LiquidityRow]:
    return [LiquidityRow(s, t, f, n, tuple(v), c, lv) for s, t, f, n, v, c, lv in conn.execute(LOAD_SQL)]


def window_stats(dollar_volumes: Iterable[float | None], windows: Iterable[int]) -> WindowStats:
    """The statistics of the last N sessions for each N in `windows` (N <= WINDOW), from a row's window."""
    values = list(dollar_volumes)
    streak = 0
    for v in reversed(values):
        if v is None:
            break
        streak += 1
    median, mean, coverage = {}, {}, {}
    for n in windows:
        if not 1 <= n <= WINDOW:
            raise ValueError(f"window of {n} sessions: expected 1 to {WINDOW}")
        valid = [v for v in values[-n:] if v is not None and math.isfinite(v)]
        coverage[n] = len(valid)
        median[n] = statistics.median(valid) if valid else None
        mean[n] = math.fsum(valid) / len(valid) if valid else None
    return WindowStats(median, mean, coverage, streak)


# The windows as the server stores them (array_send of real[]: no text formatting, no float8 cast), a
# NULL sent as NaN (the matrix's NULL; a stored dollar volume is never NaN, _VALID refuses a NaN close)
# so every element has the same width and numpy reads a row without a Python loop, for `load_matrix`.
MATRIX_SQL = ("SELECT symbol, through, sessions_seen, array_send(array_replace(dollar_volumes, NULL, 'NaN'::real)),"
              " last_close, cardinality(dollar_volumes) FROM pl_symbol_liquidity ORDER BY symbol")
_HEADER_BYTES = 20  # array_send of a one-dimensional array: ndim, has-null flag, element type, length, lower bound


def sent_array(packed: bytes, kind: str, count: int | None = None) -> np.ndarray:
    """The values of array_send(a one-dimensional array without NULLs) as numpy reads them without a Python loop
    (every element is its 4-byte length, then its value): `kind` the value's numpy type (">f4" for real,
    ">f8" for float8, ">i4" for int4, "u1" for boolean); `count` elements (default: all)."""
    import numpy as np

    element = np.dtype([("length", ">i4"), ("value", kind)])
    if count is None:
        count = (len(packed) - _HEADER_BYTES) // element.itemsize if len(packed) > _HEADER_BYTES else 0
    return np.frombuffer(packed, dtype=element, offset=_HEADER_BYTES, count=count)["value"]


def window_medians(part: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(valid, count, median) of every row of `part` (rows × sessions, NaN where a session has no value; the
    sessions in any order): statistics.median of each row's valid values, the two middle ones averaged in
    float64, NaN for a row without any. One numpy sort for all rows (Matrix.stats and the replay's windows)."""
    import numpy as np

    valid = np.isfinite(part)
    count = valid.sum(axis=1)
    ordered = np.sort(np.where(valid, part, part.dtype.type(np.inf)), axis=1)  # the missing ones last
    rows = np.arange(len(part))
    low = ordered[rows, np.maximum(count - 1, 0) // 2].astype(np.float64)
    high = ordered[rows, np.minimum(count // 2, part.shape[1] - 1)].astype(np.float64)
    with np.errstate(invalid="ignore"):
        return valid, count, np.where(count > 0, (low + high) / 2, np.nan)


@dataclass(frozen=True)
class Matrix:
    """Every row of the table at once: `values[i]` holds row i's window right-aligned in WINDOW columns
    (the last column is `through`), float32 (the stored real, as stored), NaN where the window has a
    NULL or has not started yet (a symbol younger than WINDOW sessions)."""

    symbols: tuple[str, ...]
    through: tuple[dt.date, ...]
    sessions_seen: tuple[int, ...]
    last_close: tuple[float | None, ...]
    values: np.ndarray

    def stats(self, windows: Iterable[int]) -> "StatsTable":
        """`window_stats` of every row at once: the same medians (the same two middle values averaged),
        coverages and streaks; the means summed in extended precision and rounded once, which is
        math.fsum's correctly rounded sum whenever that sum is exact in 64 bits (a window's dollar
        volumes are 24-bit floats within a few powers of ten of each other)."""
        import numpy as np

        values = self.values
        present = ~np.isnan(values)
        tail = present[:, ::-1]
        streak = np.where(tail.all(axis=1), tail.shape[1], np.argmin(tail, axis=1)) if len(values) else \
            np.zeros(0, dtype=int)
        median, mean, coverage = {}, {}, {}
        windows_seen = sorted(set(windows))
        for n in windows_seen:
            if not 1 <= n <= WINDOW:
                raise ValueError(f"window of {n} sessions: expected 1 to {WINDOW}")
            part = values[:, -n:]
            valid, count, median[n] = window_medians(part)
            total = np.where(valid, part, np.float32(0)).sum(axis=1, dtype=np.longdouble).astype(np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean[n] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
            coverage[n] = count
        through = self.through[0] if self.through else None
        if any(t != through for t in self.through):
            raise LiquidityError(f"liquidity statistics: rows stand at different sessions ({min(self.through)} .."
                                 f" {max(self.through)}): rebuild")
        return StatsTable(through, tuple(windows_seen), self.symbols, list(self.sessions_seen), list(self.last_close),
                          streak.tolist(), {n: v.tolist() for n, v in median.items()},
                          {n: v.tolist() for n, v in mean.items()}, {n: v.tolist() for n, v in coverage.items()})


@dataclass(frozen=True)
class StatsTable:
    """The window statistics of every row of the table at one session, by column (aligned with
    `symbols`; per window N of `windows`: NaN where no session of the window has a valid bar). What
    Matrix.stats computes and what pl_liquidity_stats keeps (`refresh_stats` writes it, `load_stats`
    reads it back, the same numbers: float8 round-trips exactly). The columns are lists (Matrix.stats; a
    missing last close is None) or numpy arrays (load_stats; a missing last close is NaN)."""

    through: dt.date | None
    windows: tuple[int, ...]
    symbols: tuple[str, ...]
    sessions_seen: Sequence[int]
    last_close: Sequence[float | None]
    streak: Sequence[int]
    median_dollar_volume: dict[int, Sequence[float]]
    mean_dollar_volume: dict[int, Sequence[float]]
    coverage: dict[int, Sequence[int]]


def load_matrix(conn) -> Matrix:
    """Every row in one statement (MATRIX_SQL), unpacked into a Matrix."""
    import numpy as np

    with conn.cursor(binary=True) as cur:
        cur.execute(MATRIX_SQL)
        found = cur.fetchall()
    values = np.full((len(found), WINDOW), np.nan, dtype=np.float32)
    for i, (_symbol, _through, _seen, packed, _close, length) in enumerate(found):
        if length:
            values[i, WINDOW - length:] = sent_array(packed, ">f4", length)
    return Matrix(tuple(r[0] for r in found), tuple(r[1] for r in found), tuple(r[2] for r in found),
                  tuple(r[4] for r in found), values)


# --- the statistics a sync reads (pl_liquidity_stats, migration 0012) --------------------------------

# Where pl_symbol_liquidity stands: its sessions (low, high: min and max of `through`), newest stamp and row
# count, from the one row a trigger recomputes at the end of every statement that writes the table
# (migration 0014), not from a scan of its windows; a missing row reads as an empty table.
STATE_ROW = ("SELECT s.low, s.high, s.stamp, coalesce(s.n, 0) AS n FROM (VALUES (true)) AS one (only_row)"
             " LEFT JOIN pl_symbol_liquidity_state s USING (only_row)")
# That state as the one text both the sync's fingerprint (sync/fingerprint.py, its `liquidity` CTE) and the
# statistics' state row (`source`) hold: every writer stamps the rows it writes (updated_at = now()), a
# rebuild deletes and refills, so the sessions, the newest stamp and the row count change whenever the
# windows may have moved. Written without the session's DateStyle or TimeZone (days and seconds since
# 1970), so every connection gives the same text.
SOURCE_TEXT = "concat_ws(',', low - DATE '1970-01-01', high - DATE '1970-01-01', extract(epoch FROM stamp), n)"
SOURCE_SQL = f"SELECT {SOURCE_TEXT} FROM ({STATE_ROW}) AS liquidity"
STATE_OF_STATS_SQL = "SELECT through, windows, source FROM pl_liquidity_stats_state"


def stats_sql(count: int) -> str:
    """The statement of `load_stats` for `count` windows: every column aggregated into one array (all of
    them from one scan, so aligned with the symbols whatever the order), the numbers as array_send bytes
    (`sent_array`); the k-th window's medians, means and coverages as columns of their own. 12,000 rows of
    seven columns, three of them arrays, took 38 ms to decode one value at a time (measured)."""
    def sent(expression: str) -> str:
        return f"array_send(array_agg({expression}))"

    windows = [sent(f"coalesce({column}[{k}], {missing})") for column, missing in (
        ("medians", "'NaN'::float8"), ("means", "'NaN'::float8"), ("coverages", "0")) for k in range(1, count + 1)]
    return ("SELECT array_agg(symbol), " + ", ".join([
        sent("sessions_seen"), sent("coalesce(last_close, 'NaN'::float8)"), sent("streak"), *windows])
            + " FROM (SELECT * FROM pl_liquidity_stats ORDER BY symbol) AS s")


@dataclass(frozen=True)
class StatsState:
    """Where pl_liquidity_stats stands (its state row, read by the sync's snapshot statement):
    `fresh` = computed from pl_symbol_liquidity as it is now (the state row's source is the table's)."""

    through: dt.date | None
    windows: tuple[int, ...]
    fresh: bool

    def serves(self, session: dt.date, windows: Iterable[int]) -> bool:
        """Whether the kept statistics are those of `session` for every one of `windows`."""
        return self.fresh and self.through == session and set(windows) <= set(self.windows)


def default_windows() -> tuple[int, ...]:
    """The windows of the built-in rule universes (universes/rules/defaults.toml): always kept."""
    from tickstockpl.universes.rules.definition import default_definitions

    return tuple(sorted({w for d in default_definitions().values() for w in d.windows()}))


def refresh_stats(conn, windows: Iterable[int] | None = None) -> StatsTable:
    """Compute the statistics of every row of pl_symbol_liquidity (load_matrix + Matrix.stats) and keep
    them in pl_liquidity_stats, replacing what it held, with the state row saying where they stand.
    `windows`: the windows to keep (a sync passes those its definitions read), always with the built-in
    ones; None: the windows kept now and the built-in ones (the importer's call). Takes the writers' lock;
    runs in the caller's transaction."""
    _lock(conn)
    if windows is None:
        kept = conn.execute(STATE_OF_STATS_SQL).fetchone()
        windows = kept[1] if kept else ()
    # the built-in windows that fit the table's window (all of them unless WINDOW is lowered, as tests do)
    keep = sorted(set(windows) | {n for n in default_windows() if n <= WINDOW})
    table = load_matrix(conn).stats(keep)
    source = conn.execute(SOURCE_SQL).fetchone()[0]
    conn.execute("DELETE FROM pl_liquidity_stats")
    with conn.cursor().copy("COPY pl_liquidity_stats (symbol, sessions_seen, last_close, streak, medians, means,"
                            " coverages) FROM STDIN") as copy:
        copy.write(_stats_copy_text(table, keep))
    conn.execute("INSERT INTO pl_liquidity_stats_state (only_row, through, windows, source, refreshed_at)"
                 " VALUES (true, %s, %s, %s, now()) ON CONFLICT (only_row) DO UPDATE SET through = EXCLUDED.through,"
                 " windows = EXCLUDED.windows, source = EXCLUDED.source, refreshed_at = EXCLUDED.refreshed_at",
                 (table.through, keep, source))
    return table


def _stats_copy_text(table: StatsTable, windows: list[int]) -> str:
    """COPY text of pl_liquidity_stats's rows (db/copytext): one join instead of psycopg's write_row, which
    adapted three lists a row (0.9 of 1.6 s of a refresh at 12,000 symbols, measured). repr() of a float is
    its shortest exact text (NaN as nan, which float8 reads), so the stored numbers are the computed ones."""
    medians = [table.median_dollar_volume[n] for n in windows]
    means = [table.mean_dollar_volume[n] for n in windows]
    coverages = [table.coverage[n] for n in windows]
    symbols = table.symbols
    if copytext.needs_escape("".join(symbols)):
        symbols = [copytext.field(s) for s in symbols]
    lines = []
    for i, symbol in enumerate(symbols):
        close = table.last_close[i]
        lines.append(f"{symbol}\t{table.sessions_seen[i]}\t{copytext.NULL if close is None else repr(float(close))}"
                     f"\t{table.streak[i]}\t{{{','.join([repr(float(m[i])) for m in medians])}}}"
                     f"\t{{{','.join([repr(float(a[i])) for a in means])}}}"
                     f"\t{{{','.join([str(int(c[i])) for c in coverages])}}}\n")
    return "".join(lines)


def stats_current(conn) -> bool:
    """Whether pl_liquidity_stats holds the statistics of pl_symbol_liquidity as it is now."""
    row = conn.execute(f"SELECT s.source = ({SOURCE_SQL}) FROM pl_liquidity_stats_state s").fetchone()
    return row is not None and bool(row[0])


def load_stats(conn, through: dt.date | None, windows: Iterable[int]) -> StatsTable:
    """pl_liquidity_stats in one statement, as the StatsTable refresh_stats wrote (the sync's read: the
    caller has checked the state row, `through` and `windows` are what it says)."""
    windows = tuple(windows)
    with conn.cursor(binary=True) as cur:
        cur.execute(stats_sql(len(windows)))
        symbols, *packed = cur.fetchone()
    if symbols is None:  # no row
        return StatsTable(through, windows, (), [], [], [], *({n: [] for n in windows} for _ in range(3)))
    seen, closes, streak = (sent_array(packed[i], kind) for i, kind in enumerate((">i4", ">f8", ">i4")))
    k = len(windows)

    def per_window(first: int, kind: str) -> dict:
        return {n: sent_array(packed[first + j], kind) for j, n in enumerate(windows)}
    return StatsTable(through, windows, tuple(symbols), seen, closes, streak, per_window(3, ">f8"),
                      per_window(3 + k, ">f8"), per_window(3 + 2 * k, ">i4"))
