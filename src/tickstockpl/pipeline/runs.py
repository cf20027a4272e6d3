"""Pipeline runs as stored: reading them, cancelling the live one, recovering abandoned ones.

A run is one row of `pl_pipeline_runs` (status running | success | failed | cancelled | incomplete) with one row
per phase in `pl_pipeline_phases`. `coordinator.py` creates and executes runs; the API and /health
read them through the names re-exported there (`is_running`, `processing_status`, `run_history`,
`cancel_current`, `get_run`).

Runs are single-flight work of the one runner (`jobs/single_flight.py`); `RUNS` is their table. The
lock is `locks.PIPELINE` per environment (`RUNS.lock_key(environment)`: DEFAULT keeps the id of earlier
versions, runs of different environments never wait for one another). A live row whose lock nobody
holds lost its process: `recover_abandoned_runs` marks it failed, with its `daily_processing_completed`
and `processing_error` events. Runs whose runner thread is alive in this process (`RUNS.running()`) are
never taken for abandoned here: a runner that lost its database connection (and so its lock) is still
there, waiting to record the real reason.

The lock is the owner's liveness, so a run becomes abandoned when the owner's database session has
ended, not when its client let go: PostgreSQL releases a session's advisory locks as the backend
process exits, which happens asynchronously after the client closes its connection (a moment later,
longer on a loaded machine) or, after a crash, once the server notices the connection is gone. Until
then every reader (status, cancel, /health, the next trigger) sees the run live, which is correct:
nothing can tell a session that is ending from one that is busy.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from tickstockpl.db import locks
from tickstockpl.errors import ConfigError, NotFound
from tickstockpl.events import catalog
from tickstockpl.jobs import single_flight as flight
from tickstockpl.pipeline import PHASES
from tickstockpl.settings import DEFAULT_ENVIRONMENT

log = logging.getLogger(__name__)

ABANDONED = "abandoned: the process running this run stopped before it finished"

RUNS = flight.LiveTable(kind="pipeline run", table="pl_pipeline_runs", id_column="run_id", error_column="error",
                        live_statuses=("running",), lock_base=locks.PIPELINE, abandoned=ABANDONED)

RUN_COLUMNS = ("run_id, trigger_type, session_date, phases, universe, status, current_phase, progress,"
               " symbols_total, symbols_processed, symbols_failed, start_time, end_time, estimated_completion,"
               " cancel_requested, error, environment")


@dataclass
class Run:
    run_id: str
    trigger_type: str
    session_date: dt.date
    phases: list[str]
    universe: str | None
    status: str
    current_phase: str | None
    progress: float
    symbols_total: int
    symbols_processed: int
    symbols_failed: int
    start_time: dt.datetime
    end_time: dt.datetime | None
    estimated_completion: dt.datetime | None
    cancel_requested: bool
    error: str | None
    environment: str

    @classmethod
    def from_row(cls, row) -> "Run":
        values = list(row)
        values[0] = str(values[0])
        values[3] = list(values[3])
        return cls(*values)

    @property
    def duration_seconds(self) -> float:
        end = self.end_time or dt.datetime.now(dt.timezone.utc)
        return round((end - self.start_time).total_seconds(), 3)

    def to_history(self) -> dict[str, Any]:
        """One item of GET /api/processing/history (contract §2.2 field names)."""
        return {
            "run_id": self.run_id, "trigger_type": self.trigger_type, "status": self.status,
            "start_time": catalog.iso_z(self.start_time), "end_time": catalog.iso_z(self.end_time),
            "duration_seconds": self.duration_seconds, "symbols_processed": self.symbols_processed,
            "symbols_failed": self.symbols_failed, "patterns_detected": 0, "indicators_calculated": 0,
            "session_date": self.session_date.isoformat(), "phases": list(self.phases), "error": self.error,
        }


def live_run(conn, environment: str = DEFAULT_ENVIRONMENT) -> Run | None:
    row = conn.execute(f"SELECT {RUN_COLUMNS} FROM pl_pipeline_runs WHERE environment = %s AND status = 'running'",
                       (environment,)).fetchone()
    return Run.from_row(row) if row else None


def is_running(conn, environment: str = locks.DEFAULT_ENVIRONMENT) -> bool:
    """A run of `environment` is live and its process is alive (holds the environment's pipeline lock).
    Read-only; used by /health."""
    return flight.has_live(conn, RUNS, environment) and flight.lock_held(conn, RUNS.lock_key(environment))


def get_run(conn, run_id: str) -> tuple[Run, list[dict[str, Any]]]:
    try:
        uuid.UUID(str(run_id))
    except ValueError:
        raise NotFound(f"unknown run id {run_id!r}") from None
    row = conn.execute(f"SELECT {RUN_COLUMNS} FROM pl_pipeline_runs WHERE run_id = %s", (run_id,)).fetchone()
    if row is None:
        raise NotFound(f"unknown run id {run_id}")
    phases = [{"phase": p, "status": s, "start_time": catalog.iso_z(a), "end_time": catalog.iso_z(b),
               "duration_seconds": round((b - a).total_seconds(), 3) if a and b else None,
               "counts": counts, "error": err}
              for p, s, a, b, counts, err in conn.execute(
                  "SELECT phase, status, start_time, end_time, counts, error FROM pl_pipeline_phases"
                  " WHERE run_id = %s ORDER BY position", (run_id,))]
    return Run.from_row(row), phases


def automatic_run_exists(conn, environment: str, session_date: dt.date) -> bool:
    return conn.execute("SELECT 1 FROM pl_pipeline_runs WHERE environment = %s AND session_date = %s"
                        " AND trigger_type = 'automatic'", (environment, session_date)).fetchone() is not None


def run_history(conn, days: int = 7, environment: str = DEFAULT_ENVIRONMENT) -> list[dict[str, Any]]:
    if not 1 <= int(days) <= 3650:
        raise ConfigError(f"days must be between 1 and 3650, got {days}")
    rows = conn.execute(f"SELECT {RUN_COLUMNS} FROM pl_pipeline_runs WHERE environment = %s"
                        " AND start_time >= now() - make_interval(days => %s) ORDER BY start_time DESC LIMIT 1000",
                        (environment, int(days))).fetchall()
    return [Run.from_row(r).to_history() for r in rows]


# The live run of an environment if there is one, else its latest run; the last column says which.
_CURRENT_SQL = (f"SELECT {RUN_COLUMNS}, status = 'running' FROM pl_pipeline_runs WHERE environment = %s"
                " ORDER BY status = 'running' DESC, start_time DESC LIMIT 1")


def _current(conn, environment: str) -> tuple[Run | None, bool]:
    row = conn.execute(_CURRENT_SQL, (environment,)).fetchone()
    return (Run.from_row(row[:-1]), bool(row[-1])) if row else (None, False)


def processing_status(conn, environment: str = DEFAULT_ENVIRONMENT) -> dict[str, Any]:
    """The body of GET /api/processing/status: the live run, else the latest run with current_phase idle.

    One statement when no run is live (the API's polled case); a live run whose process is gone is
    marked failed first (recover_abandoned_runs) and the answer read again."""
    run, running = _current(conn, environment)
    if running and recover_abandoned_runs(conn, environment):
        run, running = _current(conn, environment)
    if run is None:
        return {"is_running": False, "run_id": None, "current_phase": "idle", "progress": 0.0,
                "symbols_processed": 0, "symbols_total": 0, "start_time": None, "estimated_completion": None,
                "status": "idle", "last_run_status": None, "session_date": None, "trigger_type": None,
                "cancel_requested": False}
    return {
        "is_running": running, "run_id": run.run_id,
        "current_phase": (run.current_phase or PHASES[0]) if running else "idle",
        "progress": round(float(run.progress), 1), "symbols_processed": run.symbols_processed,
        "symbols_total": run.symbols_total, "start_time": catalog.iso_z(run.start_time),
        "estimated_completion": catalog.iso_z(run.estimated_completion) if running else None,
        "status": run.status, "last_run_status": None if running else run.status,
        "session_date": run.session_date.isoformat(), "trigger_type": run.trigger_type,
        "cancel_requested": run.cancel_requested,
    }


def cancel_current(conn, environment: str = DEFAULT_ENVIRONMENT) -> dict[str, Any]:
    """Ask the live run to stop (it does so between phases or import sessions); NotFound when none is live."""
    recover_abandoned_runs(conn, environment)
    row = conn.execute("UPDATE pl_pipeline_runs SET cancel_requested = true WHERE environment = %s"
                       " AND status = 'running' RETURNING run_id, current_phase", (environment,)).fetchone()
    if row is None:
        raise NotFound("no pipeline run is in progress")
    run_id, phase = str(row[0]), row[1]
    log.info("cancellation requested for pipeline run %s (phase %s)", run_id, phase)
    return {"message": f"cancellation requested for run {run_id}; it stops after the current step"
                       + (f" of {phase}" if phase else ""), "run_id": run_id, "success": True}


def recover_abandoned_runs(conn, environment: str = DEFAULT_ENVIRONMENT) -> list[str]:
    """Live runs whose lock nobody holds lost their process: mark them failed (with their events)."""
    return flight.recover(conn, RUNS, environment, lambda c: mark_abandoned(c, environment))


def mark_abandoned(conn, environment: str) -> list[str]:
    """Mark every live run failed; call only while holding the environment's lock (their owner is gone)."""

    def events(conn, rows) -> list[catalog.Event]:
        found = []
        for run_id, processed, failed, seconds in rows:
            conn.execute("UPDATE pl_pipeline_phases SET status = CASE WHEN status = 'running' THEN 'failed'"
                         " ELSE 'skipped' END, end_time = coalesce(end_time, now())"
                         " WHERE run_id = %s AND status IN ('pending', 'running')", (run_id,))
            found.append(catalog.daily_processing_completed(
                str(run_id), status="failed", symbols_processed=processed, symbols_failed=failed,
                duration_seconds=seconds, error=ABANDONED))
            found.append(catalog.pipeline_error(str(run_id), f"pipeline run {run_id}: {ABANDONED}"))
        return found

    return flight.mark_abandoned(
        conn, RUNS, environment, events=events, also={"estimated_completion": None},
        returning="symbols_processed, symbols_failed, extract(epoch FROM now() - start_time)::float8")
