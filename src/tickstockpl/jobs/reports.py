"""Read-only views of the job table (pl_sync_jobs): a page of history, the 7-day statistics, the
fingerprints of the last completed job (for sync/fingerprint.py), what /metrics and the demo show.

The API's readers (`job_history`, `job_stats`, `metrics_view`) are `async` on the request's
AsyncConnection (api/deps.ConnDep): the API is their only caller; the demo's `latest_completed` is synchronous."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from psycopg.rows import class_row, namedtuple_row

from tickstockpl.jobs.table import JOB_COLUMNS, Job

STATS_WINDOW_DAYS = 7



async def job_history(aconn, environment: str, *, limit: int, offset: int) -> tuple[list[Job], int]:
    """Newest first; returns (page, total number of jobs)."""
    rows = await (await aconn.execute(
        f"SELECT {JOB_COLUMNS} FROM pl_sync_jobs WHERE environment = %s"
        " ORDER BY created_at DESC, job_id LIMIT %s OFFSET %s",
        (environment, limit, offset),
    )).fetchall()
    total = (await (await aconn.execute("SELECT count(*) FROM pl_sync_jobs WHERE environment = %s",
                                        (environment,))).fetchone())[0]
    return [Job.from_row(r) for r in rows], int(total)


@dataclass(frozen=True)
class JobStats:
    total: int
    successful: int
    failed: int
    avg_duration_seconds: float | None


async def job_stats(aconn, environment: str, days: int = STATS_WINDOW_DAYS) -> JobStats:
    """Jobs created in the last `days` days; the average duration is over completed jobs."""
    total, ok, failed, avg = await (await aconn.execute(
        "SELECT count(*), count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed'),"
        " avg(extract(epoch FROM end_time - start_time)) FILTER (WHERE status = 'completed')::float8"
        " FROM pl_sync_jobs WHERE environment = %s AND created_at >= now() - make_interval(days => %s)",
        (environment, days),
    )).fetchone()
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


async def metrics_view(aconn, environment: str, bounds: tuple[float, ...]) -> MetricsView:
    """What /metrics shows of the job table: jobs by status, completed durations in the histogram's
    `bounds`, the time of the last completion. Three small statements."""
    async with aconn.cursor(row_factory=namedtuple_row) as cur:
        await cur.execute("SELECT status, count(*) AS n FROM pl_sync_jobs WHERE environment = %s GROUP BY status",
                          (environment,))
        by_status = {row.status: row.n for row in await cur.fetchall()}
    buckets = ", ".join(f"count(*) FILTER (WHERE d <= {float(b)})" for b in bounds)  # numbers, not input
    row = await (await aconn.execute(
        f"WITH j AS (SELECT extract(epoch FROM end_time - start_time)::float8 AS d FROM pl_sync_jobs"
        f"  WHERE environment = %s AND status = 'completed' AND start_time IS NOT NULL AND end_time IS NOT NULL)"
        f" SELECT count(*), coalesce(sum(d), 0), {buckets} FROM j", (environment,))).fetchone()
    last = (await (await aconn.execute(
        "SELECT coalesce(extract(epoch FROM max(end_time)), 0)::float8 FROM pl_sync_jobs"
        " WHERE environment = %s AND status = 'completed'", (environment,))).fetchone())[0]
    return MetricsView(by_status, Durations(int(row[0]), float(row[1]), tuple(int(v) for v in row[2:])), float(last))
