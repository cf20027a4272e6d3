"""Redis stopped for a while under a running server, then started again: nothing is lost.

While Redis is down: /health says `degraded` (200), two cache syncs and a pipeline run (flat-file
import, then cache sync) complete, and the relay keeps retrying. When Redis is back, a subscriber
(plain SUBSCRIBE on every channel of the catalog, as AppV2 does) receives every event of the outbox
exactly once and in outbox order; each capped stream holds the same events in the same order.
"""

from __future__ import annotations

import json

import httpx
import psycopg

from tests.support.events import Subscriber
from tests.support.markets import load_market
from tests.support.waiting import wait_status
from tests.live_server import LiveServer
from tests.reliability.support import move_newest_session_to_a_flat_file, outbox
from tests.support.waiting import wait_pipeline_idle, wait_until
from tickstockpl.db import locks
from tickstockpl.events import catalog
from tickstockpl.events.outbox import enqueue

CHANNELS = tuple(sorted({v for k, v in vars(catalog).items()
                         if isinstance(v, str) and k.isupper() and v.startswith("tickstock:") and k != "STREAM_PREFIX"}))


def _max_attempts(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT coalesce(max(attempts), 0) FROM pl_event_outbox").fetchone()[0]


def _undelivered(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT count(*) FROM pl_event_outbox WHERE delivered_at IS NULL").fetchone()[0]


def test_events_written_during_a_redis_outage_are_all_delivered_once_in_order(db_url, redis_process, tmp_path):
    load_market(db_url)
    session = move_newest_session_to_a_flat_file(db_url, tmp_path)
    env = {"TICKSTOCKPL_FLATFILES_DIR": str(tmp_path)}
    with LiveServer(db_url, redis_url=redis_process.url, env=env) as server, server.client() as c:
        assert httpx.get(server.url + "/health", timeout=10).json()["status"] == "healthy"
        redis_process.stop()
        health = httpx.get(server.url + "/health", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "degraded"

        first = c.post("/api/processing/cache-sync/trigger", json={"mode": "full", "force": True})
        assert first.status_code == 202, first.text
        assert wait_status(c, first.json()["job_id"], ("completed", "failed"))["status"] == "completed"
        run = c.post("/api/processing/trigger-manual", json={"phases": ["all"]})
        assert run.status_code == 202, run.text
        assert run.json()["session_date"] == session.isoformat()
        wait_pipeline_idle(c)
        (history,) = [r for r in c.get("/api/processing/history").json()["runs"] if r["run_id"] == run.json()["run_id"]]
        assert history["status"] == "success", history
        second = c.post("/api/processing/cache-sync/trigger", json={"mode": "market_cap"})
        assert second.status_code == 202, second.text
        assert wait_status(c, second.json()["job_id"], ("completed", "failed"))["status"] == "completed"

        wait_until(lambda: _max_attempts(db_url) >= 2, 60, "the relay retrying while Redis is down")
        degraded = httpx.get(server.url + "/health", timeout=10).json()
        assert degraded["status"] == "degraded" and degraded["outbox_pending"] == _undelivered(db_url) > 0
        expected = outbox(db_url)
        names = {e for _i, _c, e, _b in expected}
        assert {catalog.EV_CACHE_SYNC_COMPLETED, catalog.EV_UNIVERSE_UPDATED, catalog.EV_DAILY_COMPLETED,
                catalog.EV_IMPORT_COMPLETED} <= names

        with psycopg.connect(db_url, autocommit=True) as gate:  # hold the relay until the subscriber listens
            gate.execute("SELECT pg_advisory_lock(%s)", (locks.OUTBOX_RELAY,))
            redis_process.start()
            subscriber = Subscriber(redis_process.url, CHANNELS)
            gate.execute("SELECT pg_advisory_unlock(%s)", (locks.OUTBOX_RELAY,))
        try:
            subscriber.wait_for(lambda m: len(m) >= len(expected), timeout=60)
            # A sentinel committed last: the relay publishes in id order, so once it arrives anything
            # published twice (a re-sent batch) would have arrived before it.
            with psycopg.connect(db_url) as conn:
                enqueue(conn, [catalog.envelope(catalog.MONITORING, "sentinel", {"n": 1}, "tests")])
            subscriber.wait_for(lambda m: any(b["event"] == "sentinel" for _c, b in m), timeout=60)
            wait_until(lambda: _undelivered(db_url) == 0, 30, "every outbox row marked delivered")
            received = [(ch, json.dumps(body, separators=(",", ":"))) for ch, body in subscriber.messages
                        if body["event"] != "sentinel"]
        finally:
            subscriber.close()
        stored = [(row[1], json.dumps(row[3], separators=(",", ":"))) for row in expected]
        print(f"\nevents written during the outage: {len(stored)}; received after it: {len(received)}")
        assert len(received) == len(stored)
        assert received == stored  # every event, once, in order

        import redis

        client = redis.Redis.from_url(redis_process.url)
        try:
            for stream in sorted({catalog.stream_for(ch) for ch, _m in stored}):
                entries = [int(f[b"outbox_id"]) for _id, f in client.xrange(stream)]
                wanted = [row[0] for row in expected if catalog.stream_for(row[1]) == stream]
                entries = [i for i in entries if i <= expected[-1][0]]  # the sentinel left out
                assert entries == wanted, stream
        finally:
            client.close()
        assert httpx.get(server.url + "/health", timeout=10).json()["status"] == "healthy"
