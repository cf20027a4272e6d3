"""What AppV2's own handlers read, as facts, against every event of a real run (tests/handback/scenario.py).

The facts are those of contract §10.5 and of AppV2's code at HEAD 864dd0c, read there (never copied):

- `processing_subscriber` (src/infrastructure/redis/processing_subscriber.py) routes on the channel:
  `tickstock:processing:status` forwards only `daily_processing_started|progress|completed`;
  `tickstock:processing:schedule` only `schedule_updated`; `tickstock:monitoring` only
  `job_progress_update` with `payload.phase` in data_import / indicator_processing / pattern_detection
  (it logs `payload.percentage`); `tickstock:errors` logs `payload.message` when `payload.component`
  contains "processing", "import" or "scheduler"; `tickstock:data:import:status` forwards
  `data_import_started|completed` (and `symbol_processing_complete`); the five cache-sync channels read
  `job_id`, `mode` / `job_id`, `status`, `total_changes`, `duration_seconds` / `universe`, `action` /
  `symbol`, `universe` / `removed_count`.
- `processing_event_subscriber` (src/core/services/processing_event_subscriber.py) routes on
  `event` (else `event_type`) and logs any other name as "Unhandled event type"; it reads the fields of
  HANDLED below; `processing_error` marks its current run failed whatever the payload says, and
  `job_progress_update` counts only when the envelope's `source` contains processing, import or indicator.
- `error_subscriber` (src/core/services/error_subscriber.py) parses every message of `tickstock:errors`
  as its pydantic `ErrorMessage`: `error_id`, `source`, `severity`, `message`, `timestamp` required,
  `category`, `component`, `traceback`, `context` optional, other keys ignored.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.handback import scenario
from tickstockpl.events import catalog

NUMBER, TEXT, BOOL, ARRAY = (int, float), str, bool, list
TEXT_OR_NULL, NUMBER_OR_NULL = (str, type(None)), (int, float, type(None))

# processing_subscriber: channel -> (event names it acts on, payload fields it reads with their types)
SUBSCRIBER = {
    "tickstock:processing:status": ({"daily_processing_started", "daily_processing_progress",
                                     "daily_processing_completed"}, {}),
    "tickstock:processing:schedule": ({"schedule_updated"}, {}),
    "tickstock:monitoring": ({"job_progress_update"}, {"phase": TEXT, "percentage": NUMBER}),
    "tickstock:errors": ({"processing_error", "cache_sync_error"}, {"component": TEXT, "message": TEXT}),
    "tickstock:data:import:status": ({"data_import_started", "data_import_completed"}, {}),
    "tickstock:cache:sync_triggered": ({"cache_sync_triggered"}, {"job_id": TEXT, "mode": TEXT}),
    "tickstock:cache:sync_complete": ({"cache_sync_completed"}, {"job_id": TEXT, "status": TEXT,
                                                                 "total_changes": NUMBER, "duration_seconds": NUMBER}),
    "tickstock:universe:updated": ({"universe_updated"}, {"universe": TEXT, "action": TEXT}),
    "tickstock:cache:ipo_assignment": ({"ipo_assignment"}, {"symbol": TEXT, "universe": TEXT}),
    "tickstock:cache:delisting_cleanup": ({"delisting_cleanup"}, {"removed_count": NUMBER}),
}
SUBSCRIBER_PHASES = {"data_import", "indicator_processing", "pattern_detection"}
SUBSCRIBER_COMPONENT_WORDS = ("processing", "import", "scheduler")

# processing_event_subscriber: its channels, and event name -> payload fields read with their types
EVENT_SUBSCRIBER_CHANNELS = {
    "tickstock:processing:status", "tickstock:processing:schedule", "tickstock:import:started",
    "tickstock:import:progress", "tickstock:import:completed", "tickstock:cache:started", "tickstock:cache:progress",
    "tickstock:cache:completed", "tickstock:indicators:started", "tickstock:indicators:progress",
    "tickstock:indicators:completed", "tickstock:indicators:calculated", "tickstock:patterns:started",
    "tickstock:patterns:progress", "tickstock:patterns:completed", "tickstock:patterns:detected",
    "tickstock:monitoring", "tickstock:errors"}
HANDLED = {
    "daily_processing_started": {"run_id": TEXT, "total_symbols": NUMBER, "trigger_type": TEXT},
    "daily_processing_progress": {"progress": NUMBER, "current_symbol": TEXT_OR_NULL, "symbols_completed": NUMBER,
                                  "estimated_completion": TEXT_OR_NULL},
    "daily_processing_completed": {"symbols_processed": NUMBER, "symbols_failed": NUMBER, "success": BOOL,
                                   "duration_seconds": NUMBER},
    "data_import_started": {"universe_names": ARRAY, "timeframes": ARRAY, "lookback_days": NUMBER},
    "data_import_completed": {"success_count": NUMBER, "failure_count": NUMBER, "duration_seconds": NUMBER},
    "processing_error": {"error_message": TEXT},
    "job_progress_update": {"percentage": NUMBER, "current_symbol": TEXT_OR_NULL, "completed": NUMBER,
                            "failed": NUMBER, "estimated_completion": TEXT_OR_NULL},
}
# Kinds AppV2 has no handler for at all (the hand-back form supplies them: tickstockpl_events.py), and
# schedule_updated, which only processing_subscriber handles (processing_event_subscriber gets it too).
HANDBACK_SUPPLIES = {"cache_sync_started", "cache_sync_progress", "cache_sync_completed", "cache_sync_error",
                     "schedule_updated"}
ERROR_MESSAGE_REQUIRED = {"error_id": TEXT, "source": TEXT, "severity": TEXT, "message": TEXT, "timestamp": TEXT}
ERROR_MESSAGE_OPTIONAL = {"category": TEXT_OR_NULL, "component": TEXT_OR_NULL, "traceback": TEXT_OR_NULL,
                          "context": (dict, type(None))}


@pytest.fixture(scope="module")
def events(pg, schema_template, tmp_path_factory) -> list[tuple[str, dict]]:
    from tests.servers import RedisProcess

    name = pg.create_database("hb_handlers_run", template=schema_template)
    redis = RedisProcess().start()
    try:
        return scenario.run(pg.url(name), redis.url, tmp_path_factory.mktemp("handlers")).events
    finally:
        redis.close()
        pg.drop_database(name)


def _wrong_types(payload: dict, fields: dict) -> list[str]:
    return [f"{name}: {payload.get(name, '<missing>')!r}" for name, kind in fields.items()
            if name not in payload or not isinstance(payload[name], kind)
            or (kind == NUMBER and isinstance(payload[name], bool))]


def test_the_run_publishes_every_kind_the_handlers_are_checked_on(events):
    kinds = {(c, m["event"]) for c, m in events}
    assert {(c, e) for c, (names, _f) in SUBSCRIBER.items() for e in names} <= kinds
    assert set(HANDLED) <= {e for _c, e in kinds}


def test_processing_subscriber_acts_on_every_event_of_its_channels_and_finds_what_it_reads(events):
    for channel, message in events:
        if channel not in SUBSCRIBER:
            continue
        names, fields = SUBSCRIBER[channel]
        assert message["event"] in names, f"{message['event']} on {channel}: processing_subscriber ignores it"
        assert _wrong_types(message["payload"], fields) == [], (channel, message["event"])
        if channel == catalog.MONITORING:
            assert message["payload"]["phase"] in SUBSCRIBER_PHASES
        if message["event"] == "processing_error":  # a pipeline failure: logged by processing_subscriber
            assert any(word in message["payload"]["component"] for word in SUBSCRIBER_COMPONENT_WORDS)


def test_processing_event_subscriber_handles_every_event_or_the_handback_supplies_its_handler(events):
    for channel, message in events:
        if channel not in EVENT_SUBSCRIBER_CHANNELS:
            continue
        name = message.get("event") or message.get("event_type")
        assert name in HANDLED or name in HANDBACK_SUPPLIES, f"{name} on {channel} would be logged as unhandled"
        if name in HANDLED:
            assert _wrong_types(message["payload"], HANDLED[name]) == [], name
        if name == "job_progress_update":
            assert any(word in message["source"] for word in ("processing", "import", "indicator"))
        if name == "daily_processing_started":
            assert message["payload"]["run_id"]  # AppV2 drops the event without it


def test_a_failed_sync_is_never_a_processing_error_and_every_processing_error_names_its_pipeline_run(events):
    runs = {m["payload"]["run_id"] for _c, m in events if m["event"] == "daily_processing_started"}
    failed_runs = {m["payload"]["run_id"] for _c, m in events
                   if m["event"] == "daily_processing_completed" and not m["payload"]["success"]}
    errors = [m for c, m in events if c == catalog.ERRORS]
    pipeline = [m for m in errors if m["event"] == "processing_error"]
    assert pipeline and all(m["payload"]["run_id"] in failed_runs for m in pipeline)
    assert failed_runs <= runs
    syncs = [m for m in errors if m["event"] == "cache_sync_error"]
    standalone = [m for m in syncs if "run_id" not in m["payload"]]
    assert standalone, "the run's refused stand-alone sync must have published its cache_sync_error"
    failed_jobs = {m["payload"]["job_id"] for c, m in events
                   if c == catalog.CACHE_SYNC_COMPLETE and m["payload"]["status"] == "failed"}
    assert {m["payload"]["job_id"] for m in syncs} <= failed_jobs
    assert {m["event"] for m in errors} == {"processing_error", "cache_sync_error"}


def test_every_error_is_an_appv2_error_message_with_its_component_inside_the_payload_too(events):
    errors = [m for c, m in events if c == catalog.ERRORS]
    assert errors
    for message in errors:
        assert _wrong_types(message, ERROR_MESSAGE_REQUIRED) == []
        assert all(isinstance(message.get(k), kind) for k, kind in ERROR_MESSAGE_OPTIONAL.items())
        assert message["severity"] in ("critical", "error", "warning", "info", "debug")
        dt.datetime.fromisoformat(message["timestamp"].replace("Z", "+00:00"))
        payload = message["payload"]
        assert (payload["component"], payload["message"], payload["severity"]) == (
            message["component"], message["message"], message["severity"])


def test_every_channel_published_has_an_appv2_subscriber(events):
    published = {c for c, _m in events}
    assert published - set(SUBSCRIBER) - EVENT_SUBSCRIBER_CHANNELS == set()
    assert catalog.IMPORT_PROGRESS not in published  # import progress is job_progress_update on tickstock:monitoring
