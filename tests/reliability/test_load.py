"""200 concurrent clients for 15 s against one `serve` process (loopback only, bounded).

    100 clients poll GET /api/processing/cache-sync/status/{latest job}
     90 clients list GET /api/universes
     10 clients POST /api/processing/cache-sync/trigger (full sync) over and over

Decision: the trigger rate limit is raised for this test (TICKSTOCKPL_TRIGGER_RATE_PER_MIN=100000), so
that every trigger reaches the single-flight check; the limiter itself is tested in test_security.
Every client is one keep-alive connection of a minimal HTTP/1.1 client (support.RawHttp), so that on a
2-core machine the figures describe the server rather than the client library.
Expected: every answer is 200, 202 or 409 (no 429, no 5xx, no transport error or timeout), every job
completes, jobs never overlap (each created after the previous one ended). p50/p99 per endpoint are
printed (run with -s) and recorded in docs/RELIABILITY.md; no time is asserted.
TICKSTOCKPL_LOAD_SECONDS shortens or lengthens the run. Decision: 15 s by default, enough for every
check above (a full sync of the small market takes well under a second, so the triggers race running
jobs many times over) and a quarter of what the whole suite may take otherwise; the figures in
docs/RELIABILITY.md come from a 60 s run (TICKSTOCKPL_LOAD_SECONDS=60).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter, defaultdict

import psycopg

from tests.support.markets import load_market
from tests.support.waiting import wait_status
from tests.live_server import LiveServer
from tests.reliability.support import RawHttp, assert_one_job_at_a_time, sync_jobs

SECONDS = float(os.environ.get("TICKSTOCKPL_LOAD_SECONDS", "15"))
POLLERS, LISTERS, TRIGGERERS = 100, 90, 10
CLIENT_TIMEOUT_S = 30.0  # bounds every request: a hang is an error, not a slow answer
ALLOWED = {200, 202, 409}


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def _load(server: LiveServer, first_job: str) -> tuple[dict, Counter, list[str], list[str]]:
    """Each client is one keep-alive connection (RawHttp: the client must cost less than the server)."""
    latencies: dict[str, list[float]] = defaultdict(list)
    codes: Counter = Counter()
    problems: list[str] = []
    accepted: list[str] = []
    latest = [first_job]
    stop_at = time.monotonic() + SECONDS
    trigger_body = json.dumps({"mode": "full"}).encode()

    async def call(conn: RawHttp, kind: str, method: str, path: str, body: bytes | None = None):
        started = time.perf_counter()
        try:
            status, payload = await conn.request(method, path, body)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as err:
            problems.append(f"{kind}: {err.__class__.__name__}: {err}")
            await conn.close()
            return None, b""
        latencies[kind].append(time.perf_counter() - started)
        codes[(kind, status)] += 1
        if status not in ALLOWED:
            problems.append(f"{kind}: {status} {payload[:200]!r}")
        return status, payload

    async def client(kind: str) -> None:
        conn = RawHttp("127.0.0.1", server.port, server.headers, timeout=CLIENT_TIMEOUT_S)
        try:
            while time.monotonic() < stop_at:
                if kind == "status":
                    await call(conn, kind, "GET", f"/api/processing/cache-sync/status/{latest[0]}")
                elif kind == "universes":
                    await call(conn, kind, "GET", "/api/universes")
                else:
                    status, payload = await call(conn, kind, "POST", "/api/processing/cache-sync/trigger",
                                                 trigger_body)
                    if status == 202:
                        latest[0] = json.loads(payload)["job_id"]
                        accepted.append(latest[0])
                    await asyncio.sleep(0.2)
        finally:
            await conn.close()

    await asyncio.gather(*([client("status") for _ in range(POLLERS)] + [client("universes") for _ in range(LISTERS)]
                           + [client("trigger") for _ in range(TRIGGERERS)]))
    return latencies, codes, problems, accepted


def test_two_hundred_clients_at_once(db_url, redis_process):
    load_market(db_url)
    env = {"TICKSTOCKPL_TRIGGER_RATE_PER_MIN": "100000"}
    with LiveServer(db_url, redis_url=redis_process.url, env=env) as server, server.client() as c:
        first = c.post("/api/processing/cache-sync/trigger", json={"mode": "full"}).json()["job_id"]
        assert wait_status(c, first, ("completed", "failed"))["status"] == "completed"

        started = time.monotonic()
        latencies, codes, problems, accepted = asyncio.run(_load(server, first))
        elapsed = time.monotonic() - started
        for job_id in accepted:
            assert wait_status(c, job_id, ("completed", "failed"), timeout=120)["status"] == "completed"
        logs = server.logs()

    total = sum(codes.values())
    print(f"\nload: {POLLERS + LISTERS + TRIGGERERS} clients, {elapsed:.1f} s, {total} responses"
          f" ({total / elapsed:.0f}/s), {len(accepted)} syncs accepted during the load")
    for kind in ("status", "universes", "trigger"):
        values = latencies[kind]
        by_code = {code: n for (k, code), n in sorted(codes.items()) if k == kind}
        print(f"  {kind:<10} n={len(values):>6}  p50={1000 * _percentile(values, 0.50):7.1f} ms"
              f"  p99={1000 * _percentile(values, 0.99):7.1f} ms  codes={by_code}")

    assert not problems, problems[:20]
    assert {code for (_k, code) in codes} <= ALLOWED
    assert codes[("trigger", 409)] > 0 and accepted, codes  # triggers really raced running jobs
    assert latencies["status"] and latencies["universes"]
    jobs = sync_jobs(db_url)
    assert {j[3] for j in jobs} == {"completed"}, jobs
    assert len(jobs) == 1 + len(accepted)
    assert_one_job_at_a_time(db_url)
    assert '"level": "error"' not in logs, logs[-3000:]
    with psycopg.connect(db_url) as conn:  # nothing stuck in the outbox either (no Redis outage here)
        assert conn.execute("SELECT count(*) FROM pl_event_outbox WHERE attempts > 0 AND delivered_at IS NULL"
                            ).fetchone()[0] == 0
