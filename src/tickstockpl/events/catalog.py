"""Every Redis channel, event name and envelope TickStockPL publishes: the one place they live.

Envelope (contract §3.1): {"event_id", "event", "timestamp" (ISO-8601 UTC, trailing Z), "source",
"version": "1.0", "payload"}. `event_id` is the event's outbox id: `events/outbox.py` writes it as the
first field when it stores the message, so an `Event.message` built here has none
yet. Events on `tickstock:errors` carry the envelope *and* the flat
fields AppV2's error subscriber parses (error_id, source, severity, message, timestamp,
component, context) in one object, and `component`, `message` and `severity` inside the payload
too (AppV2's processing_subscriber reads `payload.component`). A pipeline run that failed is
`processing_error` (AppV2's processing_event_subscriber marks its current run failed on it); a
cache sync that failed is `cache_sync_error`, never `processing_error`, so a stand-alone sync's
failure is not blamed on the last pipeline run.

What AppV2's handlers read decides the names (contract §10.5): import progress is
`job_progress_update` on `tickstock:monitoring` (the kind both AppV2 subscribers handle, with
`phase: "data_import"`), and `data_import_started|completed` also go to
`tickstock:data:import:status`, where processing_subscriber listens for them.

Each channel also feeds a capped Redis Stream per channel family (`stream_for`), so a consumer
that was offline can replay what it missed.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

VERSION = "1.0"

# --- channels: cache sync (AppV2 processing_subscriber, contract §3.2) ---
CACHE_SYNC_TRIGGERED = "tickstock:cache:sync_triggered"
CACHE_SYNC_COMPLETE = "tickstock:cache:sync_complete"
UNIVERSE_UPDATED = "tickstock:universe:updated"
IPO_ASSIGNMENT = "tickstock:cache:ipo_assignment"
DELISTING_CLEANUP = "tickstock:cache:delisting_cleanup"

# --- channels: pipeline (AppV2 processing_event_subscriber, contract §3.3) ---
PROCESSING_STATUS = "tickstock:processing:status"
PROCESSING_SCHEDULE = "tickstock:processing:schedule"
IMPORT_STARTED = "tickstock:import:started"
IMPORT_PROGRESS = "tickstock:import:progress"  # reserved: import progress goes to MONITORING (job_progress_update)
IMPORT_COMPLETED = "tickstock:import:completed"
IMPORT_STATUS = "tickstock:data:import:status"  # AppV2 processing_subscriber: data_import_started|completed
CACHE_STARTED = "tickstock:cache:started"
CACHE_PROGRESS = "tickstock:cache:progress"
CACHE_COMPLETED = "tickstock:cache:completed"
INDICATORS_STARTED = "tickstock:indicators:started"
INDICATORS_PROGRESS = "tickstock:indicators:progress"
INDICATORS_COMPLETED = "tickstock:indicators:completed"
INDICATORS_CALCULATED = "tickstock:indicators:calculated"
PATTERNS_STARTED = "tickstock:patterns:started"
PATTERNS_PROGRESS = "tickstock:patterns:progress"
PATTERNS_COMPLETED = "tickstock:patterns:completed"
PATTERNS_DETECTED = "tickstock:patterns:detected"
MONITORING = "tickstock:monitoring"
ERRORS = "tickstock:errors"

CACHE_SYNC_CHANNELS = (CACHE_SYNC_TRIGGERED, CACHE_SYNC_COMPLETE, UNIVERSE_UPDATED, IPO_ASSIGNMENT, DELISTING_CLEANUP)

# --- event names ---
EV_CACHE_SYNC_TRIGGERED = "cache_sync_triggered"
EV_CACHE_SYNC_STARTED = "cache_sync_started"
EV_CACHE_SYNC_PROGRESS = "cache_sync_progress"
EV_CACHE_SYNC_COMPLETED = "cache_sync_completed"
EV_UNIVERSE_UPDATED = "universe_updated"
EV_IPO_ASSIGNMENT = "ipo_assignment"
EV_DELISTING_CLEANUP = "delisting_cleanup"
EV_DAILY_STARTED = "daily_processing_started"
EV_DAILY_PROGRESS = "daily_processing_progress"
EV_DAILY_COMPLETED = "daily_processing_completed"
EV_IMPORT_STARTED = "data_import_started"
EV_IMPORT_COMPLETED = "data_import_completed"
EV_JOB_PROGRESS = "job_progress_update"
EV_PROCESSING_ERROR = "processing_error"
EV_CACHE_SYNC_ERROR = "cache_sync_error"
EV_SCHEDULE_UPDATED = "schedule_updated"

# --- sources ---
SOURCE_CACHE_SYNC = "tickstockpl.cache_sync"
SOURCE_PIPELINE = "tickstockpl.processing"
SOURCE_IMPORT = "tickstockpl.import"

STREAM_PREFIX = "tickstock:stream:"
SEVERITIES = ("critical", "error", "warning", "info", "debug")


def stream_for(channel: str) -> str:
    """The capped stream a channel's events are appended to: one per family (`tickstock:<family>:...`)."""
    parts = channel.split(":")
    return STREAM_PREFIX + (parts[1] if len(parts) > 1 else parts[0])


def utc_now_iso() -> str:
    return iso_z(dt.datetime.now(dt.timezone.utc))


def iso_z(moment: dt.datetime | None) -> str | None:
    """ISO-8601 UTC with a trailing Z (contract §1); naive datetimes are taken as UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Event:
    """One message ready for the outbox: where it goes and the exact JSON text published."""

    channel: str
    event: str
    message: str

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(self.message)


def envelope(channel: str, event: str, payload: dict[str, Any], source: str,
             timestamp: str | None = None) -> Event:
    body = {
        "event": event,
        "timestamp": timestamp or utc_now_iso(),
        "source": source,
        "version": VERSION,
        "payload": payload,
    }
    return Event(channel, event, json.dumps(body, separators=(",", ":"), allow_nan=False))


def error_event(message: str, *, source: str, severity: str = "error", component: str | None = None,
                context: dict[str, Any] | None = None, payload: dict[str, Any] | None = None,
                event: str = EV_PROCESSING_ERROR) -> Event:
    """An error on tickstock:errors: the envelope plus AppV2's flat error fields, and `component`,
    `message` and `severity` in the payload as well (`processing_error` also has `error_message`)."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}")
    timestamp = utc_now_iso()
    component = component or source
    body_payload = {"error_message": message, "message": message, "component": component, "severity": severity,
                    **(payload or {})}
    body = {
        "event": event,
        "timestamp": timestamp,
        "source": source,
        "version": VERSION,
        "payload": body_payload,
        "error_id": str(uuid.uuid4()),
        "severity": severity,
        "message": message,
        "component": component,
        "context": context or {},
    }
    return Event(ERRORS, event, json.dumps(body, separators=(",", ":"), allow_nan=False, default=str))


COMPONENT_PIPELINE = "daily_processing"  # contains "processing": AppV2's processing_subscriber logs it
COMPONENT_CACHE_SYNC = "cache_sync"


def pipeline_error(run_id: str, message: str, session_date: str | None = None) -> Event:
    """`processing_error`: a pipeline run failed (AppV2 marks the run failed). Always names the run."""
    context = {"run_id": run_id, **({"session_date": session_date} if session_date else {})}
    return error_event(message, source=SOURCE_PIPELINE, component=COMPONENT_PIPELINE, context=context,
                       payload=context)


def cache_sync_error(job_id: str, mode: str, message: str, **extra: Any) -> Event:
    """`cache_sync_error`: a sync job failed (`run_id` in `extra` when it was a pipeline's cache-sync phase,
    whose failure the pipeline reports as `processing_error` itself)."""
    context = {"job_id": job_id, "mode": mode, **extra}
    return error_event(message, source=SOURCE_CACHE_SYNC, component=COMPONENT_CACHE_SYNC, context=context,
                       payload=context, event=EV_CACHE_SYNC_ERROR)


# --- constructors for the cache-sync events (contract §3.2) ---
SYMBOLS_IN_EVENT_MAX = 500  # lists inside one event are capped; counts are always exact


def cache_sync_triggered(job_id: str, mode: str, force: bool, triggered_by: str, **extra: Any) -> Event:
    return envelope(CACHE_SYNC_TRIGGERED, EV_CACHE_SYNC_TRIGGERED,
                    {"job_id": job_id, "mode": mode, "force": force, "triggered_by": triggered_by, **extra},
                    SOURCE_CACHE_SYNC)


def cache_sync_started(job_id: str, mode: str, triggered_by: str, **extra: Any) -> Event:
    return envelope(CACHE_STARTED, EV_CACHE_SYNC_STARTED,
                    {"job_id": job_id, "mode": mode, "triggered_by": triggered_by, **extra}, SOURCE_CACHE_SYNC)


def cache_sync_progress(job_id: str, mode: str, progress: dict[str, Any], **extra: Any) -> Event:
    return envelope(CACHE_PROGRESS, EV_CACHE_SYNC_PROGRESS,
                    {"job_id": job_id, "mode": mode, **progress, **extra}, SOURCE_CACHE_SYNC)


def cache_sync_completed(job_id: str, mode: str, status: str, total_changes: int, duration_seconds: float,
                         universes_updated: int, error: str | None = None, **extra: Any) -> list[Event]:
    """The completion event, on the channel AppV2 listens to and on the pipeline's cache channel."""
    payload = {"job_id": job_id, "mode": mode, "status": status, "total_changes": total_changes,
               "duration_seconds": round(duration_seconds, 3), "universes_updated": universes_updated,
               **extra}
    if error is not None:
        payload["error"] = error
        payload["message"] = error
    return [envelope(CACHE_SYNC_COMPLETE, EV_CACHE_SYNC_COMPLETED, payload, SOURCE_CACHE_SYNC),
            envelope(CACHE_COMPLETED, EV_CACHE_SYNC_COMPLETED, payload, SOURCE_CACHE_SYNC)]


def universe_updated(job_id: str, universe: str, action: str, added: list[str], removed: list[str],
                     group: str | None = None, reasons: list[dict[str, str]] | None = None) -> Event:
    """`group`: the relational group (definition_groups.name) that mirrors the universe, if PL wrote one.
    `reasons` (the rule universes only; the key is absent for every other universe): why each symbol of
    `added_symbols` and `removed_symbols` changed, as {symbol, action ("added" | "removed"), rule, text},
    capped like those lists (docs/EVENTS.md)."""
    type_, name, key = universe.split(":", 2)
    payload = {
        "universe": universe, "action": action, "type": type_, "name": name, "key": key, "group": group,
        "added": len(added), "removed": len(removed),
        "added_symbols": added[:SYMBOLS_IN_EVENT_MAX], "removed_symbols": removed[:SYMBOLS_IN_EVENT_MAX],
        "job_id": job_id,
    }
    if reasons is not None:
        payload["reasons"] = reasons[:2 * SYMBOLS_IN_EVENT_MAX]
    return envelope(UNIVERSE_UPDATED, EV_UNIVERSE_UPDATED, payload, SOURCE_CACHE_SYNC)


def ipo_assignment(job_id: str, symbol: str, universe: str, list_date: str | None) -> Event:
    return envelope(IPO_ASSIGNMENT, EV_IPO_ASSIGNMENT,
                    {"symbol": symbol, "universe": universe, "list_date": list_date, "job_id": job_id},
                    SOURCE_CACHE_SYNC)


def delisting_cleanup(job_id: str, symbols: list[str], universes_affected: int) -> Event:
    return envelope(DELISTING_CLEANUP, EV_DELISTING_CLEANUP,
                    {"removed_count": len(symbols), "symbols": symbols[:SYMBOLS_IN_EVENT_MAX],
                     "universes_affected": universes_affected, "job_id": job_id},
                    SOURCE_CACHE_SYNC)


# --- constructors for the daily pipeline's events (contract §3.3; added with issue 4) ---
# Field names AppV2's processing_event_subscriber reads are kept verbatim; extra fields are documented
# in docs/EVENTS.md. Every pipeline event carries `run_id`.

def daily_processing_started(run_id: str, *, total_symbols: int, trigger_type: str, phases: list[str],
                             session_date: str, **extra: Any) -> Event:
    return envelope(PROCESSING_STATUS, EV_DAILY_STARTED, {
        "run_id": run_id, "total_symbols": total_symbols, "trigger_type": trigger_type,
        "phases": list(phases), "session_date": session_date, **extra}, SOURCE_PIPELINE)


def daily_processing_progress(run_id: str, *, progress: float, current_phase: str | None,
                              symbols_completed: int, estimated_completion: str | None,
                              current_symbol: str | None = None, **extra: Any) -> Event:
    return envelope(PROCESSING_STATUS, EV_DAILY_PROGRESS, {
        "run_id": run_id, "progress": round(float(progress), 1), "current_symbol": current_symbol,
        "symbols_completed": symbols_completed, "estimated_completion": estimated_completion,
        "current_phase": current_phase, **extra}, SOURCE_PIPELINE)


def daily_processing_completed(run_id: str, *, status: str, symbols_processed: int, symbols_failed: int,
                               duration_seconds: float, **extra: Any) -> Event:
    return envelope(PROCESSING_STATUS, EV_DAILY_COMPLETED, {
        "run_id": run_id, "symbols_processed": symbols_processed, "symbols_failed": symbols_failed,
        "success": status == "success", "duration_seconds": round(float(duration_seconds), 3),
        "status": status, **extra}, SOURCE_PIPELINE)


def data_import_started(run_id: str, *, universe_names: list[str], sessions: list[str], **extra: Any) -> list[Event]:
    """On tickstock:import:started (processing_event_subscriber) and tickstock:data:import:status
    (processing_subscriber), the same message."""
    payload = {"run_id": run_id, "universe_names": list(universe_names), "timeframes": ["daily"],
               "lookback_days": len(sessions), "sessions": list(sessions), **extra}
    stamp = utc_now_iso()  # one event on two channels: one timestamp
    return [envelope(channel, EV_IMPORT_STARTED, payload, SOURCE_IMPORT, timestamp=stamp)
            for channel in (IMPORT_STARTED, IMPORT_STATUS)]


def import_progress(run_id: str, *, percentage: float, completed: int, failed: int, estimated_completion: str | None,
                    session_date: str, sessions_completed: int, sessions_total: int, rows_imported: int,
                    rows_rejected: int, **extra: Any) -> Event:
    """`job_progress_update` on tickstock:monitoring, phase `data_import`, one per session written.

    The fields AppV2's handlers read: `percentage` (the run's percent, as daily_processing_progress),
    `completed` (symbols with a bar for the run's session so far), `failed` (rows rejected so far),
    `current_symbol` (null: sessions are imported whole), `estimated_completion`; `phase` for
    processing_subscriber's filter; the source `tickstockpl.import` for processing_event_subscriber's.
    """
    phase_percent = round(100.0 * sessions_completed / sessions_total, 1) if sessions_total else 100.0
    return envelope(MONITORING, EV_JOB_PROGRESS, {
        "phase": "data_import", "run_id": run_id, "percentage": round(float(percentage), 1), "completed": completed,
        "failed": failed, "current_symbol": None, "estimated_completion": estimated_completion,
        "session_date": session_date, "sessions_completed": sessions_completed, "sessions_total": sessions_total,
        "phase_percentage": phase_percent, "rows_imported": rows_imported, "rows_rejected": rows_rejected, **extra},
        SOURCE_IMPORT)


def data_import_completed(run_id: str, *, success_count: int, failure_count: int, duration_seconds: float,
                          rows_rejected: int, **extra: Any) -> list[Event]:
    """On tickstock:import:completed and tickstock:data:import:status, the same message."""
    payload = {"run_id": run_id, "success_count": success_count, "failure_count": failure_count,
               "duration_seconds": round(float(duration_seconds), 3), "rows_rejected": rows_rejected, **extra}
    stamp = utc_now_iso()  # one event on two channels: one timestamp
    return [envelope(channel, EV_IMPORT_COMPLETED, payload, SOURCE_IMPORT, timestamp=stamp)
            for channel in (IMPORT_COMPLETED, IMPORT_STATUS)]


def schedule_updated(schedule: dict[str, Any], changed: list[str]) -> Event:
    return envelope(PROCESSING_SCHEDULE, EV_SCHEDULE_UPDATED, {**schedule, "changed": list(changed)},
                    SOURCE_PIPELINE)


# --- issue 14: waiting for a late provider, revisions of imported bars ---
DATA_REVISIONS = "tickstock:data:revisions"
EV_DATA_REVISED = "data_revised"
SOURCE_REVISIONS = "tickstockpl.revisions"


def import_waiting(run_id: str, *, percentage: float, session_date: str, attempt: int, next_attempt_at: str,
                   deadline: str, check: dict[str, Any]) -> Event:
    """`job_progress_update` (phase data_import, `waiting: true`) while the completeness gate waits for
    the provider to publish the whole session (pipeline/completeness.py)."""
    return envelope(MONITORING, EV_JOB_PROGRESS, {
        "phase": "data_import", "run_id": run_id, "percentage": round(float(percentage), 1),
        "completed": check.get("bars", 0), "failed": 0, "current_symbol": None, "estimated_completion": None,
        "waiting": True, "session_date": session_date, "attempt": attempt, "next_attempt_at": next_attempt_at,
        "deadline": deadline, "completeness": check}, SOURCE_IMPORT)


def data_revised(batch_id: str, *, sessions: list[str], revisions: int, symbols: list[str],
                 sample: list[dict[str, Any]], trigger: str, **extra: Any) -> Event:
    """`data_revised` on tickstock:data:revisions: the revisions pass changed imported bars."""
    return envelope(DATA_REVISIONS, EV_DATA_REVISED, {
        "batch_id": batch_id, "sessions": list(sessions), "revisions": revisions, "symbols": list(symbols),
        "sample": list(sample), "trigger": trigger, **extra}, SOURCE_REVISIONS)
