"""One real run of everything AppV2 touches: the source of every example in the hand-back form.

`run(db_url, redis_url, workdir, documented=None)` loads the fixed market (tests/handback/market.py),
starts a real `tickstockpl serve` (tests/live_server.py) with a flat-file import provider and its
market clock at `market.NOW`, subscribes
to every channel of events/catalog.py with a real Redis subscriber (tickstockpl.client's
CacheEventListener, plain SUBSCRIBE), and then, in order:

    1. cache-sync API: health; a full sync; its status; a second sync held live by a table lock
       (status while running, a 409 for a third trigger); 401, 404 and 422 answers; history; stats;
       a sync refused by pre-sync validation (the newest session's bars were moved to a flat file);
    2. processing API: the schedule; a pipeline run that fails (the flat file is damaged);
       a run held live by a lock (status while running, 409, cancel); a run that imports the
       session and syncs; history; status when idle; cancel with nothing running; bad phases;
    3. universes: list, members now and `?as_of=`, the change log.

Each recorded call is an `Exchange` keyed by the example id the form uses. When `documented`
(id -> form.HttpExample) is given, the documented method, headers and body are what is sent,
after checking that the documented path is the live one (job and run ids may differ: every
UUID in a path compares equal). Then it waits until every outbox row has reached the subscriber.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import httpx
import psycopg

from tests.handback import market
from tests.live_server import LiveServer
from tests.support.waiting import wait_until
from tickstockpl.client import CacheEventListener
from tickstockpl.events import catalog

KEY = "tickstock-cache-sync-2025"  # AppV2's example key string: the examples show it verbatim
WRONG_KEY = "not-the-right-key"
UNKNOWN_JOB = "00000000-0000-4000-8000-000000000000"
WAIT_S = 90.0  # upper bound for any one thing to happen; never asserted as a duration
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
FINISHED = ("completed", "failed", "error")

ALL_CHANNELS = tuple(sorted({value for name, value in vars(catalog).items()
                             if name.isupper() and isinstance(value, str) and value.startswith("tickstock:")
                             and value != catalog.STREAM_PREFIX}))


@dataclass
class Exchange:
    id: str
    method: str
    path: str
    headers: dict[str, str]
    body: str | None
    status: int
    response: Any


@dataclass
class Capture:
    exchanges: dict[str, Exchange] = field(default_factory=dict)
    events: list[tuple[str, dict]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # documented requests that do not fit the run

    def to_json(self) -> dict[str, Any]:
        return {"exchanges": [vars(e) for e in self.exchanges.values()],
                "events": [{"channel": c, "message": m} for c, m in self.events]}


def same_path(a: str, b: str) -> bool:
    return UUID_RE.sub("{uuid}", a) == UUID_RE.sub("{uuid}", b)


@contextlib.contextmanager
def table_locked(db_url: str, table: str):
    """Hold ACCESS EXCLUSIVE on `table`: work that reads it waits until the block ends, so a job or
    run started meanwhile stays live in a known place (no sleeps, no timing)."""
    with psycopg.connect(db_url) as conn:
        conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
        conn.rollback()


def until(check: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    return wait_until(check, timeout, what)


class Session:
    """Records calls to one running server; applies documented requests when given."""

    def __init__(self, server: LiveServer, documented: dict[str, Any] | None, capture: Capture):
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=30.0)
        self.documented = documented
        self.capture = capture
        self.staged_file: Path | None = None

    def call(self, ex_id: str, method: str, path: str, *, key: str | None = KEY, body: Any = None,
             raw: str | None = None) -> Exchange:
        headers: dict[str, str] = {}
        text = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if text is not None:
            headers["Content-Type"] = "application/json"
        if key is not None:
            headers["X-API-Key"] = key
        if self.documented is not None:
            doc = self.documented.get(ex_id)
            if doc is None:
                self.capture.problems.append(f"example {ex_id} ({method} {path}) is not in the form")
            else:
                if doc.method != method or not same_path(doc.path, path):
                    self.capture.problems.append(
                        f"example {ex_id}: documented {doc.method} {doc.path}, the scenario calls {method} {path}")
                method, headers, text = doc.method, dict(doc.headers), doc.body
        response = self.http.request(method, path, headers=headers,
                                     content=text.encode("utf-8") if text is not None else None)
        try:
            decoded = response.json()
        except ValueError:
            decoded = {"<not json>": response.text[:200]}
        exchange = Exchange(ex_id, method, path, headers, text, response.status_code, decoded)
        if ex_id in self.capture.exchanges:
            raise AssertionError(f"example id {ex_id} recorded twice")
        self.capture.exchanges[ex_id] = exchange
        return exchange

    # -- unrecorded helpers --
    def get(self, path: str) -> Any:
        response = self.http.get(path, headers={"X-API-Key": KEY})
        response.raise_for_status()
        return response.json()

    def job(self, job_id: str) -> dict:
        return self.get(f"/api/processing/cache-sync/status/{job_id}")

    def wait_job(self, job_id: str) -> dict:
        return until(lambda: (lambda j: j if j["status"] in FINISHED else None)(self.job(job_id)),
                     f"cache sync {job_id} to finish")

    def wait_run_idle(self) -> dict:
        return until(lambda: (lambda s: s if not s["is_running"] else None)(self.get("/api/processing/status")),
                     "the pipeline run to finish")

    def close(self) -> None:
        self.http.close()


def run(db_url: str, redis_url: str, workdir: Path, documented: dict[str, Any] | None = None) -> Capture:
    capture = Capture()
    newest, _older = market.load(db_url)
    flat_dir = workdir / "flatfiles"
    flat_dir.mkdir(parents=True, exist_ok=True)
    received: list[tuple[str, dict]] = capture.events
    listener = CacheEventListener(redis_url, channels=ALL_CHANNELS)
    listener.on_any(lambda message, channel: received.append((channel, message)))
    server = LiveServer(db_url, redis_url=redis_url, api_keys=(KEY,),
                        env={"TICKSTOCKPL_FLATFILES_DIR": str(flat_dir), **market.SERVER_ENV})
    listener.start()
    try:
        server.start()
        s = Session(server, documented, capture)
        try:
            _cache_sync_calls(s, db_url, newest, flat_dir)
            _processing_calls(s, db_url)
            _universe_calls(s, newest)
            _wait_for_every_event(db_url, received)
        finally:
            s.close()
    finally:
        server.close()
        listener.stop()
    return capture


def _cache_sync_calls(s: Session, db_url: str, newest, flat_dir: Path) -> None:
    prefix = "/api/processing/cache-sync"
    s.call("health", "GET", "/health", key=None)

    first = s.call("trigger", "POST", f"{prefix}/trigger", body={"mode": "full", "force": False})
    job_id = first.response.get("job_id", UNKNOWN_JOB)
    s.wait_job(job_id)
    s.call("status-completed", "GET", f"{prefix}/status/{job_id}")

    # A delisting, then a sync held live on a lock: status while running, and a conflicting trigger.
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE symbols SET active = false WHERE symbol = %s", (market.DELIST,))
    with table_locked(db_url, "symbols"):
        second = s.call("trigger-market-cap", "POST", f"{prefix}/trigger", body={"mode": "market_cap", "force": False})
        live_id = second.response.get("job_id", UNKNOWN_JOB)
        until(lambda: (lambda j: j["status"] == "running" and (j["progress"] or {}).get("completed_steps") == 0)(
            s.job(live_id)), "the second sync to be running")
        s.call("status-running", "GET", f"{prefix}/status/{live_id}")
        s.call("trigger-conflict", "POST", f"{prefix}/trigger", body={"mode": "full", "force": False})
    s.wait_job(live_id)

    s.call("unauthorized-missing-key", "POST", f"{prefix}/trigger", key=None, body={"mode": "full", "force": False})
    s.call("unauthorized-wrong-key", "GET", f"{prefix}/status/{job_id}", key=WRONG_KEY)
    s.call("not-found", "GET", f"{prefix}/status/{UNKNOWN_JOB}")
    s.call("invalid-mode", "POST", f"{prefix}/trigger", body={"mode": "weekly", "force": False})
    s.call("invalid-force", "POST", f"{prefix}/trigger", body={"mode": "full", "force": "yes"})
    s.call("invalid-json", "POST", f"{prefix}/trigger", raw='{"mode": "full", "force": ')

    # A full sync that also removes the delisted symbol everywhere, then history and stats.
    third = s.call("trigger-force", "POST", f"{prefix}/trigger", body={"mode": "full", "force": True})
    s.wait_job(third.response.get("job_id", UNKNOWN_JOB))
    s.call("history", "GET", f"{prefix}/history?limit=10&offset=0")
    s.call("stats", "GET", f"{prefix}/stats")

    # The newest session's bars leave ohlcv_daily (they become the flat file the pipeline imports
    # later): a sync now is refused by the pre-sync validation, and says why.
    s.staged_file = market.move_session_to_flat_file(db_url, newest, flat_dir)
    refused = s.call("trigger-refused", "POST", f"{prefix}/trigger", body={"mode": "full", "force": False})
    refused_id = refused.response.get("job_id", UNKNOWN_JOB)
    s.wait_job(refused_id)
    s.call("status-failed", "GET", f"{prefix}/status/{refused_id}")


def _processing_calls(s: Session, db_url: str) -> None:
    prefix = "/api/processing"
    s.call("schedule", "GET", f"{prefix}/schedule")
    s.call("schedule-update", "POST", f"{prefix}/schedule", body={"trigger_time": "16:10", "market_check": True})

    # 1. the provider's flat file is damaged (an HTML error page where the gzip should be): the import
    #    fails, the run stops before the cache sync (a file not published yet would make the run wait for
    #    it and, past the deadline, end `incomplete`: issue 14)
    damaged = s.staged_file.with_name(s.staged_file.name.removeprefix(".").removesuffix(".staged"))
    damaged.write_bytes(b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head></html>")
    failed = s.http.post(f"{prefix}/trigger-manual", headers={"X-API-Key": KEY},
                         json={"skip_market_check": False, "phases": ["all"]})
    if failed.is_success:
        s.wait_run_idle()

    # 2. a run held live by a lock on ohlcv_daily (it waits to look for missing sessions):
    #    status while running, a second trigger (409), and cancel
    with table_locked(db_url, "ohlcv_daily"):
        held = s.http.post(f"{prefix}/trigger-manual", headers={"X-API-Key": KEY},
                           json={"skip_market_check": False, "phases": ["all"]})
        if not held.is_success:
            s.capture.problems.append(f"the held pipeline run did not start: {held.status_code} {held.text}")
        s.call("processing-status-running", "GET", f"{prefix}/status")
        s.call("processing-trigger-conflict", "POST", f"{prefix}/trigger-manual",
               body={"skip_market_check": False, "phases": ["all"]})
        s.call("processing-cancel", "DELETE", f"{prefix}/cancel")
    s.wait_run_idle()

    # 3. the file is there: the run imports the session, then syncs the universes (Phase 2.5)
    market.publish_flat_file(s.staged_file)
    started = s.call("processing-trigger", "POST", f"{prefix}/trigger-manual",
                     body={"skip_market_check": False, "phases": ["all"]})
    s.wait_run_idle()
    s.call("processing-run", "GET", f"{prefix}/runs/{started.response.get('run_id', UNKNOWN_JOB)}")

    s.call("processing-status-idle", "GET", f"{prefix}/status")
    s.call("processing-history", "GET", f"{prefix}/history?days=7")
    s.call("processing-cancel-idle", "DELETE", f"{prefix}/cancel")
    s.call("processing-phase-unavailable", "POST", f"{prefix}/trigger-manual",
           body={"skip_market_check": False, "phases": ["pattern_detection"]})
    s.call("processing-invalid-phase", "POST", f"{prefix}/trigger-manual",
           body={"skip_market_check": False, "phases": ["everything"]})
    s.call("processing-unauthorized", "GET", f"{prefix}/status", key=None)


def _universe_calls(s: Session, day) -> None:
    mega = "/api/universes/stock_universe/market_cap/mega_cap"
    s.call("universes", "GET", "/api/universes")
    s.call("universe-members", "GET", mega)
    s.call("universe-as-of", "GET", f"{mega}?as_of={day.isoformat()}")
    s.call("universe-changes", "GET", "/api/universes/changes?universe=stock_universe:market_cap:large_cap&limit=5")


def _wait_for_every_event(db_url: str, received: list) -> None:
    """Every outbox row delivered, and as many messages received as rows written."""
    def delivered() -> int | None:
        with psycopg.connect(db_url) as conn:
            total, pending = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE delivered_at IS NULL) FROM pl_event_outbox").fetchone()
        return total if pending == 0 and len(received) >= total else None

    until(delivered, "every outbox event to reach the subscriber")


# --- choosing the event that illustrates each documented example -----------------------------
def _payload(message: dict) -> dict:
    return message.get("payload") or {}


EVENT_EXAMPLES: dict[str, tuple[str, str, Callable[[dict], bool]]] = {
    "cache_sync_triggered": (catalog.CACHE_SYNC_TRIGGERED, "cache_sync_triggered",
                             lambda m: _payload(m).get("triggered_by") == "api"),
    "cache_sync_completed": (catalog.CACHE_SYNC_COMPLETE, "cache_sync_completed",
                             lambda m: _payload(m).get("status") == "completed" and "run_id" not in _payload(m)),
    "cache_sync_completed-failed": (catalog.CACHE_SYNC_COMPLETE, "cache_sync_completed",
                                    lambda m: _payload(m).get("status") == "failed" and "run_id" not in _payload(m)),
    "universe_updated": (catalog.UNIVERSE_UPDATED, "universe_updated",
                         lambda m: _payload(m).get("universe") == "stock_universe:market_cap:micro_cap"
                         and _payload(m).get("removed", 0) > 0),
    "ipo_assignment": (catalog.IPO_ASSIGNMENT, "ipo_assignment", lambda m: True),
    "delisting_cleanup": (catalog.DELISTING_CLEANUP, "delisting_cleanup", lambda m: True),
    "cache_sync_started": (catalog.CACHE_STARTED, "cache_sync_started", lambda m: "run_id" in _payload(m)),
    "cache_sync_progress": (catalog.CACHE_PROGRESS, "cache_sync_progress",
                            lambda m: _payload(m).get("percent", 100) < 100),
    "cache_sync_phase_completed": (catalog.CACHE_COMPLETED, "cache_sync_completed",
                                   lambda m: "run_id" in _payload(m) and _payload(m).get("status") == "completed"),
    "daily_processing_started": (catalog.PROCESSING_STATUS, "daily_processing_started", lambda m: True),
    "daily_processing_progress": (catalog.PROCESSING_STATUS, "daily_processing_progress",
                                  lambda m: 0 < _payload(m).get("progress", 0) < 100),
    "daily_processing_completed": (catalog.PROCESSING_STATUS, "daily_processing_completed",
                                   lambda m: _payload(m).get("success") is True),
    "daily_processing_completed-failed": (catalog.PROCESSING_STATUS, "daily_processing_completed",
                                          lambda m: _payload(m).get("status") == "failed"),
    "data_import_started": (catalog.IMPORT_STARTED, "data_import_started", lambda m: bool(_payload(m).get("sessions"))),
    "data_import_started-status": (catalog.IMPORT_STATUS, "data_import_started",
                                   lambda m: bool(_payload(m).get("sessions"))),
    "job_progress_update": (catalog.MONITORING, "job_progress_update", lambda m: True),
    "data_import_completed": (catalog.IMPORT_COMPLETED, "data_import_completed",
                              lambda m: _payload(m).get("status") == "completed"),
    "data_import_completed-status": (catalog.IMPORT_STATUS, "data_import_completed",
                                     lambda m: _payload(m).get("status") == "completed"),
    "cache_sync_error": (catalog.ERRORS, "cache_sync_error", lambda m: "run_id" not in _payload(m)),
    "processing_error": (catalog.ERRORS, "processing_error", lambda m: "data import failed" in m.get("message", "")),
    "schedule_updated": (catalog.PROCESSING_SCHEDULE, "schedule_updated", lambda m: True),
}


def pick_event(ex_id: str, events: list[tuple[str, dict]]) -> tuple[str, dict] | None:
    channel, name, wanted = EVENT_EXAMPLES[ex_id]
    for got_channel, message in events:
        if got_channel == channel and message.get("event") == name and wanted(message):
            return got_channel, message
    return None
