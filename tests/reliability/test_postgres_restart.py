"""PostgreSQL stopped and started again under a running server, while idle and in the middle of a sync.

While the database is down every answer comes quickly (bounded client timeouts: a hang fails the test):
/health 503 naming the database, every /api route 503 with a JSON message. Once it is back the same
server process recovers by itself: /health 200, every route 200 from the first request on (no stale
pooled connection answers), a new sync runs, and events flow again. A sync cut off by the restart
ends `failed` with a reason, leaves cache_entries as it was, and announces its failure exactly once;
so does a pipeline run whose cache-sync phase is cut off.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from tests.support.events import Subscriber, completed
from tests.support.markets import load_market
from tests.support.waiting import wait_status
from tests.live_server import LiveServer
from tests.reliability.support import backend_waiting, checksum, job_events, outbox
from tests.support.waiting import wait_pipeline_idle, wait_until
from tickstockpl.events import catalog

TRIGGER = "/api/processing/cache-sync/trigger"
TIMEOUT = httpx.Timeout(15.0, connect=5.0)  # a request that hangs longer than this fails the test
READS = ("/api/processing/cache-sync/history", "/api/processing/cache-sync/stats", "/api/universes",
         "/api/universes/changes", "/api/universes/stock_universe/complete/all_stocks",
         "/api/processing/status", "/api/processing/history", "/api/processing/schedule")


def _health(server) -> httpx.Response:
    return httpx.get(server.url + "/health", timeout=TIMEOUT)


def _all_reads(client: httpx.Client, job_id: str) -> dict[str, int]:
    """Every read route's status code, the reads sent at once.

    Sent together, they also take several pooled connections at the same time, and a refusal while the
    database is down costs its wait (``api/deps.DOWN_WAIT_S``) once, not once per route.
    """
    paths = {path: path for path in READS} | {"status": f"/api/processing/cache-sync/status/{job_id}"}
    with ThreadPoolExecutor(len(paths)) as pool:
        return dict(zip(paths, pool.map(lambda path: client.get(path).status_code, paths.values())))


def _assert_down(server, job_id: str) -> None:
    health = _health(server)
    assert health.status_code == 503, health.text
    assert health.json()["services"]["database"] == "down" and health.json()["status"] == "unhealthy"
    with server.client(timeout=TIMEOUT) as c:
        for path, code in _all_reads(c, job_id).items():
            assert code == 503, (path, code)
        refused = c.post(TRIGGER, json={"mode": "full"})
        assert refused.status_code == 503 and refused.json()["success"] is False, refused.text
        assert "PostgreSQL" in refused.json()["message"] or "database" in refused.json()["message"]


def _assert_recovered(server, job_id: str) -> None:
    wait_until(lambda: _health(server).status_code == 200, 60, "/health 200 after the restart")
    with server.client(timeout=TIMEOUT) as c:
        for _round in range(3):  # every pooled connection is exercised: none may be a dead one
            codes = _all_reads(c, job_id)
            assert set(codes.values()) == {200}, codes


@pytest.fixture
def market(rel_db):
    return load_market(rel_db)


def test_postgres_restart_while_idle(controlled_pg, rel_db, market, redis_process):
    subscriber = Subscriber(redis_process.url, (catalog.CACHE_SYNC_COMPLETE,))
    try:
        with LiveServer(rel_db, redis_url=redis_process.url) as server, server.client(timeout=TIMEOUT) as c:
            first = c.post(TRIGGER, json={"mode": "full"}).json()["job_id"]
            assert wait_status(c, first, ("completed", "failed"))["status"] == "completed"

            controlled_pg.stop("fast")
            for _attempt in range(2):  # and it stays so
                _assert_down(server, first)
            controlled_pg.start()
            _assert_recovered(server, first)

            second = c.post(TRIGGER, json={"mode": "full"})
            assert second.status_code == 202, second.text
            assert wait_status(c, second.json()["job_id"], ("completed", "failed"))["status"] == "completed"
            subscriber.wait_for(completed(second.json()["job_id"]), timeout=60)  # the relay reconnected too
            assert _health(server).json()["status"] == "healthy"
    finally:
        subscriber.close()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_restart_during_a_sync(controlled_pg, rel_db, market, redis_process, mode):
    with LiveServer(rel_db, redis_url=redis_process.url) as server, server.client(timeout=TIMEOUT) as c:
        first = c.post(TRIGGER, json={"mode": "full"}).json()["job_id"]
        assert wait_status(c, first, ("completed", "failed"))["status"] == "completed"
        before = checksum(rel_db)

        gate = psycopg.connect(rel_db)
        gate.execute("LOCK TABLE symbols IN ACCESS EXCLUSIVE MODE")  # the sync waits in its first step
        job_id = c.post(TRIGGER, json={"mode": "full"}).json()["job_id"]
        wait_status(c, job_id, ("running",))

        controlled_pg.stop(mode)  # every session ends, the gate's and the sync's included
        gate.close()
        _assert_down(server, job_id)
        controlled_pg.start()
        _assert_recovered(server, job_id)

        ended = wait_status(c, job_id, ("failed", "completed"), timeout=60)
        assert ended["status"] == "failed" and ended["end_time"], ended
        reason = ended["error_details"]
        print(f"\n[{mode}] reason recorded for the cut-off sync: {reason}")
        assert reason and ("database" in reason.lower() or "postgresql" in reason.lower()), reason
        assert checksum(rel_db) == before
        done = [p for ch, e, p in job_events(rel_db, job_id) if ch == catalog.CACHE_SYNC_COMPLETE]
        assert len(done) == 1 and done[0]["status"] == "failed" and done[0]["error"] == reason

        again = c.post(TRIGGER, json={"mode": "full"})
        assert again.status_code == 202, again.text
        assert wait_status(c, again.json()["job_id"], ("completed", "failed"))["status"] == "completed"


def test_postgres_restart_during_a_pipeline_run(controlled_pg, rel_db, market, redis_process):
    with LiveServer(rel_db, redis_url=redis_process.url) as server, server.client(timeout=TIMEOUT) as c:
        first = c.post(TRIGGER, json={"mode": "full"}).json()["job_id"]
        assert wait_status(c, first, ("completed", "failed"))["status"] == "completed"
        with psycopg.connect(rel_db) as conn:  # something for the run's sync to change
            conn.execute("UPDATE symbols SET market_cap = market_cap / 3 WHERE symbol IN ('S000', 'S001')")
        gate = psycopg.connect(rel_db)
        gate.execute("LOCK TABLE pl_sync_changes IN SHARE MODE")  # the run's cache sync waits in its write
        run_id = c.post("/api/processing/trigger-manual", json={"phases": ["cache_sync"]}).json()["run_id"]
        wait_until(lambda: backend_waiting(rel_db, "COPY pl_sync_changes"), 60, "the run's sync inside its write")

        controlled_pg.stop("fast")
        gate.close()
        controlled_pg.start()
        _assert_recovered(server, first)

        wait_pipeline_idle(c, timeout=90)
        (run,) = [r for r in c.get("/api/processing/history").json()["runs"] if r["run_id"] == run_id]
        print(f"\nreason recorded for the cut-off run: {run['error']}")
        assert run["status"] == "failed" and "PostgreSQL" in run["error"], run
        job = c.get("/api/processing/cache-sync/history").json()["jobs"][0]
        assert job["status"] == "failed" and job["triggered_by"] == "pipeline"
        assert "PostgreSQL" in c.get(f"/api/processing/cache-sync/status/{job['job_id']}").json()["error_details"]
        ends = [body["payload"] for _i, ch, e, body in outbox(rel_db)
                if e == catalog.EV_DAILY_COMPLETED and body["payload"].get("run_id") == run_id]
        assert len(ends) == 1 and ends[0]["success"] is False and ends[0]["error"] == run["error"], ends

        again = c.post("/api/processing/trigger-manual", json={"phases": ["cache_sync"]})
        assert again.status_code == 202, again.text
        wait_pipeline_idle(c)
        (rerun,) = [r for r in c.get("/api/processing/history").json()["runs"] if r["run_id"] == again.json()["run_id"]]
        assert rerun["status"] == "success", rerun
