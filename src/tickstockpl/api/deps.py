"""Dependency providers with `Annotated` aliases, so route signatures stay short.

    SettingsDep    the process Settings
    ConnDep        a pooled psycopg connection (autocommit) for the length of the request
    AsyncConnDep   a pooled async connection, for the status endpoint only (its hot path)
    KeyRequired    X-API-Key must be valid (router-level dependency)
    ProcessingKey  X-API-Key checked only when settings.require_key_processing is true

Routes are plain `def` functions run in the worker thread pool: the whole package is synchronous
psycopg. The one exception is the job status endpoint, AppV2's polling target with a throughput
goal: `async def` on an async connection, measured at ~40 % less CPU per request (see
docs/ARCHITECTURE-notes.md).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, AsyncIterator

import anyio.to_thread
import psycopg
from fastapi import Depends, Request
from psycopg_pool import PoolTimeout

from tickstockpl.api.auth import require_key, require_key_processing
from tickstockpl.api.services import POOL_MAX
from tickstockpl.settings import Settings

POOL_WAIT_S = 5.0  # a request waits this long for a connection before answering 503
DOWN_WAIT_S = 1.0  # ... and only this long while the database is known to be unreachable
IDLE_TAKE_S = 0.0001  # the most the event loop waits for an idle connection (timeout=0 never takes one)


async def get_settings(request: Request) -> Settings:  # async: no thread hop
    return request.app.state.settings


def _connection_slots(request: Request) -> anyio.Semaphore:
    """At most POOL_MAX requests hold or wait for a pooled connection; made on the event loop at first use."""
    state = request.app.state
    slots = getattr(state, "connection_slots", None)
    if slots is None:
        slots = state.connection_slots = anyio.Semaphore(POOL_MAX)
    return slots


def _wait_s(request: Request) -> float:
    """How long a request waits for a new connection: short once a wait has already failed (the
    database is down: answer 503 well inside AppV2's 2-5 s timeouts), until a checkout succeeds."""
    return DOWN_WAIT_S if getattr(request.app.state, "database_unreachable", False) else POOL_WAIT_S


def _reachable(request: Request, reachable: bool) -> None:
    request.app.state.database_unreachable = not reachable


async def get_conn(request: Request) -> AsyncIterator[psycopg.Connection]:
    """A pooled connection, taken and returned on the event loop when one is idle.

    A `def` generator dependency would cost two hops to the thread pool per request (enter and
    exit), which measured as a large share of a status request. Taking an idle connection is a
    deque pop under a lock and returning an idle autocommit connection does no I/O, so both run
    here; only when the pool is empty is the wait done in a worker thread.

    Requests first take one of POOL_MAX slots, waiting on the event loop (FIFO, no thread). Without
    that bound, many concurrent requests block every worker thread in `pool.getconn` while the
    requests holding the connections wait for a thread to run their route: nothing moves until the
    waits time out (503s and 10 s latencies with 100 clients listing universes; see
    tests/reliability/test_load.py).
    """
    pool = request.app.state.services.pool
    slots = _connection_slots(request)
    deadline = anyio.current_time() + POOL_WAIT_S
    with anyio.move_on_after(POOL_WAIT_S) as waited:
        await slots.acquire()
    if waited.cancelled_caught:
        raise PoolTimeout(f"no database connection free within {POOL_WAIT_S:.0f} s")
    try:
        try:
            conn = pool.getconn(timeout=IDLE_TAKE_S)
        except PoolTimeout:
            left = max(min(deadline - anyio.current_time(), _wait_s(request)), IDLE_TAKE_S)
            try:
                conn = await anyio.to_thread.run_sync(partial(pool.getconn, left))
            except PoolTimeout:
                _reachable(request, False)
                raise
        _reachable(request, True)
        try:
            yield conn
        finally:
            pool.putconn(conn)
    finally:
        slots.release()


async def get_async_conn(request: Request) -> AsyncIterator[psycopg.AsyncConnection]:
    apool = request.app.state.services.apool
    try:
        conn = await apool.getconn(timeout=_wait_s(request))
    except PoolTimeout:
        _reachable(request, False)
        raise
    _reachable(request, True)
    try:
        yield conn
    finally:
        await apool.putconn(conn)


SettingsDep = Annotated[Settings, Depends(get_settings)]
ConnDep = Annotated[psycopg.Connection, Depends(get_conn)]
AsyncConnDep = Annotated[psycopg.AsyncConnection, Depends(get_async_conn)]
KeyRequired = Depends(require_key)
ProcessingKey = Depends(require_key_processing)
