"""The job runtime in-process: rows, single flight, failures, abandoned jobs, history and statistics."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from tests.support.databases import SymbolsLocked
from tests.support.markets import load_market
from tests.support.waiting import wait_until
from tickstockpl.db import locks
from tickstockpl.errors import ConfigError, JobConflict, NotFound, ValidationFailed
from tickstockpl.jobs import reports, runtime
from tickstockpl.sync.job import STEPS


@pytest.fixture
def market(db_url, market_clock):
    return load_market(db_url)


def _job(db_url, job_id):
    with psycopg.connect(db_url) as conn:
        return runtime.get_job(conn, job_id)


def _wait_running(db_url, job_id):
    wait_until(lambda: _job(db_url, job_id).status == "running", 30, f"job {job_id} running", every=0.02)


def test_a_foreground_job_records_its_life(db_url, market):
    handle = runtime.start_job(db_url, mode="market_cap", triggered_by="cli", background=False)
    job = _job(db_url, handle.job_id)
    assert job.status == "completed" and job.mode == "market_cap" and job.triggered_by == "cli"
    assert job.created_at <= job.start_time <= job.end_time and job.duration_seconds >= 0
    assert job.progress == {"total_steps": len(STEPS), "completed_steps": len(STEPS), "current_task": "done",
                            "percent": 100.0}
    assert job.result["total_changes"] == handle.result.total_changes > 0
    assert job.error_details is None and job.as_of is None


def test_a_second_job_is_refused_with_the_live_id_while_one_runs(db_url, market):
    with SymbolsLocked(db_url) as held:
        first = runtime.start_job(db_url, background=True)
        _wait_running(db_url, first.job_id)
        with pytest.raises(JobConflict) as refused:
            runtime.start_job(db_url, mode="themes", background=True)
        assert refused.value.live_id == first.job_id
        held.release()
        assert first.wait(60)
    assert first.error is None and _job(db_url, first.job_id).status == "completed"
    again = runtime.start_job(db_url, mode="ipos", background=False)  # the lock is free again
    assert _job(db_url, again.job_id).status == "completed"


def test_simultaneous_claims_yield_one_job(db_url, market):
    outcomes: list[object] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        try:
            outcomes.append(runtime.start_job(db_url, background=True))
        except JobConflict as err:
            outcomes.append(err)

    with SymbolsLocked(db_url) as held:
        threads = [threading.Thread(target=claim) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        held.release()
    handles = [o for o in outcomes if isinstance(o, runtime.JobHandle)]
    conflicts = [o for o in outcomes if isinstance(o, JobConflict)]
    assert len(handles) == 1 and len(conflicts) == 7
    assert {c.live_id for c in conflicts} == {handles[0].job_id}
    assert handles[0].wait(60)


def test_a_refused_sync_is_failed_with_its_reason(db_url, market):
    with psycopg.connect(db_url) as conn:
        conn.execute("DELETE FROM ohlcv_daily WHERE date = %s", (market[0],))
    with pytest.raises(ValidationFailed):
        runtime.start_job(db_url, background=False)
    with psycopg.connect(db_url) as conn:
        (job_id,) = conn.execute("SELECT job_id::text FROM pl_sync_jobs").fetchone()
    job = _job(db_url, job_id)
    assert job.status == "failed" and "no bars" in job.error_details and job.end_time is not None


def test_bad_requests_never_create_a_row(db_url):
    with pytest.raises(ConfigError):
        runtime.start_job(db_url, mode="everything")
    with pytest.raises(ValueError):
        runtime.start_job(db_url, triggered_by="someone")
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM pl_sync_jobs").fetchone()[0] == 0
        with pytest.raises(NotFound):
            runtime.get_job(conn, str(uuid.uuid4()))
        with pytest.raises(NotFound):
            runtime.get_job(conn, "nope")


def _orphan(db_url) -> str:
    """A live row whose owner is gone (nobody holds the advisory lock)."""
    job_id = str(uuid.uuid4())
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO pl_sync_jobs (job_id, environment, mode, triggered_by, status, start_time)"
            " VALUES (%s, 'DEFAULT', 'full', 'api', 'running', now())", (job_id,))
    return job_id


def test_recover_abandoned_fails_orphans_and_announces_it(db_url):
    job_id = _orphan(db_url)
    assert runtime.recover_abandoned(db_url, "DEFAULT") == [job_id]
    job = _job(db_url, job_id)
    assert job.status == "failed" and job.error_details.startswith("abandoned")
    with psycopg.connect(db_url) as conn:
        channels = [c for (c,) in conn.execute("SELECT channel FROM pl_event_outbox ORDER BY id")]
    assert channels == ["tickstock:cache:sync_complete", "tickstock:cache:completed"]
    assert runtime.recover_abandoned(db_url, "DEFAULT") == []


def test_recover_abandoned_leaves_a_job_whose_owner_is_alive(db_url):
    job_id = _orphan(db_url)
    with psycopg.connect(db_url, autocommit=True) as owner:
        owner.execute("SELECT pg_advisory_lock(%s)", (locks.CACHE_SYNC,))
        assert runtime.recover_abandoned(db_url, "DEFAULT") == []
        assert _job(db_url, job_id).status == "running"
    assert runtime.recover_abandoned(db_url, "DEFAULT") == [job_id]  # owner gone: lock free


def test_a_trigger_fails_an_orphan_and_starts(db_url, market):
    job_id = _orphan(db_url)
    handle = runtime.start_job(db_url, background=False)
    assert _job(db_url, job_id).status == "failed"
    assert _job(db_url, handle.job_id).status == "completed"


async def test_history_and_statistics(db_url, market):  # the API's readers: async, on its connection type
    ids = [runtime.start_job(db_url, mode=m, background=False).job_id for m in ("ipos", "themes", "ipos")]
    orphan = _orphan(db_url)
    runtime.recover_abandoned(db_url, "DEFAULT")
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        page, total = await reports.job_history(conn, "DEFAULT", limit=2, offset=1)
        assert total == 4 and [j.job_id for j in page] == [ids[2], ids[1]]
        assert await reports.job_history(conn, "OTHER", limit=10, offset=0) == ([], 0)
        stats = await reports.job_stats(conn, "DEFAULT")
    assert (stats.total, stats.successful, stats.failed) == (4, 3, 1)
    assert stats.avg_duration_seconds is not None and stats.avg_duration_seconds >= 0
    assert orphan not in ids


def test_a_job_that_loses_its_connection_records_why(db_url, market):
    with SymbolsLocked(db_url) as held:
        handle = runtime.start_job(db_url, background=True)
        _wait_running(db_url, handle.job_id)
        assert runtime.recover_abandoned(db_url, "DEFAULT") == []  # its thread is alive: not abandoned
        with psycopg.connect(db_url, autocommit=True) as admin:  # the job's session dies (as in a restart)
            # "running" is set before the job reaches the locked table: wait until it waits on the lock
            waiting = ("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                       " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
            wait_until(lambda: admin.execute(waiting).fetchall(), 30, "the job waiting on the locked symbols table")
            admin.execute(f"SELECT pg_terminate_backend(pid) FROM ({waiting}) w")
        assert handle.wait(60)
        held.release()
    job = _job(db_url, handle.job_id)
    assert job.status == "failed" and job.error_details.startswith("lost the connection to PostgreSQL"), job
    with psycopg.connect(db_url) as conn:
        done = conn.execute("SELECT count(*) FROM pl_event_outbox WHERE channel = 'tickstock:cache:sync_complete'"
                            " AND message LIKE %s", (f"%{handle.job_id}%",)).fetchone()[0]
    assert done == 1
    assert runtime.start_job(db_url, mode="ipos", background=False).result is not None  # the next one runs


def test_a_sync_runs_without_jit_and_with_the_connection_check_even_where_the_server_defaults_to_jit(
        db_url, market, monkeypatch):
    """The job's session (single_flight.job_session): the server's own defaults are JIT on and no check; the
    suite's connections run with JIT off (PGOPTIONS), so the sync's connection here asks for JIT on first."""
    from tickstockpl.jobs import single_flight

    monkeypatch.setenv("PGOPTIONS", "-c jit=on")
    seen = {}
    job_session = single_flight.job_session

    def spy(conn):
        before = conn.execute("SELECT current_setting('jit'), current_setting('client_connection_check_interval')")
        seen["before"] = before.fetchone()
        job_session(conn)
        seen["after"] = conn.execute(
            "SELECT current_setting('jit'), current_setting('client_connection_check_interval')").fetchone()

    monkeypatch.setattr(single_flight, "job_session", spy)
    handle = runtime.start_job(db_url, triggered_by="cli", background=False)
    assert handle.result.total_changes > 0
    assert seen["before"] == ("on", "0") and seen["after"] == ("off", "1s")
