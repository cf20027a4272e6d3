"""NYSE sessions from exchange_calendars, and their copy in `pl_market_sessions`.

exchange_calendars (with pandas) takes close to a second to import (and holds the interpreter
while it does), so only `db upgrade` (which copies the sessions into `pl_market_sessions`) and the
sample market use it. Everything a serving process decides about sessions (the schedule's next
run, the session of a pipeline run, the sessions an import finds missing) asks `StoredCalendar`,
which reads that table; a sync reads it in its own statement. Which sessions have closed is always
asked with an explicit "now" (tickstockpl.clock at the callers); the calendar itself reaches two
years past the later of the real year and the market clock's year.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass

from tickstockpl.market import overrides

log = logging.getLogger(__name__)

CALENDAR_NAME = "XNYS"
FIRST_SESSION_YEAR = 2000
YEARS_AHEAD = 2


@dataclass(frozen=True, slots=True)
class Session:
    day: dt.date
    open_utc: dt.datetime
    close_utc: dt.datetime

    @property
    def is_half_day(self) -> bool:
        return (self.close_utc - self.open_utc) < dt.timedelta(hours=6)


@functools.lru_cache(maxsize=4)
def _calendar(end_year: int):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import exchange_calendars

        return exchange_calendars.get_calendar(
            CALENDAR_NAME, start=f"{FIRST_SESSION_YEAR}-01-01", end=f"{end_year}-12-31"
        )


def sessions_between(start: dt.date, end: dt.date) -> list[Session]:
    """Every NYSE session from start to end inclusive (half days included, holidays not)."""
    if end < start:
        return []
    cal = _calendar(max(end.year, last_year()))
    start = max(start, dt.date(FIRST_SESSION_YEAR, 1, 3))
    schedule = cal.schedule.loc[start.isoformat() : end.isoformat()]
    return [
        Session(label.date(), row.open.to_pydatetime(), row.close.to_pydatetime())
        for label, row in zip(schedule.index, schedule.itertuples())
    ]


def session_on(day: dt.date) -> Session | None:
    found = sessions_between(day, day)
    return found[0] if found else None


@functools.lru_cache(maxsize=16)
def _session_days(year: int) -> frozenset[dt.date]:
    return frozenset(s.day for s in sessions_between(dt.date(year, 1, 1), dt.date(year, 12, 31)))


def is_session(day: dt.date) -> bool:
    """True for NYSE sessions (half days included)."""
    return day in _session_days(day.year)


def last_completed_session(now_utc: dt.datetime) -> Session:
    """The newest session whose close is at or before `now_utc`."""
    return _last_closed(sessions_between, now_utc)


def _last_closed(between, now_utc: dt.datetime) -> Session:
    day = now_utc.date()
    for session in reversed(between(day - dt.timedelta(days=14), day)):
        if session.close_utc <= now_utc:
            return session
    raise LookupError(f"no NYSE session closed in the two weeks before {now_utc.isoformat()}")


class ExchangeCalendar:
    """The questions of `StoredCalendar`, answered by exchange_calendars (no database; the slow import)."""

    between = staticmethod(sessions_between)
    on = staticmethod(session_on)
    is_session = staticmethod(is_session)
    last_completed = staticmethod(last_completed_session)


# The coverage of pl_market_sessions and, in the same statement, the sessions asked for with the calendar
# overrides applied (the view pl_sessions_effective, migration 0008: closures left out, early closes moved).
_STORED_SQL = (
    "SELECT c.first, c.last, s.session, s.open_utc, s.close_utc"
    " FROM (SELECT min(session) AS first, max(session) AS last FROM pl_market_sessions) c"
    " LEFT JOIN pl_sessions_effective s ON s.session BETWEEN %s AND %s ORDER BY s.session"
)


class StoredCalendar:
    """NYSE sessions read from `pl_market_sessions` on `conn` (each question one small statement).

    `db upgrade` fills the table with whole years, so it covers the days from its first session to
    December 31 of its last session's year; a question about days outside that falls back to
    exchange_calendars (correct, but it costs the slow import) and logs that `db upgrade` is due.
    """

    def __init__(self, conn):
        self.conn = conn
        self._years: dict[int, frozenset[dt.date]] = {}

    def between(self, start: dt.date, end: dt.date) -> list[Session]:
        """Every session from start to end inclusive, as `sessions_between`."""
        if end < start:
            return []
        rows = self.conn.execute(_STORED_SQL, (start, end)).fetchall()
        first, last = rows[0][0], rows[0][1]
        if first is None or max(start, dt.date(FIRST_SESSION_YEAR, 1, 3)) < first or end > dt.date(last.year, 12, 31):
            log.warning(
                "pl_market_sessions does not cover %s .. %s (it holds %s .. %s): reading exchange_calendars;"
                " run `tickstockpl db upgrade`", start, end, first, last)
            return overrides.apply(self.conn, start, end, sessions_between(start, end))
        return [Session(day, open_utc, close_utc) for _f, _l, day, open_utc, close_utc in rows if day is not None]

    def on(self, day: dt.date) -> Session | None:
        found = self.between(day, day)
        return found[0] if found else None

    def is_session(self, day: dt.date) -> bool:
        """Whether `day` is a session (half days included); one statement per calendar year asked."""
        if day.year not in self._years:
            self._years[day.year] = frozenset(
                s.day for s in self.between(dt.date(day.year, 1, 1), dt.date(day.year, 12, 31)))
        return day in self._years[day.year]

    def last_completed(self, now_utc: dt.datetime) -> Session:
        """The newest session whose close is at or before `now_utc`."""
        return _last_closed(self.between, now_utc)


def last_year() -> int:
    """The last year the calendar and `pl_market_sessions` cover: YEARS_AHEAD after the later of the
    real year and the market clock's (TICKSTOCKPL_NOW may lie ahead of the real time)."""
    from tickstockpl import clock

    return max(dt.datetime.now(dt.timezone.utc).year, clock.now().year) + YEARS_AHEAD


def _sessions_stamp() -> str:
    """What a filled pl_market_sessions holds, kept as the table's comment (the calendar's version, years)."""
    from importlib.metadata import version

    return f"tickstockpl: NYSE sessions {FIRST_SESSION_YEAR}-{last_year()} from exchange_calendars {version('exchange-calendars')}"


def sessions_table_current(conn) -> bool:
    """Whether pl_market_sessions already holds what fill_sessions_table would write (one catalog read, no
    exchange_calendars import): a `db upgrade` with nothing to do then takes a fraction of a second."""
    row = conn.execute("SELECT obj_description(to_regclass('pl_market_sessions'), 'pg_class')").fetchone()
    return bool(row) and row[0] == _sessions_stamp()


def fill_sessions_table(conn) -> int:
    """Upsert every session from 2000 to two years ahead into pl_market_sessions; returns the count."""
    from psycopg import sql

    sessions = sessions_between(dt.date(FIRST_SESSION_YEAR, 1, 1), dt.date(last_year(), 12, 31))
    with conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE _sessions (LIKE pl_market_sessions) ON COMMIT DROP")
        with cur.copy("COPY _sessions (session, open_utc, close_utc) FROM STDIN") as copy:
            for s in sessions:
                copy.write_row((s.day, s.open_utc, s.close_utc))
        cur.execute(
            "INSERT INTO pl_market_sessions SELECT * FROM _sessions "
            "ON CONFLICT (session) DO UPDATE SET open_utc = EXCLUDED.open_utc, close_utc = EXCLUDED.close_utc "
            "WHERE (pl_market_sessions.open_utc, pl_market_sessions.close_utc) "
            "IS DISTINCT FROM (EXCLUDED.open_utc, EXCLUDED.close_utc)"
        )
        cur.execute(sql.SQL("COMMENT ON TABLE pl_market_sessions IS {}").format(sql.Literal(_sessions_stamp())))
    return len(sessions)
