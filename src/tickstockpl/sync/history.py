"""The membership history (`pl_universe_membership`): every statement on it.

One row per (environment, universe, symbol, interval): `valid_from` the sync date it was opened,
`valid_to` (exclusive) the sync date it was closed, NULL while open. Readers and writers:

    OPEN_COUNTS_SQL (a part of store.READ_SQL)    open rows per universe, with the sync's stored rows
    open_members(conn, environment, universes)    the open rows of drifted universes (sync/inputs.py)
    members_before(conn, environment, universes, day)  the members of `universes` just before `day`,
                                                  with their entry dates (the rule universes' previous
                                                  members, sync/inputs.py)
    close(cur, pairs, ...) / open_(cur, pairs, ...)   the sync's writes, in its transaction
    change(cur, opened, closed, ...)              both in one statement (store: sent ahead or at the end)
    members_on(aconn, environment, universe, day) GET /api/universes/{type}/{name}/{key}?as_of= (async)
    known(aconn, environment, type, name, key)    whether the history (or the ledger) knows the universe
                                                  (async: the API's, on its AsyncConnection)
    churn(conn, environment, first, last, ...)    GET /api/universes/churn (through api/blocking), `universes churn`
    churn_range(first, last)                      their range: defaults and limits
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import NamedTuple

import orjson
from psycopg.rows import class_row

from tickstockpl import clock
from tickstockpl.errors import ConfigError

# Rows shaped like store.READ_SQL's (type NULL, the universe as name, the count as open_rows); none when
# `universes` is false (that read wants the config rows alone).
OPEN_COUNTS_SQL = (
    "SELECT NULL, m.universe, NULL, NULL, NULL, NULL, NULL, NULL, count(*) FROM pl_universe_membership m"
    " WHERE m.environment = %(env)s AND m.valid_to IS NULL AND %(universes)s GROUP BY m.universe")

OPEN_MEMBERS_SQL = (
    "SELECT universe, symbol FROM pl_universe_membership"
    " WHERE environment = %(env)s AND valid_to IS NULL AND universe = ANY(%(universes)s)")

# The members just before `day`: rows opened before it and not closed before it (a row closed on `day`
# itself, by an earlier sync of the same date, still counts; one opened on `day` does not), so a second
# sync of one date starts from what the first one started from.
# One row per universe, its members and their entry dates as two aligned arrays (19,000 rows one by one
# took 40-50 ms to decode at 12,000 symbols, the arrays 25-35 ms, measured).
MEMBERS_BEFORE_SQL = (
    "SELECT universe, array_agg(symbol) AS symbols, array_agg(valid_from) AS since FROM pl_universe_membership"
    " WHERE environment = %(env)s AND universe = ANY(%(universes)s)"
    " AND valid_from < %(d)s AND (valid_to IS NULL OR valid_to >= %(d)s) GROUP BY universe")

# Each pair is looked up through the open-rows index (LATERAL ... LIMIT 1 keeps the lookup per pair
# whatever the table's statistics say: with stale ones the planner hashed every open row of the
# environment, 27 ms instead of 3 ms for 200 pairs), then changed by ctid. An interval that would close
# on (or before) the day it opened is dropped instead. Only one sync writes at a time (single-flight).
CLOSE_CTES = (
    "open AS (SELECT o.ctid AS tid, o.valid_from"
    "  FROM unnest(%(u)b::text[], %(s)b::text[]) AS u(universe, symbol)"
    "  CROSS JOIN LATERAL (SELECT m.ctid, m.valid_from FROM pl_universe_membership m"
    "   WHERE m.environment = %(env)s AND m.universe = u.universe AND m.symbol = u.symbol"
    "   AND m.valid_to IS NULL LIMIT 1) o),"
    " gone AS (DELETE FROM pl_universe_membership m"
    "  WHERE m.ctid = ANY(ARRAY(SELECT tid FROM open WHERE valid_from >= %(d)s))),"
    " closed AS (UPDATE pl_universe_membership m SET valid_to = %(d)s"
    "  WHERE m.ctid = ANY(ARRAY(SELECT tid FROM open WHERE valid_from < %(d)s)))")
CLOSE_SQL = f"WITH {CLOSE_CTES} SELECT NULL"

# Opening rows: the pairs go as ONE json parameter, {universe: [symbols]} (`_pairs_json`): psycopg's binary
# array dumper cost 30-40 ms of Python for the two text[] of 50,000 pairs, the json text about 8 ms, and the
# server inserts from it as fast as from a COPY of the same rows; unlike COPY it can be sent in pipeline mode,
# ahead of the sync's plan (store.send_ahead), where a failure could not be recovered without waiting for its
# result. So the one statement decides by itself, from pl_history_newest (kept by the table's triggers,
# migration 0016): when no row of the environment starts on or after the sync date, none can collide with
# the primary key and the plain INSERT runs; otherwise (a second sync of one date, which reopens a row the
# first one opened and closed) the upsert. Only one of the two reads the pairs. The upsert cost the server
# about 1.5 times the plain insert (speculative insertion): 174 ms against 116 ms for the 30,608 rows of a
# first run at 12,000 symbols (medians of 7, 2026-12-08).
_PAIRS = (" SELECT %(env)s, u.key, s.symbol, %(d)s, %(job)s FROM json_each(%(pairs)s::json) AS u"
          " CROSS JOIN LATERAL json_array_elements_text(u.value) AS s(symbol)")
_INSERT = "INSERT INTO pl_universe_membership (environment, universe, symbol, valid_from, job_id)"
OPEN_CTES = (
    "fresh AS (SELECT NOT EXISTS (SELECT FROM pl_history_newest n"
    "  WHERE n.environment = %(env)s AND n.valid_from >= %(d)s) AS yes),"
    f" inserted AS ({_INSERT}{_PAIRS} WHERE (SELECT yes FROM fresh)),"
    f" reopened AS ({_INSERT}{_PAIRS} WHERE NOT (SELECT yes FROM fresh)"
    "  ON CONFLICT (environment, universe, symbol, valid_from) DO UPDATE SET valid_to = NULL, job_id = EXCLUDED.job_id)")
OPEN_SQL = f"WITH {OPEN_CTES} SELECT NULL"
# The closes and the opens of a sync's part in one statement (the sync sends one statement of history per part):
# the pairs closed and opened are disjoint, so no data-modifying part touches a row of another's.
CHANGE_SQL = f"WITH {CLOSE_CTES}, {OPEN_CTES} SELECT NULL"

MEMBERS_ON_SQL = (
    "SELECT symbol FROM pl_universe_membership WHERE environment = %(env)s AND universe = %(universe)s"
    " AND valid_from <= %(day)s AND (valid_to IS NULL OR valid_to > %(day)s) ORDER BY symbol")

# Whether the history has a row of the universe, or PL's ledger the universe (one statement).
KNOWN_SQL = (
    "SELECT 1 FROM pl_universe_membership WHERE environment = %(env)s AND universe = %(universe)s"
    " UNION ALL SELECT 1 FROM pl_cache_ledger WHERE environment = %(env)s AND type = %(t)s AND name = %(n)s"
    " AND key = %(k)s LIMIT 1")


# Churn per universe and day, from the history alone (so it covers backfilled days too): a day is one on
# which some interval of the universe opened or closed. `start` counts the members at the beginning of the
# range (open on `first`, before that day's changes); the running sum of (entered - left) gives the members
# after each day. One statement; the two GROUP BYs read the table once each through its primary key.
CHURN_SQL = (
    "WITH moves AS ("
    "  SELECT universe, valid_from AS day, count(*) AS entered, 0::bigint AS left_ FROM pl_universe_membership"
    "   WHERE environment = %(env)s AND valid_from BETWEEN %(first)s AND %(last)s"
    "   AND (%(universe)s::text IS NULL OR universe = %(universe)s::text) GROUP BY universe, valid_from"
    "  UNION ALL"
    "  SELECT universe, valid_to, 0, count(*) FROM pl_universe_membership"
    "   WHERE environment = %(env)s AND valid_to BETWEEN %(first)s AND %(last)s"
    "   AND (%(universe)s::text IS NULL OR universe = %(universe)s::text) GROUP BY universe, valid_to),"
    " days AS (SELECT universe, day, sum(entered) AS entered, sum(left_) AS left_ FROM moves GROUP BY universe, day),"
    " start AS (SELECT universe, count(*) AS members FROM pl_universe_membership"
    "   WHERE environment = %(env)s AND valid_from < %(first)s AND (valid_to IS NULL OR valid_to >= %(first)s)"
    "   AND universe IN (SELECT universe FROM days) GROUP BY universe)"
    " SELECT d.universe, d.day, d.entered::int AS entered, d.left_::int AS left,"
    "  (coalesce(s.members, 0) + sum(d.entered - d.left_) OVER w)::int AS after"
    " FROM days d LEFT JOIN start s USING (universe)"
    " WINDOW w AS (PARTITION BY d.universe ORDER BY d.day ROWS UNBOUNDED PRECEDING)"
    " ORDER BY d.universe, d.day")


class ChurnDay(NamedTuple):
    """One universe on one day it changed: members before (after - entered + left) and after."""

    universe: str
    day: dt.date
    entered: int
    left: int
    after: int

    @property
    def before(self) -> int:
        return self.after - self.entered + self.left

    @property
    def turnover(self) -> float:
        """(entered + left) / (before + after), as the rule engine's Churn; 0 when both are empty."""
        total = self.before + self.after
        return (self.entered + self.left) / total if total else 0.0


class Member(NamedTuple):
    universe: str
    symbol: str


class Symbol(NamedTuple):
    symbol: str


def open_members(conn, environment: str, universes: set[str]) -> dict[str, frozenset[str]]:
    """Universe -> its members with an open history row, for `universes`."""
    out: dict[str, set[str]] = defaultdict(set)
    with conn.cursor(row_factory=class_row(Member)) as cur:
        cur.execute(OPEN_MEMBERS_SQL, {"env": environment, "universes": sorted(universes)})
        for row in cur.fetchall():
            out[row.universe].add(row.symbol)
    return {u: frozenset(s) for u, s in out.items()}


def members_before(conn, environment: str, universes, day: dt.date) -> dict[str, dict[str, dt.date]]:
    """Universe (of `universes`) -> {symbol: valid_from} of its members just before `day`."""
    with conn.cursor(binary=True) as cur:  # binary: the dates unparsed
        cur.execute(MEMBERS_BEFORE_SQL, {"env": environment, "universes": sorted(universes), "d": day})
        return {universe: dict(zip(symbols, since)) for universe, symbols, since in cur.fetchall()}


def close(cur, pairs, *, environment: str, as_of: dt.date) -> None:
    cur.execute(CLOSE_SQL, _close_params(pairs, environment, as_of))


def open_(cur, pairs, *, environment: str, as_of: dt.date, job_id: str | None) -> None:
    """Open rows for `pairs` (universe, symbol) as of `as_of` (see OPEN_CTES)."""
    cur.execute(OPEN_SQL, _open_params(pairs, environment, as_of, job_id))


def change(cur, opened, closed, *, environment: str, as_of: dt.date, job_id: str | None) -> None:
    """Close `closed` and open `opened` in one statement (CHANGE_SQL); one of them may be empty. In pipeline
    mode its result is read with the pipeline's."""
    if not closed:
        open_(cur, opened, environment=environment, as_of=as_of, job_id=job_id)
    elif not opened:
        close(cur, closed, environment=environment, as_of=as_of)
    else:
        cur.execute(CHANGE_SQL, {**_close_params(closed, environment, as_of),
                                 **_open_params(opened, environment, as_of, job_id)})


def _close_params(pairs, environment: str, as_of: dt.date) -> dict:
    return {"u": [u for u, _ in pairs], "s": [s for _, s in pairs], "env": environment, "d": as_of}


def _open_params(pairs, environment: str, as_of: dt.date, job_id: str | None) -> dict:
    return {"env": environment, "d": as_of, "job": job_id, "pairs": _pairs_json(pairs)}


def _pairs_json(pairs) -> str:
    """OPEN_SQL's parameter: {universe: [symbols]} in the order of `pairs`."""
    by_universe: dict[str, list[str]] = {}
    for universe, symbol in pairs:
        found = by_universe.get(universe)
        if found is None:
            found = by_universe[universe] = []
        found.append(symbol)
    return orjson.dumps(by_universe).decode()


async def members_on(aconn, environment: str, universe: str, day: dt.date) -> list[str]:
    async with aconn.cursor(row_factory=class_row(Symbol)) as cur:
        await cur.execute(MEMBERS_ON_SQL, {"env": environment, "universe": universe, "day": day})
        return [row.symbol for row in await cur.fetchall()]


async def known(aconn, environment: str, type_: str, name: str, key: str) -> bool:
    """Whether the history has any row of the universe, or PL's ledger holds it."""
    params = {"env": environment, "universe": f"{type_}:{name}:{key}", "t": type_, "n": name, "k": key}
    return await (await aconn.execute(KNOWN_SQL, params)).fetchone() is not None



class UniverseChurn(NamedTuple):
    """One universe over a range: members at its start and end, the moves in it, and each day's churn."""

    universe: str
    days: tuple[ChurnDay, ...]

    @property
    def members_start(self) -> int:
        return self.days[0].before

    @property
    def members_end(self) -> int:
        return self.days[-1].after

    @property
    def entered(self) -> int:
        return sum(d.entered for d in self.days)

    @property
    def left(self) -> int:
        return sum(d.left for d in self.days)

    @property
    def turnover(self) -> float:
        """(entered + left) / (members at the start + at the end) over the range; 0 when both are empty."""
        total = self.members_start + self.members_end
        return (self.entered + self.left) / total if total else 0.0


CHURN_DEFAULT_DAYS = 30  # `from` when not given: 30 days before `to`
CHURN_MAX_DAYS = 3660  # a range of at most ten years (a backfill's whole history fits)


def churn_range(first: dt.date | None, last: dt.date | None) -> tuple[dt.date, dt.date]:
    """The range of a churn question: `last` defaults to today in New York (the market clock), `first` to
    CHURN_DEFAULT_DAYS before it; ConfigError (422 / exit 2) for an empty or too long range."""
    last = last or clock.today_new_york()
    first = first or last - dt.timedelta(days=CHURN_DEFAULT_DAYS)
    if first > last:
        raise ConfigError(f"from ({first}) is after to ({last})")
    if (last - first).days > CHURN_MAX_DAYS:
        raise ConfigError(f"from .. to spans {(last - first).days} days; at most {CHURN_MAX_DAYS}")
    return first, last


def churn(conn, environment: str, first: dt.date, last: dt.date, universe: str | None = None) -> list[UniverseChurn]:
    """Every universe whose membership changed in [first, last] (by universe id), with each day it
    changed (see CHURN_SQL). `universe`: only that one ("type:name:key")."""
    with conn.cursor(row_factory=class_row(ChurnDay)) as cur:
        cur.execute(CHURN_SQL, {"env": environment, "first": first, "last": last, "universe": universe})
        rows = cur.fetchall()
    by_universe: dict[str, list[ChurnDay]] = defaultdict(list)
    for row in rows:
        by_universe[row.universe].append(row)
    return [UniverseChurn(u, tuple(days)) for u, days in by_universe.items()]


def churn_document(first: dt.date, last: dt.date, found: list[UniverseChurn]) -> dict:
    """The churn answer as JSON-ready data: GET /api/universes/churn and `universes churn --json`."""
    return {"from": first.isoformat(), "to": last.isoformat(), "count": len(found), "universes": [
        {"universe": u.universe, "members_start": u.members_start, "members_end": u.members_end,
         "entered": u.entered, "left": u.left, "turnover": round(u.turnover, 6), "days_changed": len(u.days),
         "days": [{"day": d.day.isoformat(), "before": d.before, "after": d.after, "entered": d.entered,
                   "left": d.left, "turnover": round(d.turnover, 6)} for d in u.days]}
        for u in found]}
