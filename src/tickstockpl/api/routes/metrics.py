"""`GET /metrics`: Prometheus text format, no key required (see `tickstockpl.metrics`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from tickstockpl.api.deps import ConnDep, SettingsDep
from tickstockpl.metrics import CONTENT_TYPE, render

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
async def metrics(request: Request, conn: ConnDep, settings: SettingsDep) -> Response:
    """Job counts by status, last success time, sync durations, events pending in the outbox."""
    relay = request.app.state.services.relay
    return Response(await render(conn, settings.environment, relay), media_type=CONTENT_TYPE)
