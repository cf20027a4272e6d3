"""Read-only views of the job table: a page of history and the 7-day statistics."""

from __future__ import annotations

from dataclasses import dataclass

from tickstockpl.jobs.runtime import JOB_COLUMNS, Job

STATS_WINDOW_DAYS = 7

# The fingerprints of the newest completed, non-forced job of a mode (sync/fingerprint.py uses it as a
# CTE of the snapshot statement, so a rerun decides in one round trip). Parameters %(env)s, %(mode)s.
LAST_FINGERPRINT_SQL = (
    "SELECT job_id, inputs_digest, outputs_digest, result FROM pl_sync_jobs"
    " WHERE environment = %(env)s AND mode = %(mode)s AND status = 'completed' AND NOT force"
    " AND inputs_digest IS NOT NULL ORDER BY end_time DESC NULLS LAST LIMIT 1")


def job_history(conn, environment: str, *, limit: int, offset: int) -> tuple[list[Job], int]:
    """Newest first; returns (page, total number of jobs)."""
    rows = conn.execute(
        f"SELECT {JOB_COLUMNS} FROM pl_sync_jobs WHERE environment = %s"
        " ORDER BY created_at DESC, job_id LIMIT %s OFFSET %s",
        (environment, limit, offset),
    ).fetchall()
    total = conn.execute("SELECT count(*) FROM pl_sync_jobs WHERE environment = %s", (environment,)).fetchone()[0]
    return [Job.from_row(r) for r in rows], int(total)


@dataclass(frozen=True)
class JobStats:
    total: int
    successful: int
    failed: int
    avg_duration_seconds: float | None


def job_stats(conn, environment: str, days: int = STATS_WINDOW_DAYS) -> JobStats:
    """Jobs created in the last `days` days; the average duration is over completed jobs."""
    total, ok, failed, avg = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed'),"
        " avg(extract(epoch FROM end_time - start_time)) FILTER (WHERE status = 'completed')::float8"
        " FROM pl_sync_jobs WHERE environment = %s AND created_at >= now() - make_interval(days => %s)",
        (environment, days),
    ).fetchone()
    return JobStats(int(total), int(ok), int(failed), round(float(avg), 3) if avg is not None else None)
