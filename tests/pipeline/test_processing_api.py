"""The processing API (contract §2.2), with its relay publishing to Redis: the app in this process over ASGI
(tests/support/asgi.py), the same app, settings and services a `tickstockpl serve` runs; one test keeps a live
server, because what it checks is the serving process's own memory."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
import pytest
import redis

from tickstockpl import clock
from tickstockpl.api.models import ProcessingHistory, ProcessingSchedule, ProcessingStatus
from tickstockpl.db import locks
from tests.live_server import LiveServer
from tests.support.asgi import InProcessServer
from tests.pipeline.conftest import FRI
from tests.pipeline.helpers import wait_session_ended
from tests.support.waiting import wait_pipeline_idle

KEY = "pipeline-test-key-0001"


@pytest.fixture
def server(market, db_url, redis_process):
    env = {"TICKSTOCKPL_FLATFILES_DIR": str(market.flatfiles_dir)}
    with InProcessServer(db_url, redis_url=redis_process.url, api_keys=(KEY,), env=env) as app:
        yield app


@pytest.fixture
def client(server):
    with server.client() as c:
        yield c


def wait_idle(client, timeout=60.0) -> dict:
    return wait_pipeline_idle(client, timeout)


def test_trigger_status_history_and_events(client, redis_process):
    events = redis.Redis.from_url(redis_process.url)
    pubsub = events.pubsub()
    pubsub.subscribe("tickstock:processing:status", "tickstock:import:started", "tickstock:import:completed",
                     "tickstock:cache:started", "tickstock:cache:completed")
    pubsub.get_message(timeout=1)

    answer = client.post("/api/processing/trigger-manual",
                         json={"skip_market_check": False, "phases": ["all"], "date": FRI.isoformat()})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "started" and body["message"] and len(body["run_id"]) == 36
    assert body["phases"] == ["data_import", "cache_sync"]

    idle = ProcessingStatus(**wait_idle(client)).model_dump()
    assert idle["run_id"] == body["run_id"] and idle["current_phase"] == "idle"
    assert idle["last_run_status"] == "success" and idle["progress"] == 100.0
    for field in ("is_running", "run_id", "current_phase", "progress", "symbols_processed", "symbols_total",
                  "start_time", "estimated_completion"):
        assert field in idle

    runs = ProcessingHistory(**client.get("/api/processing/history", params={"days": 7}).json()).runs
    assert [(r.run_id, r.status, r.trigger_type) for r in runs] == [(body["run_id"], "success", "manual")]
    assert runs[0].start_time.endswith("Z") and runs[0].end_time.endswith("Z")
    detail = client.get(f"/api/processing/runs/{body['run_id']}").json()
    assert [p["phase"] for p in detail["phase_results"]] == ["data_import", "cache_sync"]
    assert client.get("/api/processing/runs/not-a-run").status_code == 404

    received = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and "daily_processing_completed" not in [m["event"] for m in received]:
        message = pubsub.get_message(timeout=0.5)
        if message and message["type"] == "message":
            received.append(json.loads(message["data"]))
    names = [m["event"] for m in received]
    assert names[0] == "daily_processing_started" and names[-1] == "daily_processing_completed"
    assert names.index("data_import_completed") < names.index("cache_sync_started")
    assert received[-1]["payload"]["success"] is True
    pubsub.close()


def test_unavailable_phases_unknown_phases_and_bad_dates_are_422(client):
    for body, fragment in (
        ({"phases": ["indicator_processing"]}, "not available in this installation"),
        ({"phases": ["data_import", "pattern_detection"]}, "pattern_detection is not available"),
        ({"phases": ["bogus"]}, "unknown phase"),
        ({"phases": []}, "at least one phase"),
        ({"phases": "all"}, "phases"),
        ({"skip_market_check": "yes"}, "skip_market_check"),
        ({"date": "2026-11-26"}, "not an NYSE session"),
        ({"date": "2026-02-30"}, "real date"),
        ({"date": "2999-01-01"}, "in the future"),
        ({"date": "yesterday"}, "date"),
    ):
        answer = client.post("/api/processing/trigger-manual", json=body)
        assert answer.status_code == 422 and fragment in answer.json()["message"], (body, answer.text)
    assert client.get("/api/processing/history", params={"days": 0}).status_code == 422
    assert client.get("/api/processing/history").json() == {"runs": []}
    # "all" next to an unavailable phase means every available phase.
    answer = client.post("/api/processing/trigger-manual", json={"phases": ["all", "pattern_detection"],
                                                                 "date": FRI.isoformat()})
    assert answer.status_code == 202 and answer.json()["phases"] == ["data_import", "cache_sync"]
    wait_idle(client)


def test_409_while_a_run_is_live_and_cancel(client, db_url):
    with psycopg.connect(db_url, autocommit=True) as other_process:
        other_process.execute("SELECT pg_advisory_lock(%s)", (locks.PIPELINE,))
        owner = other_process.info.backend_pid
        run_id = other_process.execute(
            "INSERT INTO pl_pipeline_runs (run_id, environment, trigger_type, session_date, phases, status,"
            " current_phase) VALUES (gen_random_uuid(), 'DEFAULT', 'manual', %s, '{data_import,cache_sync}',"
            " 'running', 'data_import') RETURNING run_id", (FRI,)).fetchone()[0]
        status = client.get("/api/processing/status").json()
        assert status["is_running"] is True and status["run_id"] == str(run_id)
        assert status["current_phase"] == "data_import"
        conflict = client.post("/api/processing/trigger-manual", json={"date": FRI.isoformat()})
        assert conflict.status_code == 409 and "already running" in conflict.json()["message"]
        cancelled = client.delete("/api/processing/cancel")
        assert cancelled.status_code == 200 and str(run_id) in cancelled.json()["message"]
        assert client.get("/api/processing/status").json()["cancel_requested"] is True
    # The "other process" went away without finishing. PostgreSQL frees its lock when its backend
    # exits, a moment after the close (asynchronously); from then on the run is abandoned, not running.
    wait_session_ended(db_url, owner)
    status = client.get("/api/processing/status").json()
    assert status["is_running"] is False and status["last_run_status"] == "failed"
    assert client.delete("/api/processing/cancel").status_code == 404


def test_schedule_get_and_partial_update(client, redis_process):
    current = ProcessingSchedule(**client.get("/api/processing/schedule").json())
    assert (current.enabled, current.trigger_time, current.timezone, current.market_check) == \
        (True, "16:10", "America/New_York", True)
    assert current.next_run.endswith("Z")
    updated = client.post("/api/processing/schedule", json={"trigger_time": "17:30", "universes": ["sp500"]})
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert body["trigger_time"] == "17:30" and body["universes"] == ["sp500"] and body["enabled"] is True
    assert client.get("/api/processing/schedule").json() == body
    for bad, field in (({"timezone": "Nowhere/Land"}, "timezone"), ({"trigger_time": "5pm"}, "trigger_time"),
                       ({"enabled": "yes"}, "enabled"), ({"next_run": "x"}, "next_run")):
        answer = client.post("/api/processing/schedule", json=bad)
        assert answer.status_code == 422 and field in answer.json()["message"], answer.text
    events = redis.Redis.from_url(redis_process.url)
    deadline = time.monotonic() + 10
    entries = []
    while time.monotonic() < deadline and not entries:
        entries = events.xrange("tickstock:stream:processing")
        time.sleep(0.1)
    published = [json.loads(fields[b"message"] if b"message" in fields else next(iter(fields.values())))
                 for _id, fields in entries]
    assert [p["event"] for p in published] == ["schedule_updated"]
    assert published[0]["payload"]["trigger_time"] == "17:30"


def test_the_key_is_required_unless_switched_off(server, market, db_url):
    with server.client(key=False) as anonymous:
        assert anonymous.get("/api/processing/status").status_code == 401
        assert anonymous.post("/api/processing/trigger-manual", json={}).status_code == 401
    with server.client() as keyed:
        assert keyed.get("/api/processing/status").status_code == 200
    server.close()
    open_server = InProcessServer(db_url, api_keys=(KEY,), env={"TICKSTOCKPL_REQUIRE_KEY_PROCESSING": "false"})
    with open_server, open_server.client(key=False) as anonymous:
        assert anonymous.get("/api/processing/status").status_code == 200
        assert anonymous.get("/api/processing/history").status_code == 200


def test_skip_market_check_before_the_close_answers_which_session_it_processes(market, db_url, redis_process,
                                                                                monkeypatch):
    """AppV2's admin historical-data load sends {"skip_market_check": true, "phases": ["all"]} at any hour.
    On Wednesday at 10:00 New York (market clock) the answer names Tuesday, the last closed session, and
    says why; Wednesday asked for by date is refused (422) naming Tuesday; nothing of Wednesday is imported."""
    monkeypatch.setenv(clock.ENV, "2026-11-25T15:00:00Z")  # the market clock of the app in process
    env = {"TICKSTOCKPL_FLATFILES_DIR": str(market.flatfiles_dir)}
    with InProcessServer(db_url, redis_url=redis_process.url, api_keys=(KEY,), env=env) as app, \
            app.client() as client:
        refused = client.post("/api/processing/trigger-manual",
                              json={"skip_market_check": True, "phases": ["all"], "date": "2026-11-25"})
        assert refused.status_code == 422
        assert "the 2026-11-25 session has not closed yet" in refused.json()["message"]
        assert "the last closed session is 2026-11-24" in refused.json()["message"]

        answer = client.post("/api/processing/trigger-manual", json={"skip_market_check": True, "phases": ["all"]})
        assert answer.status_code == 202, answer.text
        body = answer.json()
        assert body["session_date"] == "2026-11-24"
        assert body["message"].startswith("the 2026-11-25 session has not closed yet (it closes at 16:00 New York")
        assert "processing the last closed session, 2026-11-24" in body["message"]
        wait_idle(client)
        run = client.get(f"/api/processing/runs/{body['run_id']}").json()
        assert run["status"] == "success" and run["session_date"] == "2026-11-24"
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM ohlcv_daily WHERE date = '2026-11-25'").fetchone()[0] == 0


def test_the_serving_process_never_loads_the_calendar_library(market, db_url, redis_process):
    """exchange_calendars (with pandas) takes about a second to import and holds the interpreter meanwhile: the
    first GET /api/processing/schedule took 1.5-2 s when the serving process imported it (AppV2 gives up at 2 s).
    The schedule, the scheduler's refresh, a run's session and its missing sessions read pl_market_sessions."""
    env = {"TICKSTOCKPL_FLATFILES_DIR": str(market.flatfiles_dir)}
    with LiveServer(db_url, redis_url=redis_process.url, api_keys=(KEY,), env=env, scheduler=True) as live, \
            live.client() as client:
        assert client.get("/api/processing/schedule").json()["next_run"] == "2026-11-30T21:10:00.000Z"
        assert client.post("/api/processing/schedule", json={"trigger_time": "16:20"}).status_code == 200
        assert client.post("/api/processing/trigger-manual", json={"phases": ["all"]}).status_code == 202
        assert wait_idle(client)["last_run_status"] == "success"
        loaded = Path(f"/proc/{live.proc.pid}/maps").read_text()
    # pandas (exchange_calendars' 0.8 s) never; numpy is loaded by the run's full sync on purpose: the rule
    # universes' statistics (market/liquidity.load_matrix, 70 ms once per process; docs/ARCHITECTURE.md)
    assert "pandas" not in loaded
