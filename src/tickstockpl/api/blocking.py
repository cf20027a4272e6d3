"""How an `async def` route calls synchronous code: the one bridge from the event loop to a worker thread.

    await blocking.run(conn, fn, *args)   fn(view, *args) in a worker thread; `view` is the request's own
                                          connection (ConnDep) seen synchronously: every statement fn sends
                                          still runs on the event loop, on that connection
    await blocking.call(fn, *args)        fn(*args) in a worker thread (no database: the Redis probe)

The API's model (docs/ARCHITECTURE.md, "The API's concurrency model"): every route is `async def` and
reads on the one AsyncConnectionPool through `deps.ConnDep`. Code the API shares with the CLI, the
scheduler and the job runner is synchronous psycopg (the pipeline's runs and their recovery, the schedule
and the stored calendar, calendar overrides): it is written once, and a route runs it with `run`, never
on a second pool or a second connection. A worker thread only ever waits for statements on a connection
its request already holds, so no thread can wait for a pooled connection (the starvation the old
semaphore guarded against cannot happen).

The view offers what that code uses of a psycopg Connection: `execute` (the rows are fetched with the
statement: the result is client-side either way), `cursor(row_factory=..., binary=...)` with its
`description` and `adapters` (per-cursor loaders), `transaction()`, `commit`,
`rollback` and the connection's plain attributes (`closed`, `broken`, `info`, `autocommit`). Errors are
the driver's own (psycopg raises the same classes on both connection types).
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import partial
from typing import Any, Callable, Iterator, TypeVar

import anyio.from_thread
import anyio.to_thread
import psycopg

T = TypeVar("T")

# Worker threads for `run` and `call` (anyio's default limiter, made explicit; set by the app's lifespan).
THREADS = 40


async def call(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a worker thread."""
    return await anyio.to_thread.run_sync(partial(fn, *args))


async def run(conn: psycopg.AsyncConnection, fn: Callable[..., T], *args: Any) -> T:
    """`fn(view, *args)` in a worker thread, `view` the synchronous face of `conn`."""
    return await anyio.to_thread.run_sync(partial(fn, BlockingConnection(conn), *args))


class Result:
    """What `execute` returns: the statement's rows (already fetched) and its row count."""

    def __init__(self, rows: list, rowcount: int, description):
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount
        self.description = description

    def fetchone(self):
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list:
        rest, self._next = self._rows[self._next:], len(self._rows)
        return rest

    def fetchmany(self, size: int = 1) -> list:
        found = self._rows[self._next:self._next + size]
        self._next += len(found)
        return found

    def __iter__(self) -> Iterator:
        while (row := self.fetchone()) is not None:
            yield row


async def _execute(cursor: psycopg.AsyncCursor, query, params) -> Result:
    await cursor.execute(query, params)
    rows = await cursor.fetchall() if cursor.description is not None else []
    return Result(rows, cursor.rowcount, cursor.description)


class BlockingCursor:
    """`conn.cursor(row_factory=..., binary=...)`, used as a context manager: `execute`, then the fetches
    and `description`. The AsyncCursor behind it exists from the start, so its `adapters` take
    per-cursor loaders (e.g. `psycopg.types.json.set_json_loads(loads, cursor)`) before `execute`."""

    def __init__(self, view: "BlockingConnection", row_factory, binary: bool):
        self._view, self._result = view, None
        aconn = view.aconn
        self._cursor = aconn.cursor(row_factory=row_factory, binary=binary) if row_factory is not None else \
            aconn.cursor(binary=binary)

    def __enter__(self) -> "BlockingCursor":
        return self

    def __exit__(self, *exc) -> None:
        self._result = None
        self._view._on_loop(self._cursor.close)

    @property
    def adapters(self):
        return self._cursor.adapters

    def execute(self, query, params=None) -> "BlockingCursor":
        self._result = self._view._on_loop(_execute, self._cursor, query, params)
        return self

    @property
    def description(self):
        return self._result.description if self._result is not None else None

    @property
    def rowcount(self) -> int:
        return self._result.rowcount if self._result is not None else -1

    def fetchone(self):
        return self._result.fetchone()

    def fetchall(self) -> list:
        return self._result.fetchall()

    def __iter__(self) -> Iterator:
        return iter(self._result)


class BlockingConnection:
    """An AsyncConnection seen from a worker thread (see the module docstring)."""

    def __init__(self, aconn: psycopg.AsyncConnection):
        self.aconn = aconn

    def _on_loop(self, fn, *args):
        return anyio.from_thread.run(partial(fn, *args))

    def execute(self, query, params=None) -> Result:
        return self._on_loop(self._execute, query, params)

    async def _execute(self, query, params) -> Result:
        async with self.aconn.cursor() as cursor:
            return await _execute(cursor, query, params)

    def cursor(self, row_factory=None, *, binary: bool = False) -> BlockingCursor:
        return BlockingCursor(self, row_factory, binary)

    @contextmanager
    def transaction(self):
        tx = self.aconn.transaction()
        self._on_loop(tx.__aenter__)
        try:
            yield tx
        except BaseException as err:
            if not self._on_loop(tx.__aexit__, type(err), err, err.__traceback__):
                raise
        else:
            self._on_loop(tx.__aexit__, None, None, None)

    def commit(self) -> None:
        self._on_loop(self.aconn.commit)

    def rollback(self) -> None:
        self._on_loop(self.aconn.rollback)

    @property
    def closed(self) -> bool:
        return self.aconn.closed

    @property
    def broken(self) -> bool:
        return self.aconn.broken

    @property
    def info(self):
        return self.aconn.info

    @property
    def autocommit(self) -> bool:
        return self.aconn.autocommit
