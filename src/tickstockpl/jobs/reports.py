"""Read-only views of the job table (pl_sync_jobs): a page of history, the 7-day statistics, the
fingerprints of the last completed job (for sync/fingerprint.py), what /metrics and the demo show."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from psycopg.rows import class_row, namedtuple_row

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


class Latest(NamedTuple):
    job_id: str
    result: dict | None


def latest_completed(conn) -> Latest | None:
    """The newest completed job of any environment (the demo's story)."""
    with conn.cursor(row_factory=class_row(Latest)) as cur:
        cur.execute("SELECT job_id::text AS job_id, result FROM pl_sync_jobs WHERE status = 'completed'"
                    " ORDER BY end_time DESC LIMIT 1")
        return cur.fetchone()


class Durations(NamedTuple):
    count: int
    total: float
    buckets: tuple[int, ...]  # completed jobs that took at most each bound


class MetricsView(NamedTuple):
    by_status: dict[str, int]
    durations: Durations
    last_completed_epoch: float  # 0 when none


def metrics_view(conn, environment: str, bounds: tuple[float, ...]) -> MetricsView:
    """What /metrics shows of the job table: jobs by status, completed durations in the histogram's
    `bounds`, the time of the last completion. Three small statements."""
    by_status = {row.status: row.n for row in conn.cursor(row_factory=namedtuple_row).execute(
        "SELECT status, count(*) AS n FROM pl_sync_jobs WHERE environment = %s GROUP BY status", (environment,))}
    buckets = ", ".join(f"count(*) FILTER (WHERE d <= {float(b)})" for b in bounds)  # numbers, not input
    row = conn.execute(
        f"WITH j AS (SELECT extract(epoch FROM end_time - start_time)::float8 AS d FROM pl_sync_jobs"
        f"  WHERE environment = %s AND status = 'completed' AND start_time IS NOT NULL AND end_time IS NOT NULL)"
        f" SELECT count(*), coalesce(sum(d), 0), {buckets} FROM j", (environment,)).fetchone()
    last = conn.execute(
        "SELECT coalesce(extract(epoch FROM max(end_time)), 0)::float8 FROM pl_sync_jobs"
        " WHERE environment = %s AND status = 'completed'", (environment,)).fetchone()[0]
    return MetricsView(by_status, Durations(int(row[0]), float(row[1]), tuple(int(v) for v in row[2:])), float(last))
