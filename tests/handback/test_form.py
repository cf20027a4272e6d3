"""The hand-back form (docs/TickStockAppV2_integration_callback.md) against the real service.

Every HTTP example is sent, as documented, to a freshly started real server (tests/handback/scenario.py
drives a real sync and pipeline run around them) and the real answer must match the documented one in
status code and in field names and JSON types, recursively. Every documented event must match one
captured from a real Redis during that run (channel, event name, field names and types), and every kind
of event the run publishes must be documented. The AppV2 integration code in the form is compiled, and
its plain parts are run: the route helpers against a live server, the subscriber handlers on the
captured events. When the service changes, this fails until the form is refreshed with
`.venv/bin/python -m tests.handback.capture --update-form`.
"""

from __future__ import annotations

import ast
import logging
import re
import uuid
from pathlib import Path

import pytest

from tests.handback import form, scenario, shapes
from tests.handback.conftest import KEY
from tests.handback.scenario import table_locked, until
from tests.servers import RedisProcess, free_port
from tickstockpl.events import catalog

FORM = Path(__file__).resolve().parents[2] / "docs" / "TickStockAppV2_integration_callback.md"
SEED_HEADINGS = (  # the seed form's sections, in its order (its emoji arrived garbled; the words did not)
    "TickStockPL Developer - Complete and Return This Document",
    "Migration Completion Checklist",
    "Implementation Details",
    "1. Final File Locations in TickStockPL",
    "2. API Endpoints for TickStockAppV2",
    "Trigger Cache Sync",
    "Check Cache Sync Status",
    "3. Redis Events Published",
    "4. Configuration Required for TickStockAppV2",
    "TickStockAppV2 Integration Code",
    "Update for admin_historical_data.py",
    "Update for Processing Event Subscriber",
    "Files to Delete from TickStockAppV2",
    "Performance Metrics",
    "Any Issues or Changes?",
    "Additional Notes for TickStockAppV2 Team",
    "Final Confirmation",
)

TEXT = FORM.read_text(encoding="utf-8")
EXAMPLES = {e.id: e for e in form.parse_examples(TEXT)}
EVENTS = {e.id: e for e in form.parse_events(TEXT)}
CODE = form.code_blocks(TEXT)


@pytest.fixture(scope="module")
def live(pg, schema_template, tmp_path_factory) -> scenario.Capture:
    """One real run of the scenario, sending the documented requests."""
    name = pg.create_database("hb_form_run", template=schema_template)
    redis = RedisProcess().start()
    try:
        return scenario.run(pg.url(name), redis.url, tmp_path_factory.mktemp("form"), documented=EXAMPLES)
    finally:
        redis.close()
        pg.drop_database(name)


# --- the document itself ----------------------------------------------------------------------
def test_the_form_has_the_seed_sections_in_order_and_no_blank_left():
    headings = [re.sub(r"^[^\w]*", "", line.lstrip("#").strip()) for line in TEXT.splitlines()
                if line.startswith("#")]
    positions = []
    for wanted in SEED_HEADINGS:
        assert wanted in headings, f"section {wanted!r} of the seed form is missing"
        positions.append(headings.index(wanted))
    assert positions == sorted(positions)
    assert "____" not in TEXT and "// Fill in" not in TEXT and "~X" not in TEXT
    assert not [h for h in TEXT.splitlines() if h.startswith("#") and "‚" in h]  # no mojibake in the headings


def test_the_form_parses_and_names_the_channels_of_the_contract():
    assert len(EXAMPLES) >= 30 and len(EVENTS) >= 15
    documented_channels = {e.channel for e in EVENTS.values()}
    assert set(catalog.CACHE_SYNC_CHANNELS) <= documented_channels
    assert documented_channels <= set(scenario.ALL_CHANNELS)
    assert set(catalog.CACHE_SYNC_CHANNELS) == {
        "tickstock:cache:sync_triggered", "tickstock:cache:sync_complete", "tickstock:universe:updated",
        "tickstock:cache:ipo_assignment", "tickstock:cache:delisting_cleanup"}


CONTRACT_FIELDS = {  # contract §2: the fields AppV2 reads must be in the documented answers
    "trigger": {"success", "job_id", "mode", "message"},
    "status-completed": {"job_id", "mode", "status", "created_at", "start_time", "end_time", "duration_seconds",
                         "triggered_by", "error_details", "progress"},
    "history": {"jobs", "total", "limit", "offset"},
    "stats": {"universes", "job_statistics"},
    "processing-trigger": {"run_id", "status", "message"},
    "processing-status-running": {"is_running", "run_id", "current_phase", "progress", "symbols_processed",
                                  "symbols_total", "start_time", "estimated_completion"},
    "processing-history": {"runs"},
    "processing-cancel": {"message"},
    "schedule": {"enabled", "trigger_time", "timezone", "next_run", "universes", "market_check"},
    "health": {"status", "services", "processing_status", "version"},
    "trigger-conflict": {"success", "job_id", "message"},
}


def test_documented_answers_carry_every_field_appv2_reads():
    for ex_id, fields in CONTRACT_FIELDS.items():
        assert fields <= set(EXAMPLES[ex_id].response), ex_id
    assert EXAMPLES["trigger"].status == 202 and EXAMPLES["trigger-conflict"].status == 409
    job = EXAMPLES["history"].response["jobs"][0]
    assert {"job_id", "mode", "status", "created_at", "start_time", "end_time", "duration_seconds",
            "triggered_by", "has_errors"} <= set(job)
    assert {"universe", "type", "symbol_count", "last_updated"} <= set(EXAMPLES["stats"].response["universes"][0])
    assert {"total_jobs_7d", "successful_jobs_7d", "failed_jobs_7d", "avg_duration_seconds"} <= set(
        EXAMPLES["stats"].response["job_statistics"])
    run = EXAMPLES["processing-history"].response["runs"][0]
    assert {"run_id", "trigger_type", "status", "start_time", "end_time", "duration_seconds", "symbols_processed",
            "symbols_failed", "patterns_detected", "indicators_calculated"} <= set(run)
    for ex_id in ("unauthorized-missing-key", "unauthorized-wrong-key", "not-found", "invalid-mode"):
        assert EXAMPLES[ex_id].response["success"] is False and EXAMPLES[ex_id].response["message"]
    assert {e.status for e in EXAMPLES.values()} >= {200, 202, 401, 404, 409, 422}


def test_every_python_block_compiles():
    blocks = form.python_blocks(TEXT)
    assert len(blocks) >= 3 and set(CODE) == {"appv2-pl-helpers", "appv2-routes", "appv2-subscriber"}
    for block in blocks:
        ast.parse(block)


# --- HTTP examples against the live run --------------------------------------------------------
def test_every_call_of_the_run_is_documented_and_every_example_is_sent(live):
    assert live.problems == []
    assert set(live.exchanges) == set(EXAMPLES)


@pytest.mark.parametrize("ex_id", sorted(EXAMPLES))
def test_http_example_matches_the_live_answer(live, ex_id):
    documented, got = EXAMPLES[ex_id], live.exchanges.get(ex_id)
    assert got is not None, f"the run did not send {ex_id}"
    assert got.headers == documented.headers and got.body == documented.body  # sent as documented
    assert got.status == documented.status, got.response
    assert shapes.mismatches(documented.response, got.response) == [], got.response


# --- events against the live run ---------------------------------------------------------------
@pytest.mark.parametrize("ev_id", sorted(EVENTS))
def test_documented_event_was_published(live, ev_id):
    documented = EVENTS[ev_id]
    name = documented.message.get("event")
    same_kind = [m for c, m in live.events if c == documented.channel and m.get("event") == name]
    assert same_kind, f"nothing published as {name} on {documented.channel}"
    problems = [shapes.mismatches(documented.message, m) for m in same_kind]
    assert any(not p for p in problems), min(problems, key=len)
    assert documented.message["timestamp"].endswith("Z") and documented.message["version"] == "1.0"


def test_every_kind_of_event_published_is_documented(live):
    published = {(c, m.get("event")) for c, m in live.events}
    documented = {(e.channel, e.message.get("event")) for e in EVENTS.values()}
    assert published - documented == set()
    assert all(m.get("timestamp", "").endswith("Z") for _c, m in live.events)


# --- AppV2's integration code ------------------------------------------------------------------
def _load(block: str) -> dict:
    namespace: dict = {"__name__": "appv2_snippet"}
    exec(compile(CODE[block], f"<form:{block}>", "exec"), namespace)  # noqa: S102 - our own document
    return namespace


def test_route_helpers_work_against_a_live_server(server):
    pl = _load("appv2-pl-helpers")
    assert pl["tickstockpl_base_url"]({"TICKSTOCKPL_HOST": "tickstockpl", "TICKSTOCKPL_PORT": 8080}) \
        == "http://tickstockpl:8080"
    accepted, status, body = pl["start_cache_sync"](server.url, KEY)
    assert (accepted, status) == (True, 202) and uuid.UUID(body["job_id"])
    final = until(lambda: (lambda st: st[1] if st[1]["status"] in ("completed", "failed") else None)(
        pl["fetch_cache_sync_status"](server.url, KEY, body["job_id"])), "the sync to finish")
    assert final["status"] == "completed"

    with table_locked(server.env["DATABASE_URL"], "symbols"):
        first = pl["start_cache_sync"](server.url, KEY)
        again = pl["start_cache_sync"](server.url, KEY)
        assert again[:2] == (False, 409) and again[2]["job_id"] == first[2]["job_id"]
    until(lambda: pl["fetch_cache_sync_status"](server.url, KEY, first[2]["job_id"])[1]["status"] == "completed",
          "the held sync to finish")

    assert pl["start_cache_sync"](server.url, "wrong-key-000000")[:2] == (False, 401)
    assert pl["start_cache_sync"](server.url, KEY, mode="weekly")[:2] == (False, 422)
    assert pl["fetch_cache_sync_status"](server.url, KEY, str(uuid.uuid4()))[0] == 404
    assert pl["fetch_cache_sync_status"](server.url, KEY, "../health")[0] == 404
    down = pl["start_cache_sync"](f"http://127.0.0.1:{free_port()}", KEY)
    assert down[:2] == (False, None) and "unreachable" in down[2]["message"]


def test_subscriber_handlers_process_every_captured_event(live):
    snippet = _load("appv2-subscriber")
    assert snippet["CACHE_SYNC_CHANNELS"] == list(catalog.CACHE_SYNC_CHANNELS)
    assert snippet["CACHE_PHASE_CHANNELS"] == [catalog.CACHE_STARTED, catalog.CACHE_PROGRESS, catalog.CACHE_COMPLETED]

    class Pushed:
        def __init__(self):
            self.sent: list[tuple[str, dict]] = []

        def emit(self, name, data):
            self.sent.append((name, data))

    class Subscriber(snippet["TickStockPLCacheEvents"]):
        def __init__(self):
            self.logger = logging.getLogger("appv2.processing_subscriber")
            self.socketio = Pushed()
            self.reloads = 0
            self.init_cache_sync_state()

        def reload_universes(self):
            self.reloads += 1

    sub = Subscriber()
    handled = 0
    for channel, message in live.events:
        if channel in snippet["CACHE_SYNC_CHANNELS"]:
            sub._handle_cache_sync_event(message)
            handled += 1
        elif channel in snippet["CACHE_PHASE_CHANNELS"]:
            sub._handle_cache_phase_event(message)
            handled += 1
    assert handled and len(sub.socketio.sent) == handled
    finals = {m["payload"]["job_id"]: m["payload"] for c, m in live.events if c == catalog.CACHE_SYNC_COMPLETE}
    for job_id, payload in finals.items():
        assert sub.cache_sync_jobs[job_id]["status"] == payload["status"]
    assert sub.reloads == sum(1 for p in finals.values() if p["status"] == "completed" and p["total_changes"])
    assert sub.recent_universe_changes


# --- docs/EVENTS.md, the field reference -------------------------------------------------------
EVENTS_DOC = FORM.parent / "EVENTS.md"


def event_reference() -> dict[str, tuple[set[str], dict[str, str]]]:
    """event name -> (channels in its heading, {field: when}) from the tables of docs/EVENTS.md."""
    found: dict[str, tuple[set[str], dict[str, str]]] = {}
    current = None
    for line in EVENTS_DOC.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^### `(\w+)` — (.+)$", line)
        if heading:
            current = heading.group(1)
            found[current] = (set(re.findall(r"`([^`]+)`", heading.group(2))), {})
            continue
        row = re.match(r"^\| (`[^|]+`) \| [^|]+ \| ([^|]+) \|", line)
        if row and current:
            for name in re.findall(r"`(\w+)`", row.group(1)):
                found[current][1][name] = row.group(2).strip()
    return found


def test_events_reference_lists_every_payload_field_of_the_run(live):
    reference = event_reference()
    for channel, message in live.events:
        name = message["event"]
        assert name in reference, f"{name} is not in docs/EVENTS.md"
        channels, fields = reference[name]
        assert channel in channels, f"{name}: channel {channel} not in its heading"
        payload = set(message["payload"])
        assert payload - set(fields) == set(), f"{name}: fields not in docs/EVENTS.md"
        always = {f for f, when in fields.items() if when == "always"}
        assert always - payload == set(), f"{name}: 'always' fields missing from a real event"
        if name == "processing_error":
            assert {"error_id", "severity", "message", "component", "context"} <= set(message)
