"""When the daily pipeline runs: the pure schedule maths and the schedule as a value (no database, no timer).

`next_run` is the first `trigger_time` in `timezone` strictly after `now` whose New York date is an NYSE
session (when `market_check` is on; every day when off). Half days are sessions (they run), holidays are
not (skipped); local wall-clock time is kept across DST changes because the candidate is built in the zone
and converted to UTC last. `session_for_fire` is the session a firing processes. `Schedule` is the stored
schedule's value and `validate_changes` checks a partial update (ConfigError naming the field).

The schedule is cut in three, each importing only the one before it:
    schedule.py         this module: pure maths and the value (table-tested)
    schedule_store.py   the one row of `pl_pipeline_schedule`: read, public body, update + `schedule_updated`
    scheduler.py        the APScheduler loop of a `serve` process, which starts runs through the coordinator
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tickstockpl import clock as market_clock
from tickstockpl.errors import ConfigError
from tickstockpl.events import catalog

MARKET_TZ = market_clock.NEW_YORK
UTC = dt.timezone.utc
LOOKAHEAD_DAYS = 31  # longer than any run of NYSE closures
UNIVERSES_MAX = 100
UNIVERSE_NAME_MAX = 100
FIELDS = ("enabled", "trigger_time", "timezone", "market_check", "universes")

IsSession = Callable[[dt.date], bool]


# --------------------------------------------------------------------------- pure maths

def parse_trigger_time(text: Any) -> dt.time:
    found = market_clock.hhmm(text)
    if found is None:
        raise ConfigError(f"trigger_time must be HH:MM (24-hour), got {text!r}")
    return found


def zone(name: Any) -> ZoneInfo:
    if not isinstance(name, str) or not name or len(name) > 64:
        raise ConfigError(f"timezone must be an IANA zone name such as {market_clock.NEW_YORK_TZ}, got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"timezone must be an IANA zone name such as {market_clock.NEW_YORK_TZ}, got {name!r}") from None


def nyse_is_session(day: dt.date) -> bool:
    """True for NYSE sessions (half days included), from exchange_calendars (the pure maths' default;
    a serving process passes `StoredCalendar(conn).is_session` instead)."""
    from tickstockpl.market.calendar import is_session

    return is_session(day)


def _candidates(now_utc: dt.datetime, at: dt.time, tz: ZoneInfo, step: int):
    local_day = now_utc.astimezone(tz).date()
    for offset in range(0, step * (LOOKAHEAD_DAYS + 1), step):
        day = local_day + dt.timedelta(days=offset)
        yield dt.datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def _fires(moment_utc: dt.datetime, market_check: bool, is_session: IsSession) -> bool:
    return not market_check or is_session(moment_utc.astimezone(MARKET_TZ).date())


def next_run(now_utc: dt.datetime, trigger_time: str = "16:10", tz: str = market_clock.NEW_YORK_TZ,
             market_check: bool = True, is_session: IsSession = nyse_is_session) -> dt.datetime:
    """The first firing strictly after `now_utc`, in UTC."""
    now_utc = _aware(now_utc)
    at, zone_info = parse_trigger_time(trigger_time), zone(tz)
    for candidate in _candidates(now_utc, at, zone_info, 1):
        if candidate > now_utc and _fires(candidate, market_check, is_session):
            return candidate
    raise ConfigError(f"no NYSE session in the {LOOKAHEAD_DAYS} days after {catalog.iso_z(now_utc)}")


def previous_run(now_utc: dt.datetime, trigger_time: str = "16:10", tz: str = market_clock.NEW_YORK_TZ,
                 market_check: bool = True, is_session: IsSession = nyse_is_session) -> dt.datetime | None:
    """The latest firing at or before `now_utc` (None if none in the lookahead window)."""
    now_utc = _aware(now_utc)
    at, zone_info = parse_trigger_time(trigger_time), zone(tz)
    for candidate in _candidates(now_utc, at, zone_info, -1):
        if candidate <= now_utc and _fires(candidate, market_check, is_session):
            return candidate
    return None


def session_for_fire(fire_utc: dt.datetime, market_check: bool, calendar=None) -> dt.date:
    """The session an automatic run fired at `fire_utc` processes (`calendar`: a market.calendar
    StoredCalendar or ExchangeCalendar; the latter by default).

    market_check on: the last NYSE session closed by then (the day itself at 16:10, half days too);
    off: the New York date of the firing when it is not a session (a weekend or holiday: the import
    then finds no new session), else the last session closed by then: a session that has not closed
    is never processed, whatever the schedule says.
    """
    from tickstockpl.market.calendar import ExchangeCalendar

    fire_utc = _aware(fire_utc)
    calendar = calendar or ExchangeCalendar()
    day = fire_utc.astimezone(MARKET_TZ).date()
    if not market_check and calendar.on(day) is None:
        return day
    return calendar.last_completed(fire_utc).day


def _aware(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError("schedule maths needs timezone-aware datetimes")
    return moment.astimezone(UTC)


# --------------------------------------------------------------------------- the schedule as a value

@dataclass(frozen=True)
class Schedule:
    enabled: bool = True
    trigger_time: str = "16:10"
    timezone: str = market_clock.NEW_YORK_TZ
    market_check: bool = True
    universes: tuple[str, ...] = ()

    def next_run(self, now_utc: dt.datetime | None = None,
                 is_session: IsSession = nyse_is_session) -> dt.datetime | None:
        if not self.enabled:
            return None
        return next_run(now_utc or market_clock.now(), self.trigger_time, self.timezone, self.market_check,
                        is_session)

    def to_public(self, now_utc: dt.datetime | None = None,
                  is_session: IsSession = nyse_is_session) -> dict[str, Any]:
        """The body of GET /api/processing/schedule (contract §2.2)."""
        return {
            "enabled": self.enabled,
            "trigger_time": self.trigger_time,
            "timezone": self.timezone,
            "next_run": catalog.iso_z(self.next_run(now_utc, is_session)),
            "universes": list(self.universes),
            "market_check": self.market_check,
        }


def validate_changes(changes: Any) -> dict[str, Any]:
    """Check a partial update; returns the normalised changes or raises ConfigError naming the field."""
    if not isinstance(changes, dict):
        raise ConfigError("the schedule update must be a JSON object")
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown schedule field(s): {', '.join(map(str, unknown))}; allowed: {', '.join(FIELDS)}")
    clean: dict[str, Any] = {}
    for name in ("enabled", "market_check"):
        if name in changes:
            if not isinstance(changes[name], bool):
                raise ConfigError(f"{name} must be true or false, got {changes[name]!r}")
            clean[name] = changes[name]
    if "trigger_time" in changes:
        parse_trigger_time(changes["trigger_time"])
        clean["trigger_time"] = changes["trigger_time"]
    if "timezone" in changes:
        zone(changes["timezone"])
        clean["timezone"] = changes["timezone"]
    if "universes" in changes:
        value = changes["universes"]
        if not isinstance(value, list) or len(value) > UNIVERSES_MAX or not all(
                isinstance(u, str) and 0 < len(u.strip()) <= UNIVERSE_NAME_MAX for u in value):
            raise ConfigError(f"universes must be a list of at most {UNIVERSES_MAX} non-empty names"
                              f" of at most {UNIVERSE_NAME_MAX} characters")
        clean["universes"] = tuple(dict.fromkeys(u.strip() for u in value))
    return clean
