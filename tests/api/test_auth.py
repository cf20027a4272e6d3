"""X-API-Key: required on /api, several keys valid (rotation), 401 JSON without the key, open probes.

The answers come from the app in process (`shared_api`, tests/support/asgi.py); what the server logs needs
the process (`live`)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.api.conftest import KEYS
from tests.live_server import as_url
from tickstockpl.api.auth import key_matches

PROTECTED = [
    ("POST", "/api/processing/cache-sync/trigger"),
    ("GET", "/api/processing/cache-sync/status/00000000-0000-4000-8000-000000000000"),
    ("GET", "/api/processing/cache-sync/history"),
    ("GET", "/api/processing/cache-sync/stats"),
    ("GET", "/api/universes"),
    ("GET", "/api/universes/changes"),
    ("GET", "/api/universes/stock_universe/complete/all_stocks"),
]


def test_every_api_route_answers_401_without_a_valid_key(anonymous):
    wrong = "wrong-key-but-long-enough-xyz"
    for method, path in PROTECTED:
        for headers in ({}, {"X-API-Key": ""}, {"X-API-Key": wrong}, {"X-API-Key": KEYS[0][:-1]}):
            response = anonymous.request(method, path, headers=headers, json={"mode": "full"})
            assert response.status_code == 401, (method, path, headers, response.text)
            body = response.json()
            assert body["success"] is False and "X-API-Key" in body["message"]
            assert wrong not in response.text and KEYS[0] not in response.text


def test_both_rotation_keys_are_accepted(anonymous):
    for key in KEYS:
        response = anonymous.get("/api/processing/cache-sync/history", headers={"X-API-Key": key})
        assert response.status_code == 200, response.text


def test_probes_and_the_openapi_document_need_no_key(anonymous):
    assert anonymous.get("/health").status_code == 200
    assert anonymous.get("/metrics").status_code == 200
    doc = anonymous.get("/openapi.json")
    assert doc.status_code == 200
    assert doc.json()["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"


def test_unknown_routes_and_methods_answer_json(anonymous):
    missing = anonymous.get("/nope")
    assert missing.status_code == 404 and missing.json() == {"success": False, "message": "Not Found"}
    wrong = anonymous.delete("/health")
    assert wrong.status_code == 405 and wrong.json()["success"] is False


def test_keys_are_never_logged(live):
    import httpx

    httpx.get(live.url + "/api/universes", headers={"X-API-Key": KEYS[1]})
    httpx.get(live.url + "/api/universes", headers={"X-API-Key": "attempted-guess-123456"})
    logs = live.logs()
    assert KEYS[0] not in logs and KEYS[1] not in logs and "attempted-guess" not in logs


@pytest.mark.parametrize("given, expected", [
    (KEYS[0], True), (KEYS[1], True), (KEYS[0] + "x", False), ("", False), (None, False), ("é" * 20, False),
])
def test_key_matches_compares_against_every_key(given, expected):
    assert key_matches(given, KEYS) is expected
    assert key_matches(given, ()) is False


def test_serve_refuses_to_start_without_keys_outside_the_demo(db_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKSTOCKPL_", "DATABASE_", "REDIS_"))}
    env.update({"DATABASE_URL": as_url(db_url), "TICKSTOCKPL_SCHEDULER": "false", "TICKSTOCKPL_PORT": "1"})
    done = subprocess.run([sys.executable, "-m", "tickstockpl.cli", "serve"], env=env, capture_output=True,
                          text=True, timeout=60, cwd="/")
    assert done.returncode == 2
    assert "TICKSTOCKPL_API_KEYS" in done.stderr


def test_a_malformed_body_without_a_key_is_401_not_422(anonymous):
    for raw in (b"{not json", b"\t\x81\x15", b"[]"):
        response = anonymous.post("/api/processing/cache-sync/trigger", content=raw,
                              headers={"Content-Type": "application/json"})
        assert response.status_code == 401, response.text
