"""Dependency providers with `Annotated` aliases, so route signatures stay short.

    SettingsDep    the process Settings
    ConnDep        the request's connection: an AsyncConnection (autocommit) of the one pool
                   (services.pool, a psycopg_pool.AsyncConnectionPool), held for the length of the request
    KeyRequired    X-API-Key must be valid (router-level dependency)
    ProcessingKey  X-API-Key checked only when settings.require_key_processing is true

The API has one concurrency model (docs/ARCHITECTURE.md, "The API's concurrency model"): every route is
`async def` and takes `conn: ConnDep`. Adding a route:

    @router.get("/thing/{id}", response_model=Thing, responses={404: {"model": ErrorBody}})
    async def thing(id: str, conn: ConnDep, settings: SettingsDep) -> Thing:
        row = await readers.thing(conn, settings.environment, id)      # an async reader, or
        row = await blocking.run(conn, domain.thing, settings.environment, id)  # synchronous shared code
        return Thing(...)

Never a `def` route, never a second pool or a connection of the route's own; errors are raised as the
classes of errors.py (the app's handlers answer them). Work that outlives the request (a sync job, a
pipeline run) is started through `request.app.state.services` and runs in the job runner's thread.

Waiting for a connection is the pool's own (FIFO, on the event loop: no thread waits), bounded by
POOL_WAIT_S; a wait that failed makes the next ones short (DOWN_WAIT_S) until a checkout succeeds, so
requests answer 503 well inside AppV2's 2-5 s timeouts while the database is down.
"""

from __future__ import annotations

from typing import Annotated, AsyncIterator

import psycopg
from fastapi import Depends, Request
from psycopg_pool import PoolTimeout

from tickstockpl.api.auth import require_key, require_key_processing
from tickstockpl.settings import Settings

POOL_WAIT_S = 5.0  # a request waits this long for a connection before answering 503
DOWN_WAIT_S = 1.0  # ... and only this long while the database is known to be unreachable


async def get_settings(request: Request) -> Settings:  # async: no thread hop
    return request.app.state.settings


def _wait_s(request: Request) -> float:
    """How long a request waits for a connection: short once a wait has already failed (the database is
    down), until a checkout succeeds."""
    return DOWN_WAIT_S if getattr(request.app.state, "database_unreachable", False) else POOL_WAIT_S


def _reachable(request: Request, reachable: bool) -> None:
    request.app.state.database_unreachable = not reachable


async def get_conn(request: Request) -> AsyncIterator[psycopg.AsyncConnection]:
    """The request's connection, from the one pool, returned to it when the answer is sent."""
    pool = request.app.state.services.pool
    try:
        conn = await pool.getconn(timeout=_wait_s(request))
    except PoolTimeout:
        _reachable(request, False)
        raise
    _reachable(request, True)
    try:
        yield conn
    finally:
        await pool.putconn(conn)


SettingsDep = Annotated[Settings, Depends(get_settings)]
ConnDep = Annotated[psycopg.AsyncConnection, Depends(get_conn)]
KeyRequired = Depends(require_key)
ProcessingKey = Depends(require_key_processing)
