"""PostgreSQL restarted while `tickstockpl cache-sync` runs: one line on stderr, exit code 3 (the
database was unavailable), the job recorded as failed with the reason, cache_entries as before.

The sync is held where the restart lands — reading the market (the test holds `symbols` locked),
waiting on the rows it sent ahead of its plan in pipeline mode (`cache_entries` locked), waiting to start its
change-log COPY (`pl_sync_changes` locked), or in the middle of streaming that COPY
(a test trigger makes each row slow, so the client is still sending rows) — then the server is stopped
(`pg_ctl stop -m fast` or `-m immediate`) and started again.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import psycopg
import pytest

from tests.support.markets import load_market
from tests.live_server import as_url
from tests.reliability.support import backend_waiting, checksum
from tests.support.waiting import wait_until


HOLDS = {  # where the sync is held when the server stops: (lock the test holds, the statement that waits)
    "read": ("LOCK TABLE symbols IN ACCESS EXCLUSIVE MODE", "\nWITH params AS"),
    "write": ("LOCK TABLE pl_sync_changes IN SHARE MODE", "COPY pl_sync_changes"),
    # the rows sent ahead of the plan (sync/job._send_ahead): the pipeline's first upsert waits, the client
    # builds the rule universes and then waits for the pipeline's results
    "ahead": ("LOCK TABLE cache_entries IN SHARE MODE", "WITH u AS"),
    "copy": (None, "COPY pl_sync_changes"),
}
SLOW_ROWS = ("CREATE FUNCTION test_slow_row() RETURNS trigger LANGUAGE plpgsql AS"
             " $$ BEGIN PERFORM pg_sleep(0.005); RETURN NEW; END $$;"
             " CREATE TRIGGER test_slow_row BEFORE INSERT ON pl_sync_changes FOR EACH ROW EXECUTE FUNCTION test_slow_row()")


def _copying(url: str) -> bool:
    """The sync's COPY is running (its rows being inserted, slowly), not waiting for a lock."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active'"
            " AND query LIKE 'COPY pl_sync_changes%%' AND wait_event = 'PgSleep'").fetchone()[0] > 0


@pytest.mark.parametrize("mode", ["fast", "immediate"])
@pytest.mark.parametrize("hold", sorted(HOLDS))
def test_a_database_restart_during_cache_sync_is_one_line_and_exit_3(controlled_pg, rel_db, mode, hold):
    if hold == "copy":  # enough change rows that the client is still sending them when the server stops
        from tickstockpl.market.sample import generate, write

        with psycopg.connect(rel_db) as conn:
            write(conn, generate(stocks=6000, etfs=1000, sessions=2, end=dt.date(2026, 11, 27), seed=5))
            conn.execute(SLOW_ROWS)
    else:
        load_market(rel_db)
    before = checksum(rel_db)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_",))}
    env["DATABASE_URL"] = as_url(rel_db)
    lock, waiting = HOLDS[hold]
    gate = psycopg.connect(rel_db)
    if lock:
        gate.execute(lock)
    proc = subprocess.Popen([sys.executable, "-m", "tickstockpl.cli", "cache-sync"], env=env, cwd="/",
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        held = (lambda: _copying(rel_db)) if hold == "copy" else (lambda: backend_waiting(rel_db, waiting))
        wait_until(held, 120, f"the sync held at its {hold}")
        controlled_pg.stop(mode)
        controlled_pg.start()
        out, err = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
        gate.close()
    assert "Traceback" not in err and "Traceback" not in out, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert proc.returncode == 3, err
    assert "PostgreSQL" in lines[0], lines[0]
    # the line names the job and the reason recorded on it
    assert lines[0].startswith("error: cache sync ") and "lost the connection to PostgreSQL" in lines[0], lines[0]
    assert checksum(rel_db) == before
    with psycopg.connect(rel_db) as conn:
        status, details = conn.execute("SELECT status, error_details FROM pl_sync_jobs").fetchone()
    # on failure, the server's log says what the CLI's attempts to record the end met
    assert status == "failed" and details.startswith("lost the connection to PostgreSQL during the sync"), \
        (status, details, (controlled_pg.pgdata / "log").read_text(errors="replace")[-4000:])


def test_every_lost_connection_is_an_outage_and_a_refused_statement_is_not():
    from tickstockpl.cli import describe

    assert describe(psycopg.InterfaceError("the connection is closed")) == \
        ("PostgreSQL is unavailable: the connection is closed", 3)
    assert describe(psycopg.errors.AdminShutdown("terminating connection due to administrator command"))[1] == 3
    assert describe(psycopg.OperationalError("sending copy data failed: server closed the connection"))[1] == 3
    assert describe(psycopg.errors.UniqueViolation("duplicate key value"))[1] == 1
