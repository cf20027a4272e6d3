"""Processing (daily pipeline) endpoints, contract §2.2: trigger-manual, status, history, cancel, schedule.

X-API-Key is checked when settings.require_key_processing (on by default outside the demo).
A triggered run executes in a background thread of this process (Services.trigger_run); the request
returns once the run row is committed. The pipeline's readers (pipeline/runs.py, schedule_store.py) are
synchronous, shared with the CLI and the scheduler: each route runs them on its own connection through
api/blocking.py. Errors (each status is its error class's, errors.py): 409 while a run is live,
422 for unknown or unavailable phases and bad dates or schedule values, 404 for cancel with nothing
running or an unknown run id.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from tickstockpl.api import blocking
from tickstockpl.api.deps import ConnDep, ProcessingKey, SettingsDep
from tickstockpl.api.models import (ErrorBody, ProcessingCancelled, ProcessingHistory, ProcessingRun,
                                    ProcessingRunDetail, ProcessingSchedule, ProcessingScheduleUpdate,
                                    ProcessingStatus, ProcessingTriggerAccepted, ProcessingTriggerRequest)
from tickstockpl.api.ratelimit import limit_triggers
from tickstockpl.errors import ConfigError
from tickstockpl.pipeline import coordinator
from tickstockpl.pipeline import schedule_store as pipeline_schedule

log = logging.getLogger(__name__)

PREFIX = "/api/processing"
ERRORS = {401: {"model": ErrorBody}, 422: {"model": ErrorBody}}

router = APIRouter(prefix=PREFIX, tags=["processing"], dependencies=[ProcessingKey], responses=ERRORS)


@router.post("/trigger-manual", status_code=202, response_model=ProcessingTriggerAccepted,
             responses={409: {"model": ErrorBody}, 429: {"model": ErrorBody}},
             dependencies=[Depends(limit_triggers)])
async def trigger_manual(request: Request,
                         body: ProcessingTriggerRequest = ProcessingTriggerRequest()) -> ProcessingTriggerAccepted:
    """Start a manual run (data import, then cache sync); 409 while a run is live."""
    try:
        session = dt.date.fromisoformat(body.date) if body.date else None
    except ValueError:
        raise ConfigError(f"date must be a real date YYYY-MM-DD, got {body.date!r}") from None
    handle = await request.app.state.services.trigger_run(
        trigger_type="manual", session_date=session, phases=body.phases,
        skip_market_check=body.skip_market_check, universe=body.universe)
    return ProcessingTriggerAccepted(
        run_id=handle.run_id, session_date=handle.session_date.isoformat(), phases=handle.phases,
        message=(f"{handle.note}; " if handle.note else "")
        + f"pipeline run started for session {handle.session_date} ({', '.join(handle.phases)});"
        f" follow it at {PREFIX}/status",
    )


@router.get("/status", response_model=ProcessingStatus)
async def status(conn: ConnDep, settings: SettingsDep) -> ProcessingStatus:
    """The live run (is_running true), else the latest run with current_phase "idle"."""
    return ProcessingStatus(**await blocking.run(conn, coordinator.processing_status, settings.environment))


@router.get("/history", response_model=ProcessingHistory)
async def history(conn: ConnDep, settings: SettingsDep,
                  days: Annotated[int, Query(ge=1, le=365)] = 7) -> ProcessingHistory:
    """Runs started in the last `days` days, newest first."""
    runs = await blocking.run(conn, coordinator.run_history, days, settings.environment)
    return ProcessingHistory(runs=[ProcessingRun(**r) for r in runs])


@router.get("/runs/{run_id}", response_model=ProcessingRunDetail, responses={404: {"model": ErrorBody}})
async def run_detail(run_id: str, conn: ConnDep) -> ProcessingRunDetail:
    """One run with its per-phase timings and counts."""
    run, phases = await blocking.run(conn, coordinator.get_run, run_id)
    return ProcessingRunDetail(**run.to_history(), phase_results=phases)


@router.delete("/cancel", response_model=ProcessingCancelled, responses={404: {"model": ErrorBody}})
async def cancel(conn: ConnDep, settings: SettingsDep) -> ProcessingCancelled:
    """Ask the live run to stop after its current step (between phases or import sessions)."""
    return ProcessingCancelled(**await blocking.run(conn, coordinator.cancel_current, settings.environment))


@router.get("/schedule", response_model=ProcessingSchedule)
async def get_schedule(conn: ConnDep) -> ProcessingSchedule:
    """The daily schedule and its next run (ISO-8601 UTC)."""
    return ProcessingSchedule(**await blocking.run(conn, pipeline_schedule.public_schedule))


@router.post("/schedule", response_model=ProcessingSchedule)
async def update_schedule(request: Request, conn: ConnDep, body: ProcessingScheduleUpdate) -> ProcessingSchedule:
    """Change only the keys sent; answers the whole schedule and publishes `schedule_updated`."""
    updated = await blocking.run(conn, pipeline_schedule.update_schedule, body.model_dump(exclude_unset=True))
    scheduler = request.app.state.services.scheduler
    if scheduler is not None:  # other processes pick it up on their next poll
        threading.Thread(target=scheduler.refresh, name="schedule-refresh", daemon=True).start()
    return ProcessingSchedule(**await blocking.run(conn, pipeline_schedule.public_schedule, updated))


# Issue 14: calendar overrides (/api/processing/calendar/overrides), behind this router's X-API-Key.
from tickstockpl.api.routes import calendar_overrides  # noqa: E402

router.include_router(calendar_overrides.router)
