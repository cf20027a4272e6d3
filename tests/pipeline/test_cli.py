"""`tickstockpl pipeline run` as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.live_server import as_url
from tests.pipeline.conftest import FRI


def run_cli(args, db_url, flat_dir):
    env = {k: v for k, v in os.environ.items()  # the market clock (TICKSTOCKPL_NOW) is passed on
           if not k.startswith(("TICKSTOCKPL_", "DATABASE_", "MASSIVE_")) or k == "TICKSTOCKPL_NOW"}
    env.update({"DATABASE_URL": as_url(db_url), "TICKSTOCKPL_FLATFILES_DIR": str(flat_dir)})
    return subprocess.run([sys.executable, "-m", "tickstockpl.cli", "pipeline", "run", *args], env=env,
                          capture_output=True, text=True, timeout=120, cwd=str(flat_dir))


def test_pipeline_run_imports_and_syncs(market, db_url):
    done = run_cli(["--date", FRI.isoformat(), "--json"], db_url, market.flatfiles_dir)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "success" and summary["session_date"] == FRI.isoformat()
    assert [p["phase"] for p in summary["phase_results"]] == ["data_import", "cache_sync"]


def test_pipeline_run_failures_exit_non_zero_with_one_line(market, db_url):
    (market.flatfiles_dir / "2026-11-27.csv.gz").unlink()
    failed = run_cli(["--date", FRI.isoformat()], db_url, market.flatfiles_dir)
    assert failed.returncode == 1
    last_line = failed.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: pipeline run") and "no flat file" in last_line
    assert "data_import" in failed.stdout
    unavailable = run_cli(["--phases", "pattern_detection"], db_url, market.flatfiles_dir)
    assert unavailable.returncode != 0 and "not available in this installation" in unavailable.stderr
