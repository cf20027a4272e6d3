"""NYSE sessions from exchange_calendars, and their copy in `pl_market_sessions`.

exchange_calendars (with pandas) takes close to a second to import, so only `db upgrade`,
the scheduler and the importer use this module; a sync reads the sessions table instead.
Which sessions have closed is always asked with an explicit "now" (tickstockpl.clock at the callers);
the calendar itself reaches two years past the later of the real year and the market clock's year.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

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


def last_completed_session(now_utc: dt.datetime) -> Session:
    """The newest session whose close is at or before `now_utc`."""
    day = now_utc.date()
    for session in reversed(sessions_between(day - dt.timedelta(days=14), day)):
        if session.close_utc <= now_utc:
            return session
    raise LookupError(f"no NYSE session closed in the two weeks before {now_utc.isoformat()}")


def last_year() -> int:
    """The last year the calendar and `pl_market_sessions` cover: YEARS_AHEAD after the later of the
    real year and the market clock's (TICKSTOCKPL_NOW may lie ahead of the real time)."""
    from tickstockpl import clock

    return max(dt.datetime.now(dt.timezone.utc).year, clock.now().year) + YEARS_AHEAD


def fill_sessions_table(conn) -> int:
    """Upsert every session from 2000 to two years ahead into pl_market_sessions; returns the count."""
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
    return len(sessions)
