"""Phase 2 import benchmark: one ~12,000-ticker session, and a 250-session backfill.

    python -m bench.import_bench                      12,000 tickers, 250 sessions, 5 repetitions
    python -m bench.import_bench --tickers 4000 --sessions 50 --reps 3

Steps (only 3 and 4 are timed):
  1. the sample market (`market.sample.generate`) with about --tickers symbols trading on the last
     session, and --sessions + 1 sessions ending 2026-11-27;
  2. a fresh database `tspl_bench_import` (migrations + `symbols` only) and one flat file per session
     (`sample.write_flat_files`) in a temporary folder;
  3. backfill: `importer.import_sessions` of the first --sessions sessions into the empty `ohlcv_daily`
     (each session: read + gunzip + parse + validate + COPY + one upsert + commit);
  4. one session: the last session imported into the table that now holds the backfill; repeated --reps
     times (its rows deleted between repetitions, untimed); the median, with parse and write split out.
Targets (issue 4): one session <= 1 s, the 250-session backfill <= 60 s.

`timed_backfill` and `timed_session` (steps 3 and 4) are also what `python -m bench` runs for its
import figures (bench/extra.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from bench import harness

DEFAULT_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
DB_NAME = "tspl_bench_import"
END = dt.date(2026, 11, 27)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.import_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=12_000, help="symbols in the market (default 12,000)")
    parser.add_argument("--sessions", type=int, default=250, help="sessions to backfill (default 250)")
    parser.add_argument("--reps", type=int, default=5, help="repetitions of the one-session import (median)")
    parser.add_argument("--admin-url", default=os.environ.get("TICKSTOCKPL_BENCH_PG", DEFAULT_ADMIN))
    parser.add_argument("--batch-rows", type=int, default=None,
                        help="rows per backfill transaction (default: importer.BATCH_ROWS)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    return parser.parse_args(argv)


def _server_insert_rate(conn, rows: int = 200_000) -> int:
    """What this server does right now without any client work: INSERT ... SELECT generate_series into a
    table shaped and indexed like ohlcv_daily (the ceiling for any import on this machine at this moment)."""
    conn.execute("DROP TABLE IF EXISTS pl_bench_raw")
    conn.execute("CREATE UNLOGGED TABLE pl_bench_raw (LIKE ohlcv_daily INCLUDING DEFAULTS INCLUDING INDEXES)")
    conn.execute("ALTER TABLE pl_bench_raw SET LOGGED")
    started = time.perf_counter()
    conn.execute("INSERT INTO pl_bench_raw (symbol, date, open, high, low, close, volume)"
                 " SELECT 'T' || (i %% 12000), date '2020-01-01' + i / 12000, 10.5, 11.25, 9.75, 10.01, 12345"
                 " FROM generate_series(0, %s - 1) i", (rows,))
    seconds = time.perf_counter() - started
    conn.execute("DROP TABLE pl_bench_raw")
    return round(rows / seconds)


def timed_backfill(conn, provider, days: list[dt.date], batch_rows: int | None = None) -> dict:
    """`importer.import_sessions` of `days` on `conn` (autocommit), timed; raises when it is not complete."""
    from tickstockpl.pipeline.imports.importer import import_sessions

    options = {"batch_rows": batch_rows} if batch_rows else {}
    started = time.perf_counter()
    report = import_sessions(conn, provider, days, **options)
    seconds = time.perf_counter() - started
    if not report.complete:
        raise RuntimeError(f"backfill failed: {report.error}")
    return {"sessions": len(days), "rows": report.rows_imported, "rows_rejected": report.rows_rejected,
            "seconds": round(seconds, 2), "rows_per_s": round(report.rows_imported / seconds), "target_s": 60.0}


def timed_session(conn, provider, day: dt.date, reps: int) -> dict:
    """Session `day` imported `reps` times on `conn` (autocommit) into `ohlcv_daily` as it is: read + parse
    (`provider.fetch`), then validate + COPY + upsert + commit (`writer.write_session`), timed apart. After
    every repetition (untimed) its rows and its pl_import_sessions record are deleted again, so the table
    is left as it was. `known` (the symbols) is read once, untimed."""
    from tickstockpl.pipeline.imports.importer import known_symbols
    from tickstockpl.pipeline.imports.writer import write_session

    known = known_symbols(conn)
    one, parse_s, write_s, rows = [], [], [], 0
    for _rep in range(reps):
        try:
            started = time.perf_counter()
            data = provider.fetch(day)
            parsed = time.perf_counter()
            result = write_session(conn, data, known=known, provider=provider.name)
            done = time.perf_counter()
        finally:
            conn.execute("DELETE FROM ohlcv_daily WHERE date = %s", (day,))
            conn.execute("DELETE FROM pl_import_sessions WHERE session_date = %s", (day,))
        one.append(done - started)
        parse_s.append(parsed - started)
        write_s.append(done - parsed)
        rows = result.rows_imported
    return {"rows": rows, "unknown_tickers": result.unknown_tickers, "median_s": round(statistics.median(one), 3),
            "min_s": round(min(one), 3), "max_s": round(max(one), 3),
            "read_parse_s": round(statistics.median(parse_s), 3),
            "validate_write_commit_s": round(statistics.median(write_s), 3), "reps": reps, "target_s": 1.0}


def run(args: argparse.Namespace) -> dict:
    from tickstockpl.market import sample
    from tickstockpl.pipeline.imports.flatfiles import FlatFileProvider

    t0 = time.perf_counter()
    etfs = max(1, args.tickers // 6)
    market = sample.generate(stocks=args.tickers - etfs, etfs=etfs, sessions=args.sessions + 1, end=END, seed=11)
    generated = time.perf_counter() - t0
    url = harness.create_database(args.admin_url, DB_NAME)
    folder = Path(tempfile.mkdtemp(prefix="tspl-import-bench-"))
    try:
        with psycopg.connect(url) as conn:
            sample.write_symbols(conn, market.symbols)
        sample.write_flat_files(market, folder, market.sessions)
        prepared = time.perf_counter() - t0
        provider = FlatFileProvider(folder)
        backfill_days, last_day = list(market.sessions[:-1]), market.sessions[-1]

        with psycopg.connect(url, autocommit=True) as conn:
            backfill = timed_backfill(conn, provider, backfill_days, args.batch_rows)
            conn.execute("VACUUM ANALYZE ohlcv_daily")
            one_session = timed_session(conn, provider, last_day, args.reps)
            baseline = _server_insert_rate(conn)
    finally:
        for path in folder.glob("*.csv.gz"):
            path.unlink()
        folder.rmdir()
        if not args.keep:
            harness.drop_database(args.admin_url, DB_NAME)

    return {
        "symbols": len(market.symbols),
        "one_session": one_session,
        "backfill": backfill,
        "server_baseline_rows_per_s": baseline,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "setup_s": {"generate": round(generated, 1), "database_and_files": round(prepared - generated, 1)},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
    }


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    figures = run(args)
    if args.json:
        print(json.dumps(figures))
        return
    one, back = figures["one_session"], figures["backfill"]
    print(f"import of one session: {one['rows']:,} rows in {one['median_s']:.3f} s median of {one['reps']}"
          f" (read+parse {one['read_parse_s']:.3f} s, validate+COPY+upsert+commit {one['validate_write_commit_s']:.3f} s;"
          f" target <= {one['target_s']:.0f} s)")
    print(f"backfill: {back['sessions']} sessions, {back['rows']:,} rows in {back['seconds']:.1f} s"
          f" ({back['rows_per_s']:,} rows/s; target <= {back['target_s']:.0f} s)")
    print(f"server ceiling right now: {figures['server_baseline_rows_per_s']:,} rows/s (INSERT ... SELECT"
          f" generate_series into an ohlcv_daily-shaped table); load average {figures['load_average']}")
    print(f"setup (untimed): market {figures['setup_s']['generate']} s, database + flat files"
          f" {figures['setup_s']['database_and_files']} s; {figures['machine']['cpus']} CPUs,"
          f" Python {figures['machine']['python']}", file=sys.stderr)


if __name__ == "__main__":
    main()
