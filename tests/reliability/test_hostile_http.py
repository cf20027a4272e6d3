"""Hostile HTTP input against a live server: oversized and deeply nested bodies, wrong content types,
SQL and shell metacharacters in paths and queries. Each gets a clear JSON error (413 or 4xx), never a
5xx, never a job, run or schedule change, never a change to the stored universes.

Schemathesis over the whole OpenAPI document, with and without a key, is tests/api/test_fuzz.py.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import psycopg
import pytest

from tests.support.markets import load_market
from tests.support.waiting import wait_status
from tests.conftest import MARKET_NOW
from tests.live_server import LiveServer
from tests.reliability.support import checksum

TRIGGER = "/api/processing/cache-sync/trigger"
MANUAL = "/api/processing/trigger-manual"
SCHEDULE = "/api/processing/schedule"
BODY_ENDPOINTS = (TRIGGER, MANUAL, SCHEDULE)
LIMIT = 64 * 1024  # api.app.MAX_BODY_BYTES, as documented in docs/RELIABILITY.md


@pytest.fixture(scope="module")
def live(pg, schema_template):
    """A server on a database with the small market synced once; (server, database URL). PostgreSQL is
    never stopped here: the tests' own server (tests/support/databases.py)."""
    from tests.servers import RedisProcess
    from tests.support.databases import fresh_database

    with fresh_database(pg, schema_template, "hh") as url:
        load_market(url)
        redis = RedisProcess().start()
        server = LiveServer(url, redis_url=redis.url, env={"TICKSTOCKPL_TRIGGER_RATE_PER_MIN": "100000",
                                                           "TICKSTOCKPL_NOW": MARKET_NOW}).start()  # module scope
        with server.client() as c:
            job = c.post(TRIGGER, json={"mode": "full"}).json()["job_id"]
            assert wait_status(c, job, ("completed", "failed"))["status"] == "completed"
        yield server, url
        server.close()
        redis.close()


def _state(url: str) -> tuple:
    """Everything a hostile request must leave alone."""
    with psycopg.connect(url) as conn:
        jobs = conn.execute("SELECT count(*) FROM pl_sync_jobs").fetchone()[0]
        runs = conn.execute("SELECT count(*) FROM pl_pipeline_runs").fetchone()[0]
        schedule = conn.execute("SELECT enabled, trigger_time, timezone, market_check, universes::text"
                                " FROM pl_pipeline_schedule").fetchall()
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
    return jobs, runs, schedule, tables, checksum(url)


def _json_error(response: httpx.Response, *statuses: int) -> dict:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    body = response.json()
    assert body["success"] is False and isinstance(body["message"], str) and body["message"]
    return body


def test_oversized_bodies_are_refused_with_413_before_they_are_read(live):
    server, url = live
    before = _state(url)
    with server.client(timeout=60) as c:
        for path in BODY_ENDPOINTS:
            for size in (LIMIT + 1, 20 * 1024 * 1024):
                padded = json.dumps({"mode": "ipos", "pad": "x" * size})
                body = _json_error(c.post(path, content=padded, headers={"Content-Type": "application/json"}), 413)
                assert str(LIMIT) in body["message"]

            def chunks():  # no Content-Length: the server must count what arrives
                yield b'{"mode": "ipos", "pad": "'
                for _ in range(64):
                    yield b"y" * 16384
                yield b'"}'

            _json_error(c.post(path, content=chunks(), headers={"Content-Type": "application/json"}), 413)
        small = c.post(SCHEDULE, content=json.dumps({"universes": ["u" * 90] * 100}),
                       headers={"Content-Type": "application/json"})  # the largest legitimate body passes
        assert small.status_code == 200, small.text
        c.post(SCHEDULE, json={"universes": []})
    after = _state(url)
    assert after[:2] == before[:2] and after[3:] == before[3:]


@pytest.mark.parametrize("depth", [64, 1_000, 5_000, 30_000])
def test_deeply_nested_json_is_a_422(live, depth):
    """Nested where each endpoint reads a field (a field the model ignores may hold anything). At 30,000
    levels only the bare list fits under the body limit."""
    server, url = live
    before = _state(url)
    nested_list = "[" * depth + "]" * depth
    cases = [(path, nested_list) for path in BODY_ENDPOINTS]
    if depth <= 5_000:
        cases += [(TRIGGER, '{"mode":' * depth + '"full"' + "}" * depth),
                  (TRIGGER, '{"mode": "ipos", "force": ' + nested_list + "}"),
                  (MANUAL, '{"phases": ' + nested_list + "}"),
                  (SCHEDULE, '{"universes": ' + nested_list + "}"),
                  (SCHEDULE, '{"enabled": ' + '{"a":' * depth + "1" + "}" * depth + "}")]
    with server.client() as c:
        for path, text in cases:
            assert len(text) <= LIMIT
            _json_error(c.post(path, content=text, headers={"Content-Type": "application/json"}), 422)
    assert _state(url) == before


@pytest.mark.parametrize("content_type, raw", [
    ("text/plain", b'{"mode": "ipos"}'),
    ("application/x-www-form-urlencoded", b"mode=ipos&force=true"),
    ("multipart/form-data; boundary=zz", b'--zz\r\nContent-Disposition: form-data; name="mode"\r\n\r\nipos\r\n--zz--\r\n'),
    ("application/xml", b"<trigger><mode>ipos</mode></trigger>"),
    ("application/octet-stream", b"\x00\x01\x02\xff"),
    ("application/json", b"\xff\xfe\x00garbage"),
    ("application/json", b"mode=ipos"),
    (None, b"mode=ipos"),
])
def test_wrong_content_types_are_a_422_and_start_nothing(live, content_type, raw):
    server, url = live
    before = _state(url)
    headers = {"Content-Type": content_type} if content_type else {}
    with server.client() as c:
        for path in BODY_ENDPOINTS:
            _json_error(c.post(path, content=raw, headers=headers), 422)
    assert _state(url) == before


HOSTILE_VALUES = [
    "'; DROP TABLE pl_sync_jobs; --", "\" OR 1=1 --", "1; SELECT pg_sleep(30)", "$(rm -rf /)", "`id`",
    "a|b&c;d>e<f", "../../etc/passwd", "%00", "\\x00", "${jndi:ldap://x}", "*", "%", "_", "\u202eevil", "💥",
    "x" * 4000, "%ff%fe", "\r\nSet-Cookie: a=b",
]
PATHS = [
    "/api/processing/cache-sync/status/{v}", "/api/processing/runs/{v}", "/api/universes/{v}/{v}/{v}",
    "/api/universes/stock_universe/{v}/all_stocks", "/api/universes/stock_universe/complete/{v}",
    "/api/universes/stock_universe/complete/all_stocks?as_of={v}", "/api/universes/changes?universe={v}",
    "/api/universes/changes?since={v}", "/api/processing/cache-sync/history?limit={v}&offset={v}",
    "/api/processing/history?days={v}",
]


def test_sql_and_shell_metacharacters_in_paths_and_queries(live):
    server, url = live
    before = _state(url)
    seen = set()
    with server.client(timeout=30) as c:
        for value in HOSTILE_VALUES:
            for template in PATHS:
                response = c.get(template.replace("{v}", quote(value, safe="")))
                seen.add(response.status_code)
                assert response.status_code in (200, 400, 404, 422), (template, value, response.text[:300])
                body = response.json()
                if response.status_code != 200:
                    assert body["success"] is False and body["message"]
                elif "changes" in template:
                    assert body["changes"] == []  # a filter that matches nothing, nothing more
        sleepy = c.get("/api/universes/changes", params={"universe": "x' || pg_sleep(30) || '"})
        assert sleepy.status_code == 200 and sleepy.json()["changes"] == []
    assert _state(url) == before
    assert {404, 422} <= seen
