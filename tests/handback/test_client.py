"""`tickstockpl.client` against a real `tickstockpl serve`, a real PostgreSQL and a real Redis."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid

import pytest

from tests.handback.conftest import SECOND_KEY
from tests.handback.scenario import table_locked, until
from tests.servers import free_port
from tickstockpl import client as pl
from tickstockpl.client import (CacheEventListener, Conflict, InvalidRequest, NotFound, ServiceDown,
                                TickStockPLClient, TickStockPLError, Unauthorized, WaitTimeout)
from tickstockpl.events import catalog

WAIT_S = 60.0  # generous upper bound for a small sync; never asserted as a duration


@pytest.fixture
def api(server):
    with TickStockPLClient(server.url, server.api_keys[0]) as client:
        yield client


# --- the module itself --------------------------------------------------------------------------
def test_client_imports_nothing_else_from_the_package():
    code = ("import sys, tickstockpl.client; "
            "print(sorted(m for m in sys.modules if m.startswith('tickstockpl')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['tickstockpl', 'tickstockpl.client']"


def test_channels_agree_with_the_event_catalog_and_the_contract():
    assert pl.CACHE_SYNC_CHANNELS == catalog.CACHE_SYNC_CHANNELS
    assert pl.CACHE_SYNC_CHANNELS == ("tickstock:cache:sync_triggered", "tickstock:cache:sync_complete",
                                      "tickstock:universe:updated", "tickstock:cache:ipo_assignment",
                                      "tickstock:cache:delisting_cleanup")
    assert pl.CACHE_PHASE_CHANNELS == (catalog.CACHE_STARTED, catalog.CACHE_PROGRESS, catalog.CACHE_COMPLETED)


def test_public_surface_is_the_declared_one():
    public = {name for name in vars(pl) if not name.startswith("_") and name[0].isupper()
              and getattr(getattr(pl, name), "__module__", None) == pl.__name__}
    assert public == set(pl.__all__) - {"CACHE_SYNC_CHANNELS", "CACHE_PHASE_CHANNELS"}
    assert pl.__all__ == sorted(pl.__all__)
    for err in (pl.Unauthorized, pl.NotFound, pl.Conflict, pl.InvalidRequest, pl.RateLimited, pl.ServiceDown,
                pl.WaitTimeout):
        assert issubclass(err, TickStockPLError)


def test_from_env_uses_appv2_settings():
    env = {"TICKSTOCKPL_HOST": "tickstockpl", "TICKSTOCKPL_PORT": "8080", "TICKSTOCKPL_API_KEY": "k" * 12}
    with TickStockPLClient.from_env(env) as client:
        assert client.base_url == "http://tickstockpl:8080"
    with TickStockPLClient.from_env({"TICKSTOCKPL_API_URL": "http://pl.internal:9000/"}) as client:
        assert client.base_url == "http://pl.internal:9000"
    with TickStockPLClient.from_env({}) as client:
        assert client.base_url == "http://localhost:8080"


# --- happy paths --------------------------------------------------------------------------------
def test_trigger_wait_status_history_stats(api):
    accepted = api.trigger_cache_sync()
    assert accepted["success"] is True and accepted["mode"] == "full"
    assert str(uuid.UUID(accepted["job_id"], version=4)) == accepted["job_id"]
    final = api.wait_until_done(accepted["job_id"], timeout=WAIT_S, poll_interval=0.05)
    assert final["status"] == "completed", final
    assert final["job_id"] == accepted["job_id"] and final["triggered_by"] == "api"
    assert final["error_details"] is None and final["end_time"].endswith("Z")

    status = api.cache_sync_status(accepted["job_id"])
    assert status["status"] == "completed" and status["progress"]["percent"] == 100.0

    history = api.cache_sync_history(limit=5, offset=0)
    assert history["limit"] == 5 and history["offset"] == 0 and history["total"] >= 1
    assert accepted["job_id"] in [job["job_id"] for job in history["jobs"]]

    stats = api.cache_sync_stats()
    assert stats["job_statistics"]["successful_jobs_7d"] >= 1
    names = {u["universe"] for u in stats["universes"]}
    assert "stock_etf_combo:stock_etf_test:combo_test" in names


def test_a_rotated_second_key_is_accepted(server):
    with TickStockPLClient(server.url, SECOND_KEY) as client:
        assert client.cache_sync_history(limit=1)["limit"] == 1


def test_health_needs_no_key(server):
    with TickStockPLClient(server.url, None) as client:
        health = client.health()
    assert health["status"] == "healthy" and health["services"] == {"database": "up", "redis": "up", "api": "up"}


# --- errors -------------------------------------------------------------------------------------
def test_wrong_or_missing_key_is_unauthorized(server):
    for key in ("wrong-key-000000000", None):
        with TickStockPLClient(server.url, key) as client:
            with pytest.raises(Unauthorized) as caught:
                client.trigger_cache_sync()
            assert caught.value.status_code == 401
            assert caught.value.body["success"] is False and caught.value.body["message"]
            with pytest.raises(Unauthorized):
                client.cache_sync_status(str(uuid.uuid4()))


def test_second_trigger_while_one_is_live_is_a_conflict_naming_the_live_job(api, server):
    with table_locked(server.env["DATABASE_URL"], "symbols"):
        first = api.trigger_cache_sync()
        with pytest.raises(Conflict) as caught:
            api.trigger_cache_sync(mode="themes")
        assert caught.value.status_code == 409 and caught.value.job_id == first["job_id"]
        assert caught.value.body["success"] is False
        with pytest.raises(WaitTimeout) as waited:  # still live: the lock holds it
            api.wait_until_done(first["job_id"], timeout=0.3, poll_interval=0.05)
        assert waited.value.job_id == first["job_id"] and waited.value.last["status"] in ("pending", "running")
    assert api.wait_until_done(first["job_id"], timeout=WAIT_S, poll_interval=0.05)["status"] == "completed"


def test_bad_mode_is_an_invalid_request_naming_the_field(api):
    with pytest.raises(InvalidRequest) as caught:
        api.trigger_cache_sync(mode="weekly")
    assert caught.value.status_code == 422
    assert "mode" in caught.value.message
    assert [e["field"] for e in caught.value.errors] == ["mode"]


def test_unknown_job_is_not_found(api):
    with pytest.raises(NotFound) as caught:
        api.cache_sync_status(str(uuid.uuid4()))
    assert caught.value.status_code == 404
    with pytest.raises(NotFound):
        api.cache_sync_status("not-a-job-id")


def test_service_down_when_nothing_listens():
    port = free_port()  # bound and released: nothing listens there now
    with TickStockPLClient(f"http://127.0.0.1:{port}", "whatever-key-123", timeout=2.0) as client:
        for call in (client.trigger_cache_sync, client.cache_sync_stats, client.health,
                     lambda: client.cache_sync_status(str(uuid.uuid4())),
                     lambda: client.wait_until_done(str(uuid.uuid4()), timeout=0, poll_interval=0.01)):
            with pytest.raises(ServiceDown) as caught:
                call()
            assert caught.value.status_code is None


# --- processing (pipeline) -----------------------------------------------------------------------
def _wait_idle(api: TickStockPLClient) -> dict:
    return until(lambda: (lambda st: st if not st["is_running"] else None)(api.processing_status()),
                 "the pipeline run to finish")


def test_processing_trigger_status_history_and_conflicts(api, server):
    with table_locked(server.env["DATABASE_URL"], "cache_entries"):  # holds the run inside its cache sync phase
        started = api.processing_trigger(phases=["cache_sync"])
        assert started["status"] == "started" and uuid.UUID(started["run_id"])
        status = api.processing_status()
        assert status["is_running"] is True and status["run_id"] == started["run_id"]
        with pytest.raises(Conflict) as caught:
            api.processing_trigger(phases=["all"])
        assert caught.value.status_code == 409 and caught.value.run_id == started["run_id"]
        until(lambda: (lambda jobs: jobs and jobs[0]["triggered_by"] == "pipeline" and jobs[0]["status"] == "running")(
            api.cache_sync_history(limit=1)["jobs"]), "the run's cache sync job to be running")
        with pytest.raises(Conflict) as sync_conflict:  # the run's own sync job is live: a direct trigger is refused
            api.trigger_cache_sync()
        assert sync_conflict.value.job_id == api.cache_sync_history(limit=1)["jobs"][0]["job_id"]
    final = _wait_idle(api)
    assert final["run_id"] == started["run_id"] and final["status"] == "success"
    runs = api.processing_history(days=7)["runs"]
    assert runs[0]["run_id"] == started["run_id"] and runs[0]["status"] == "success"
    detail = api.processing_run(started["run_id"])
    assert detail["run_id"] == started["run_id"]
    with pytest.raises(NotFound):
        api.processing_run(str(uuid.uuid4()))
    assert api.processing_schedule()["trigger_time"] == "16:10"


def test_processing_errors(api):
    with pytest.raises(InvalidRequest) as caught:
        api.processing_trigger(phases=["pattern_detection"])
    assert "pattern_detection" in caught.value.message
    with pytest.raises(InvalidRequest):
        api.processing_trigger(phases=["everything"])
    with pytest.raises(NotFound):
        api.processing_cancel()
    with pytest.raises(InvalidRequest):
        api.update_processing_schedule(trigger_time="25:99")


# --- events -------------------------------------------------------------------------------------
def test_listener_dispatches_a_real_sync_by_event_name(api, server):
    seen: list[tuple[str, str, dict]] = []
    done = threading.Event()
    job: dict[str, str] = {}

    def record(envelope: dict, channel: str) -> None:
        seen.append((channel, envelope["event"], envelope["payload"]))

    def completed(envelope: dict, channel: str) -> None:
        if channel == catalog.CACHE_SYNC_COMPLETE and envelope["payload"].get("job_id") == job.get("id"):
            done.set()

    listener = CacheEventListener(server.env["REDIS_URL"])
    listener.on_any(record)
    listener.on("cache_sync_completed", completed)
    broken = listener.on("cache_sync_triggered")(lambda envelope, channel: 1 / 0)  # must not stop dispatch
    assert callable(broken)
    with listener:
        job["id"] = api.trigger_cache_sync(mode="full", force=True)["job_id"]
        assert done.wait(WAIT_S), seen
    mine = [(c, e) for c, e, p in seen if p.get("job_id") == job["id"]]
    assert (catalog.CACHE_SYNC_TRIGGERED, "cache_sync_triggered") in mine
    assert mine[-1] == (catalog.CACHE_SYNC_COMPLETE, "cache_sync_completed")
    assert {c for c, _e in mine} <= set(pl.CACHE_SYNC_CHANNELS)


def test_listener_falls_back_to_event_type_and_skips_garbage():
    listener = CacheEventListener("redis://127.0.0.1:1/0")  # never started: dispatch is pure
    got: list[str] = []
    listener.on("legacy_name", lambda envelope, channel: got.append(channel))
    assert listener.dispatch("tickstock:cache:sync_complete", b'{"event_type": "legacy_name"}') == "legacy_name"
    assert listener.dispatch("tickstock:cache:sync_complete", b"not json") is None
    assert listener.dispatch("tickstock:cache:sync_complete", b"[1, 2]") is None
    assert got == ["tickstock:cache:sync_complete"]


def test_listener_resubscribes_after_redis_restarts(redis_process):
    import redis

    got: list[str] = []
    listener = CacheEventListener(redis_process.url, poll_timeout=0.05)
    listener.on("cache_sync_completed", lambda envelope, channel: got.append(envelope["payload"]["job_id"]))
    message = '{"event": "cache_sync_completed", "payload": {"job_id": "after-restart"}}'
    with listener:
        redis_process.stop()
        redis_process.start()  # same port, empty server: the listener must SUBSCRIBE again by itself
        publisher = redis.Redis.from_url(redis_process.url)
        try:
            until(lambda: publisher.publish(catalog.CACHE_SYNC_COMPLETE, message) and got,
                  "the listener to receive after the restart")
        finally:
            publisher.close()
    assert got[0] == "after-restart"
