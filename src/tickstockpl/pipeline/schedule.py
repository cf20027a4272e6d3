"""When the daily pipeline runs: pure schedule maths, the stored schedule, and the scheduler loop.

Maths (pure, table-tested): `next_run` is the first `trigger_time` in `timezone` strictly after
`now` whose New York date is an NYSE session (when `market_check` is on; every day when off).
Half days are sessions (they run), holidays are not (skipped); local wall-clock time is kept
across DST changes because the candidate is built in the zone and converted to UTC last.

Storage: one row in `pl_pipeline_schedule`; `update_schedule` validates the changed keys
(ConfigError on bad values) and writes the row and the `schedule_updated` event together.

Scheduler: `start_scheduler` runs an APScheduler BackgroundScheduler in a `serve` process. It
holds one date job at the computed next run and re-reads the schedule every `REFRESH_SECONDS`
(so an edit made through another process is picked up), catching up on a run missed within
`CATCH_UP` (a restart across 16:10).

"Now" is the market clock (`tickstockpl.clock`): it decides the next run, the catch-up and the
session a firing processes. The timer itself runs on real time,
so the date job is placed only when the next run lies in the real future; with TICKSTOCKPL_NOW
frozen in the past the scheduler reports its next run and fires through the catch-up alone. Every firing goes through `_fire`, which is idempotent:
the SCHEDULER_TICK advisory lock serialises processes, and the unique index on automatic runs
per (environment, session_date) makes a second run of one session impossible.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tickstockpl import clock as market_clock
from tickstockpl.errors import ConfigError, JobConflict, TickStockError
from tickstockpl.events import catalog
from tickstockpl.events.outbox import enqueue

log = logging.getLogger(__name__)

MARKET_TZ = market_clock.NEW_YORK
UTC = dt.timezone.utc
LOOKAHEAD_DAYS = 31  # longer than any run of NYSE closures
REFRESH_SECONDS = 30
CATCH_UP = dt.timedelta(hours=2)
UNIVERSES_MAX = 100
UNIVERSE_NAME_MAX = 100
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
FIELDS = ("enabled", "trigger_time", "timezone", "market_check", "universes")

IsSession = Callable[[dt.date], bool]


# --------------------------------------------------------------------------- pure maths

def parse_trigger_time(text: Any) -> dt.time:
    if not isinstance(text, str) or not _HHMM.match(text):
        raise ConfigError(f"trigger_time must be HH:MM (24-hour), got {text!r}")
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


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


# --------------------------------------------------------------------------- stored schedule

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


_SELECT = "SELECT enabled, trigger_time, timezone, market_check, universes FROM pl_pipeline_schedule WHERE id = 1"


def get_schedule(conn) -> Schedule:
    row = conn.execute(_SELECT).fetchone()
    if row is None:  # the migration inserts the row; recreate it if someone deleted it
        return Schedule()
    enabled, trigger_time, timezone, market_check, universes = row
    return Schedule(enabled, trigger_time, timezone, market_check, tuple(universes or ()))


def public_schedule(conn, schedule: Schedule | None = None) -> dict[str, Any]:
    """The body of GET /api/processing/schedule, its next run from the stored NYSE sessions."""
    from tickstockpl.market.calendar import StoredCalendar

    return (schedule or get_schedule(conn)).to_public(is_session=StoredCalendar(conn).is_session)


def update_schedule(conn, changes: Any, now_utc: dt.datetime | None = None) -> Schedule:
    """Apply the changed keys; the row and the `schedule_updated` event commit together."""
    import json

    clean = validate_changes(changes)
    if not clean:
        return get_schedule(conn)
    with conn.transaction():
        conn.execute("INSERT INTO pl_pipeline_schedule (id) VALUES (1) ON CONFLICT (id) DO NOTHING")
        current = get_schedule(conn)
        merged = Schedule(**{**current.__dict__, **clean})
        conn.execute(
            "UPDATE pl_pipeline_schedule SET enabled = %s, trigger_time = %s, timezone = %s, market_check = %s,"
            " universes = %s::jsonb, updated_at = now() WHERE id = 1",
            (merged.enabled, merged.trigger_time, merged.timezone, merged.market_check,
             json.dumps(list(merged.universes))),
        )
        from tickstockpl.market.calendar import StoredCalendar

        public = merged.to_public(now_utc, StoredCalendar(conn).is_session)
        enqueue(conn, [catalog.schedule_updated(public, sorted(clean))])
    return merged


# --------------------------------------------------------------------------- scheduler loop

JOB_ID = "pipeline-daily"


class PipelineScheduler:
    """The daily trigger inside one `serve` process; see the module docstring."""

    def __init__(self, settings, db_url: str, *, refresh_seconds: float = REFRESH_SECONDS,
                 catch_up: dt.timedelta = CATCH_UP):
        from apscheduler.schedulers.background import BackgroundScheduler

        self.settings = settings
        self.db_url = db_url
        self.refresh_seconds = refresh_seconds
        self.catch_up = catch_up
        self.next_run: dt.datetime | None = None
        self.last_started: str | None = None  # run id of the last run this process started
        self._lock = threading.Lock()
        self._scheduler = BackgroundScheduler(timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1})

    def start(self) -> "PipelineScheduler":
        self._scheduler.start()
        self._scheduler.add_job(self.refresh, "interval", seconds=self.refresh_seconds, id="pipeline-refresh",
                                next_run_time=dt.datetime.now(UTC))
        return self

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def refresh(self) -> dt.datetime | None:
        """Re-read the schedule, (re)place the date job, and catch up on a missed firing."""
        from tickstockpl.db.connect import connection
        from tickstockpl.market.calendar import StoredCalendar

        try:
            now = market_clock.now()  # market time; the APScheduler timer runs on real time
            with connection(self.db_url, autocommit=True) as conn:
                schedule = get_schedule(conn)
                is_session = StoredCalendar(conn).is_session
                upcoming = schedule.next_run(now, is_session)
                due = (previous_run(now, schedule.trigger_time, schedule.timezone, schedule.market_check, is_session)
                       if schedule.enabled else None)
            with self._lock:
                self.next_run = upcoming
                if self.next_run is None or self.next_run <= dt.datetime.now(UTC):
                    if self._scheduler.get_job(JOB_ID):  # nothing to wait for (past: the catch-up's)
                        self._scheduler.remove_job(JOB_ID)
                elif self._scheduler.running:
                    self._scheduler.add_job(self.fire, "date", run_date=self.next_run, args=[self.next_run],
                                            id=JOB_ID, replace_existing=True,
                                            misfire_grace_time=max(1, int(self.catch_up.total_seconds())))
            if due is not None and now - due <= self.catch_up:
                self.fire(due)
        except (TickStockError, OSError) as err:
            log.error("pipeline scheduler: could not refresh the schedule: %s", err)
        except Exception:  # a scheduler thread must never die of one bad tick
            log.exception("pipeline scheduler: refresh failed")
        return self.next_run

    def fire(self, fire_utc: dt.datetime) -> str | None:
        """Start the automatic run for the session of `fire_utc` unless some process already did."""
        from tickstockpl.db import locks
        from tickstockpl.db.connect import connection
        from tickstockpl.market.calendar import StoredCalendar
        from tickstockpl.pipeline import coordinator

        try:
            with connection(self.db_url, autocommit=True) as conn:
                if not conn.execute("SELECT pg_try_advisory_lock(%s)", (locks.SCHEDULER_TICK,)).fetchone()[0]:
                    return None  # another process is handling this tick
                try:
                    schedule = get_schedule(conn)
                    if not schedule.enabled:
                        return None
                    session = session_for_fire(fire_utc, schedule.market_check, StoredCalendar(conn))
                    if coordinator.automatic_run_exists(conn, self.settings.environment, session):
                        return None
                    handle = coordinator.trigger_run(
                        self.settings, self.db_url, trigger_type="automatic", session_date=session,
                        phases=["all"], skip_market_check=not schedule.market_check)
                    self.last_started = handle.run_id
                    log.info("pipeline scheduler: started run %s for session %s", handle.run_id, session)
                    return handle.run_id
                finally:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (locks.SCHEDULER_TICK,))
        except JobConflict as err:
            log.warning("pipeline scheduler: %s; the automatic run will be retried", err)
        except TickStockError as err:
            log.error("pipeline scheduler: automatic run not started: %s", err)
        except Exception:
            log.exception("pipeline scheduler: firing failed")
        return None


def start_scheduler(settings, db_url: str, **options: Any) -> PipelineScheduler:
    """Start the daily trigger in this process; call `.shutdown()` on exit."""
    return PipelineScheduler(settings, db_url, **options).start()
