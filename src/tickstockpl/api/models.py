"""Request and response bodies of the HTTP API: these models ARE the contract (APPV2_CONTRACT.md §2).

Naming: `<Thing>Request` for bodies we accept, `<Thing>` for one object returned, `<Things>` for
a page of them; `ErrorBody` for every error. Timestamps are strings, ISO-8601 UTC with a trailing Z
(`events.catalog.iso_z`), never datetimes, so that the format is ours and not the serializer's.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

Mode = Literal["full", "market_cap", "themes", "ipos"]
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


class JobStatus(BaseModel):
    job_id: str
    mode: Mode
    status: JobStatusName
    created_at: str
    start_time: str | None
    end_time: str | None
    duration_seconds: float | None
    triggered_by: str
    error_details: str | None
    progress: JobProgress | None
    force: bool
    as_of: str | None = Field(None, description="market date the sync used (YYYY-MM-DD)")
    result: dict[str, Any] | None = Field(None, description="summary once completed: changes, universes updated")


class JobSummary(BaseModel):
    job_id: str
    mode: Mode
    status: JobStatusName
    created_at: str
    start_time: str | None
    end_time: str | None
    duration_seconds: float | None
    triggered_by: str
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


# --- health (§2.2) ---------------------------------------------------------------------------
class Services(BaseModel):
    database: Literal["up", "down"]
    redis: Literal["up", "down"]
    api: Literal["up"] = "up"


class Health(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    services: Services
    processing_status: Literal["idle", "running"]
    version: str
    timestamp: str
    outbox_pending: int | None = Field(None, description="events not yet delivered to Redis")
