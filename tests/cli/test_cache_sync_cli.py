"""`tickstockpl cache-sync` and `tickstockpl db upgrade` as a user runs them: a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg


def run(args, url, **env):
    full_env = {**os.environ, "DATABASE_URL": url, **env}
    full_env.pop("DATABASE_URI", None)
    return subprocess.run([sys.executable, "-m", "tickstockpl.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=120)


def test_json_result_then_a_no_change_rerun(market_db_url):
    first = run(["cache-sync", "--as-of", "2026-11-27", "--json"], market_db_url)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert result["mode"] == "full" and result["total_changes"] > 0 and result["job_id"]
    second = json.loads(run(["cache-sync", "--as-of", "2026-11-27", "--json"], market_db_url).stdout)
    assert second["total_changes"] == 0 and second["rows_written"] == 0
    with psycopg.connect(market_db_url) as conn:
        assert [r[0] for r in conn.execute("SELECT triggered_by FROM pl_sync_jobs")] == ["cli", "cli"]


def test_dry_run_prints_the_plan_and_writes_nothing(market_db_url):
    out = run(["cache-sync", "--as-of", "2026-11-27", "--dry-run"], market_db_url)
    assert out.returncode == 0, out.stderr
    assert "would change" in out.stdout and "stock_universe:market_cap:mega_cap" in out.stdout and "+" in out.stdout
    with psycopg.connect(market_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM cache_entries").fetchone()[0] == 0


def test_failures_are_one_line_with_a_non_zero_exit(market_db_url):
    bad_mode = run(["cache-sync", "--mode", "everything"], market_db_url)
    assert bad_mode.returncode == 2 and bad_mode.stderr.strip().splitlines() == [
        "error: --mode must be one of full, market_cap, themes, ipos; got 'everything'"]
    bad_date = run(["cache-sync", "--as-of", "27/11/2026"], market_db_url)
    assert bad_date.returncode == 2 and "YYYY-MM-DD" in bad_date.stderr
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM ohlcv_daily WHERE date = '2026-11-27'")
    refused = run(["cache-sync", "--as-of", "2026-11-27"], market_db_url)
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith("error: pre-sync validation failed: ohlcv_daily has no bars")
    unreachable = run(["cache-sync"], "postgresql://postgres@127.0.0.1:1/none")
    assert unreachable.returncode == 3 and unreachable.stderr.startswith("error: cannot connect to PostgreSQL")
    missing = subprocess.run([sys.executable, "-m", "tickstockpl.cli", "cache-sync"], capture_output=True, text=True,
                             env={k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATABASE_URI")},
                             cwd="/", timeout=60)
    assert missing.returncode == 2 and "DATABASE_URL is not set" in missing.stderr


def test_db_upgrade_is_idempotent(db_url):
    out = run(["db", "upgrade"], db_url)
    assert out.returncode == 0 and out.stdout.strip() == "schema is up to date"
