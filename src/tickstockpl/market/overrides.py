"""Calendar overrides: ad-hoc closures and early closes, consulted before the library calendar.

Exchanges close on short notice (NYSE closed on 2025-01-09, a national day of mourning, before the
calendar libraries had a release that knew it). `pl_calendar_overrides` holds one row per day:

    closed       the day is no session, whatever exchange_calendars says
    early_close  the day is a session closing at `close_time` (New York wall clock)

`apply` rewrites a list of market.calendar Sessions with the overrides of their range; StoredCalendar
calls it on every question, so everything that asks it (the schedule's next_run and the scheduler,
the session of a pipeline run, the sessions an import finds missing, the revisions pass) sees the
overrides. An override on a day the library calls no session is kept (listed) but adds no session:
an override can only close or shorten a day, never open one.

Edited with `tickstockpl calendar close|early-close|list|remove` and /api/processing/calendar/overrides.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from tickstockpl.clock import NEW_YORK as NY
from tickstockpl.errors import ConfigError, NotFound

KINDS = ("closed", "early_close")
REASON_MAX = 200
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class Override:
    day: dt.date
    kind: str
    close_time: dt.time | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"date": self.day.isoformat(), "kind": self.kind,
                "close_time": self.close_time.strftime("%H:%M") if self.close_time else None, "reason": self.reason}


def in_range(conn, start: dt.date, end: dt.date) -> dict[dt.date, Override]:
    rows = conn.execute("SELECT day, kind, close_time, reason FROM pl_calendar_overrides WHERE day BETWEEN %s AND %s",
                        (start, end)).fetchall()
    return {r[0]: Override(*r) for r in rows}


def apply(conn, start: dt.date, end: dt.date, sessions: list) -> list:
    """`sessions` (market.calendar.Session, start..end) with the overrides of that range applied."""
    found = in_range(conn, start, end)
    if not found:
        return sessions
    out = []
    for session in sessions:
        override = found.get(session.day)
        if override is None:
            out.append(session)
        elif override.kind == "early_close":
            close = dt.datetime.combine(session.day, override.close_time, tzinfo=NY).astimezone(dt.timezone.utc)
            out.append(dataclasses.replace(session, close_utc=min(close, session.close_utc)))
        # closed: left out
    return out


def list_overrides(conn, since: dt.date | None = None) -> list[Override]:
    rows = conn.execute("SELECT day, kind, close_time, reason FROM pl_calendar_overrides"
                        " WHERE day >= coalesce(%s::date, '-infinity'::date) ORDER BY day", (since,)).fetchall()
    return [Override(*r) for r in rows]


def parse_day(value: Any, what: str = "date") -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{what} must be a real date YYYY-MM-DD, got {value!r}") from None


def _parse_time(value: Any) -> dt.time:
    if not isinstance(value, str) or not _HHMM.match(value):
        raise ConfigError(f"close_time must be HH:MM (24-hour, New York), got {value!r}")
    hours, minutes = value.split(":")
    return dt.time(int(hours), int(minutes))


def set_override(conn, day: Any, kind: str, close_time: Any = None, reason: str | None = "") -> Override:
    """Add or replace the override of `day` (ConfigError on bad input, nothing written)."""
    day = parse_day(day)
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX:
        raise ConfigError(f"reason must be at most {REASON_MAX} characters")
    if any(ord(ch) < 32 for ch in reason):
        raise ConfigError("reason must be one line of printable text (no control characters)")
    when = None
    if kind == "early_close":
        when = _parse_time(close_time)
        if not dt.time(9, 30) < when < dt.time(16, 0):
            raise ConfigError(f"an early close must lie between 09:30 and 16:00 New York, got {close_time}")
    elif close_time is not None:
        raise ConfigError("close_time is only for an early_close")
    conn.execute("INSERT INTO pl_calendar_overrides (day, kind, close_time, reason) VALUES (%s, %s, %s, %s)"
                 " ON CONFLICT (day) DO UPDATE SET kind = EXCLUDED.kind, close_time = EXCLUDED.close_time,"
                 " reason = EXCLUDED.reason, created_at = now()", (day, kind, when, reason))
    return Override(day, kind, when, reason)


def remove_override(conn, day: Any) -> Override:
    day = parse_day(day)
    row = conn.execute("DELETE FROM pl_calendar_overrides WHERE day = %s RETURNING day, kind, close_time, reason",
                       (day,)).fetchone()
    if row is None:
        raise NotFound(f"no calendar override on {day}")
    return Override(*row)
