"""Every sync runs as a job row in `pl_sync_jobs`, one live job at a time per environment across all
processes (jobs of different environments never wait for each other).

Single-flight is the one runner of `jobs/single_flight.py` (shared with pipeline runs): the
advisory lock `locks.cache_sync(environment)` held by the connection that inserts the job row until
the job ends, the unique partial index `pl_sync_jobs_one_live`, the claim, abandoned recovery, the
handle and end recording live there. This module supplies the table (`JOBS`), the work (the sync
engine, `sync.job.run_sync`) and the events (`cache_sync_*`). A refused trigger (409) names the live
job of its environment; a lock held by a session that runs no job is reported naming that session.
Whoever gets the lock and still finds a live row knows its owner died: that row is marked `failed`
("abandoned") — on every trigger and when a server starts (`recover_abandoned`).

Status: pending -> running -> completed | failed. The job row's final update and the
`cache_sync_completed` event commit in the same transaction as the universes they describe.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable


from tickstockpl.db import locks
from tickstockpl.db.connect import connect
from tickstockpl.errors import JobConflict, NotFound, ServiceUnavailable
from tickstockpl.events import catalog
from tickstockpl.events.outbox import enqueue, execute_with_events
from tickstockpl.jobs import single_flight as flight
from tickstockpl.jobs.table import GET_JOB_SQL, JOB_COLUMNS, Job  # noqa: F401 (re-exported)
from tickstockpl.settings import DEFAULT_ENVIRONMENT

if TYPE_CHECKING:  # the sync engine is imported when a job runs, so the API starts without it
    from tickstockpl.sync.job import SyncRequest, SyncResult

log = logging.getLogger(__name__)

TRIGGERS = ("api", "scheduler", "pipeline", "cli")
LIVE = ("pending", "running")
RECORDED_STEPS = ("build universes", "write")  # progress rows/events between start and end
ABANDONED = "abandoned: the process running this job stopped before it finished"
LOST_CONNECTION = flight.LOST_CONNECTION + "the sync: "

JOBS = flight.LiveTable(kind="cache sync", table="pl_sync_jobs", id_column="job_id", error_column="error_details",
                        live_statuses=LIVE, lock_base=locks.CACHE_SYNC, abandoned=ABANDONED)



def _job_id(job_id: str) -> str:
    try:
        uuid.UUID(job_id)
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"unknown job id {job_id!r}") from None
    return job_id


def _found(row, job_id: str) -> Job:
    if row is None:
        raise NotFound(f"unknown job id {job_id}")
    return Job.from_row(row)


def get_job(conn, job_id: str) -> Job:
    return _found(conn.execute(GET_JOB_SQL, (_job_id(job_id),)).fetchone(), job_id)


async def get_job_async(aconn, job_id: str) -> Job:
    """`get_job` on an async connection: the API's status endpoint, its one hot path (see
    docs/ARCHITECTURE-notes.md); same statement, same row mapping."""
    cursor = await aconn.execute(GET_JOB_SQL, (_job_id(job_id),))
    return _found(await cursor.fetchone(), job_id)


def live_job(conn, environment: str) -> Job | None:
    row = conn.execute(
        f"SELECT {JOB_COLUMNS} FROM pl_sync_jobs WHERE environment = %s AND status = ANY(%s)"
        " ORDER BY created_at DESC LIMIT 1",
        (environment, list(LIVE)),
    ).fetchone()
    return Job.from_row(row) if row else None


def _fail_abandoned(conn, environment: str) -> list[str]:
    """Mark live rows failed; call only while holding the environment's lock (their owner is gone)."""

    def events(conn, rows) -> list[catalog.Event]:
        found = []
        for job_id, mode, seconds in rows:
            found += catalog.cache_sync_completed(str(job_id), mode, "failed", 0, seconds, 0, error=ABANDONED)
        return found

    return flight.mark_abandoned(conn, JOBS, environment, events=events,
                                 returning="mode, coalesce(extract(epoch FROM now() - start_time), 0)::float8")


def recover_abandoned(db_url: str, environment: str) -> list[str]:
    """If no process holds the environment's sync lock, its live rows are orphans: mark them failed."""
    with connect(db_url, autocommit=True) as conn:
        return flight.recover(conn, JOBS, environment, lambda c: _fail_abandoned(c, environment))


class JobHandle(flight.Handle):
    """A started job: its id, and (when run in the background) the thread running it."""

    def __init__(self, job_id: str):
        super().__init__(job_id)
        self.result: "SyncResult | None" = None
        self.error: BaseException | None = None
        self.reason: str | None = None  # the job's error_details when it failed

    @property
    def job_id(self) -> str:
        return self.id


def start_job(
    db_url: str,
    *,
    mode: str = "full",
    force: bool = False,
    triggered_by: str = "api",
    as_of: dt.date | None = None,
    environment: str = DEFAULT_ENVIRONMENT,
    background: bool = True,
    extra_event_fields: dict[str, Any] | None = None,
    on_progress: Callable[[int, int, str], None] | None = None,
    on_done: Callable[[JobHandle], None] | None = None,
    allow_empty: bool = False,
) -> JobHandle:
    """Create the job row (or raise JobConflict with the live job's id) and run the sync.

    Returns once the row is committed as `pending`; with background=True the sync runs in a
    daemon thread, else it runs before this returns (errors are then re-raised).
    """
    if triggered_by not in TRIGGERS:
        raise ValueError(f"triggered_by must be one of {TRIGGERS}")
    from tickstockpl.sync.job import SyncRequest

    request = SyncRequest(mode=mode, force=force, as_of=as_of, environment=environment, allow_empty=allow_empty)
    extra = dict(extra_event_fields or {})
    conn = connect(db_url, autocommit=True)
    try:
        flight.job_session(conn)
        job_id = _claim(conn, request, triggered_by, extra)
    except BaseException:
        conn.close()
        raise
    handle = JobHandle(job_id)

    def body() -> None:
        try:
            handle.result = _run(db_url, conn, job_id, request, triggered_by, extra, on_progress)
        except BaseException as err:  # recorded on the job row; re-raised for foreground runs
            handle.error = err
            handle.reason = _reason(err, conn)

    flight.launch(conn, JOBS, request.environment, handle, body, background=background, thread_name="sync",
                  after=None if on_done is None else lambda: on_done(handle))
    if not background:
        if handle.error is not None:
            if handle.reason is not None and handle.reason.startswith(LOST_CONNECTION):
                # the database went away (a restart): a service outage, not a failed statement
                raise ServiceUnavailable(f"cache sync {job_id} failed: {handle.reason}") from handle.error
            raise handle.error
    return handle


def _claim(conn, request: "SyncRequest", triggered_by: str, extra: dict[str, Any]) -> str:
    from tickstockpl.sync.job import STEPS

    def insert(conn) -> str:
        job_id = str(uuid.uuid4())
        with conn.transaction():
            execute_with_events(
                conn,
                "INSERT INTO pl_sync_jobs (job_id, environment, mode, force, triggered_by, status, as_of, owner, progress)"
                " VALUES (%s, %s, %s, %s, %s, 'pending', %s, %s, %s)",
                (job_id, request.environment, request.mode, request.force, triggered_by, request.as_of, flight.OWNER,
                 json.dumps(_progress_doc(0, len(STEPS), "queued"))),
                [catalog.cache_sync_triggered(job_id, request.mode, request.force, triggered_by, **extra)],
            )
        return job_id

    return flight.claim(conn, JOBS, request.environment, insert=insert,
                        live=lambda c: live_job(c, request.environment), conflict=_conflict,
                        abandon=lambda c: _fail_abandoned(c, request.environment))


def _conflict(live: Job) -> JobConflict:
    return JobConflict(f"a cache sync is already {live.status} in environment {live.environment}"
                       f" (job {live.job_id})", live.job_id)


def _progress_doc(completed: int, total: int, task: str) -> dict[str, Any]:
    return {"total_steps": total, "completed_steps": completed, "current_task": task,
            "percent": round(100.0 * completed / total, 1) if total else 0.0}


def _run(db_url: str, conn, job_id: str, request: "SyncRequest", triggered_by: str, extra: dict[str, Any],
         on_progress) -> "SyncResult":
    from tickstockpl.sync.job import STEPS, run_sync

    started = time.perf_counter()
    first = _progress_doc(0, len(STEPS), STEPS[0])
    with conn.transaction():
        execute_with_events(
            conn, "UPDATE pl_sync_jobs SET status = 'running', start_time = now(), progress = %s WHERE job_id = %s",
            (json.dumps(first), job_id),
            [catalog.cache_sync_started(job_id, request.mode, triggered_by, **extra),
             catalog.cache_sync_progress(job_id, request.mode, first, **extra)])
    policy = flight.StepProgress(STEPS, RECORDED_STEPS)

    def progress(completed: int, total: int, task: str) -> None:
        if on_progress is not None:
            on_progress(completed, total, task)
        # The running row already shows step 0 and finish() records the end with the result. In
        # between, the steps that start long work are recorded (flight.StepProgress).
        if not policy.due(completed, total):
            return
        doc = _progress_doc(completed, total, task)
        with conn.transaction():
            execute_with_events(conn, "UPDATE pl_sync_jobs SET progress = %s WHERE job_id = %s", (json.dumps(doc), job_id),
                                [catalog.cache_sync_progress(job_id, request.mode, doc, **extra)])

    def finish(tx_conn, result: "SyncResult") -> None:
        doc = _progress_doc(len(STEPS), len(STEPS), "done")
        execute_with_events(
            tx_conn,
            "UPDATE pl_sync_jobs SET status = 'completed', end_time = now(), result = %s, progress = %s,"
            " inputs_digest = %s, outputs_digest = %s WHERE job_id = %s",
            (json.dumps(result.to_dict()), json.dumps(doc), *result.fingerprints(), job_id),
            [catalog.cache_sync_progress(job_id, request.mode, doc, **extra)]
            + catalog.cache_sync_completed(job_id, request.mode, "completed", result.total_changes,
                                           time.perf_counter() - started, result.universes_updated, **extra))

    try:
        return run_sync(conn, request, job_id=job_id, progress=progress, before_commit=finish)
    except BaseException as err:
        log.error("cache sync %s failed: %s", job_id, _reason(err, conn))
        _record_failure(db_url, conn, job_id, request, _reason(err, conn), time.perf_counter() - started, extra)
        raise


def _reason(err: BaseException, conn) -> str:
    """The job's error_details: the user-facing message, or what happened to the database."""
    return flight.failure_reason(err, conn, "the sync")


def _record_failure(db_url, conn, job_id, request, message, seconds, extra) -> None:
    """Mark the job failed with its reason and announce it, in one transaction. When the job's
    own connection is gone (the database restarted), keep trying on fresh connections for up to
    flight.RECORD_END_RETRY_S; only a process that dies leaves the job to abandoned-job recovery."""

    def write(conn) -> None:
        if not flight.end_row(conn, JOBS, job_id, "failed", message):
            return  # another process already ended it (abandoned): it announced that itself
        enqueue(conn, catalog.cache_sync_completed(job_id, request.mode, "failed", 0, seconds, 0,
                                                   error=message, **extra)
                + [catalog.cache_sync_error(job_id, request.mode, f"cache sync {job_id} failed: {message}", **extra)])

    flight.record_end(conn, db_url, f"the failure of job {job_id}", write)
