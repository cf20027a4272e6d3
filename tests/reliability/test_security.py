"""Security: keys on every route but the probes, constant-time comparison, keys never logged or echoed,
a per-key trigger rate limit, CORS off unless configured, no start without a key. The answers come from
the app in process (tests/support/asgi.py); what is logged, from a live `serve` (its log file).

Also covered elsewhere: tests/api/test_auth.py (rotation keys, a malformed body without a key is 401,
the basic refusal to start without keys), tests/api/test_fuzz.py (schemathesis without a key: 401).
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

import httpx
import psycopg
import pytest

from tests.support.markets import load_market
from tests.support.waiting import wait_status
from tests.live_server import LiveServer, as_url
from tests.support.asgi import InProcessServer
from tickstockpl.api import auth

KEYS = ("sec-key-primary-7f3a9c", "sec-key-rotated-2b8e1d")
WRONG = "sec-key-guessed-0000000"
OPEN = {"/health", "/metrics"}  # and the OpenAPI document itself (/openapi.json, /docs, /redoc)
FILL = {"job_id": "00000000-0000-4000-8000-000000000000", "run_id": "00000000-0000-4000-8000-000000000000",
        "type": "stock_universe", "name": "complete", "key": "all_stocks", "day": "2030-12-24"}


def _routes(client) -> list[tuple[str, str]]:
    document = client.get("/openapi.json", timeout=10)
    assert document.status_code == 200
    routes = []
    for path, operations in document.json()["paths"].items():
        for method in operations:
            concrete = path
            for name, value in FILL.items():
                concrete = concrete.replace("{" + name + "}", value)
            assert "{" not in concrete, f"no value to fill in {path}"
            routes.append((method.upper(), concrete))
    return routes


def test_every_route_of_the_openapi_document_but_the_probes_needs_a_key(db_url, redis_process):
    load_market(db_url)
    with InProcessServer(db_url, redis_url=redis_process.url, api_keys=KEYS) as server:
        _every_route_needs_a_key(server.client(key=False))


def _every_route_needs_a_key(anonymous) -> None:
    routes = _routes(anonymous)
    assert {path for _m, path in routes} >= OPEN | {"/api/processing/trigger-manual", "/api/universes"}
    for method, path in routes:
        for headers in ({}, {"X-API-Key": ""}, {"X-API-Key": WRONG}, {"X-API-Key": KEYS[0].upper()},
                        {"X-API-Key": "x" + KEYS[0]}, {"x-api-key": KEYS[1][:-1]}):
            response = anonymous.request(method, path, headers=headers, json={}, timeout=15)
            if path in OPEN:
                assert response.status_code == 200, (method, path, response.status_code)
                continue
            assert response.status_code == 401, (method, path, headers, response.status_code, response.text)
            assert response.json()["success"] is False and "X-API-Key" in response.json()["message"]
        if path not in OPEN:
            accepted = anonymous.request(method, path, headers={"X-API-Key": KEYS[1]}, json={}, timeout=30)
            assert accepted.status_code != 401 and accepted.status_code < 500, (method, path, accepted.text)
    for page in ("/openapi.json", "/docs", "/redoc"):
        assert anonymous.get(page, timeout=10).status_code == 200


def test_keys_are_compared_in_constant_time_against_every_configured_key(monkeypatch):
    source = inspect.getsource(auth.matching_key)
    assert "hmac.compare_digest" in source and "==" not in source
    assert "matching_key(" in inspect.getsource(auth.key_matches)
    assert "key_matches(" in inspect.getsource(auth._check)  # the one place keys are compared
    calls = []
    real = auth.hmac.compare_digest

    def recording(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", recording)
    for given in (KEYS[0], KEYS[1], WRONG, "x"):
        calls.clear()
        auth.key_matches(given, KEYS)
        assert len(calls) == len(KEYS), given  # no early exit: every key is compared, whichever matched


@pytest.fixture
def live(db_url, redis_process):
    """A `serve` process: its log is what this test reads."""
    load_market(db_url)
    with LiveServer(db_url, redis_url=redis_process.url, api_keys=KEYS) as server:
        yield server


def test_keys_never_appear_in_logs_or_answers(live):
    server = live
    seen: list[httpx.Response] = []
    with httpx.Client(base_url=server.url, timeout=30) as c:
        routes = _routes(c)
        for key in (WRONG, KEYS[0], KEYS[1], WRONG + "\x7f"):
            headers = {"X-API-Key": key}
            for method, path in routes:
                seen.append(c.request(method, path, headers=headers, json={"mode": "full"}))
            seen.append(c.post("/api/processing/cache-sync/trigger", headers=headers, content=b"{broken"))
            seen.append(c.post("/api/processing/cache-sync/trigger", headers=headers, json={"mode": "nope"}))
            seen.append(c.post("/api/processing/cache-sync/trigger", headers=headers,
                               content=b"x" * 70_000, params={"api_key": "query-" + key}))
            seen.append(c.get("/api/universes/changes", headers=headers, params={"universe": key}))
    with server.client() as keyed:  # let the started jobs log what they log, too
        for job in {r.json().get("job_id") for r in seen if r.status_code == 202} - {None}:
            wait_status(keyed, job, ("completed", "failed"))
    logs = server.logs()
    assert {r.status_code for r in seen} >= {200, 401, 404, 413, 422}
    for secret in (*KEYS, WRONG):
        assert secret not in logs, f"{secret} logged"
        for response in seen:
            assert secret not in response.text, (response.request.url, response.text[:200])
            assert all(secret not in v for v in response.headers.values())


def test_triggers_are_rate_limited_per_key_on_both_trigger_endpoints(db_url, redis_process):
    load_market(db_url)
    env = {"TICKSTOCKPL_TRIGGER_RATE_PER_MIN": "3"}
    with InProcessServer(db_url, redis_url=redis_process.url, api_keys=KEYS, env=env) as server:
        first, second = ({"X-API-Key": k} for k in KEYS)
        with server.client(key=False) as c:
            codes = [c.post("/api/processing/cache-sync/trigger", headers=first, json={"mode": "ipos"}).status_code
                     for _ in range(3)]
            assert set(codes) <= {202, 409} and 202 in codes
            for path, body in (("/api/processing/cache-sync/trigger", {"mode": "ipos"}),
                               ("/api/processing/trigger-manual", {"phases": ["cache_sync"]})):
                limited = c.post(path, headers=first, json=body)
                assert limited.status_code == 429, (path, limited.text)
                assert limited.json()["success"] is False and "per minute" in limited.json()["message"]
                assert limited.headers["Retry-After"] == "60"
            # another key has its own budget, on both endpoints
            other = c.post("/api/processing/trigger-manual", headers=second, json={"phases": ["cache_sync"]})
            assert other.status_code in (202, 409), other.text
            assert c.post("/api/processing/cache-sync/trigger", headers=second,
                          json={"mode": "ipos"}).status_code in (202, 409)
            # reading is never limited
            assert {c.get("/api/processing/cache-sync/history", headers=first).status_code for _ in range(20)} == {200}
            assert c.get("/api/processing/status", headers=first).status_code == 200


@pytest.mark.parametrize("origins", [None, "https://app.example,https://admin.example"])
def test_cors_is_off_unless_configured(db_url, origins):
    env = {"TICKSTOCKPL_CORS_ORIGINS": origins} if origins else {}
    with InProcessServer(db_url, api_keys=KEYS, env=env) as server, server.client(key=False) as c:
        for origin in ("https://app.example", "https://evil.example"):
            simple = c.get("/api/universes", headers={"Origin": origin, "X-API-Key": KEYS[0]})
            preflight = c.options("/api/processing/cache-sync/trigger", headers={
                "Origin": origin, "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-api-key,content-type"})
            allowed = origins is not None and origin in origins
            assert simple.status_code == 200
            if allowed:
                assert simple.headers.get("access-control-allow-origin") == origin
                assert preflight.status_code == 200
                assert preflight.headers.get("access-control-allow-origin") == origin
                assert "x-api-key" in preflight.headers.get("access-control-allow-headers", "").lower()
            else:
                assert "access-control-allow-origin" not in simple.headers
                assert "access-control-allow-origin" not in preflight.headers
                assert preflight.status_code in (400, 401, 405)


@pytest.mark.parametrize("keys, demo", [(None, None), (" , ", None), ("short", None), ("", "false")])
def test_serve_refuses_to_start_without_a_usable_key(db_url, keys, demo):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKSTOCKPL_", "DATABASE_", "REDIS_"))}
    env.update({"DATABASE_URL": as_url(db_url), "TICKSTOCKPL_SCHEDULER": "false", "TICKSTOCKPL_PORT": "1"})
    if keys is not None:
        env["TICKSTOCKPL_API_KEYS"] = keys
    if demo is not None:
        env["TICKSTOCKPL_DEMO"] = demo
    done = subprocess.run([sys.executable, "-m", "tickstockpl.cli", "serve"], env=env, capture_output=True,
                          text=True, timeout=60, cwd="/")
    assert done.returncode != 0 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "TICKSTOCKPL_API_KEYS" in lines[0]
    with psycopg.connect(db_url) as conn:  # it did not get as far as touching the database
        assert conn.execute("SELECT count(*) FROM pl_sync_jobs").fetchone()[0] == 0
