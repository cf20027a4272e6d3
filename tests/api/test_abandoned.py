"""A server killed in the middle of a sync: on restart the job is failed ("abandoned") and a new one runs."""

from __future__ import annotations

import psycopg

from tests.support.databases import SymbolsLocked
from tests.support.waiting import wait_status


def test_killed_server_leaves_an_abandoned_job_that_the_next_start_fails(live, db_url, market):
    server = live  # a process to kill or stop
    with SymbolsLocked(db_url) as held, server.client() as c:
        job_id = c.post("/api/processing/cache-sync/trigger", json={"mode": "full"}).json()["job_id"]
        wait_status(c, job_id, ("running",))
        server.kill()  # SIGKILL: no cleanup of any kind
        held.release()
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT status FROM pl_sync_jobs WHERE job_id = %s", (job_id,)).fetchone()[0] == "running"

    server.start()
    with server.client() as c:
        failed = wait_status(c, job_id, ("failed", "completed"), timeout=60)
        assert failed["status"] == "failed" and failed["error_details"].startswith("abandoned")
        assert failed["end_time"] is not None
        again = c.post("/api/processing/cache-sync/trigger", json={"mode": "full"})
        assert again.status_code == 202, again.text
        assert wait_status(c, again.json()["job_id"], ("completed", "failed"))["status"] == "completed"
    with psycopg.connect(db_url) as conn:
        events = conn.execute(
            "SELECT message FROM pl_event_outbox WHERE channel = 'tickstock:cache:sync_complete'"
            " AND message LIKE %s", (f"%{job_id}%",)).fetchall()
    assert len(events) == 1 and '"status":"failed"' in events[0][0] and "abandoned" in events[0][0]


def test_a_stopping_server_lets_the_running_sync_finish(live, db_url, market):
    server = live  # a process to kill or stop
    import signal

    with SymbolsLocked(db_url) as held, server.client() as c:
        job_id = c.post("/api/processing/cache-sync/trigger", json={"mode": "full"}).json()["job_id"]
        wait_status(c, job_id, ("running",))
        server.proc.send_signal(signal.SIGTERM)
        held.release()
    assert server.proc.wait(60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean shutdown
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT status FROM pl_sync_jobs WHERE job_id = %s", (job_id,)).fetchone()[0] == "completed"
