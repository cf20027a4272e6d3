"""503 answers say which service is unavailable, never where it is (api/app.py, api/routes/health.py).

PostgreSQL is stopped under a running server; every route, both triggers and /health answer 503 (or 401
without a key) and no body or header names the database's host, port or socket path (the driver's
message does: `connection to server on socket "/…/.s.PGSQL.5432" failed`); the server's log has the
detail. The same with Redis named in a REDIS_URL the server cannot reach for /health.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg

from tests.support.markets import load_market
from tests.live_server import LiveServer

TIMEOUT = httpx.Timeout(15.0, connect=5.0)
ROUTES = [("GET", "/api/processing/cache-sync/history"), ("GET", "/api/processing/cache-sync/stats"),
          ("GET", "/api/processing/cache-sync/status/00000000-0000-4000-8000-000000000000"),
          ("GET", "/api/universes"), ("GET", "/api/universes/changes"),
          ("GET", "/api/universes/stock_universe/complete/all_stocks"), ("GET", "/api/processing/status"),
          ("GET", "/api/processing/history"), ("GET", "/api/processing/schedule"),
          ("POST", "/api/processing/cache-sync/trigger"), ("POST", "/api/processing/trigger-manual"),
          ("POST", "/api/processing/schedule"), ("DELETE", "/api/processing/cache-sync/status/x"),
          ("GET", "/metrics")]


def _where(url: str, controlled_pg) -> list[str]:
    """What would give the database away: its socket directory, port, host."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    found = [str(controlled_pg.socket_dir), ".s.PGSQL", "127.0.0.1", "localhost"]
    if info.get("port"):
        found.append(f"port {info['port']}")
        found.append(f":{info['port']}")
    return found


def test_503_bodies_name_the_service_not_its_address(controlled_pg, rel_db):
    load_market(rel_db)
    with LiveServer(rel_db) as server, server.client(timeout=TIMEOUT) as c:
        assert c.get("/api/universes").status_code == 200
        controlled_pg.stop("fast")
        try:
            answers = [httpx.get(server.url + "/health", timeout=TIMEOUT)]

            def ask(route):
                method, path = route
                body = {"mode": "full"} if path.endswith("trigger") else {"phases": ["cache_sync"]} \
                    if path.endswith("manual") else {"enabled": True} if method == "POST" else None
                return c.request(method, path, json=body)

            # all at once: while the database is down each request waits up to api/deps.DOWN_WAIT_S for a
            # connection before its 503, so one after the other they would take that long each
            with ThreadPoolExecutor(len(ROUTES) + 1) as pool:
                anonymous = pool.submit(httpx.post, server.url + "/api/processing/cache-sync/trigger", json={},
                                        timeout=TIMEOUT)
                answers.extend(pool.map(ask, ROUTES))
                answers.append(anonymous.result())
        finally:
            controlled_pg.start()
        statuses = {(a.request.method, a.request.url.path): a.status_code for a in answers}
        assert statuses[("GET", "/health")] == 503
        assert statuses[("POST", "/api/processing/cache-sync/trigger")] in (401, 503)
        assert sum(1 for s in statuses.values() if s == 503) >= 10, statuses
        leaks = _where(rel_db, controlled_pg)
        for answer in answers:
            text = answer.text + " ".join(f"{k}: {v}" for k, v in answer.headers.items())
            assert not [w for w in leaks if w in text], (answer.request.url, answer.text)
            if answer.status_code == 503 and answer.request.url.path != "/health":
                assert answer.json() == {"success": False, "message": answer.json()["message"]}
                assert answer.json()["message"].startswith("database unavailable"), answer.text
        logs = server.logs()
        assert str(controlled_pg.socket_dir) in logs or ".s.PGSQL" in logs, logs[-2000:]  # the detail: logged


def test_the_message_of_a_503_never_carries_the_drivers_text():
    from tickstockpl.errors import ServiceUnavailable

    def unavailable_message(detail: str) -> str:  # what a 503 body says for a ServiceUnavailable with this text
        return ServiceUnavailable(detail).public_message()

    driver = ('cannot connect to PostgreSQL: connection failed: connection to server at "10.0.0.7", port 5433'
              ' failed: Connection refused')
    assert unavailable_message(driver) == "database unavailable: try again shortly"
    assert unavailable_message("cannot publish events to Redis: Error 111 connecting to 10.0.0.8:6380.") == \
        "Redis unavailable: try again shortly"
