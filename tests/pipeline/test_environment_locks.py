"""One live pipeline run per environment, not one for the whole database (jobs/single_flight.py, pipeline/runs.py).

A DEFAULT run held live (its import waits) does not delay a run of environment OTHER, which runs to its
end meanwhile; a second trigger in DEFAULT is refused naming DEFAULT's live run; /health's `is_running`
answers per environment; the lock of DEFAULT keeps the id of earlier versions (locks.PIPELINE); a lock
held by a session that runs no pipeline run is refused naming that session, as for sync jobs.
"""

from __future__ import annotations

import dataclasses

import psycopg
import pytest

from tickstockpl.db import locks
from tickstockpl.errors import JobConflict
from tickstockpl.pipeline import coordinator as co
from tickstockpl.pipeline.runs import RUNS
from tests.pipeline.conftest import FRI, TUE
from tests.pipeline.test_coordinator import BlockingProvider


def test_a_run_in_another_environment_does_not_wait_behind_default(market, db_url, tmp_path):
    provider = BlockingProvider(tmp_path)
    held = co.trigger_run(market, db_url, session_date=FRI, provider=provider)
    try:
        assert provider.entered.wait(30), "the held run never started its import"
        other = co.trigger_run(dataclasses.replace(market, environment="OTHER"), db_url, session_date=TUE,
                               phases=["cache_sync"], background=False)
        assert other.status == "success", other.error
        with psycopg.connect(db_url, autocommit=True) as conn:
            assert co.get_run(conn, held.run_id)[0].status == "running"
            assert co.live_run(conn, "DEFAULT").run_id == held.run_id and co.live_run(conn, "OTHER") is None
            assert co.is_running(conn, "DEFAULT") and not co.is_running(conn, "OTHER")
            assert co.get_run(conn, other.run_id)[0].environment == "OTHER"
        with pytest.raises(JobConflict) as refused:  # DEFAULT itself is still single-flight
            co.trigger_run(market, db_url, session_date=FRI, phases=["cache_sync"], background=False)
        assert refused.value.live_id == held.run_id and held.run_id in str(refused.value)
    finally:
        provider.release.set()
        assert held.wait(60)
    assert held.status == "success", held.error


def test_the_lock_ids():
    assert RUNS.lock_key("DEFAULT") == locks.PIPELINE  # what earlier versions hold: still exclusive
    ids = {RUNS.lock_key(env) for env in ("DEFAULT", "OTHER", "TEST")}
    assert len(ids) == 3 and RUNS.lock_key("OTHER") != locks.cache_sync("OTHER")


def test_a_lock_held_by_a_session_without_a_run_is_refused_naming_that_session(market, db_url):
    with psycopg.connect(db_url, autocommit=True) as holder:
        holder.execute("SET application_name = 'somebody-else'")
        holder.execute("SELECT pg_advisory_lock(%s)", (RUNS.lock_key("OTHER"),))
        pid = holder.execute("SELECT pg_backend_pid()").fetchone()[0]
        with pytest.raises(JobConflict) as refused:
            co.trigger_run(dataclasses.replace(market, environment="OTHER"), db_url, session_date=FRI,
                           phases=["cache_sync"], background=False)
        assert refused.value.live_id is None
        assert "pipeline run lock of environment OTHER" in str(refused.value)
        assert f"backend {pid}, application somebody-else" in str(refused.value)
        with psycopg.connect(db_url) as conn:
            assert co.live_run(conn, "OTHER") is None  # nothing was written


def test_a_live_row_without_the_lock_but_running_here_is_refused_by_the_unique_index(market, db_url):
    """A runner of this process that lost its connection (and so its lock) still owns its live row: the next
    claim gets the lock, leaves that row alone (not abandoned) and its insert meets the unique index on live
    rows: refused naming the live run, nothing written, the lock let go."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        run_id = str(conn.execute(
            "INSERT INTO pl_pipeline_runs (run_id, environment, trigger_type, session_date, phases, status)"
            " VALUES (gen_random_uuid(), 'DEFAULT', 'manual', %s, '{cache_sync}', 'running') RETURNING run_id",
            (FRI,)).fetchone()[0])
    RUNS._enter(run_id)
    try:
        with pytest.raises(JobConflict) as refused:
            co.trigger_run(market, db_url, session_date=FRI, phases=["cache_sync"], background=False)
        assert refused.value.live_id == run_id and run_id in str(refused.value)
        with psycopg.connect(db_url, autocommit=True) as conn:
            assert [str(r[0]) for r in conn.execute("SELECT run_id FROM pl_pipeline_runs")] == [run_id]
            assert co.get_run(conn, run_id)[0].status == "running"  # not taken for abandoned
            assert conn.execute("SELECT pg_try_advisory_lock(%s)", (RUNS.lock_key("DEFAULT"),)).fetchone()[0]
            # let go before closing: a closed session's backend frees its locks when it has exited, which can
            # come after the next session asks (recover below then saw the lock held: 1 run in about 20)
            assert conn.execute("SELECT pg_advisory_unlock(%s)", (RUNS.lock_key("DEFAULT"),)).fetchone()[0]
    finally:
        RUNS._leave(run_id)
    with psycopg.connect(db_url, autocommit=True) as conn:  # once its runner is gone, it is abandoned
        assert co.recover_abandoned_runs(conn, "DEFAULT") == [run_id]
        assert co.get_run(conn, run_id)[0].error.startswith("abandoned:")
