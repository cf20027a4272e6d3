"""`python -m bench.changelog_readers`: the change log's readers before and after migration 0011 (issue 16).

Builds one scratch database (migrated), logs JOBS first-run-sized jobs through `sync.changelog.write`
(runs: the shape since 0011), copies the same changes one per row into `old_changes` (the shape before
0011, with the table's four indexes), ANALYZEs both, then times each reader (median of REPS, alternating)
as it was (PAGE_SQL / OF_JOB_SQL of before, on `old_changes`) and as it is (`changelog.PAGE_SQL` /
`OF_JOB_SQL` on the view), and checks that both answer the same rows. Prints a Markdown table.

    python -m bench.changelog_readers [--jobs 20] [--changes 30000] [--reps 9]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
import uuid

import psycopg

from bench import harness
from bench.__main__ import DEFAULT_ADMIN
from tickstockpl.sync import changelog
from tickstockpl.sync.diff import Change

OLD_PAGE_SQL = changelog.PAGE_SQL.replace("pl_sync_change_rows", "old_changes").replace(
    "ORDER BY run_id, ordinal", "ORDER BY id")
OLD_OF_JOB_SQL = changelog.OF_JOB_SQL.replace("pl_sync_change_rows", "old_changes")
UNIVERSES = 72


def changes_of_job(job: int, count: int) -> list[Change]:
    """About a first run's shape: runs of added symbols per universe, a few universe-level changes."""
    out: list[Change] = []
    per = count // UNIVERSES
    for u in range(UNIVERSES):
        universe = f"stock_universe:u{u:02d}:k"
        out.extend(Change(universe, f"S{job}_{i}", "added", "universe created") for i in range(per))
        out.append(Change(universe, None, "reordered", "member order changed"))
    return out


def build(url: str, jobs: int, count: int) -> tuple[list[str], dt.datetime]:
    ids = []
    with psycopg.connect(url) as conn:
        for job in range(jobs):
            job_id = str(uuid.uuid4())
            with conn.cursor() as cur:
                changelog.write(cur, job_id, "DEFAULT", changes_of_job(job, count))
            conn.commit()
            ids.append(job_id)
        conn.execute("CREATE TABLE old_changes (LIKE pl_sync_changes INCLUDING ALL)")
        conn.execute("ALTER TABLE old_changes DROP COLUMN symbols")
        conn.execute("INSERT INTO old_changes (id, job_id, environment, universe, symbol, action, reason, metadata,"
                     " created_at) SELECT id, job_id, environment, universe, symbol, action, reason, metadata,"
                     " created_at FROM pl_sync_change_rows ORDER BY run_id, ordinal")
        conn.commit()
        conn.execute("ANALYZE pl_sync_changes")
        conn.execute("ANALYZE old_changes")
        conn.commit()
        last = conn.execute("SELECT max(created_at) FROM pl_sync_changes").fetchone()[0]
    return ids, last


def timed(conn, sql: str, params: dict) -> tuple[float, list]:
    started = time.perf_counter()
    rows = conn.execute(sql, params).fetchall()
    return time.perf_counter() - started, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.changelog_readers")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--changes", type=int, default=30000)
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--admin-url", default=os.environ.get("TICKSTOCKPL_BENCH_PG", DEFAULT_ADMIN))
    args = parser.parse_args(argv)
    name = f"{harness.DB_PREFIX}_changelog_readers"
    url = harness.create_database(args.admin_url, name)
    try:
        jobs, last = build(url, args.jobs, args.changes)
        base = {"env": "DEFAULT", "since": None, "universe": None, "limit": 100, "offset": 0}
        cases = {
            "page, no filter, offset 0": ({}, "page"),
            "page, no filter, offset 10,000": ({"offset": 10_000}, "page"),
            "page, no filter, offset 300,000": ({"offset": 300_000}, "page"),
            "page, since the last job": ({"since": last}, "page"),
            "page, one universe, offset 0": ({"universe": "stock_universe:u07:k"}, "page"),
            "page, one universe, offset 5,000": ({"universe": "stock_universe:u07:k", "offset": 5_000}, "page"),
            "page, one universe since the last job": ({"universe": "stock_universe:u07:k", "since": last}, "page"),
            "of_job (the demo), one job": ({"job": jobs[len(jobs) // 2]}, "job"),
        }
        lines = [f"# Change-log readers before / after 0011 ({args.jobs} jobs × {args.changes:,} changes,"
                 f" {args.reps} repetitions alternating, load average {os.getloadavg()[0]:.2f})", "",
                 "| reader | before (rows, 4 indexes) ms | after (runs, view) ms | after/before | same rows |",
                 "|---|---|---|---|---|"]
        with psycopg.connect(url, autocommit=True) as conn:
            for label, (extra, kind) in cases.items():
                params = {"job": extra["job"]} if kind == "job" else {**base, **extra}
                old_sql, new_sql = (OLD_OF_JOB_SQL, changelog.OF_JOB_SQL) if kind == "job" else (
                    OLD_PAGE_SQL, changelog.PAGE_SQL)
                before, after, same = [], [], True
                for rep in range(args.reps):
                    order = ((old_sql, before), (new_sql, after))
                    results = []
                    for sql, sink in (order if rep % 2 == 0 else order[::-1]):
                        seconds, rows = timed(conn, sql, params)
                        sink.append(seconds)
                        results.append(rows)
                    same = same and results[0] == results[1]
                b, a = statistics.median(before) * 1000, statistics.median(after) * 1000
                lines.append(f"| {label} | {b:.2f} | {a:.2f} | {a / b:.2f} | {'yes' if same else '**no**'} |")
        print("\n".join(lines))
    finally:
        harness.drop_database(args.admin_url, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
