"""Calendar overrides over the processing API (issue 14; market/overrides.py), behind X-API-Key as the
rest of /api/processing (included by routes/processing.py):

    GET    /api/processing/calendar/overrides          {"overrides": [{date, kind, close_time, reason}], "next_run"}
    POST   /api/processing/calendar/overrides          {"date", "kind": "closed"|"early_close", "close_time"?, "reason"?}
    DELETE /api/processing/calendar/overrides/{date}

Bad input is 422 with one message (nothing written); removing a day without an override is 404.
Every answer carries the schedule's `next_run` as it is with the overrides applied.
"""

from __future__ import annotations

from typing import Any, Optional

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from tickstockpl.api import blocking
from tickstockpl.api.deps import ConnDep, ProcessingKey
from tickstockpl.api.models import ErrorBody
from tickstockpl.market import overrides

# The key check on these routes themselves too (not only the processing router's): auth.failed_key_check
# reads the route's own dependencies, so a malformed body without a valid key answers 401, not 422.
router = APIRouter(prefix="/calendar/overrides", dependencies=[ProcessingKey])


class OverrideRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: str = Field(..., max_length=10)
    kind: str = Field(..., max_length=20)
    close_time: Optional[str] = Field(None, max_length=5)
    reason: str = Field("", max_length=overrides.REASON_MAX)


def _next_run(conn) -> Any:
    from tickstockpl.pipeline.schedule_store import public_schedule

    return public_schedule(conn).get("next_run")


# market/overrides.py and the stored calendar are synchronous (shared with `tickstockpl calendar` and the
# scheduler): each route runs them on its connection through api/blocking.py.
def _listed(conn) -> dict[str, Any]:
    return {"overrides": [o.to_dict() for o in overrides.list_overrides(conn)], "next_run": _next_run(conn)}


def _set(conn, body: OverrideRequest) -> dict[str, Any]:
    found = overrides.set_override(conn, body.date, body.kind, body.close_time, body.reason)
    return {"override": found.to_dict(), "next_run": _next_run(conn)}


def _removed(conn, day: str) -> dict[str, Any]:
    found = overrides.remove_override(conn, day)
    return {"removed": found.to_dict(), "next_run": _next_run(conn)}


@router.get("")
async def list_overrides(conn: ConnDep) -> dict[str, Any]:
    return await blocking.run(conn, _listed)


@router.post("")
async def set_override(conn: ConnDep, body: OverrideRequest) -> dict[str, Any]:
    return await blocking.run(conn, _set, body)


@router.delete("/{day}", responses={404: {"model": ErrorBody}})
async def remove_override(conn: ConnDep, day: str) -> dict[str, Any]:
    return await blocking.run(conn, _removed, day)
