"""`GET /health` (contract §2.2): 200 healthy|degraded, 503 when the database cannot be reached.

Every probe has a short time limit, so the answer comes well inside AppV2's 5 s timeout.
"""

from __future__ import annotations

import logging

import psycopg
import redis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout

from tickstockpl import __version__
from tickstockpl.api.models import Health, ServiceStates
from tickstockpl.errors import first_line
from tickstockpl.events.catalog import utc_now_iso

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

DB_WAIT_S = 1.5
STATEMENT_TIMEOUT_MS = 1000


def _database(request: Request) -> tuple[bool, bool, int | None]:
    """(database up, a pipeline run is live, outbox rows pending). Why it is down is logged (the body
    only says `down`: the driver's text names hosts and ports)."""
    pool = request.app.state.services.pool
    why: BaseException | None = None
    for _attempt in range(2):  # a pooled connection may have died with a restarted server: retry once
        try:
            with pool.connection(timeout=DB_WAIT_S) as conn:
                with conn.transaction():
                    conn.execute(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
                    pending = conn.execute("SELECT count(*) FROM pl_event_outbox WHERE delivered_at IS NULL").fetchone()[0]
                return True, _pipeline_running(conn, request.app.state.settings.environment), int(pending)
        except PoolTimeout as err:
            why = err
            break
        except psycopg.OperationalError as err:
            why = err
            continue
    # INFO, not WARNING: the outage itself is said once down and once back (tickstockpl.outages);
    # each /health during it only adds the driver's reason for whoever reads the INFO log.
    log.info("health: database down: %s", first_line(why))
    return False, False, None


def _pipeline_running(conn, environment: str) -> bool:
    from tickstockpl.pipeline.coordinator import is_running

    try:
        return bool(is_running(conn, environment))
    except Exception:  # noqa: BLE001 - health must answer; the pipeline reports its own errors
        log.exception("pipeline is_running() failed")
        return False


def _redis(request: Request) -> bool:
    services = request.app.state.services
    if services.redis_url is None:
        return False
    try:
        return bool(services.redis_probe.ping())
    except redis.RedisError:
        return False


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(request: Request):
    """Liveness and dependencies; no key required."""
    db_up, running, pending = _database(request)
    redis_up = _redis(request)
    body = Health(
        status="unhealthy" if not db_up else ("healthy" if redis_up else "degraded"),
        services=ServiceStates(database="up" if db_up else "down", redis="up" if redis_up else "down"),
        processing_status="running" if running else "idle",
        version=__version__, timestamp=utc_now_iso(), outbox_pending=pending,
    )
    if not db_up:
        return JSONResponse(body.model_dump(), status_code=503)
    return body
