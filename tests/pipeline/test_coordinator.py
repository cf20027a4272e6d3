"""Pipeline runs on a real database: phase order, events, failure, cancel, single-flight, the scheduler."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import psycopg
import pytest

from tickstockpl import clock
from tickstockpl.db import locks
from tickstockpl.errors import ConfigError, JobConflict, NotFound, PhaseUnavailable
from tickstockpl.events import catalog
from tickstockpl.pipeline import coordinator as co
from tickstockpl.pipeline.imports.flatfiles import FlatFileProvider
from tickstockpl.pipeline.scheduler import PipelineScheduler
from tickstockpl.settings import Settings
from tests.pipeline.conftest import FRI, NOW, TUE, WED

UTC = dt.timezone.utc


def outbox(db_url):
    with psycopg.connect(db_url) as conn:
        return [(i, ch, ev, json.loads(m)) for i, ch, ev, m in conn.execute(
            "SELECT id, channel, event, message FROM pl_event_outbox ORDER BY id")]


def run_row(db_url, run_id):
    with psycopg.connect(db_url) as conn:
        return co.get_run(conn, run_id)


class BlockingProvider(FlatFileProvider):
    """Flat files, but the first fetch waits until the test releases it."""

    def __init__(self, folder):
        super().__init__(folder)
        self.entered, self.release = threading.Event(), threading.Event()

    def fetch(self, session):
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(30), "test never released the provider"
        return super().fetch(session)


def test_a_run_imports_then_syncs_and_publishes_appv2_events_in_order(market, db_url):
    handle = co.trigger_run(market, db_url, session_date=FRI, phases=["all"], background=False)
    assert handle.status == "success", handle.error
    run, phases = run_row(db_url, handle.run_id)
    assert run.status == "success" and run.progress == 100 and run.trigger_type == "manual"
    assert [(p["phase"], p["status"]) for p in phases] == [("data_import", "success"), ("cache_sync", "success")]
    assert phases[0]["counts"]["sessions_imported"] == 2 and phases[1]["counts"]["universes_updated"] > 0
    assert run.symbols_total == 42 and run.symbols_processed == 42 and run.symbols_failed == 0

    events = outbox(db_url)
    names = [e[2] for e in events]
    first = {name: names.index(name) for name in reversed(names)}
    last = {name: len(names) - 1 - names[::-1].index(name) for name in names}
    assert names[0] == "daily_processing_started" and names[-1] == "daily_processing_completed"
    assert last["data_import_completed"] < first["cache_sync_triggered"] < first["cache_sync_started"]
    assert last["job_progress_update"] < first["data_import_completed"]
    assert last["cache_sync_completed"] < first["daily_processing_completed"]
    ids = [e[0] for e in events]
    assert ids == sorted(ids)

    by_name = {}
    for _id, channel, name, body in events:
        by_name.setdefault(name, []).append((channel, body))
        assert body["timestamp"].endswith("Z") and body["version"] == "1.0"
        if name != "processing_error" and channel.startswith(
                ("tickstock:processing", "tickstock:import", "tickstock:data", "tickstock:monitoring")):
            assert body["payload"]["run_id"] == handle.run_id
    (ch, started), = by_name["daily_processing_started"]
    assert ch == "tickstock:processing:status"
    assert started["payload"]["total_symbols"] == 42 and started["payload"]["trigger_type"] == "manual"
    progress = by_name["daily_processing_progress"]
    assert {c for c, _ in progress} == {"tickstock:processing:status"}
    for _c, body in progress:
        assert {"progress", "current_symbol", "symbols_completed", "estimated_completion"} <= set(body["payload"])
    percents = [b["payload"]["progress"] for _c, b in progress]
    assert percents == sorted(percents) and percents[-1] == 100.0
    (ch, completed), = by_name["daily_processing_completed"]
    assert ch == "tickstock:processing:status"
    assert completed["payload"]["success"] is True and completed["payload"]["symbols_processed"] == 42
    assert {"symbols_failed", "duration_seconds"} <= set(completed["payload"])
    (ch, imp), (status_ch, imp_status) = by_name["data_import_started"]
    assert (ch, status_ch) == ("tickstock:import:started", "tickstock:data:import:status")
    assert imp_status["event_id"] == imp["event_id"] + 1  # two outbox rows, the same event otherwise
    assert {**imp, "event_id": None} == {**imp_status, "event_id": None}
    assert imp["payload"]["timeframes"] == ["daily"] and imp["payload"]["lookback_days"] == 2
    assert imp["payload"]["sessions"] == ["2026-11-25", "2026-11-27"] and "universe_names" in imp["payload"]
    steps = by_name["job_progress_update"]
    assert [c for c, _ in steps] == ["tickstock:monitoring"] * 2
    assert [b["payload"]["phase"] for _c, b in steps] == ["data_import"] * 2
    assert [b["payload"]["sessions_completed"] for _c, b in steps] == [1, 2]
    assert [b["payload"]["percentage"] for _c, b in steps] == [25.0, 50.0]  # of the run: import is half of it
    assert steps[-1][1]["payload"]["completed"] == 42 and steps[-1][1]["source"] == "tickstockpl.import"
    (ch, done), (status_ch, done_status) = by_name["data_import_completed"]
    assert (ch, status_ch) == ("tickstock:import:completed", "tickstock:data:import:status")
    assert {**done, "event_id": None} == {**done_status, "event_id": None}  # two outbox rows, one event
    assert (done["payload"]["success_count"], done["payload"]["failure_count"]) == (2, 0)
    assert "duration_seconds" in done["payload"] and done["payload"]["rows_rejected"] == 0
    for name, channel in (("cache_sync_started", "tickstock:cache:started"),
                          ("cache_sync_completed", "tickstock:cache:completed")):
        assert channel in {c for c, _ in by_name[name]}
        assert all(b["payload"]["run_id"] == handle.run_id for _c, b in by_name[name])
    assert "processing_error" not in by_name

    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM ohlcv_daily WHERE date = %s", (FRI,)).fetchone()[0] == 42
        assert conn.execute("SELECT triggered_by, as_of FROM pl_sync_jobs").fetchall() == [("pipeline", FRI)]
        history = co.run_history(conn, 7)
    assert len(history) == 1 and history[0]["status"] == "success"
    assert set(history[0]) >= {"run_id", "trigger_type", "status", "start_time", "end_time", "duration_seconds",
                               "symbols_processed", "symbols_failed", "patterns_detected", "indicators_calculated"}


def test_a_failed_import_stops_the_run_before_cache_sync(market, db_url, tmp_path):
    (tmp_path / "2026-11-27.csv.gz").write_bytes(b"\x1f\x8b\x08 not really gzip")
    handle = co.trigger_run(market, db_url, session_date=FRI, background=False)
    assert handle.status == "failed"
    assert "data import failed" in handle.error and "2026-11-27" in handle.error
    run, phases = run_row(db_url, handle.run_id)
    assert run.status == "failed"
    assert [(p["phase"], p["status"]) for p in phases] == [("data_import", "failed"), ("cache_sync", "skipped")]
    assert phases[0]["counts"]["sessions_imported"] == 1  # Wednesday stays imported, whole
    events = outbox(db_url)
    names = [e[2] for e in events]
    assert not any(n.startswith("cache_sync") for n in names)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM pl_sync_jobs").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM ohlcv_daily WHERE date = %s", (FRI,)).fetchone()[0] == 0
    completed = next(b for _i, _c, n, b in events if n == "daily_processing_completed")
    assert completed["payload"]["success"] is False and completed["payload"]["status"] == "failed"
    assert next(b for _i, _c, n, b in events if n == "data_import_completed")["payload"]["failure_count"] == 1
    (channel, error), = [(c, b) for _i, c, n, b in events if n == "processing_error"]
    assert channel == "tickstock:errors" == catalog.ERRORS
    assert "data import failed" in error["payload"]["error_message"] and error["severity"] == "error"
    assert {"error_id", "source", "message", "timestamp", "component", "context"} <= set(error)


def test_cancel_stops_the_import_between_sessions(market, db_url, tmp_path):
    provider = BlockingProvider(tmp_path)
    handle = co.trigger_run(market, db_url, session_date=FRI, provider=provider)
    assert provider.entered.wait(10)
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert co.is_running(conn)
        status = co.processing_status(conn)
        assert status["is_running"] and status["run_id"] == handle.run_id and status["current_phase"] == "data_import"
        with pytest.raises(JobConflict) as conflict:
            co.trigger_run(market, db_url, session_date=FRI)
        assert conflict.value.live_id == handle.run_id
        answer = co.cancel_current(conn)
        assert handle.run_id in answer["message"]
    provider.release.set()
    assert handle.wait(30)
    run, phases = run_row(db_url, handle.run_id)
    assert run.status == "cancelled" and handle.status == "cancelled"
    assert [(p["phase"], p["status"]) for p in phases] == [("data_import", "cancelled"), ("cache_sync", "skipped")]
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert not co.is_running(conn)
        assert conn.execute("SELECT count(*) FROM ohlcv_daily WHERE date = %s", (WED,)).fetchone()[0] == 42
        assert conn.execute("SELECT count(*) FROM ohlcv_daily WHERE date = %s", (FRI,)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM pl_sync_jobs").fetchone()[0] == 0
        assert co.run_history(conn)[0]["status"] == "cancelled"
        with pytest.raises(NotFound, match="no pipeline run is in progress"):
            co.cancel_current(conn)
    completed = [b for _i, _c, n, b in outbox(db_url) if n == "daily_processing_completed"]
    assert completed[0]["payload"]["status"] == "cancelled" and completed[0]["payload"]["success"] is False


def test_cancel_between_phases_skips_the_cache_sync(market, db_url):
    handle = co.trigger_run(market, db_url, session_date=FRI, phases=["data_import"], background=False)
    assert handle.status == "success"

    class CancelAfterImport(FlatFileProvider):
        def fetch(self, session):
            raise AssertionError("nothing left to import")

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO pl_event_outbox (channel, event, message) VALUES ('x', 'marker', '{}')")
    # A run with nothing to import; cancel requested while it is between data_import and cache_sync.
    original = co._Runner._run_data_import

    def import_then_cancel(self):
        original(self)
        self.conn.execute("UPDATE pl_pipeline_runs SET cancel_requested = true WHERE run_id = %s", (self.run_id,))

    co._Runner._run_data_import = import_then_cancel
    try:
        second = co.trigger_run(market, db_url, session_date=FRI, background=False,
                                provider=CancelAfterImport(market.flatfiles_dir))
    finally:
        co._Runner._run_data_import = original
    run, phases = run_row(db_url, second.run_id)
    assert run.status == "cancelled" and "before cache_sync" in run.error
    assert [(p["phase"], p["status"]) for p in phases] == [("data_import", "success"), ("cache_sync", "skipped")]


def test_a_busy_cache_sync_is_a_phase_failure_with_a_clear_message(market, db_url):
    with psycopg.connect(db_url, autocommit=True) as holder:
        holder.execute("INSERT INTO pl_sync_jobs (job_id, environment, mode, triggered_by, status)"
                       " VALUES (gen_random_uuid(), 'DEFAULT', 'full', 'api', 'running')")
        holder.execute("SELECT pg_advisory_lock(%s)", (locks.CACHE_SYNC,))
        handle = co.trigger_run(market, db_url, session_date=FRI, phases=["cache_sync"], background=False)
    assert handle.status == "failed"
    assert handle.error.startswith("cache sync could not start: a cache sync is already running")


def test_two_automatic_firings_for_one_session_give_one_run(market, db_url):
    fire = dt.datetime(2026, 11, 27, 21, 10, tzinfo=UTC)
    schedulers = [PipelineScheduler(market, db_url) for _ in range(4)]
    started: list[str | None] = []
    threads = [threading.Thread(target=lambda s=s: started.append(s.fire(fire))) for s in schedulers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    deadline = time.monotonic() + 60
    with psycopg.connect(db_url, autocommit=True) as conn:
        while co.is_running(conn) and time.monotonic() < deadline:
            time.sleep(0.05)
        rows = conn.execute("SELECT run_id, trigger_type, session_date, status FROM pl_pipeline_runs").fetchall()
        assert len(rows) == 1, rows
        assert rows[0][1:] == ("automatic", FRI, "success")
        assert [s for s in started if s] == [str(rows[0][0])]
        # Later firings (another process, the catch-up loop) find the session done.
        assert schedulers[0].fire(fire) is None
        with pytest.raises(JobConflict, match="already had its automatic run"):
            co.trigger_run(market, db_url, trigger_type="automatic", session_date=FRI, background=False)
        assert conn.execute("SELECT count(*) FROM pl_pipeline_runs").fetchone()[0] == 1
        # A manual rerun of the same session is allowed once nothing is live.
        again = co.trigger_run(market, db_url, session_date=FRI, phases=["cache_sync"], background=False)
        assert again.status == "success"


def test_the_scheduler_catches_up_on_a_missed_firing_and_places_the_next_one(market, db_url, monkeypatch):
    monkeypatch.setenv(clock.ENV, "2026-11-27T22:00:00Z")  # 50 minutes after 16:10 on Friday
    scheduler = PipelineScheduler(market, db_url)
    assert scheduler.refresh() == dt.datetime(2026, 11, 30, 21, 10, tzinfo=UTC)
    run_id = scheduler.last_started
    assert run_id is not None
    deadline = time.monotonic() + 60
    with psycopg.connect(db_url, autocommit=True) as conn:
        while co.is_running(conn) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert conn.execute("SELECT trigger_type, session_date FROM pl_pipeline_runs").fetchall() == [("automatic", FRI)]
    scheduler.refresh()
    assert scheduler.last_started == run_id  # no second run


def test_start_scheduler_places_the_daily_job_and_shuts_down(market, db_url, monkeypatch):
    """The timer is real time: with the real clock the date job waits for the next run."""
    from tickstockpl.pipeline.schedule import next_run
    from tickstockpl.pipeline.scheduler import JOB_ID, start_scheduler

    monkeypatch.delenv(clock.ENV)
    before = dt.datetime.now(UTC)
    scheduler = start_scheduler(market, db_url, catch_up=dt.timedelta(0))
    try:
        deadline = time.monotonic() + 10
        while scheduler._scheduler.get_job(JOB_ID) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        job = scheduler._scheduler.get_job(JOB_ID)
        assert job is not None and job.next_run_time == scheduler.next_run
        assert scheduler.next_run in {next_run(before), next_run(dt.datetime.now(UTC))}
    finally:
        scheduler.shutdown()
    assert not scheduler._scheduler.running


def test_a_scheduler_frozen_in_the_past_reports_the_next_run_and_waits_for_none(market, db_url):
    """TICKSTOCKPL_NOW at NOW (a Saturday): the next run is Monday's 16:10 in market time; that instant
    has passed in real time, so no date job is placed (a past firing is the catch-up's, see above)."""
    from tickstockpl.pipeline.scheduler import JOB_ID, start_scheduler

    scheduler = start_scheduler(market, db_url, catch_up=dt.timedelta(0))
    try:
        assert scheduler.refresh() == dt.datetime(2026, 11, 30, 21, 10, tzinfo=UTC)
        assert scheduler._scheduler.get_job(JOB_ID) is None and scheduler.last_started is None
    finally:
        scheduler.shutdown()


def test_an_abandoned_run_is_not_running_and_is_marked_failed(market, db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO pl_pipeline_runs (run_id, environment, trigger_type, session_date, phases, status)"
                     " VALUES (gen_random_uuid(), 'DEFAULT', 'manual', %s, '{cache_sync}', 'running')", (FRI,))
        assert not co.is_running(conn)
        status = co.processing_status(conn)
        assert status["is_running"] is False and status["last_run_status"] == "failed"
        assert co.run_history(conn)[0]["error"].startswith("abandoned")
    names = [e[2] for e in outbox(db_url)]
    assert names == ["daily_processing_completed", "processing_error"]


@pytest.mark.parametrize("requested, available, expected", [
    (["all"], ("data_import", "cache_sync"), ["data_import", "cache_sync"]),
    (["all"], ("cache_sync",), ["cache_sync"]),
    (None, ("data_import", "cache_sync"), ["data_import", "cache_sync"]),
    (["cache_sync", "data_import", "cache_sync"], ("data_import", "cache_sync"), ["data_import", "cache_sync"]),
    (["cache_sync", "all"], ("data_import", "cache_sync"), ["data_import", "cache_sync"]),
])
def test_resolve_phases(requested, available, expected):
    assert co.resolve_phases(requested, available) == expected


@pytest.mark.parametrize("requested", [["indicator_processing"], ["pattern_detection"],
                                       ["data_import", "pattern_detection"]])
def test_phases_3_and_4_are_not_available(requested):
    with pytest.raises(PhaseUnavailable, match="not available in this installation"):
        co.resolve_phases(requested, ("data_import", "cache_sync"))


def test_data_import_without_a_provider_is_unavailable_and_bad_names_are_config_errors(db_url):
    settings = Settings(database_url=db_url)
    assert co.available_phases(settings) == ("cache_sync",)
    with pytest.raises(PhaseUnavailable, match="no import provider configured"):
        co.trigger_run(settings, db_url, phases=["data_import"], session_date=FRI)
    with pytest.raises(ConfigError, match="unknown phase"):
        co.resolve_phases(["indicators"], ("cache_sync",))
    with pytest.raises(ConfigError, match="at least one phase"):
        co.resolve_phases([], ("cache_sync",))


def test_resolve_session():
    assert co.resolve_session(None, False, NOW) == co.SessionChoice(FRI)
    assert co.resolve_session(None, True, NOW) == co.SessionChoice(FRI)  # Saturday: the last closed session
    assert co.resolve_session(WED, False, NOW) == co.SessionChoice(WED)
    assert co.resolve_session(dt.date(2026, 11, 26), True, NOW) == co.SessionChoice(dt.date(2026, 11, 26))
    with pytest.raises(ConfigError, match="not an NYSE session"):
        co.resolve_session(dt.date(2026, 11, 26), False, NOW)
    with pytest.raises(ConfigError, match="in the future"):
        co.resolve_session(dt.date(2026, 12, 1), True, NOW)
    with pytest.raises(ConfigError, match="has not closed yet"):
        co.resolve_session(FRI, False, dt.datetime(2026, 11, 27, 17, 0, tzinfo=UTC))


# Wednesday 2026-11-25, 10:00 in New York: Wednesday's session is open (it closes at 16:00, 21:00Z).
WED_MORNING = dt.datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def test_skip_market_check_never_chooses_a_session_that_has_not_closed():
    """It skips only the trading-day check: without a date the last closed session is processed and the note
    says why; an open session asked for by date is refused, naming the session that would be used instead."""
    choice = co.resolve_session(None, True, WED_MORNING)
    assert choice.day == TUE
    assert choice.note == ("the 2026-11-25 session has not closed yet (it closes at 16:00 New York time);"
                           " processing the last closed session, 2026-11-24")
    assert co.resolve_session(None, False, WED_MORNING) == co.SessionChoice(TUE)
    for skip in (True, False):
        with pytest.raises(ConfigError) as refused:
            co.resolve_session(WED, skip, WED_MORNING)
        assert "the 2026-11-25 session has not closed yet" in str(refused.value)
        assert "the last closed session is 2026-11-24" in str(refused.value)
    # The half day closes at 13:00 New York (18:00Z): a minute before it is still open, at the close it is not.
    with pytest.raises(ConfigError, match="closes at 13:00 New York"):
        co.resolve_session(FRI, True, dt.datetime(2026, 11, 27, 17, 59, tzinfo=UTC))
    assert co.resolve_session(FRI, True, dt.datetime(2026, 11, 27, 18, 0, tzinfo=UTC)) == co.SessionChoice(FRI)


def test_the_stored_calendar_answers_as_exchange_calendars(db_url):
    """What a serving process asks pl_market_sessions (filled by db upgrade) is what exchange_calendars says."""
    from tickstockpl.market import calendar

    with psycopg.connect(db_url) as conn:
        stored = calendar.StoredCalendar(conn)
        assert stored.between(dt.date(2026, 11, 20), dt.date(2026, 12, 2)) == calendar.sessions_between(
            dt.date(2026, 11, 20), dt.date(2026, 12, 2))
        assert stored.on(dt.date(2026, 11, 26)) is None and stored.on(FRI).is_half_day
        assert stored.is_session(FRI) and not stored.is_session(dt.date(2026, 11, 28))
        for moment in (NOW, WED_MORNING, dt.datetime(2026, 11, 27, 17, 59, tzinfo=UTC)):
            assert stored.last_completed(moment) == calendar.last_completed_session(moment)
        for skip in (True, False):
            assert co.resolve_session(None, skip, WED_MORNING, stored) == co.resolve_session(None, skip, WED_MORNING)


def test_a_run_with_skip_market_check_before_the_close_processes_the_last_closed_session(market, db_url,
                                                                                          monkeypatch):
    """AppV2's historical-data load sends skip_market_check: true at any hour. Before Wednesday's close the
    run processes Tuesday (already imported: nothing to import), and Wednesday's published flat file is not
    imported: its session has not closed."""
    monkeypatch.setenv(clock.ENV, WED_MORNING.isoformat())
    handle = co.trigger_run(market, db_url, phases=["all"], skip_market_check=True, background=False)
    assert handle.session_date == TUE and "has not closed yet" in handle.note and handle.status == "success"
    run, phases = run_row(db_url, handle.run_id)
    assert run.session_date == TUE and phases[0]["counts"]["sessions_imported"] == 0
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM ohlcv_daily WHERE date > %s", (TUE,)).fetchone()[0] == 0
    with pytest.raises(ConfigError, match="has not closed yet"):
        co.trigger_run(market, db_url, session_date=WED, phases=["all"], skip_market_check=True, background=False)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM pl_pipeline_runs").fetchone()[0] == 1


def test_cli_run_prints_json_and_fails_non_zero_on_a_failed_run(market, db_url, capsys, tmp_path):
    from tickstockpl.pipeline.cli import run_from_cli
    from tickstockpl.pipeline.coordinator import PhaseFailed

    summary = run_from_cli(market, date=WED, phases=["data_import"], skip_market_check=False, as_json=True)
    printed = json.loads(capsys.readouterr().out)
    assert printed["run_id"] == summary["run_id"] and printed["status"] == "success"
    assert printed["phase_results"][0]["counts"]["sessions_imported"] == 1
    (tmp_path / "2026-11-27.csv.gz").unlink()
    with pytest.raises(PhaseFailed, match="no flat file for session 2026-11-27"):
        run_from_cli(market, date=FRI, phases=["all"], skip_market_check=False, as_json=False)
    assert "data_import" in capsys.readouterr().out
