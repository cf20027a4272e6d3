"""The job table (pl_sync_jobs): its row type and the statements more than one module sends (the
runtime's claim and end recording live in jobs/runtime.py, the read-only views in jobs/reports.py, and
sync/fingerprint.py embeds LAST_FINGERPRINT_SQL); no other imports, so anything may import it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

# `result` is read as a summary: the stored per-universe list and symbol lists (kilobytes for a
# full sync, and the bulk of a status request's cost) become counts; the detail is in the change log.
RESULT_SUMMARY = (
    "CASE WHEN result IS NULL THEN NULL ELSE (result - 'universes' - 'new_ipos' - 'delisted')"
    " || jsonb_build_object('new_ipos', coalesce(jsonb_array_length(result->'new_ipos'), 0),"
    " 'delisted', coalesce(jsonb_array_length(result->'delisted'), 0)) END"
)
JOB_COLUMNS = (
    "job_id, mode, force, triggered_by, status, as_of, created_at, start_time, end_time,"
    f" error_details, {RESULT_SUMMARY}, progress, environment"
)


@dataclass
class Job:
    job_id: str
    mode: str
    force: bool
    triggered_by: str
    status: str
    as_of: dt.date | None
    created_at: dt.datetime
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    error_details: str | None
    result: dict[str, Any] | None  # summary: counts (see RESULT_SUMMARY)
    progress: dict[str, Any] | None
    environment: str

    @property
    def duration_seconds(self) -> float | None:
        if self.start_time is None:
            return None
        end = self.end_time or dt.datetime.now(dt.timezone.utc)
        return round((end - self.start_time).total_seconds(), 3)

    @classmethod
    def from_row(cls, row) -> "Job":
        values = list(row)
        values[0] = str(values[0])
        return cls(*values)


GET_JOB_SQL = f"SELECT {JOB_COLUMNS} FROM pl_sync_jobs WHERE job_id = %s"


# The fingerprints of the newest completed, non-forced job of a mode (sync/fingerprint.py uses it as a
# CTE of the snapshot statement, so a rerun decides in one round trip). Parameters %(env)s, %(mode)s.
LAST_FINGERPRINT_SQL = (
    "SELECT job_id, inputs_digest, outputs_digest, result FROM pl_sync_jobs"
    " WHERE environment = %(env)s AND mode = %(mode)s AND status = 'completed' AND NOT force"
    " AND inputs_digest IS NOT NULL ORDER BY end_time DESC NULLS LAST LIMIT 1")
