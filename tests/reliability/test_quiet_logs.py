"""Quiet logs while a dependency is down (issue 15): a serving process says once that PostgreSQL (or Redis)
is unavailable, naming it with the password hidden, and once that it is back; no per-attempt pool
warnings, no APScheduler INFO lines."""

from __future__ import annotations

import json

import httpx

from tests.live_server import LiveServer
from tests.support.waiting import wait_until


def _records(server) -> list[dict]:
    out = []
    for line in server.logs().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def test_the_database_going_down_and_back_is_two_lines(controlled_pg, rel_db, redis_process):
    with LiveServer(rel_db, redis_url=redis_process.url, scheduler=True) as server:
        assert httpx.get(server.url + "/health", timeout=10).status_code == 200
        controlled_pg.stop()
        wait_until(lambda: any("PostgreSQL at" in r.get("event", "") and "is unavailable" in r.get("event", "")
                               for r in _records(server)), 60, "the outage line")
        for _ in range(5):  # requests during the outage add no lines of their own
            assert httpx.get(server.url + "/health", timeout=15).status_code == 503
        controlled_pg.start()
        wait_until(lambda: any("PostgreSQL at" in r.get("event", "") and "is back after" in r.get("event", "")
                               for r in _records(server)), 60, "the line saying it is back")
        records = _records(server)
    loud = [r["event"] for r in records if r.get("level") in ("warning", "error", "critical")]
    about_pg = [r["event"] for r in records if r.get("logger") == "tickstockpl.outages"]
    assert len(about_pg) == 2, about_pg
    assert about_pg[0].startswith("PostgreSQL at ") and "is unavailable" in about_pg[0]
    assert about_pg[1].startswith("PostgreSQL at ") and "is back after" in about_pg[1]
    assert loud == about_pg  # nothing else at warning or above during the outage
    assert not [r for r in records if r.get("logger") == "psycopg.pool"]
    assert not [r for r in records if str(r.get("logger", "")).startswith("apscheduler") and r.get("level") == "info"]
