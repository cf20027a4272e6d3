"""Cache-sync endpoints (contract §2.1): trigger, status, history, stats. X-API-Key required."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from tickstockpl.api.deps import ConnDep, KeyRequired, SettingsDep
from tickstockpl.api.models import (ErrorBody, JobHistory, JobProgress, JobStatistics, JobStatus, JobSummary,
                                    SyncStats, TriggerAccepted, TriggerRequest, UniverseStat)
from tickstockpl.api.ratelimit import limit_triggers
from tickstockpl.api.universe_sql import stored_universes
from tickstockpl.events.catalog import iso_z
from tickstockpl.jobs import reports, runtime
from tickstockpl.universes.model import universe_id

PREFIX = "/api/processing/cache-sync"
ERRORS = {401: {"model": ErrorBody}, 422: {"model": ErrorBody}}

router = APIRouter(prefix=PREFIX, tags=["cache-sync"], dependencies=[KeyRequired], responses=ERRORS)


def job_status(job: runtime.Job) -> JobStatus:
    return JobStatus(
        job_id=job.job_id, mode=job.mode, status=job.status, created_at=iso_z(job.created_at),
        start_time=iso_z(job.start_time), end_time=iso_z(job.end_time), duration_seconds=job.duration_seconds,
        triggered_by=job.triggered_by, error_details=job.error_details,
        progress=JobProgress(**job.progress) if job.progress else None, force=job.force,
        as_of=job.as_of.isoformat() if job.as_of else None, result=job.result,
    )


@router.post("/trigger", status_code=202, response_model=TriggerAccepted,
             responses={409: {"model": ErrorBody}, 429: {"model": ErrorBody}},
             dependencies=[Depends(limit_triggers)])
async def trigger(request: Request, body: TriggerRequest = TriggerRequest()) -> TriggerAccepted:
    """Start a sync in this server process; returns at once with the job id (409 while one is live)."""
    handle = await request.app.state.services.start_job(mode=body.mode, force=body.force, triggered_by="api")
    return TriggerAccepted(job_id=handle.job_id, mode=body.mode,
                           message=f"cache sync ({body.mode}) started; follow it at {PREFIX}/status/{handle.job_id}")


@router.get("/status/{job_id}", response_model=JobStatus, responses={404: {"model": ErrorBody}})
async def status(job_id: str, conn: ConnDep) -> Response:
    """One job: status, times, progress while running, error details when it failed."""
    body = job_status(await runtime.get_job_async(conn, job_id))
    # Serialized here, once: the model was validated when built, and FastAPI's response_model
    # pass would validate and encode it again (a tenth of a status request's CPU).
    return Response(body.model_dump_json(), media_type="application/json")


@router.get("/history", response_model=JobHistory)
async def history(conn: ConnDep, settings: SettingsDep,
                  limit: Annotated[int, Query(ge=1, le=100)] = 10,
                  offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> JobHistory:
    """Jobs newest first."""
    jobs, total = await reports.job_history(conn, settings.environment, limit=limit, offset=offset)
    return JobHistory(
        jobs=[JobSummary(job_id=j.job_id, mode=j.mode, status=j.status, created_at=iso_z(j.created_at),
                         start_time=iso_z(j.start_time), end_time=iso_z(j.end_time),
                         duration_seconds=j.duration_seconds, triggered_by=j.triggered_by,
                         has_errors=j.status == "failed" or bool(j.error_details)) for j in jobs],
        total=total, limit=limit, offset=offset,
    )


@router.get("/stats", response_model=SyncStats)
async def stats(conn: ConnDep, settings: SettingsDep) -> SyncStats:
    """Every stored universe with its symbol count and last update, and the last 7 days of jobs."""
    rows = await stored_universes(conn, settings.environment)
    js = await reports.job_stats(conn, settings.environment)
    return SyncStats(
        universes=[UniverseStat(universe=universe_id(u.type, u.name, u.key), type=u.type, symbol_count=u.count,
                                last_updated=iso_z(u.updated_at)) for u in rows],
        job_statistics=JobStatistics(total_jobs_7d=js.total, successful_jobs_7d=js.successful,
                                     failed_jobs_7d=js.failed, avg_duration_seconds=js.avg_duration_seconds),
    )
