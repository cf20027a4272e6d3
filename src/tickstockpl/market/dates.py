"""The one rule for a date a person types (`cache-sync --as-of`, `pipeline run --date`).

A date is a New York market date, checked against the NYSE sessions and the market clock
(tickstockpl.clock: the real time, or TICKSTOCKPL_NOW):
  - after today in New York: refused (the future), naming the last closed session;
  - a weekend or holiday: refused, naming the sessions before and after it, unless the command has a
    flag that runs such a date anyway (`pipeline run --skip-market-check`: the import then finds
    nothing to import);
  - a session that has not closed yet (today before the close): refused, naming the last closed session.
Nothing is mapped silently. The messages name the command's own flags.
"""

from __future__ import annotations

import datetime as dt

from tickstockpl import clock
from tickstockpl.errors import ConfigError

RULE = ("dates are New York market dates: a future date, a weekend or holiday, or a session that has not closed"
        " yet is refused with the sessions to use instead")


def check(day: dt.date, *, flag: str, calendar, now_utc: dt.datetime | None = None,
          skip_flag: str | None = None, skip: bool = False) -> dt.date:
    """`day` when it may be used; ConfigError (exit 2) naming `flag` otherwise. `calendar` answers
    `on(day)`, `between(a, b)` and `last_completed(now)` (market.calendar.StoredCalendar or ExchangeCalendar)."""
    now_utc = now_utc or clock.now()
    today = now_utc.astimezone(clock.NEW_YORK).date()
    last = calendar.last_completed(now_utc).day
    if day > today:
        raise ConfigError(f"{flag} {day} is in the future (today is {today} in New York); the last closed NYSE"
                          f" session is {last}")
    session = calendar.on(day)
    if session is None:
        if skip:
            return day
        before = calendar.between(day - dt.timedelta(days=10), day - dt.timedelta(days=1))
        after = calendar.between(day + dt.timedelta(days=1), day + dt.timedelta(days=10))
        around = []
        if before:
            around.append(f"the session before it is {before[-1].day}")
        if after and after[0].day <= today:
            around.append(f"the one after it {after[0].day}")
        raise ConfigError(f"{flag} {day} is not an NYSE session (a {_kind(day)}); " + ", ".join(around)
                          + (f"; {skip_flag} runs it anyway" if skip_flag else ""))
    if session.close_utc > now_utc:
        closes = session.close_utc.astimezone(clock.NEW_YORK).strftime("%H:%M")
        raise ConfigError(f"{flag} {day}: that session has not closed yet (it closes at {closes} New York time);"
                          f" the last closed session is {last}")
    return day


def _kind(day: dt.date) -> str:
    return "weekend" if day.weekday() >= 5 else "market holiday"
