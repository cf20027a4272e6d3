"""One live sync per environment, not one for the whole database (jobs/runtime.py, db/locks.py).

A DEFAULT sync held live (its progress callback waits) does not delay a sync of environment OTHER,
which runs to the end meanwhile; a second trigger in either environment is refused naming that
environment's live job, in-process and over HTTP (409 with `job_id`); the lock of DEFAULT keeps the id
of earlier versions; a lock held by a session that runs no job is refused naming that session.
"""

from __future__ import annotations

import threading

import psycopg
import pytest

from tests.support.markets import load_market
from tests.support.waiting import wait_status
from tests.live_server import LiveServer
from tickstockpl.db import locks
from tickstockpl.errors import JobConflict
from tickstockpl.jobs.runtime import get_job, live_job, start_job


@pytest.fixture
def market(db_url, market_clock):
    load_market(db_url)
    return db_url


class HeldSync:
    """A DEFAULT sync started in the background and held at its first progress step until `release()`."""

    def __init__(self, url: str, environment: str = "DEFAULT"):
        self.reached, self.go = threading.Event(), threading.Event()

        def hold(completed: int, total: int, task: str) -> None:
            self.reached.set()
            assert self.go.wait(60), "never released"

        self.handle = start_job(url, environment=environment, triggered_by="cli", on_progress=hold)
        assert self.reached.wait(30), "the held sync never started"

    def release(self) -> None:
        self.go.set()
        assert self.handle.wait(60)


def test_a_sync_in_another_environment_does_not_wait_behind_default(market):
    held = HeldSync(market)
    try:
        other = start_job(market, environment="OTHER", triggered_by="cli", background=False)
        with psycopg.connect(market) as conn:  # OTHER ran to its end while DEFAULT's job is still live
            assert get_job(conn, other.job_id).status == "completed"
            assert get_job(conn, held.handle.job_id).status == "running"
            assert live_job(conn, "DEFAULT").job_id == held.handle.job_id
            rows = dict(conn.execute("SELECT environment, count(*) FROM cache_entries GROUP BY 1").fetchall())
        assert rows.get("OTHER", 0) > 0 and "DEFAULT" not in rows
        with pytest.raises(JobConflict) as refused:  # DEFAULT itself is still single-flight
            start_job(market, environment="DEFAULT", triggered_by="cli")
        assert refused.value.live_id == held.handle.job_id
        assert held.handle.job_id in str(refused.value)
    finally:
        held.release()
    with psycopg.connect(market) as conn:
        assert get_job(conn, held.handle.job_id).status == "completed"


def test_the_lock_ids(market):
    assert locks.cache_sync("DEFAULT") == locks.CACHE_SYNC  # what earlier versions hold: still exclusive
    ids = {locks.cache_sync(env) for env in ("DEFAULT", "OTHER", "TEST", "dev", "PROD")}
    assert len(ids) == 5 and all(0 < i < 2 ** 63 for i in ids)
    assert locks.cache_sync("OTHER") == locks.cache_sync("OTHER")  # stable across processes


def test_a_lock_held_by_a_session_without_a_job_is_refused_naming_that_session(market):
    with psycopg.connect(market, autocommit=True) as holder:
        holder.execute("SET application_name = 'somebody-else'")
        holder.execute("SELECT pg_advisory_lock(%s)", (locks.cache_sync("OTHER"),))
        pid = holder.execute("SELECT pg_backend_pid()").fetchone()[0]
        with pytest.raises(JobConflict) as refused:
            start_job(market, environment="OTHER", triggered_by="cli")
        assert refused.value.live_id is None
        assert f"backend {pid}, application somebody-else" in str(refused.value)
        start_job(market, environment="DEFAULT", triggered_by="cli", background=False)  # unaffected


def test_over_http_each_environment_has_its_own_live_job_and_409_names_it(market):
    a = LiveServer(market)
    b = LiveServer(market, env={"TICKSTOCKPL_ENVIRONMENT": "OTHER"})
    with a, b, a.client() as ca, b.client() as cb:
        # hold every sync at its write: the test owns a SHARE lock on the change log
        gate = psycopg.connect(market)
        gate.execute("LOCK TABLE pl_sync_changes IN SHARE MODE")
        try:
            first_a = ca.post("/api/processing/cache-sync/trigger", json={"mode": "full"})
            first_b = cb.post("/api/processing/cache-sync/trigger", json={"mode": "full"})
            assert first_a.status_code == 202 and first_b.status_code == 202, (first_a.text, first_b.text)
            job_a, job_b = first_a.json()["job_id"], first_b.json()["job_id"]
            for client, mine in ((ca, job_a), (cb, job_b)):
                again = client.post("/api/processing/cache-sync/trigger", json={"mode": "full"})
                assert again.status_code == 409, again.text
                assert again.json()["job_id"] == mine and mine in again.json()["message"]
        finally:
            gate.rollback()
            gate.close()
        assert wait_status(ca, job_a, ("completed", "failed"))["status"] == "completed"
        assert wait_status(cb, job_b, ("completed", "failed"))["status"] == "completed"
