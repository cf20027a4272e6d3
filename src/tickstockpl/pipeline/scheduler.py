"""The daily trigger: an APScheduler BackgroundScheduler inside one `serve` process.

It holds one date job at the computed next run (schedule.next_run over the stored NYSE sessions) and
re-reads the stored schedule every `REFRESH_SECONDS` (so an edit made through another process is picked
up), catching up on a run missed within `CATCH_UP` (a restart across 16:10).

"Now" is the market clock (`tickstockpl.clock`): it decides the next run, the catch-up and the session a
firing processes. The timer itself runs on real time, so the date job is placed only when the next run
lies in the real future; with TICKSTOCKPL_NOW frozen in the past the scheduler reports its next run and
fires through the catch-up alone. Every firing goes through `fire`, which is idempotent: the
SCHEDULER_TICK advisory lock serialises processes, and the unique index on automatic runs per
(environment, session_date) makes a second run of one session impossible.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

from tickstockpl import clock as market_clock
from tickstockpl.db import locks
from tickstockpl.db.connect import connection
from tickstockpl.errors import JobConflict, TickStockError
from tickstockpl.market.calendar import StoredCalendar
from tickstockpl.pipeline import coordinator
from tickstockpl.pipeline.schedule import UTC, previous_run, session_for_fire
from tickstockpl.pipeline.schedule_store import get_schedule

log = logging.getLogger(__name__)

REFRESH_SECONDS = 30
CATCH_UP = dt.timedelta(hours=2)

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
