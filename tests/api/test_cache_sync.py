"""Cache-sync endpoints (contract §2.1), the app in process (tests/support/asgi.py): 202, status, 404, 409, 422, history, stats."""

from __future__ import annotations

import re
import uuid

import psycopg
import pytest

from tests.support.databases import SymbolsLocked
from tests.support.waiting import wait_status
from tickstockpl.sync.job import STEPS

TRIGGER = "/api/processing/cache-sync/trigger"
STATUS = "/api/processing/cache-sync/status/"
HISTORY = "/api/processing/cache-sync/history"
STATS = "/api/processing/cache-sync/stats"
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
STATUS_FIELDS = {"job_id", "mode", "status", "created_at", "start_time", "end_time", "duration_seconds",
                 "triggered_by", "error_details", "progress"}


def _trigger(client, **body):
    return client.post(TRIGGER, json={"mode": "full", "force": False, **body})


def test_trigger_answers_202_and_the_job_completes(client, market):
    response = _trigger(client, mode="market_cap")
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == {"success", "job_id", "mode", "message"}
    assert body["success"] is True and body["mode"] == "market_cap" and body["message"]
    assert uuid.UUID(body["job_id"]).version == 4

    status = wait_status(client, body["job_id"], ("completed", "failed"))
    assert STATUS_FIELDS <= set(status)
    assert status["status"] == "completed", status
    assert status["job_id"] == body["job_id"] and status["mode"] == "market_cap"
    assert status["triggered_by"] == "api" and status["error_details"] is None
    for field in ("created_at", "start_time", "end_time"):
        assert ISO_Z.match(status[field]), status[field]
    assert status["created_at"] <= status["start_time"] <= status["end_time"]
    assert isinstance(status["duration_seconds"], float) and status["duration_seconds"] >= 0
    assert status["progress"]["percent"] == 100.0
    assert status["result"]["universes_updated"] > 0


def test_status_while_running_then_after(client, db_url, market):
    with SymbolsLocked(db_url) as lock:
        job_id = _trigger(client).json()["job_id"]
        running = wait_status(client, job_id, ("running",))
        assert ISO_Z.match(running["start_time"]) and running["end_time"] is None
        assert running["duration_seconds"] >= 0
        assert running["progress"] == {"total_steps": len(STEPS), "completed_steps": 0, "current_task": STEPS[0],
                                       "percent": 0.0}
        conflict = _trigger(client)
        assert conflict.status_code == 409
        assert conflict.json()["success"] is False and conflict.json()["job_id"] == job_id
        assert conflict.json()["message"]
        lock.release()
        done = wait_status(client, job_id, ("completed", "failed"))
    assert done["status"] == "completed" and done["end_time"] >= done["start_time"]


def test_validation_failure_fails_the_job_and_force_skips_it(client, db_url, market):
    with psycopg.connect(db_url) as conn:
        conn.execute("DELETE FROM ohlcv_daily WHERE date = %s", (market[0],))
    refused = wait_status(client, _trigger(client).json()["job_id"], ("completed", "failed"))
    assert refused["status"] == "failed" and "no bars" in refused["error_details"]
    forced = wait_status(client, _trigger(client, force=True).json()["job_id"], ("completed", "failed"))
    assert forced["status"] == "completed", forced


def test_unknown_job_is_404(keyed):
    client = keyed
    for job_id in (str(uuid.uuid4()), "not-a-uuid", "1" * 300):
        response = client.get(STATUS + job_id)
        assert response.status_code == 404
        assert response.json()["success"] is False and "unknown job" in response.json()["message"]


@pytest.mark.parametrize("body, field", [
    ({"mode": "everything"}, "mode"),
    ({"mode": 3}, "mode"),
    ({"mode": "full", "force": "yes"}, "force"),
    ({"mode": "full", "force": 1}, "force"),
    ({"mode": None}, "mode"),
])
def test_bad_trigger_bodies_are_422_naming_the_field(keyed, body, field):
    client = keyed
    response = client.post(TRIGGER, json=body)
    assert response.status_code == 422, response.text
    data = response.json()
    assert data["success"] is False and field in data["message"]
    assert [e["field"] for e in data["errors"]] == [field]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"full"', b"null", b"\xff\xfe", b"\t\x81\x15"])
def test_malformed_or_non_object_json_is_422(keyed, raw):
    client = keyed
    response = client.post(TRIGGER, content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["success"] is False and "body" in response.json()["message"]


def test_history_pages_newest_first(client, db_url, market):
    ids = []
    for mode in ("ipos", "themes", "ipos"):
        job_id = _trigger(client, mode=mode).json()["job_id"]
        wait_status(client, job_id, ("completed", "failed"))
        ids.append(job_id)
    with psycopg.connect(db_url) as conn:  # make one of them a failure
        conn.execute("UPDATE pl_sync_jobs SET status = 'failed', error_details = 'boom' WHERE job_id = %s", (ids[1],))

    first = client.get(HISTORY, params={"limit": 2, "offset": 0}).json()
    assert first["total"] == 3 and first["limit"] == 2 and first["offset"] == 0
    assert [j["job_id"] for j in first["jobs"]] == [ids[2], ids[1]]
    assert [j["has_errors"] for j in first["jobs"]] == [False, True]
    assert set(first["jobs"][0]) == {"job_id", "mode", "status", "created_at", "start_time", "end_time",
                                     "duration_seconds", "triggered_by", "has_errors"}
    second = client.get(HISTORY, params={"limit": 2, "offset": 2}).json()
    assert [j["job_id"] for j in second["jobs"]] == [ids[0]]
    assert client.get(HISTORY, params={"offset": 10}).json()["jobs"] == []
    default = client.get(HISTORY).json()
    assert default["limit"] == 10 and default["offset"] == 0 and len(default["jobs"]) == 3


@pytest.mark.parametrize("params, field", [
    ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"offset": -1}, "offset"), ({"limit": "ten"}, "limit"),
])
def test_history_rejects_out_of_range_paging(keyed, params, field):
    client = keyed
    response = client.get(HISTORY, params=params)
    assert response.status_code == 422 and field in response.json()["message"]


def test_stats_lists_universes_and_seven_day_job_statistics(client, market):
    empty = client.get(STATS).json()
    assert empty == {"universes": [], "job_statistics": {"total_jobs_7d": 0, "successful_jobs_7d": 0,
                                                         "failed_jobs_7d": 0, "avg_duration_seconds": None}}
    wait_status(client, _trigger(client).json()["job_id"], ("completed",))
    stats = client.get(STATS).json()
    by_id = {u["universe"]: u for u in stats["universes"]}
    all_stocks = by_id["stock_universe:complete:all_stocks"]
    assert all_stocks["type"] == "stock_universe" and all_stocks["symbol_count"] == 61  # 60 + the IPO
    assert ISO_Z.match(all_stocks["last_updated"])
    assert by_id["stock_etf_combo:stock_etf_test:combo_test"]["symbol_count"] > 50
    assert by_id["stock_stats:universe:summary"]["symbol_count"] == 0
    js = stats["job_statistics"]
    assert js["total_jobs_7d"] == 1 and js["successful_jobs_7d"] == 1 and js["failed_jobs_7d"] == 0
    assert js["avg_duration_seconds"] >= 0


def test_triggers_beyond_the_rate_limit_are_429(db_url, redis_process, market):
    from tests.support.asgi import InProcessServer

    with InProcessServer(db_url, redis_url=redis_process.url, env={"TICKSTOCKPL_TRIGGER_RATE_PER_MIN": "2"}) as api:
        with api.client() as c:
            codes = [c.post(TRIGGER, json={"mode": "ipos"}).status_code for _ in range(3)]
            limited = c.post(TRIGGER, json={"mode": "ipos"})
    assert codes[:2].count(202) + codes[:2].count(409) == 2 and codes[2] == 429
    assert limited.status_code == 429 and limited.json()["success"] is False
    assert limited.headers["Retry-After"] == "60"
