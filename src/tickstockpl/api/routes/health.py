"""`GET /health` (contract §2.2): 200 healthy|degraded, 503 when the database cannot be reached.

Every probe has a short time limit, so the answer comes well inside AppV2's 5 s timeout. The database
is probed on a connection of the one pool (taken here, not through ConnDep: a pool that cannot give one
is the answer `down`, not an error); the pipeline check (pipeline/runs.py, synchronous) and the Redis
probe (a synchronous client with short timeouts) run through api/blocking.py.
"""

from __future__ import annotations

import logging

import psycopg
import redis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout

from tickstockpl import __version__
from tickstockpl.api import blocking
from tickstockpl.api.models import Health, ServiceStates
from tickstockpl.errors import first_line
from tickstockpl.events.catalog import utc_now_iso

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

DB_WAIT_S = 1.5
STATEMENT_TIMEOUT_MS = 1000


async def _database(request: Request) -> tuple[bool, bool, int | None]:
    """(database up, a pipeline run is live, outbox rows pending). Why it is down is logged (the body
    only says `down`: the driver's text names hosts and ports)."""
    pool = request.app.state.services.pool
    why: BaseException | None = None
    for _attempt in range(2):  # a pooled connection may have died with a restarted server: retry once
        try:
            async with pool.connection(timeout=DB_WAIT_S) as conn:
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
                    pending = (await (await conn.execute(
                        "SELECT count(*) FROM pl_event_outbox WHERE delivered_at IS NULL")).fetchone())[0]
                running = await blocking.run(conn, _pipeline_running, request.app.state.settings.environment)
                return True, running, int(pending)
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


def _redis_up(services) -> bool:
    if services.redis_url is None:
        return False
    try:
        return bool(services.redis_probe.ping())
    except redis.RedisError:
        return False


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(request: Request):
    """Liveness and dependencies; no key required."""
    db_up, running, pending = await _database(request)
    redis_up = await blocking.call(_redis_up, request.app.state.services)
    body = Health(
        status="unhealthy" if not db_up else ("healthy" if redis_up else "degraded"),
        services=ServiceStates(database="up" if db_up else "down", redis="up" if redis_up else "down"),
        processing_status="running" if running else "idle",
        version=__version__, timestamp=utc_now_iso(), outbox_pending=pending,
    )
    if not db_up:
        return JSONResponse(body.model_dump(), status_code=503)
    return body
