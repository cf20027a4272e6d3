"""The one rule for the date of a session asked for: by a person (`cache-sync --as-of`, `pipeline run
--date`) and through the API (`POST /api/processing/trigger-manual` `date`, which becomes the run's
session and its cache sync's `as_of`). `choose_session` is the rule; the CLI (`check`) and the
coordinator (`pipeline.coordinator.resolve_session`) both call it and differ only in the words naming
the date and the flag that runs a non-session anyway.

A date is a New York market date, checked against the NYSE sessions and the market clock
(tickstockpl.clock: the real time, or TICKSTOCKPL_NOW):
  - after today in New York: refused (the future), naming the last closed session;
  - a weekend or holiday: refused, naming the sessions before and after it, unless the asker sends the
    flag that runs such a date anyway (`--skip-market-check` / `skip_market_check`: the import then finds
    nothing to import); that flag skips only this trading-day check;
  - a session that has not closed yet (today before the close): refused, naming the last closed session.
No date (the API and `pipeline run` without --date): the last closed session; when today is a session
that has not closed yet and the flag was sent, the choice says so (`SessionChoice.note`). Nothing is
mapped silently: a date asked for is used as it is or refused; only the absent date is chosen.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tickstockpl import clock
from tickstockpl.errors import ConfigError

RULE = ("dates are New York market dates: a future date, a weekend or holiday, or a session that has not closed"
        " yet is refused with the sessions to use instead")


@dataclass(frozen=True)
class SessionChoice:
    """The session to process, and why it is not the one asked for (None when it is)."""

    day: dt.date
    note: str | None = None


def choose_session(day: dt.date | None, *, calendar=None, now_utc: dt.datetime | None = None,
                   skip: bool = False, flag: str | None = None, skip_flag: str | None = None) -> SessionChoice:
    """The session for `day` (None: the last closed one) under the rule above; ConfigError otherwise.

    `calendar` answers `on(day)`, `between(a, b)` and `last_completed(now)` (market.calendar.StoredCalendar
    in a serving process, ExchangeCalendar by default); `flag` names the date in messages (`--as-of`;
    None: the date alone); `skip` is the flag `skip_flag` that runs a weekend or holiday date anyway."""
    if calendar is None:
        from tickstockpl.market.calendar import ExchangeCalendar

        calendar = ExchangeCalendar()
    now_utc = now_utc or clock.now()
    today = now_utc.astimezone(clock.NEW_YORK).date()

    def last() -> dt.date:  # asked only where it is used: a usable `day` costs one question, `on(day)`
        return calendar.last_completed(now_utc).day

    if day is None:
        newest = last()
        current = calendar.on(today) if skip else None
        if current is not None and current.close_utc > now_utc:
            return SessionChoice(newest, f"the {today} session has not closed yet (it closes at"
                                         f" {_closes(current)}); processing the last closed session, {newest}")
        return SessionChoice(newest)
    said = f"{flag} {day}" if flag else f"{day}"
    if day > today:
        raise ConfigError(f"{said} is in the future (today is {today} in New York); the last closed NYSE"
                          f" session is {last()}")
    from tickstockpl.market.calendar import FIRST_SESSION_YEAR

    first = dt.date(FIRST_SESSION_YEAR, 1, 1)
    if day < first:  # before the calendar PL holds: neither a session nor a holiday it can name
        raise ConfigError(f"{said} is before {first}, the first day of the NYSE calendar PL holds; the last closed"
                          f" NYSE session is {last()}")
    session = calendar.on(day)
    if session is None:
        if skip:
            return SessionChoice(day)
        before = calendar.between(day - dt.timedelta(days=10), day - dt.timedelta(days=1))
        after = calendar.between(day + dt.timedelta(days=1), day + dt.timedelta(days=10))
        around = []
        if before:
            around.append(f"the session before it is {before[-1].day}")
        if after and after[0].day <= today:
            around.append(f"the one after it {after[0].day}" if before else f"the session after it is {after[0].day}")
        parts = [f"{said} is not an NYSE session (a {_kind(day)})"]
        parts += [", ".join(around)] if around else []
        parts += [f"{skip_flag} runs it anyway"] if skip_flag else []
        raise ConfigError("; ".join(parts))
    if session.close_utc > now_utc:
        subject = f"{said}: that session" if flag else f"the {day} session"
        raise ConfigError(f"{subject} has not closed yet (it closes at {_closes(session)}); the last closed"
                          f" session is {last()}"
                          + (f" ({skip_flag} skips only the trading-day check)" if skip and skip_flag else ""))
    return SessionChoice(day)


def check(day: dt.date, *, flag: str, calendar, now_utc: dt.datetime | None = None,
          skip_flag: str | None = None, skip: bool = False) -> dt.date:
    """`day` when it may be used; ConfigError (exit 2) naming `flag` otherwise (the CLI's call)."""
    return choose_session(day, calendar=calendar, now_utc=now_utc, skip=skip, flag=flag, skip_flag=skip_flag).day


def _closes(session) -> str:
    return f"{session.close_utc.astimezone(clock.NEW_YORK):%H:%M} New York time"


def _kind(day: dt.date) -> str:
    return "weekend" if day.weekday() >= 5 else "market holiday"
