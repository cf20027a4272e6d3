"""`tickstockpl universes backfill --from D [--through T]`: the membership history of past sessions, replayed
from the stored bars, so that `?as_of=` answers for dates before PL was installed.

    backfill(conn, environment, start, through=None, progress=None) -> BackfillResult

For every NYSE session from `start` (the first session on or after it) through `through` (default: the
newest session with bars), in order:

1. the bars of the session fold into the in-memory windows (universes/rules/replay.py: the statistics
   pl_symbol_liquidity would hold then; the replay begins WINDOW sessions earlier to fill them);
2. the session's securities (replay.securities_on: today's symbols rows, the close of each symbol's newest
   bar then, market cap = today's effective cap × close then / today's close, survivorship-free: a symbol
   inactive today is active up to its last bar, a symbol without a bar yet is left out);
3. the legacy universes (universes.build, every family, today's configuration) and the rule universes
   (the enabled definitions, run session after session from an empty universe on the first session);
4. the changes against the previous session, written in ONE transaction per session: new members open a
   row (valid_from = the session), members who left close theirs (valid_to = the session), and the
   session is recorded in pl_backfill_sessions.

Joining the live history (decision, docs/RULE_UNIVERSES.md): a universe that already has live history
(rows not written by the backfill) when the backfill starts is replayed only up to the session before its
first live session L (its *boundary*, recorded in pl_backfill_boundaries). A member of that last session
continues the live row starting at L, whose valid_from becomes the true entry date (the backfilled row is
folded into it); one that is not in the live row left at L. A universe without live history is replayed
through `through`; its members then keep open rows (valid_to NULL) when `through` is the newest session
with bars, which the next live sync continues like its own, else their rows end at the session after
`through`.

Idempotent and resumable: the first run records its range, boundaries and whether it ends open
(pl_backfill_runs); a session is written at most once (pl_backfill_sessions, in its own transaction); a run
replays everything in memory from the start (the replay is deterministic) and writes only the sessions not
yet recorded. So a second run changes nothing, and a run interrupted after k sessions and started again
gives the rows of one run. A run with another range than the recorded one is refused (ConfigError).

Rows written carry job_id = BACKFILL_JOB. Nothing but PL's own tables is written (pl_universe_membership
and the three backfill tables); cache_entries is never read for writing, never touched.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator, Mapping

from psycopg.conninfo import make_conninfo

from tickstockpl.errors import ConfigError
from tickstockpl.market import liquidity, snapshot as market_snapshot
from tickstockpl.market.calendar import FIRST_SESSION_YEAR
from tickstockpl.sync.job import _cyclic_gc_paused as cyclic_gc_paused
from tickstockpl.universes.build import build
from tickstockpl.universes.config import apply_overrides as apply_config, default_config
from tickstockpl.universes.model import FAMILIES_BY_MODE, members
from tickstockpl.universes.rules import definition as rules_definition
from tickstockpl.universes.rules.publish import universe_of
from tickstockpl.universes.rules.replay import Price, SessionBars, Windows, replay, securities_on, snapshot_on
from tickstockpl.universes.rules.schedule import SessionCalendar

# The job_id of every membership row the backfill writes (a fixed id: uuid5 of the URL namespace and
# "tickstockpl:universes:backfill"); live rows carry their sync job's id.
BACKFILL_JOB = uuid.uuid5(uuid.NAMESPACE_URL, "tickstockpl:universes:backfill")
EARLIEST = dt.date(FIRST_SESSION_YEAR, 1, 1)

Progress = Callable[[int, int, str], None]

_VALID = "close > 0 AND close < 1e15 AND volume >= 0"

NEWEST_SQL = ("SELECT max(o.date) FROM ohlcv_daily o"
              " WHERE o.date = (SELECT max(m.session) FROM pl_market_sessions m"
              "                 WHERE EXISTS (SELECT 1 FROM ohlcv_daily b WHERE b.date = m.session))")

# The sessions from the WINDOW-th before `start` through `through`, oldest first.
SESSIONS_SQL = (
    "(SELECT session FROM pl_market_sessions WHERE session < %(start)s ORDER BY session DESC LIMIT %(warm)s)"
    " UNION ALL (SELECT session FROM pl_market_sessions WHERE session >= %(start)s AND session <= %(through)s)"
    " ORDER BY 1")

# Per symbol with a bar before the replay's first session: its first session with a bar, the sessions from
# it to the replay's start (excluded), the newest valid bar on a session before it (the liquidity row's
# last close) and the newest bar of any date before it (the snapshot's close).
PRIOR_SQL = f"""
WITH firsts AS (
    SELECT o.symbol, min(o.date) AS first
    FROM ohlcv_daily o JOIN pl_market_sessions m ON m.session = o.date
    WHERE o.date < %(start)s
    GROUP BY o.symbol
), priced AS (
    SELECT DISTINCT ON (o.symbol) o.symbol, o.close::float8 AS close, o.date
    FROM ohlcv_daily o WHERE o.date < %(start)s
    ORDER BY o.symbol, o.date DESC
)
SELECT p.symbol, p.close, p.date, f.first,
       (SELECT count(*) FROM pl_market_sessions m WHERE m.session >= f.first AND m.session < %(start)s),
       v.close, v.date
FROM priced p
LEFT JOIN firsts f ON f.symbol = p.symbol
LEFT JOIN LATERAL (
    SELECT o.close::float8 AS close, o.date FROM ohlcv_daily o
    WHERE f.symbol IS NOT NULL AND o.symbol = p.symbol AND o.date < %(start)s AND {_VALID}
      AND EXISTS (SELECT 1 FROM pl_market_sessions m WHERE m.session = o.date)
    ORDER BY o.date DESC LIMIT 1
) v ON true
"""

# The bars of every day after `after` through `through`, one row per day (oldest first) holding them as arrays:
# read through a server-side cursor, one statement for the whole replay. The closes, volumes (float8, NaN for
# NULL) and validity (as PostgreSQL decides it) come as array_send's bytes, which numpy reads without a Python
# loop (liquidity.sent_array); converted to Python floats element by element they took most of the 12 s the
# read took at 12,000 symbols x 450 sessions (now about 3 s).
BARS_SQL = (f"SELECT date, array_agg(symbol), array_send(array_agg(coalesce(close::float8, 'NaN'))),"
            f" array_send(array_agg(coalesce(volume::float8, 'NaN'))), array_send(array_agg(coalesce({_VALID}, false)))"
            " FROM ohlcv_daily WHERE date > %(after)s AND date <= %(through)s GROUP BY date ORDER BY date")

LIVE_SQL = ("SELECT universe, min(valid_from) FROM pl_universe_membership"
            " WHERE environment = %(env)s AND job_id IS DISTINCT FROM %(job)s GROUP BY universe")

OPEN_SQL = (
    "INSERT INTO pl_universe_membership (environment, universe, symbol, valid_from, valid_to, job_id)"
    " SELECT %(env)s, u, s, %(d)s, e, %(job)s FROM unnest(%(u)s::text[], %(s)s::text[], %(e)s::date[]) AS x(u, s, e)")
CLOSE_SQL = (
    "UPDATE pl_universe_membership m SET valid_to = %(d)s"
    " FROM unnest(%(u)s::text[], %(s)s::text[], %(f)s::date[]) AS x(u, s, f)"
    " WHERE m.environment = %(env)s AND m.universe = x.u AND m.symbol = x.s AND m.valid_from = x.f")
# At a universe's boundary: the backfilled rows of members whose live row starts at the boundary are folded
# into it (deleted here, then the live row starts at their entry date: MOVE_SQL), in two statements so that
# the primary key never sees both.
FOLD_SQL = (
    "DELETE FROM pl_universe_membership m"
    " USING unnest(%(u)s::text[], %(s)s::text[], %(f)s::date[], %(l)s::date[]) AS x(u, s, f, l)"
    " WHERE m.environment = %(env)s AND m.universe = x.u AND m.symbol = x.s AND m.valid_from = x.f"
    " AND m.job_id = %(job)s AND EXISTS (SELECT 1 FROM pl_universe_membership live WHERE live.environment = %(env)s"
    "  AND live.universe = x.u AND live.symbol = x.s AND live.valid_from = x.l)"
    " RETURNING m.universe, m.symbol, m.valid_from")
MOVE_SQL = (
    "UPDATE pl_universe_membership m SET valid_from = x.f"
    " FROM unnest(%(u)s::text[], %(s)s::text[], %(f)s::date[], %(l)s::date[]) AS x(u, s, f, l)"
    " WHERE m.environment = %(env)s AND m.universe = x.u AND m.symbol = x.s AND m.valid_from = x.l")


@dataclass
class BackfillResult:
    environment: str
    from_session: str
    through_session: str
    sessions: int = 0  # sessions in the range
    written: int = 0  # sessions written by this run
    skipped: int = 0  # sessions an earlier run had written
    opened: int = 0
    closed: int = 0
    merged: int = 0  # members at a boundary whose live row now starts at their entry date
    universes: int = 0  # universes with history written by the backfill (over the whole range)
    open_end: bool = False
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's CPU time (without PostgreSQL's): the wall time on an idle machine, less the waits
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    """The recorded run: its range and each boundary (universe -> first live session)."""

    start: dt.date
    through: dt.date
    open_end: bool
    symbols_session: dt.date  # today's symbols rows are read with the closes of this session (the newest then)
    boundaries: Mapping[str, dt.date]


def newest_session(conn) -> dt.date | None:
    """The newest NYSE session with bars."""
    return conn.execute(NEWEST_SQL).fetchone()[0]


def check_range(conn, start: dt.date, through: dt.date | None) -> tuple[dt.date, dt.date, dt.date]:
    """(first session, last session, newest session with bars) of a backfill from `start` through `through`;
    ConfigError naming the flag for a range PL cannot replay."""
    if start < EARLIEST:
        raise ConfigError(f"--from {start.isoformat()} is before {EARLIEST.isoformat()}, the first date of the calendar PL holds")
    newest = newest_session(conn)
    if newest is None:
        raise ConfigError("no bars in ohlcv_daily on an NYSE session: nothing to backfill from")
    if start > newest:
        raise ConfigError(f"--from {start.isoformat()} is after the newest session with bars ({newest.isoformat()})")
    if through is not None and (through < start or through > newest):
        raise ConfigError(f"--through {through.isoformat()} must lie from --from ({start.isoformat()}) to the newest"
                          f" session with bars ({newest.isoformat()})")
    end = through or newest
    row = conn.execute("SELECT min(session), max(session) FROM pl_market_sessions WHERE session >= %s AND session <= %s",
                       (start, end)).fetchone()
    if row[0] is None:
        raise ConfigError(f"no NYSE session from {start.isoformat()} to {end.isoformat()}")
    return row[0], row[1], newest


def _plan(conn, environment: str, start: dt.date, through: dt.date, newest: dt.date, given_through: bool) -> Plan:
    """The recorded run (checked against this one's range), or a new one recorded now with its boundaries."""
    row = conn.execute("SELECT from_session, through_session, open_end, symbols_session FROM pl_backfill_runs"
                       " WHERE environment = %s", (environment,)).fetchone()
    if row is not None:
        recorded_start, recorded_through, open_end, symbols_session = row
        if start != recorded_start or (given_through and through != recorded_through):
            raise ConfigError(
                f"a backfill of {recorded_start.isoformat()} .. {recorded_through.isoformat()} is recorded for"
                f" environment {environment}; run it with --from {recorded_start.isoformat()} (and no other"
                f" --through) to resume it")
        boundaries = dict(conn.execute("SELECT universe, live_from FROM pl_backfill_boundaries WHERE environment = %s",
                                       (environment,)).fetchall())
        return Plan(recorded_start, recorded_through, open_end, symbols_session, boundaries)
    with conn.transaction():
        boundaries = dict(conn.execute(LIVE_SQL, {"env": environment, "job": BACKFILL_JOB}).fetchall())
        open_end = through == newest
        conn.execute("INSERT INTO pl_backfill_runs (environment, from_session, through_session, open_end, symbols_session)"
                     " VALUES (%s, %s, %s, %s, %s)", (environment, start, through, open_end, newest))
        if boundaries:
            conn.execute("INSERT INTO pl_backfill_boundaries (environment, universe, live_from)"
                         " SELECT %s, u, l FROM unnest(%s::text[], %s::date[]) AS x(u, l)",
                         (environment, list(boundaries), list(boundaries.values())))
    return Plan(start, through, open_end, newest, boundaries)


def _sessions(conn, start: dt.date, through: dt.date) -> list[dt.date]:
    return [r[0] for r in conn.execute(SESSIONS_SQL, {"start": start, "through": through, "warm": liquidity.WINDOW})]


def _prior(conn, first: dt.date, windows: Windows) -> dict[str, Price]:
    """Start the windows of symbols with bars before `first` (the replay's first session) and return their
    newest bar before it."""
    prices = {}
    for symbol, close, day, first_session, seen, valid_close, valid_day in conn.execute(PRIOR_SQL, {"start": first}):
        prices[symbol] = Price(close, day)
        if first_session is not None:
            windows.start(symbol, first_session, int(seen), valid_close, valid_day)
    return prices


def session_bars(conn, days: list[dt.date], prices: dict[str, Price]) -> Iterator[SessionBars]:
    """Each session's bars from ohlcv_daily, with every symbol's newest bar on or before it (`prices`,
    updated as the days pass: bars of days that are no session count there only). One statement, read
    through a server-side cursor on a connection of its own (the caller's commits a transaction per
    session meanwhile)."""
    import numpy as np

    from tickstockpl.db.connect import connect
    from tickstockpl.market.liquidity import sent_array

    wanted = set(days)
    position = 0
    url = make_conninfo(conn.info.dsn, **({"password": conn.info.password} if conn.info.password else {}))
    with connect(url) as reader, reader.cursor(name="tickstockpl_backfill_bars", binary=True) as cur:
        cur.itersize = 8
        cur.execute(BARS_SQL, {"after": days[0] - dt.timedelta(days=1), "through": days[-1]})
        for date, symbols, closes, volumes, valid in cur:
            while position < len(days) and days[position] < date:  # sessions without any bar
                yield SessionBars(days[position], [], [], [], [], dict(prices))
                position += 1
            closes = sent_array(closes, ">f8").astype(np.float64)
            prices.update(zip(symbols, [Price(None if c != c else c, date) for c in closes.tolist()]))
            if date in wanted:
                yield SessionBars(date, symbols, closes, sent_array(volumes, ">f8").astype(np.float64),
                                  sent_array(valid, "u1").astype(bool), dict(prices))
                position += 1
    for day in days[position:]:
        yield SessionBars(day, [], [], [], [], dict(prices))


def backfill(conn, environment: str, start: dt.date, through: dt.date | None = None, *,
             progress: Progress | None = None, workers: int | None = None) -> BackfillResult:
    """The backfill of the module docstring on `conn` (an autocommit connection). `workers`: 1 builds the legacy
    universes of each session in a process of its own while this one replays the next sessions, 0 builds them
    here; default: a worker for a replay of at least WORKER_THRESHOLD symbol-sessions on a machine with more
    than one CPU. The rows written are the same either way."""
    with cyclic_gc_paused():  # millions of objects that live until the end, no cycles worth collecting
        return _backfill(conn, environment, start, through, progress, workers)


def _backfill(conn, environment: str, start: dt.date, through: dt.date | None, progress: Progress | None,
              workers: int | None) -> BackfillResult:
    started, cpu = time.perf_counter(), time.process_time()
    first, last, newest = check_range(conn, start, through)
    plan = _plan(conn, environment, first, last, newest, through is not None)
    first, last = plan.start, plan.through
    done = {r[0] for r in conn.execute("SELECT session FROM pl_backfill_sessions WHERE environment = %s", (environment,))}
    days = _sessions(conn, first, last)
    replayed_days = [d for d in days if d >= first]
    calendar = SessionCalendar(days)
    result = BackfillResult(environment, first.isoformat(), last.isoformat(), sessions=len(replayed_days),
                            open_end=plan.open_end)
    report = progress or (lambda completed, total, task: None)
    report(0, len(replayed_days), "reading today's symbols")

    stored = _stored_config(conn, environment)
    config = apply_config(default_config(), stored)
    definitions = {k: d for k, d in rules_definition.apply_overrides(rules_definition.default_definitions(), stored).items()
                   if d.enabled}
    today = market_snapshot.load(conn, plan.symbols_session)
    windows = Windows(sorted({n for d in definitions.values() for n in d.windows()}) or [1])
    prices = _prior(conn, days[0], windows)

    # the session after the last one replayed (where rows of members then end, unless they stay open)
    beyond = conn.execute("SELECT min(session) FROM pl_market_sessions WHERE session > %s", (last,)).fetchone()[0]

    # the last session each universe is written for, and where its members' rows end (None: open)
    def stop_of(universe: str) -> tuple[dt.date | None, dt.date | None]:
        live = plan.boundaries.get(universe)
        if live is None:
            return last, (None if plan.open_end else beyond)
        before = calendar.previous(live) if calendar.is_session(live) else max((d for d in days if d < live), default=None)
        if before is None or before < first:
            return None, None  # live history from the first session on: nothing to backfill
        stop = min(before, last)
        return stop, (beyond if stop == last else _after(calendar, days, stop))

    stops: dict[str, tuple[dt.date | None, dt.date | None]] = {}
    previous: dict[str, dict[str, dt.date]] = {}  # universe -> member -> entry date (the session it joined)
    written_universes: set[str] = set()
    timings = defaultdict(float)
    count = 0
    steps = _timed(replay(definitions, today, session_bars(conn, days, prices), calendar, first=first,
                          windows=windows), timings, "replay")
    in_worker = workers if workers is not None else int(len(replayed_days) * len(today.securities) >= WORKER_THRESHOLD
                                                        and (os.cpu_count() or 1) > 1 and _can_fork())
    sessions = _with_legacy(steps, today, config, in_worker, timings)
    for step, current in sessions:
        day = step.day
        for key, run in step.results.items():
            current[universe_of(key)] = set(run.members)
        t0 = time.perf_counter()
        opens: list[tuple[str, str, dt.date | None]] = []
        closes: list[tuple[str, str, dt.date]] = []
        folds: list[tuple[str, str, dt.date, dt.date]] = []
        nxt: dict[str, dict[str, dt.date]] = {}
        for universe in sorted(current.keys() | previous.keys()):
            if universe not in stops:
                stops[universe] = stop_of(universe)
            stop, end = stops[universe]
            if stop is None or day > stop:
                continue
            before = previous.get(universe, {})
            now = current.get(universe, set())
            entries = {s: before[s] for s in now if s in before}
            for symbol in now:
                if symbol not in before:
                    entries[symbol] = day
                    opens.append((universe, symbol, end))
            closes.extend((universe, symbol, since) for symbol, since in before.items() if symbol not in now)
            if entries:
                nxt[universe] = entries
                written_universes.add(universe)
            if day == stop and end is not None and plan.boundaries.get(universe) == end:
                folds.extend((universe, symbol, since, end) for symbol, since in sorted(entries.items()))
        previous = nxt
        timings["plan"] += time.perf_counter() - t0
        count += 1
        if day in done:
            result.skipped += 1
        else:
            t0 = time.perf_counter()
            merged = _write(conn, environment, day, sorted(opens, key=_pair), sorted(closes, key=_pair), folds)
            timings["write"] += time.perf_counter() - t0
            result.written += 1
            result.opened += len(opens)
            result.closed += len(closes)
            result.merged += merged
        report(count, len(replayed_days), day.isoformat())
    if result.written:
        conn.execute("UPDATE pl_backfill_runs SET finished_at = now() WHERE environment = %s", (environment,))
    result.universes = len(written_universes)
    result.seconds = round(time.perf_counter() - started, 3)
    result.cpu_seconds = round(time.process_time() - cpu, 3)
    result.timings = {k: round(v, 3) for k, v in timings.items()}
    return result


def _pair(item: tuple) -> tuple[str, str]:
    return item[0], item[1]


def _after(calendar: SessionCalendar, days: list[dt.date], day: dt.date) -> dt.date | None:
    """The session after `day` in the calendar read (None at its end)."""
    i = calendar.index(day)
    return days[i + 1] if i + 1 < len(days) else None


def _legacy_members(securities, day: dt.date, config) -> dict[str, set[str]]:
    """universe id -> members of every legacy universe built from the session's securities."""
    snap = snapshot_on(securities, day)
    return {entry.universe: set(members(entry.value)) for entry in build(snap, config, FAMILIES_BY_MODE["full"]).entries}


# --- the legacy universes of each session, here or in a worker process ----------------------------------------
#
# Building the legacy universes of a session (universes.build, every family) takes about as long as replaying
# the rule universes of it (about 0.1 s each at 12,000 symbols), and the two are independent: a worker process
# builds session k's while this process replays session k + 1. It is forked: it starts in milliseconds and
# inherits today's snapshot and configuration; it only computes and never touches the connections it inherits
# (a worker ends by os._exit). Per session it receives each symbol's newest close and its date as two arrays
# (12,000 Price objects pickled cost as much as the build) and returns the members. 250 sessions at 12,000
# symbols: see docs/RULE_UNIVERSES.md (bench/rules_bench.py).

WORKER_THRESHOLD = 200_000  # symbol-sessions from which the worker is used (a small replay gains nothing by it)
_AHEAD = 2  # sessions handed to the worker before the first answer is awaited

_worker_state: dict = {}


def _with_legacy(steps, today, config, workers: int, timings) -> Iterator[tuple]:
    """(step, legacy members) for every replayed step, in order."""
    if not workers:
        for step in steps:
            t0 = time.perf_counter()
            current = _legacy_members(step.securities, step.day, config)
            timings["legacy build"] += time.perf_counter() - t0
            yield step, current
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    symbols = [sec.symbol for sec in today.securities]
    pending: deque = deque()
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"),
                             initializer=_start_worker, initargs=(today, config)) as pool:
        try:
            for step in steps:
                pending.append((step, pool.submit(_worker_build, step.day, *_price_arrays(symbols, step.prices))))
                if len(pending) > _AHEAD:
                    yield _answer(pending.popleft(), timings)
            while pending:
                yield _answer(pending.popleft(), timings)
        finally:
            for _step, future in pending:
                future.cancel()


def _timed(steps: Iterator, timings, key: str) -> Iterator:
    """`steps`, the time spent in each of its steps added to timings[key]."""
    while True:
        t0 = time.perf_counter()
        step = next(steps, None)
        timings[key] += time.perf_counter() - t0
        if step is None:
            return
        yield step


def _can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def _answer(item, timings) -> tuple:
    step, future = item
    t0 = time.perf_counter()
    current = future.result()  # the worker's exception, if it raised one
    timings["legacy build (waited for the worker)"] += time.perf_counter() - t0
    return step, current


def _price_arrays(symbols: list[str], prices: Mapping[str, Price]):
    """Each symbol's newest close (NaN: none) and its date (an ordinal; 0: no bar yet), as arrays."""
    import numpy as np

    found = [prices.get(symbol) for symbol in symbols]
    closes = np.array([math.nan if p is None or p.close is None else p.close for p in found], dtype=np.float64)
    days = np.array([0 if p is None else p.day.toordinal() for p in found], dtype=np.int64)
    return closes, days


def _start_worker(today, config) -> None:
    _worker_state.update(today=today, config=config)
    import gc

    gc.disable()  # as cyclic_gc_paused: long-lived objects, no cycles worth collecting


def _worker_build(day: dt.date, closes, days) -> dict[str, set[str]]:
    today = _worker_state["today"]
    prices = {sec.symbol: Price(None if close != close else close, dt.date.fromordinal(ordinal))
              for sec, close, ordinal in zip(today.securities, closes.tolist(), days.tolist()) if ordinal}
    return _legacy_members(securities_on(today, prices, day), day, _worker_state["config"])


def _write(conn, environment: str, day: dt.date, opens, closes, folds) -> int:
    """One session in one transaction: open, close, fold at the boundaries, record the session."""
    env = {"env": environment, "d": day, "job": BACKFILL_JOB}
    merged = 0
    with conn.transaction(), conn.cursor() as cur:
        if opens:
            cur.execute(OPEN_SQL, {**env, "u": [o[0] for o in opens], "s": [o[1] for o in opens],
                                   "e": [o[2] for o in opens]})
        if closes:
            cur.execute(CLOSE_SQL, {**env, "u": [c[0] for c in closes], "s": [c[1] for c in closes],
                                    "f": [c[2] for c in closes]})
        if folds:
            fold = {**env, "u": [f[0] for f in folds], "s": [f[1] for f in folds], "f": [f[2] for f in folds],
                    "l": [f[3] for f in folds]}
            cur.execute(FOLD_SQL, fold)
            gone = cur.fetchall()
            if gone:
                kept = {(u, s, f) for u, s, f in gone}
                moved = [f for f in folds if (f[0], f[1], f[2]) in kept]
                cur.execute(MOVE_SQL, {**env, "u": [f[0] for f in moved], "s": [f[1] for f in moved],
                                       "f": [f[2] for f in moved], "l": [f[3] for f in moved]})
                merged = len(moved)
        cur.execute("INSERT INTO pl_backfill_sessions (environment, session, opened, closed, merged)"
                    " VALUES (%s, %s, %s, %s, %s)", (environment, day, len(opens), len(closes), merged))
    return merged


def _stored_config(conn, environment: str):
    """The cache_config rows (read only), as the sync reads them."""
    from tickstockpl.sync.store import read_stored

    return list(read_stored(conn, environment).config)
