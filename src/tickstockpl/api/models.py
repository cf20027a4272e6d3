"""Request and response bodies of the HTTP API: these models ARE the contract (APPV2_CONTRACT.md §2).

Naming: `<Thing>Request` for bodies we accept, `<Thing>` for one object returned, `<Things>` for
a page of them; `ErrorBody` for every error. Timestamps are strings, ISO-8601 UTC with a trailing Z
(`events.catalog.iso_z`), never datetimes, so that the format is ours and not the serializer's.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from tickstockpl.universes.model import MODES

Mode = Literal[MODES]
# YYYY-MM-DD with a real month and day number (0000-00-00 or 2026-13-01 are refused by the schema; the
# route still refuses a day the month does not have, such as 2026-02-30).
DATE_PATTERN = r"^(000[1-9]|00[1-9]\d|0[1-9]\d{2}|[1-9]\d{3})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"
JobStatusName = Literal["pending", "running", "completed", "failed", "error"]


class ErrorBody(BaseModel):
    """Every error answer: 401, 404, 409, 422, 429, 503 (and 500, which bad input never causes)."""

    success: bool = False
    message: str
    job_id: str | None = Field(None, description="409 only: the live job")
    errors: list[dict[str, Any]] | None = Field(None, description="422 only: one item per bad field")


# --- cache sync (§2.1) -----------------------------------------------------------------------
class TriggerRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    mode: Mode = "full"
    force: StrictBool = Field(False, description="skip the pre-sync validation checks (never single-flight)")


class TriggerAccepted(BaseModel):
    success: bool = True
    job_id: str
    mode: Mode
    message: str


class JobProgress(BaseModel):
    total_steps: int
    completed_steps: int
    current_task: str
    percent: float


class JobFields(BaseModel):
    """The fields a job has both in its status and in the history list."""

    job_id: str
    mode: Mode
    status: JobStatusName
    created_at: str
    start_time: str | None
    end_time: str | None
    duration_seconds: float | None
    triggered_by: str


class JobStatus(JobFields):
    error_details: str | None
    progress: JobProgress | None
    force: bool
    as_of: str | None = Field(None, description="market date the sync used (YYYY-MM-DD)")
    result: dict[str, Any] | None = Field(None, description="summary once completed: changes, universes updated")


class JobSummary(JobFields):
    has_errors: bool


class JobHistory(BaseModel):
    jobs: list[JobSummary]
    total: int
    limit: int
    offset: int


class UniverseStat(BaseModel):
    universe: str = Field(description='"type:name:key"')
    type: str
    symbol_count: int
    last_updated: str | None


class JobStatistics(BaseModel):
    total_jobs_7d: int
    successful_jobs_7d: int
    failed_jobs_7d: int
    avg_duration_seconds: float | None


class SyncStats(BaseModel):
    universes: list[UniverseStat]
    job_statistics: JobStatistics


# --- universes -------------------------------------------------------------------------------
class Universe(BaseModel):
    universe: str = Field(description='"type:name:key"')
    type: str
    name: str
    key: str
    count: int
    updated_at: str | None


class Universes(BaseModel):
    universes: list[Universe]
    total: int


class UniverseMembers(BaseModel):
    universe: str
    type: str
    name: str
    key: str
    as_of: str | None = Field(description="the date asked for; null for the current members")
    count: int
    members: list[str] = Field(description="current: in the stored order; as_of: sorted by symbol")
    updated_at: str | None


class UniverseChange(BaseModel):
    id: int
    job_id: str
    universe: str
    symbol: str | None
    action: str
    reason: str
    created_at: str


class UniverseChanges(BaseModel):
    changes: list[UniverseChange]
    count: int
    limit: int
    offset: int


class ChurnDay(BaseModel):
    day: str = Field(description="YYYY-MM-DD: a day the universe's membership changed")
    before: int
    after: int
    entered: int
    left: int
    turnover: float = Field(description="(entered + left) / (before + after); 0 when both are empty")


class UniverseChurn(BaseModel):
    universe: str = Field(description='"type:name:key"')
    members_start: int = Field(description="members at the start of `from` (before that day's changes)")
    members_end: int = Field(description="members after the last change up to `to`")
    entered: int
    left: int
    turnover: float = Field(description="(entered + left) / (members_start + members_end) over the range")
    days_changed: int
    days: list[ChurnDay]


class Churn(BaseModel):
    from_: str = Field(alias="from", description="YYYY-MM-DD, inclusive")
    to: str = Field(description="YYYY-MM-DD, inclusive")
    universes: list[UniverseChurn] = Field(description="by universe id; only universes that changed in the range")
    count: int

    model_config = ConfigDict(populate_by_name=True)


# --- health (§2.2) ---------------------------------------------------------------------------
class ServiceStates(BaseModel):
    database: Literal["up", "down"]
    redis: Literal["up", "down"]
    api: Literal["up"] = "up"


class Health(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    services: ServiceStates
    processing_status: Literal["idle", "running"]
    version: str
    timestamp: str
    outbox_pending: int | None = Field(None, description="events not yet delivered to Redis")


# --- processing / daily pipeline (§2.2) -----------------------------------------------------
# Section owned by the pipeline (issue 4); routes in api/routes/processing.py.
PhaseName = Literal["data_import", "cache_sync", "indicator_processing", "pattern_detection", "all"]
RunStatusName = Literal["running", "success", "failed", "cancelled", "incomplete"]  # incomplete: issue 14


class ProcessingTriggerRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    skip_market_check: StrictBool = Field(
        False, description="skip only the trading-day check: run for a date that is not an NYSE session (weekend,"
                           " holiday); a session that has not closed is never run (without a date: the last closed"
                           " session, and the message says so; with its date: 422 naming the last closed session)")
    phases: list[str] = Field(default_factory=lambda: ["all"], max_length=10,
                              description='"all" or a subset of data_import, cache_sync, indicator_processing, '
                                          "pattern_detection; unavailable phases answer 422")
    universe: str | None = Field(None, min_length=1, max_length=100)
    date: str | None = Field(None, pattern=DATE_PATTERN,
                             description="session date YYYY-MM-DD (default: the last completed session)")


class ProcessingTriggerAccepted(BaseModel):
    success: bool = True
    run_id: str
    status: Literal["started"] = "started"
    message: str
    session_date: str
    phases: list[str]


class ProcessingStatus(BaseModel):
    is_running: bool
    run_id: str | None
    current_phase: str
    progress: float
    symbols_processed: int
    symbols_total: int
    start_time: str | None
    estimated_completion: str | None
    status: str
    last_run_status: RunStatusName | None = None
    session_date: str | None = None
    trigger_type: Literal["automatic", "manual"] | None = None
    cancel_requested: bool = False


class ProcessingRun(BaseModel):
    run_id: str
    trigger_type: Literal["automatic", "manual"]
    status: RunStatusName
    start_time: str
    end_time: str | None
    duration_seconds: float
    symbols_processed: int
    symbols_failed: int
    patterns_detected: int = 0
    indicators_calculated: int = 0
    session_date: str
    phases: list[str]
    error: str | None = None


class ProcessingHistory(BaseModel):
    runs: list[ProcessingRun]


class ProcessingPhaseResult(BaseModel):
    phase: str
    status: str
    start_time: str | None
    end_time: str | None
    duration_seconds: float | None
    counts: dict[str, Any]
    error: str | None


class ProcessingRunDetail(ProcessingRun):
    phase_results: list[ProcessingPhaseResult]


class ProcessingCancelled(BaseModel):
    success: bool = True
    message: str
    run_id: str


class ProcessingSchedule(BaseModel):
    enabled: bool
    trigger_time: str = Field(description="HH:MM in `timezone`")
    timezone: str
    next_run: str | None = Field(description="ISO-8601 UTC; null when disabled")
    universes: list[str]
    market_check: bool


def _optional(schema: dict[str, Any]) -> None:
    """A field that may be left out but, when sent, is never null: no `default: null` in the schema
    (the schema says what a null gets: 422)."""
    schema.pop("default", None)


class ProcessingScheduleUpdate(BaseModel):
    """Only the keys being changed (each may be left out, none may be null); values are checked by
    pipeline.schedule.validate_changes."""

    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool = Field(None, json_schema_extra=_optional)
    trigger_time: str = Field(None, json_schema_extra=_optional)
    timezone: str = Field(None, json_schema_extra=_optional)
    market_check: StrictBool = Field(None, json_schema_extra=_optional)
    universes: list[str] = Field(None, json_schema_extra=_optional)
