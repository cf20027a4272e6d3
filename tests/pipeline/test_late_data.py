"""Issue 14: late and partial provider days, revisions, calendar overrides, open sessions.

The provider is a local HTTP server speaking the grouped-daily format (tests/pipeline/helpers.py
`grouped_body`), whose answer depends on the market clock (TICKSTOCKPL_NOW): it "publishes" part of
the tickers first and the rest later. Time is injected: the completeness gate's sleeper advances the
frozen clock instead of sleeping."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import psycopg
import pytest
from click.testing import CliRunner

from tickstockpl import clock
from tickstockpl.cli import app as cli_app
from tickstockpl.errors import ConfigError, ValidationFailed
from tickstockpl.jobs.runtime import start_job
from tickstockpl.market import overrides
from tickstockpl.market.calendar import StoredCalendar
from tickstockpl.pipeline import catch_up, completeness, coordinator as co, revisions
from tickstockpl.pipeline.imports.rest import RestProvider
from tickstockpl.pipeline.schedule_store import public_schedule
from tickstockpl.pipeline.scheduler import PipelineScheduler
from tests.pipeline.conftest import FRI, TICKERS, TUE, WED
from tests.pipeline.helpers import ProviderServer, good_bars, grouped_body

NY = ZoneInfo("America/New_York")
UTC = dt.timezone.utc
SPLIT = int(len(TICKERS) * 0.4)  # 40 % of the tickers


def ny(day: dt.date, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm), tzinfo=NY).astimezone(UTC)


class PublishingProvider:
    """A local grouped-daily server: for each session, the bars published by the market clock's now."""

    def __init__(self):
        self.publish = {}  # session -> list of (from_utc or None, bars)
        self.requests: list[tuple[str, dt.datetime]] = []
        self.server = ProviderServer(self._answer).start()

    def _answer(self, path: str) -> tuple[int, dict, dict]:
        day = dt.date.fromisoformat(path.split("?")[0].rsplit("/", 1)[1])
        now = clock.now()
        self.requests.append((day.isoformat(), now))
        bars = []
        for since, part in self.publish.get(day, []):
            if since is None or now >= since:
                bars.extend(part)
        return 200, {}, grouped_body(day, bars)

    def provider(self) -> RestProvider:
        return RestProvider("test-key-123", self.server.url, sleep=lambda s: None, max_attempts=1)

    def requests_for(self, day: dt.date) -> list[dt.datetime]:
        return [at for d, at in self.requests if d == day.isoformat()]

    def close(self):
        self.server.close()


@pytest.fixture
def feed():
    server = PublishingProvider()
    yield server
    server.close()


@pytest.fixture
def advance(monkeypatch):
    """The gate's sleeper: moves the frozen market clock forward instead of sleeping."""
    slept = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        monkeypatch.setenv(clock.ENV, (clock.now() + dt.timedelta(seconds=seconds)).isoformat())

    sleep.slept = slept
    return sleep


def at(monkeypatch, moment: dt.datetime) -> None:
    monkeypatch.setenv(clock.ENV, moment.isoformat())


def q(db_url, sql, params=()):
    with psycopg.connect(db_url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def owned_universes(db_url):
    return q(db_url, "SELECT key, value::text FROM cache_entries ORDER BY key")


def outbox_events(db_url, name=None):
    rows = q(db_url, "SELECT event, message FROM pl_event_outbox ORDER BY id")
    return [json.loads(m) for e, m in rows if name is None or e == name]


def initial_universes(db_url):
    """Universes built on Tuesday (the day before the tested session)."""
    handle = start_job(db_url, mode="full", triggered_by="cli", as_of=TUE, background=False)
    assert handle.result is not None and handle.result.universes_updated > 0


# --------------------------------------------------------------------------- the completeness gate

def test_a_late_provider_is_retried_and_the_universes_are_built_once_on_the_full_day(
        market, db_url, feed, advance, monkeypatch):
    bars = good_bars(TICKERS, base=12.0)
    feed.publish[WED] = [(ny(WED, 16, 10), bars[:SPLIT]), (ny(WED, 16, 40), bars[SPLIT:])]
    at(monkeypatch, ny(WED, 16, 10))
    settings = market.with_(import_retry_minutes=15)
    handle = co.trigger_run(settings, db_url, trigger_type="automatic", session_date=WED, phases=["all"],
                            background=False, provider=feed.provider(), sleep=advance)
    assert handle.status == "success", handle.error
    assert feed.requests_for(WED) == [ny(WED, 16, 10), ny(WED, 16, 25), ny(WED, 16, 40)]  # two retries
    assert advance.slept == [900.0, 900.0]
    assert handle.phase_counts["data_import"]["completeness"]["retries"] == 2
    assert q(db_url, "SELECT count(*) FROM pl_pipeline_runs") == [(1,)]
    assert q(db_url, "SELECT count(*) FROM ohlcv_daily WHERE date = %s", (WED,)) == [(len(TICKERS),)]
    jobs = q(db_url, "SELECT as_of FROM pl_sync_jobs")
    assert jobs == [(WED,)]  # the universes were built once, on the full day
    waiting = [e for e in outbox_events(db_url, "job_progress_update") if e["payload"].get("waiting")]
    assert [e["payload"]["attempt"] for e in waiting] == [1, 2]
    assert waiting[0]["payload"]["completeness"]["bars"] == SPLIT
    assert waiting[0]["payload"]["completeness"]["bars_expected"] == len(TICKERS)
    assert waiting[0]["payload"]["next_attempt_at"] == "2026-11-25T21:25:00.000Z"


def test_a_provider_that_never_completes_ends_incomplete_and_the_morning_catch_up_succeeds(
        market, db_url, feed, advance, monkeypatch):
    initial_universes(db_url)
    before = owned_universes(db_url)
    bars = good_bars(TICKERS, base=12.0)
    feed.publish[WED] = [(None, bars[:SPLIT])]
    at(monkeypatch, ny(WED, 16, 10))
    settings = market.with_(import_retry_minutes=15)
    handle = co.trigger_run(settings, db_url, trigger_type="automatic", session_date=WED, phases=["all"],
                            background=False, provider=feed.provider(), sleep=advance)
    assert handle.status == "incomplete"
    assert "still short at the deadline (20:00 New York)" in handle.error and "cache sync not started" in handle.error
    assert feed.requests_for(WED)[-1] == ny(WED, 19, 55) and len(feed.requests_for(WED)) == 16
    run, phases = co.get_run(psycopg.connect(db_url, autocommit=True), handle.run_id)
    assert run.status == "incomplete"
    assert [(p["phase"], p["status"]) for p in phases] == [("data_import", "incomplete"), ("cache_sync", "skipped")]
    assert q(db_url, "SELECT count(*) FROM ohlcv_daily WHERE date = %s", (WED,)) == [(0,)]
    assert owned_universes(db_url) == before  # old universes intact
    completed, = outbox_events(db_url, "daily_processing_completed")
    assert completed["payload"]["status"] == "incomplete" and completed["payload"]["success"] is False
    assert outbox_events(db_url, "processing_error") == []
    # the cache sync never runs on the incomplete session unless forced
    at(monkeypatch, ny(WED, 20, 30))
    with pytest.raises(ValidationFailed, match="no bars for the most recent completed session 2026-11-25"):
        start_job(db_url, mode="full", triggered_by="cli", background=False)
    assert owned_universes(db_url) == before
    # before the morning time nothing is caught up; after it, the session runs again (automatic) and passes
    at(monkeypatch, ny(dt.date(2026, 11, 26), 7, 0))
    assert catch_up.catch_up_due(settings, db_url) is None
    feed.publish[WED].append((None, bars[SPLIT:]))
    at(monkeypatch, ny(dt.date(2026, 11, 26), 8, 5))
    run_id = catch_up.catch_up_due(settings, db_url, background=False, provider=feed.provider(), sleep=advance)
    assert run_id is not None
    assert q(db_url, "SELECT status FROM pl_pipeline_runs WHERE run_id = %s", (run_id,)) == [("success",)]
    assert q(db_url, "SELECT trigger_type, session_date, status FROM pl_pipeline_runs ORDER BY start_time") == [
        ("automatic", WED, "incomplete"), ("automatic", WED, "success")]
    assert owned_universes(db_url) != before
    assert catch_up.catch_up_due(settings, db_url) is None  # once


def test_no_bars_on_an_open_day_is_reported_as_no_data_from_the_provider(market, db_url, feed, advance,
                                                                         monkeypatch):
    at(monkeypatch, ny(WED, 19, 55))
    handle = co.trigger_run(market, db_url, session_date=WED, phases=["data_import"], background=False,
                            provider=feed.provider(), sleep=advance)
    assert handle.status == "incomplete"
    assert "no data from the provider for session 2026-11-25" in handle.error
    assert "tickstockpl calendar close 2026-11-25" in handle.error


def test_import_settings_are_checked():
    from tickstockpl.settings import Settings

    with pytest.raises(ConfigError, match="TICKSTOCKPL_IMPORT_DEADLINE must be HH:MM"):
        Settings.from_env({"TICKSTOCKPL_IMPORT_DEADLINE": "25:00"}, dotenv=None)
    with pytest.raises(ConfigError, match="TICKSTOCKPL_IMPORT_MIN_RATIO"):
        Settings.from_env({"TICKSTOCKPL_IMPORT_MIN_RATIO": "1.5"}, dotenv=None)
    s = Settings.from_env({"TICKSTOCKPL_IMPORT_RETRY_MINUTES": "15", "TICKSTOCKPL_IMPORT_DEADLINE": "21:30"},
                          dotenv=None)
    policy = completeness.Policy.from_settings(s)
    assert policy.retry_minutes == 15 and policy.deadline_for(WED) == ny(WED, 21, 30)


# --------------------------------------------------------------------------- revisions

def test_a_revision_of_30_closes_is_recorded_resynced_and_published(market, db_url, feed, monkeypatch,
                                                                      redis_process):
    handle = co.trigger_run(market, db_url, session_date=FRI, phases=["all"], background=False)
    assert handle.status == "success", handle.error
    jobs_before = q(db_url, "SELECT count(*) FROM pl_sync_jobs")[0][0]
    bars = good_bars(TICKERS, base=12.0)
    revised = [(t, o, h, l, c - 0.25 if i < 30 else c, v) for i, (t, o, h, l, c, v) in enumerate(bars)]
    feed.publish[FRI] = [(None, revised)]
    report = revisions.revise(market, db_url, [FRI], provider=feed.provider(), trigger="cli")
    assert report.revisions == 30 and report.by_session == {"2026-11-27": 30}
    rows = q(db_url, "SELECT symbol, session_date, old_close, new_close, old_volume, new_volume FROM pl_bar_revisions"
                     " ORDER BY symbol")
    assert len(rows) == 30
    first = next(r for r in rows if r[0] == TICKERS[0])
    assert (float(first[2]), float(first[3]), first[4], first[5]) == (12.5, 12.25, 1000, 1000)
    assert q(db_url, "SELECT close FROM ohlcv_daily WHERE symbol = %s AND date = %s", (TICKERS[0], FRI)) == [(12.25,)]
    assert q(db_url, "SELECT count(*) FROM pl_sync_jobs")[0][0] == jobs_before + 1
    assert report.sync_job_id is not None
    event, = outbox_events(db_url, "data_revised")
    assert event["payload"]["revisions"] == 30 and event["payload"]["sessions"] == ["2026-11-27"]
    assert event["payload"]["sync_job_id"] == report.sync_job_id
    assert {"symbol": TICKERS[0], "session_date": "2026-11-27", "old_close": 12.5, "new_close": 12.25,
            "old_volume": 1000, "new_volume": 1000} in event["payload"]["sample"]
    # the relay delivers it to Redis: the channel's stream holds the same message
    import redis

    from tickstockpl.events import catalog
    from tickstockpl.events.relay import relay_once

    relay_once(db_url, redis_process.url)
    client = redis.Redis.from_url(redis_process.url)
    try:
        streamed = [json.loads(fields[b"message"]) for _id, fields in
                    client.xrange(catalog.stream_for(catalog.DATA_REVISIONS))
                    if fields.get(b"channel") == catalog.DATA_REVISIONS.encode()]
    finally:
        client.close()
    assert [m["event"] for m in streamed] == ["data_revised"] and streamed[0]["payload"]["revisions"] == 30
    # the same answer again: nothing revised, no sync, no event
    again = revisions.revise(market, db_url, [FRI], provider=feed.provider(), trigger="cli")
    assert again.revisions == 0 and again.sync_job_id is None
    assert len(outbox_events(db_url, "data_revised")) == 1
    assert q(db_url, "SELECT count(*) FROM pl_sync_jobs")[0][0] == jobs_before + 1


def test_a_pass_that_stopped_before_its_event_is_finished_by_the_next_pass(market, db_url, feed, monkeypatch):
    """The revisions committed, then the process stopped before the pass's totals and event: re-fetching
    finds nothing to revise, so the next pass finishes the earlier one first (re-sync, its own event)."""
    handle = co.trigger_run(market, db_url, session_date=FRI, phases=["all"], background=False)
    assert handle.status == "success", handle.error
    bars = good_bars(TICKERS, base=12.0)
    feed.publish[FRI] = [(None, [(t, o, h, l, c - 0.25 if i < 5 else c, v) for i, (t, o, h, l, c, v)
                                 in enumerate(bars)])]
    real_finish, real_resync = revisions._finish, revisions._resync

    def stopped(conn, report, trigger):
        raise KeyboardInterrupt  # the process stops between the revisions and the last transaction

    monkeypatch.setattr(revisions, "_finish", stopped)
    monkeypatch.setattr(revisions, "_resync", lambda db_url, settings, report: None)
    with pytest.raises(KeyboardInterrupt):
        revisions.revise(market, db_url, [FRI], provider=feed.provider(), trigger="cli")
    first, = q(db_url, "SELECT batch_id::text, revisions FROM pl_revision_passes")
    assert first[1] == 0 and q(db_url, "SELECT count(*) FROM pl_bar_revisions")[0][0] == 5
    assert outbox_events(db_url, "data_revised") == []

    monkeypatch.setattr(revisions, "_finish", real_finish)
    monkeypatch.setattr(revisions, "_resync", real_resync)
    jobs_before = q(db_url, "SELECT count(*) FROM pl_sync_jobs")[0][0]
    again = revisions.revise(market, db_url, [FRI], provider=feed.provider(), trigger="cli")
    assert again.revisions == 0  # the provider's answer is already stored
    event, = outbox_events(db_url, "data_revised")
    assert event["payload"]["revisions"] == 5 and event["payload"]["sessions"] == ["2026-11-27"]
    assert event["payload"]["by_session"] == {"2026-11-27": 5} and event["payload"]["sync_job_id"] is not None
    assert event["payload"]["trigger"] == "cli"  # the earlier pass's own trigger
    assert q(db_url, "SELECT revisions FROM pl_revision_passes WHERE batch_id = %s", (first[0],)) == [(5,)]
    assert q(db_url, "SELECT count(*) FROM pl_sync_jobs")[0][0] == jobs_before + 1  # the earlier pass's re-sync
    third = revisions.revise(market, db_url, [FRI], provider=feed.provider(), trigger="cli")
    assert third.revisions == 0 and len(outbox_events(db_url, "data_revised")) == 1  # finished once


def test_the_scheduled_revisions_pass_runs_once_a_morning(market, db_url, feed, monkeypatch):
    handle = co.trigger_run(market, db_url, session_date=FRI, phases=["all"], background=False)
    assert handle.status == "success", handle.error
    feed.publish[FRI] = [(None, good_bars(TICKERS, base=12.0))]
    feed.publish[WED] = [(None, good_bars(TICKERS, base=12.0))]
    monday = dt.date(2026, 11, 30)
    assert revisions.scheduled_pass_due(market, db_url, ny(monday, 7, 0), provider=feed.provider()) is None
    batch = revisions.scheduled_pass_due(market, db_url, ny(monday, 8, 30), provider=feed.provider())
    assert batch is not None
    assert q(db_url, "SELECT sessions FROM pl_revision_passes WHERE batch_id = %s", (batch,)) == [([TUE, WED, FRI],)]
    assert revisions.scheduled_pass_due(market, db_url, ny(monday, 9, 0), provider=feed.provider()) is None


def test_revise_refuses_a_session_that_has_not_closed(market, db_url, feed, monkeypatch):
    at(monkeypatch, ny(WED, 15, 0))
    with pytest.raises(ConfigError, match="the 2026-11-25 session has not closed yet .* the last closed session is"
                                          " 2026-11-24"):
        revisions.revise(market, db_url, [WED], provider=feed.provider())
    result = CliRunner().invoke(cli_app, ["--database-url", db_url, "pipeline", "revise", "--session", "2026-11-25"])
    assert result.exit_code == 2 and "has not closed yet" in result.output


# --------------------------------------------------------------------------- calendar overrides

def test_an_override_closure_means_no_run_and_next_run_skips_it(market, db_url, monkeypatch):
    monday = dt.date(2026, 11, 30)
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert public_schedule(conn)["next_run"] == "2026-11-30T21:10:00.000Z"
    result = CliRunner().invoke(cli_app, ["--database-url", db_url, "calendar", "close", "2026-11-30",
                                          "--reason", "day of mourning"])
    assert result.exit_code == 0, result.output
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert public_schedule(conn)["next_run"] == "2026-12-01T21:10:00.000Z"
        assert StoredCalendar(conn).on(monday) is None
    # at 16:15 on the closed Monday the scheduler starts nothing
    at(monkeypatch, ny(monday, 16, 15))
    scheduler = PipelineScheduler(market.with_(flatfiles_dir=None), db_url)
    assert scheduler.refresh() == ny(dt.date(2026, 12, 1), 16, 10)
    assert scheduler.last_started is None
    assert q(db_url, "SELECT count(*) FROM pl_pipeline_runs") == [(0,)]
    # the market check refuses the day, naming the reason
    with pytest.raises(ConfigError, match="2026-11-30 is not an NYSE session"):
        co.trigger_run(market, db_url, session_date=monday, phases=["all"], background=False)
    listed = CliRunner().invoke(cli_app, ["--database-url", db_url, "calendar", "list", "--json"])
    assert json.loads(listed.output) == [{"date": "2026-11-30", "kind": "closed", "close_time": None,
                                          "reason": "day of mourning"}]
    removed = CliRunner().invoke(cli_app, ["--database-url", db_url, "calendar", "remove", "2026-11-30"])
    assert removed.exit_code == 0
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert StoredCalendar(conn).on(monday) is not None


def test_an_early_close_moves_the_close_for_every_question(market, db_url, monkeypatch):
    monday = dt.date(2026, 11, 30)
    with psycopg.connect(db_url, autocommit=True) as conn:
        overrides.set_override(conn, monday, "early_close", "13:00", "short notice")
        assert StoredCalendar(conn).on(monday).close_utc == ny(monday, 13)
        choice = co.resolve_session(None, False, now_utc=ny(monday, 13, 30), calendar=StoredCalendar(conn))
        assert choice.day == monday
        # the sync's own statement sees it too
        assert conn.execute("SELECT close_utc FROM pl_sessions_effective WHERE session = %s",
                            (monday,)).fetchone() == (ny(monday, 13),)


@pytest.mark.parametrize("args, message", [
    (["close", "2026-13-01"], "DATE must be a real date"),
    (["early-close", "2026-11-30", "--at", "17:30"], "an early close must lie between 09:30 and 16:00"),
    (["early-close", "2026-11-30", "--at", "1pm"], "close_time must be HH:MM"),
    (["remove", "2026-11-30"], "no calendar override on 2026-11-30"),
])
def test_bad_overrides_are_one_clear_line_and_write_nothing(db_url, args, message):
    result = CliRunner().invoke(cli_app, ["--database-url", db_url, "calendar", *args])
    assert result.exit_code != 0 and message in result.output
    assert q(db_url, "SELECT count(*) FROM pl_calendar_overrides") == [(0,)]


# --------------------------------------------------------------------------- open sessions

def test_skip_market_check_during_the_session_is_refused_with_the_session_to_use(market, db_url, monkeypatch):
    at(monkeypatch, ny(WED, 15, 0))
    with pytest.raises(ConfigError, match="the 2026-11-25 session has not closed yet .* the last closed session is"
                                          " 2026-11-24"):
        co.trigger_run(market, db_url, trigger_type="automatic", session_date=WED, phases=["all"],
                       skip_market_check=True, background=False)
    assert q(db_url, "SELECT count(*) FROM pl_pipeline_runs") == [(0,)]


def test_the_scheduled_revisions_pass_skips_days_that_are_no_session(market, db_url, feed):
    saturday = dt.date(2026, 11, 28)
    assert revisions.scheduled_pass_due(market, db_url, ny(saturday, 9, 0), provider=feed.provider()) is None
    assert feed.requests == [] and q(db_url, "SELECT count(*) FROM pl_revision_passes") == [(0,)]


def test_overrides_over_the_processing_api_need_the_key_and_move_next_run(market, db_url, redis_process):
    from tests.support.asgi import InProcessServer

    key = "late-data-test-key-01"
    with InProcessServer(db_url, redis_url=redis_process.url, api_keys=(key,)) as app, app.client() as client:
        path = "/api/processing/calendar/overrides"
        assert client.get(path, headers={"X-API-Key": "wrong-key-000"}).status_code == 401
        assert client.get(path).json() == {"overrides": [], "next_run": "2026-11-30T21:10:00.000Z"}
        added = client.post(path, json={"date": "2026-11-30", "kind": "closed", "reason": "mourning"})
        assert added.status_code == 200, added.text
        assert added.json()["next_run"] == "2026-12-01T21:10:00.000Z"
        assert client.get("/api/processing/schedule").json()["next_run"] == "2026-12-01T21:10:00.000Z"
        bad = client.post(path, json={"date": "2026-12-01", "kind": "holiday"})
        assert bad.status_code == 422 and "kind must be one of closed, early_close" in bad.json()["message"]
        early = client.post(path, json={"date": "2026-12-01", "kind": "early_close", "close_time": "13:00"})
        assert early.status_code == 200 and early.json()["override"]["close_time"] == "13:00"
        assert early.json()["next_run"] == "2026-12-01T21:10:00.000Z"  # an early close still runs at 16:10
        assert [o["date"] for o in client.get(path).json()["overrides"]] == ["2026-11-30", "2026-12-01"]
        assert client.delete(f"{path}/2026-11-30").status_code == 200
        assert client.delete(f"{path}/2026-11-30").status_code == 404
        assert client.get(path).json()["next_run"] == "2026-11-30T21:10:00.000Z"


def test_an_incomplete_run_reads_as_incomplete_over_the_api(market, db_url, redis_process, monkeypatch):
    """No Wednesday flat file yet at 19:55 New York: one attempt, then `incomplete` in status and history."""
    import time

    from tests.support.asgi import InProcessServer

    (market.flatfiles_dir / "2026-11-25.csv.gz").unlink()
    key = "late-data-test-key-02"
    at(monkeypatch, ny(WED, 19, 55))  # the market clock of the app in process
    env = {"TICKSTOCKPL_FLATFILES_DIR": str(market.flatfiles_dir)}
    with InProcessServer(db_url, redis_url=redis_process.url, api_keys=(key,), env=env) as app, \
            app.client() as client:
        started = client.post("/api/processing/trigger-manual", json={"phases": ["all"]})
        assert started.status_code == 202, started.text
        deadline = time.monotonic() + 60
        while client.get("/api/processing/status").json()["is_running"] and time.monotonic() < deadline:
            time.sleep(0.1)
        status = client.get("/api/processing/status").json()
        detail = client.get(f"/api/processing/runs/{started.json()['run_id']}").json()
        assert status["status"] == "incomplete" and status["last_run_status"] == "incomplete", detail["error"]
        assert client.get("/api/processing/history").json()["runs"][0]["status"] == "incomplete"
        detail = client.get(f"/api/processing/runs/{started.json()['run_id']}").json()
        assert "no data from the provider for session 2026-11-25" in detail["error"]
        assert [p["status"] for p in detail["phase_results"]] == ["incomplete", "skipped"]


def test_the_scheduler_catches_up_an_incomplete_session_the_next_morning(market, db_url, monkeypatch, tmp_path):
    """Flat files: Wednesday's file is not there by the deadline (incomplete), it arrives overnight, and the
    scheduler's morning refresh runs the session again (automatic), which succeeds."""
    import time

    from tests.pipeline.helpers import write_flat

    wed_file = market.flatfiles_dir / "2026-11-25.csv.gz"
    wed_file.unlink()
    at(monkeypatch, ny(WED, 19, 55))
    first = co.trigger_run(market, db_url, trigger_type="automatic", session_date=WED, phases=["all"],
                           background=False)
    assert first.status == "incomplete"
    write_flat(market.flatfiles_dir, WED, good_bars(TICKERS, base=12.0))
    at(monkeypatch, ny(dt.date(2026, 11, 26), 8, 5))  # Thanksgiving morning
    scheduler = PipelineScheduler(market, db_url)
    scheduler.refresh()
    assert scheduler.last_started is not None and scheduler.last_started != first.run_id
    deadline = time.monotonic() + 60
    with psycopg.connect(db_url, autocommit=True) as conn:
        while co.is_running(conn) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert q(db_url, "SELECT trigger_type, session_date, status FROM pl_pipeline_runs ORDER BY start_time") == [
        ("automatic", WED, "incomplete"), ("automatic", WED, "success")]
    scheduler.refresh()
    assert q(db_url, "SELECT count(*) FROM pl_pipeline_runs") == [(2,)]  # caught up once
    assert q(db_url, "SELECT count(*) FROM pl_revision_passes") == [(0,)]  # no pass on a holiday


def test_a_cancel_while_waiting_for_the_provider_stops_the_run(market, db_url, feed, monkeypatch):
    feed.publish[WED] = [(None, good_bars(TICKERS, base=12.0)[:SPLIT])]
    at(monkeypatch, ny(WED, 16, 10))

    def operator_cancels(seconds: float) -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            co.cancel_current(conn)

    handle = co.trigger_run(market, db_url, session_date=WED, phases=["all"], background=False,
                            provider=feed.provider(), sleep=operator_cancels)
    assert handle.status == "cancelled" and len(feed.requests_for(WED)) == 1
    run, phases = co.get_run(psycopg.connect(db_url, autocommit=True), handle.run_id)
    assert [(p["phase"], p["status"]) for p in phases] == [("data_import", "cancelled"), ("cache_sync", "skipped")]


def test_the_default_sleeper_returns_early_on_a_cancel():
    calls = []
    sleep = completeness._sleeper(lambda: calls.append(1) or True)
    sleep(3600)  # returns at once: the cancel is asked before the first step
    assert calls == [1]
