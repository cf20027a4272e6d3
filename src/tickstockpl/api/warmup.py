"""Warm a serving process before it opens its port, so that every endpoint answers its first request fast.

AppV2's processing client gives up after 2 s, and the first answer of a fresh process used to pay for work
done once per process: measured, the OpenAPI schema ~100 ms (`/openapi.json`), the first request through
FastAPI, pydantic and the connection pools 25-40 ms, and each route's first call 10-25 ms more. `warm_up`
does that work during the app's start-up: it builds the schema and sends one GET to every read-only route
(the explain of one rule universe included),
in process (ASGI, no socket: nothing is logged, nothing goes over the network). Unknown ids are used where a
path needs one (an answer of 404 still runs the route). It never delays a start-up much: when /health says
the database is down (503) only the schema is built, and it stops after BUDGET_S. A failure is logged and
never stops the start-up: the worst case is a slower first answer. The benchmark's first-answer figures
(bench/extra.py) measure the result from outside.
"""

from __future__ import annotations

import logging
import time

import httpx

log = logging.getLogger(__name__)

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
BUDGET_S = 3.0  # warming stops once it has taken this long (a slow or busy database)
READS = (
    "/health",
    "/metrics",
    "/api/processing/status",
    "/api/processing/schedule",
    "/api/processing/calendar/overrides",
    "/api/processing/history?days=7",
    f"/api/processing/runs/{UNKNOWN_ID}",
    f"/api/processing/cache-sync/status/{UNKNOWN_ID}",
    "/api/processing/cache-sync/history?limit=1&offset=0",
    "/api/processing/cache-sync/stats",
    "/api/universes",
    "/api/universes/changes?limit=1",
    "/api/universes/churn?from=2026-01-02&to=2026-01-02",
    "/api/universes/stock_universe/market_cap/mega_cap",
)


def paths() -> tuple[str, ...]:
    """READS and the explain of the first built-in rule universe: its first answer imported numpy and ran
    the rule step's read, 149 ms at 4,000 symbols and 264 ms at 12,000 (the benchmark's first answers,
    2026-12-08); warmed, the read and the engine's run for that one universe alone."""
    from tickstockpl.universes.rules.definition import default_definitions

    key = min(default_definitions())
    return (*READS, f"/api/universes/stock_universe/rules/{key}/explain?symbol=A")


async def warm_up(app, api_key: str | None) -> float:
    """Build the OpenAPI schema and GET each of READS once, in process; returns the seconds it took."""
    from tickstockpl.api import blocking

    started = time.perf_counter()
    try:
        await blocking.call(app.openapi)
        headers = {"X-API-Key": api_key} if api_key else {}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://warm-up", headers=headers) as client:
            for path in paths():
                answer = await client.get(path)
                if (path == "/health" and answer.status_code == 503) or time.perf_counter() - started > BUDGET_S:
                    break  # the database is down, or slow: do not hold the start-up any longer
    except Exception as err:  # noqa: BLE001 - warming is an optimisation: it must never stop the server
        log.warning("warm-up incomplete (%s: %s): first answers may be slower", err.__class__.__name__, err)
    seconds = time.perf_counter() - started
    log.debug("warm-up took %.3f s", seconds)
    return seconds
