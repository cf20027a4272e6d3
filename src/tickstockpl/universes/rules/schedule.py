"""Reconstitution days and session counting over a given list of NYSE sessions (pure).

`SessionCalendar(days)` holds the session dates (from `market.calendar.sessions_between` or
`StoredCalendar.between` at the edge: NYSE's holidays, half days and weekends are already in
them); `SessionCalendar.from_sessions(sessions)` takes those Session objects. A session is
identified by its New York date, so a daylight-saving change (which moves the sessions' UTC
times) never moves a reconstitution day.

    every_session   every session
    monthly         the first session of every month
    quarterly       the first session of each of its 4 months (default March, June, September, December)
    semi_annual     the first session of each of its 2 months (default June, December)

"First session of the month" is the first session whose date lies in that month, however many
holidays and weekend days open it (2027-01-01 is a holiday on a Friday: January 2027 reconstitutes
on Monday 2027-01-04).
"""

from __future__ import annotations

import bisect
import datetime as dt
from typing import Iterable

from tickstockpl.universes.rules.definition import Reconstitution


class SessionCalendar:
    """Sorted, distinct session dates; every question is about days inside them."""

    def __init__(self, days: Iterable[dt.date]):
        self.days: tuple[dt.date, ...] = tuple(sorted(set(days)))
        self._index = {day: i for i, day in enumerate(self.days)}

    @classmethod
    def from_sessions(cls, sessions: Iterable) -> "SessionCalendar":
        return cls(s.day for s in sessions)

    def is_session(self, day: dt.date) -> bool:
        return day in self._index

    def index(self, day: dt.date) -> int:
        """The position of a session; LookupError naming the day when it is not one."""
        try:
            return self._index[day]
        except KeyError:
            raise LookupError(f"{day.isoformat()} is not a session of the calendar "
                              f"({self._span()})") from None

    def sessions_since(self, start: dt.date, day: dt.date) -> int:
        """How many sessions from `start` to `day`, both included (1 when equal; 0 when start > day).
        `start` need not be a session: counting begins at the first session on or after it."""
        if start > day:
            return 0
        first = bisect.bisect_left(self.days, start)
        return self.index(day) - first + 1

    def previous(self, day: dt.date) -> dt.date | None:
        """The session before `day` (a session), or None at the calendar's start."""
        i = self.index(day)
        return self.days[i - 1] if i else None

    def is_first_of_month(self, day: dt.date) -> bool:
        before = self.previous(day)
        return before is None or (before.year, before.month) != (day.year, day.month)

    def is_reconstitution(self, day: dt.date, rule: Reconstitution) -> bool:
        """Whether `day` (a session) is a reconstitution day of `rule`."""
        self.index(day)
        if rule.schedule == "every_session":
            return True
        if not self.is_first_of_month(day):
            return False
        if self.previous(day) is None and day.day > 7:
            return False  # the calendar starts mid-month: its first day is no "first session of the month"
        return rule.schedule == "monthly" or day.month in rule.months

    def reconstitution_days(self, start: dt.date, end: dt.date, rule: Reconstitution) -> list[dt.date]:
        """Every reconstitution day from start to end inclusive."""
        lo, hi = bisect.bisect_left(self.days, start), bisect.bisect_right(self.days, end)
        return [d for d in self.days[lo:hi] if self.is_reconstitution(d, rule)]

    def _span(self) -> str:
        if not self.days:
            return "it is empty"
        return f"it holds {self.days[0].isoformat()} .. {self.days[-1].isoformat()}"
