"""The hand-back form (docs/TickStockAppV2_integration_callback.md), docs/API.md and docs/EVENTS.md against
the real service.

Every HTTP example of the three documents is sent, as documented, to a freshly started real server
(tests/handback/scenario.py drives a real sync and pipeline run around them) and the real answer must match
the documented one in status code and in field names and JSON types, recursively. Every documented event
must match one captured from a real Redis during that run (channel, event name, field names and types), and
every kind of event the run publishes must be documented. An example quoted in two documents is the same in
both. The AppV2 integration code in the form is compiled, and its plain module is run: the API calls against
a live server, the event state and the handlers AppV2's processing_event_subscriber lacks on the captured
events; its blueprint, page and edits are checked to name what the other parts define. When the service
changes, this fails until the documents are refreshed with `.venv/bin/python -m tests.handback.capture
--update-form`.
"""

from __future__ import annotations

import ast
import html.parser
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
DOCUMENTS = {path.name: path.read_text(encoding="utf-8")
             for path in (FORM, FORM.parent / "API.md", FORM.parent / "EVENTS.md")}
QUOTED = {name: ({e.id: e for e in form.parse_examples(text)}, {e.id: e for e in form.parse_events(text)})
          for name, text in DOCUMENTS.items()}
EXAMPLES = {k: v for examples, _events in QUOTED.values() for k, v in examples.items()}
EVENTS = {k: v for _examples, events in QUOTED.values() for k, v in events.items()}
CODE = form.code_blocks(TEXT)
TEMPLATE = re.search(r"<!-- template: appv2-admin-page -->\n```html\n(.*?)\n```", TEXT, re.S)


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


def test_an_example_quoted_in_two_documents_is_the_same_in_both():
    for name, (examples, events) in QUOTED.items():
        for ex_id, example in examples.items():
            assert example == EXAMPLES[ex_id], f"{name}: example {ex_id} differs from its twin"
        for ev_id, event in events.items():
            assert event == EVENTS[ev_id], f"{name}: event {ev_id} differs from its twin"
    api_examples, _ = QUOTED["API.md"]
    _, reference_events = QUOTED["EVENTS.md"]
    assert set(EXAMPLES) == set(api_examples) and set(EVENTS) == set(reference_events)  # the exhaustive ones
    assert {"trigger", "status-completed"} <= set(QUOTED[FORM.name][0])  # the seed form's two endpoints


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
    assert len(blocks) >= 5 and set(CODE) == {"appv2-tickstockpl-service", "appv2-admin-blueprint"}
    for block in blocks:
        ast.parse(block)


def _defined(block: str) -> set[str]:
    tree = ast.parse(CODE[block])
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    return names | {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}


def test_the_new_files_and_the_edits_name_what_each_other_defines():
    """New file 2 imports from new file 1, the page calls new file 2's routes, and the edits import what the
    new files define; every new file says where it goes (a path that does not exist at AppV2's HEAD)."""
    service, blueprint = _defined("appv2-tickstockpl-service"), _defined("appv2-admin-blueprint")
    imported = re.search(r"from src\.core\.services\.tickstockpl_cache_sync import \((.*?)\)",
                         CODE["appv2-admin-blueprint"], re.S).group(1)
    assert {n.strip() for n in imported.split(",")} <= service
    routes = set(re.findall(r"@tickstockpl_admin_bp\.route\('([^']+)'", CODE["appv2-admin-blueprint"]))
    assert "/api/admin/processing/store-event" in routes  # where processing_subscriber forwards events
    assert TEMPLATE is not None
    page = TEMPLATE.group(1)
    called = set(re.findall(r"fetch\('([^'?]+)", page))
    assert called and all(any(r.split("<")[0].rstrip("/") == c.rstrip("/") for r in routes) for c in called)
    assert '{% extends "admin/base_admin.html" %}' in page and "X-CSRFToken" in page and "csrf_token()" in page
    parser = html.parser.HTMLParser()
    parser.feed(page)
    parser.close()
    assert "from src.api.rest.tickstockpl_admin import store_event, tickstockpl_admin_bp" in TEXT
    assert {"store_event", "tickstockpl_admin_bp"} <= blueprint
    assert "from src.core.services.tickstockpl_cache_sync import pipeline_event_handlers" in TEXT
    assert "pipeline_event_handlers" in service
    for block, path in (("appv2-tickstockpl-service", "src/core/services/tickstockpl_cache_sync.py"),
                        ("appv2-admin-blueprint", "src/api/rest/tickstockpl_admin.py")):
        assert CODE[block].startswith(f"# {path}  (new file)")
    assert page.startswith("{# web/templates/admin/tickstockpl_cache_sync.html  (new file) #}")


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


def test_the_api_calls_work_against_a_live_server(server):
    pl = _load("appv2-tickstockpl-service")
    assert pl["tickstockpl_base_url"]({"TICKSTOCKPL_HOST": "tickstockpl", "TICKSTOCKPL_PORT": 8080}) \
        == "http://tickstockpl:8080"
    assert pl["tickstockpl_base_url"]({"TICKSTOCKPL_API_URL": "http://pl.internal:9000/",
                                       "TICKSTOCKPL_HOST": "x"}) == "http://pl.internal:9000"
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


def test_the_event_state_follows_every_sync_of_the_run(live):
    events = _load("appv2-tickstockpl-service")["TickStockPLEvents"]()
    for _channel, message in live.events:
        assert events.record(message, "processing_subscriber") is True
    assert events.record(live.events[0][1], "processing_subscriber") is False  # delivered twice: once
    finals = {m["payload"]["job_id"]: m["payload"] for c, m in live.events if c == catalog.CACHE_SYNC_COMPLETE}
    for job_id, payload in finals.items():
        job = events.job(job_id)
        assert job["status"] == payload["status"] and job["total_changes"] == payload["total_changes"]
    assert events.schedule["trigger_time"] == "16:10"
    assert [e["event"] for e in events.recent(3)] == [m["event"] for _c, m in live.events[-3:]][::-1]


def test_the_handlers_processing_event_subscriber_lacks_touch_only_their_own_run(live):
    """AppV2's processing_event_subscriber with the form's edit 3, on every event of the run: each event of its
    channels has a handler (AppV2's own, tests/handback/test_appv2_handlers.py, or the form's), the cache phase
    lands in the state of the run that names it, and no stand-alone sync ever touches the run's state."""
    import enum

    from tests.handback.test_appv2_handlers import EVENT_SUBSCRIBER_CHANNELS, HANDLED

    Phase = enum.Enum("ProcessingPhase", {"SCHEDULED": "scheduled", "CACHE_SYNC": "cache_sync", "ERROR": "error"})

    class Subscriber:  # the part of AppV2's ProcessingEventSubscriber the handlers use
        current_state = {"run_id": None, "phase": Phase.SCHEDULED, "error_message": None, "phase_details": {}}

    service = _load("appv2-tickstockpl-service")
    sub = Subscriber()
    handlers = service["pipeline_event_handlers"](sub, service["TickStockPLEvents"]())
    run_of_job = {m["payload"]["job_id"]: m["payload"].get("run_id") for _c, m in live.events
                  if m["event"] == "cache_sync_triggered"}
    seen_phases = []
    for channel, message in live.events:
        name = message["event"]
        if channel not in EVENT_SUBSCRIBER_CHANNELS:
            continue
        assert name in HANDLED or name in handlers, f"{name} would be logged as unhandled"
        if name == "daily_processing_started":  # what AppV2's own handler does first
            sub.current_state.update(run_id=message["payload"]["run_id"], phase=Phase.SCHEDULED, phase_details={})
        if name not in handlers:
            continue
        before = dict(sub.current_state)
        handlers[name](message, channel)
        job_run = run_of_job.get(message["payload"].get("job_id"))
        if job_run is None or job_run != before["run_id"] or name == "cache_sync_error":
            assert sub.current_state == before, f"{name} of a stand-alone sync touched the run"
        elif name == "cache_sync_started":
            assert sub.current_state["phase"] is Phase.CACHE_SYNC
            seen_phases.append(job_run)
    assert seen_phases, "the run's pipeline sync must have reached the cache phase handler"
    assert sub.current_state["phase_details"]["cache_sync"]["status"] == "completed"


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
        if channel == catalog.ERRORS:
            assert {"error_id", "severity", "message", "component", "context"} <= set(message)
