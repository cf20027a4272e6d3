"""Opening connections, and the one translation of psycopg's errors into TickStockPL's (errors.py).

Opening: the server cannot be reached -> `ServiceUnavailable`, the URL itself is malformed -> `ConfigError`.
Any other psycopg (or psycopg_pool) error a caller lets through -> `translate(err)`, read by the API's
handler and the CLI alike (db.drivers.as_tickstock)."""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import psycopg

from tickstockpl.errors import (ConfigError, ServiceUnavailable, StatementRefused, TickStockError, UnusableValue,
                                first_line)

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5


def connect(url: str, *, autocommit: bool = False, application_name: str = "tickstockpl") -> psycopg.Connection:
    try:
        return psycopg.connect(
            url,
            autocommit=autocommit,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name=application_name,
        )
    except psycopg.OperationalError as err:
        raise ServiceUnavailable(f"cannot connect to PostgreSQL: {first_line(err)}") from None
    except psycopg.ProgrammingError as err:  # the connection string itself cannot be parsed
        raise ConfigError(f"invalid database URL: {first_line(err)}") from None


@contextmanager
def connection(url: str, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    conn = connect(url, autocommit=autocommit)
    try:
        yield conn
    finally:
        conn.close()


def connection_lost(err: BaseException) -> bool:
    """The database went away (restart, crash, network) rather than refused a statement: an
    OperationalError, a closed connection (InterfaceError), or SQLSTATE class 08 (connection exception)
    or 57P (admin or crash shutdown, cannot connect now)."""
    if isinstance(err, (psycopg.OperationalError, psycopg.InterfaceError)):
        return True
    state = getattr(err, "sqlstate", None) or ""
    return state.startswith(("08", "57P"))


def translate(err: BaseException) -> TickStockError | None:
    """The TickStockError a psycopg or psycopg_pool error stands for (None for any other exception)."""
    if not isinstance(err, psycopg.Error):
        return None
    text = first_line(err)
    pool = sys.modules.get("psycopg_pool")
    if pool is not None and isinstance(err, pool.PoolTimeout):
        return ServiceUnavailable(f"no database connection free: {text}",
                                  public="database unavailable (no connection within the time limit)", logged=False)
    if connection_lost(err):
        return ServiceUnavailable(f"PostgreSQL is unavailable: {text}")
    if isinstance(err, (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn)):
        return StatementRefused(f"{text}: the database lacks a table or column PL needs (see `tickstockpl db check`;"
                                " `tickstockpl db upgrade` creates PL's tables)", debug_hint=False)
    if isinstance(err, psycopg.DataError):
        return UnusableValue(err.__class__.__name__, text)
    return StatementRefused(f"PostgreSQL refused a statement: {err.__class__.__name__}: {text}")


def write_until_recorded(conn: psycopg.Connection, url: str, write: Callable[[psycopg.Connection], None], *,
                         what: str, retry_s: float) -> bool:
    """Run `write` on `conn` or, once `conn` is gone (the database restarted), on a fresh connection,
    retrying with backoff for up to `retry_s`; returns whether it was recorded. Used to record how a
    job or run ended with its real reason rather than leave it to abandoned-job recovery.

    `conn` gets one try: a connection that failed once is closed and not trusted again, since it may go
    on looking healthy (neither closed nor broken) while every statement on it fails; a COPY cut off
    mid-stream is the suspected case (not reproduced). Closing it also ends any transaction of its that
    could hold a lock the fresh connection's write would wait for."""
    deadline = time.monotonic() + retry_s
    delay = 0.5
    fresh = None
    own = not (conn.closed or conn.broken)
    try:
        while True:
            try:
                if own:
                    target = conn
                else:
                    if fresh is None or fresh.closed or fresh.broken:
                        fresh = connect(url, autocommit=True)
                    target = fresh
                write(target)
                return True
            except (psycopg.Error, TickStockError) as err:
                if own:
                    own = False
                    conn.close()
                    continue  # straight on to a fresh connection
                if time.monotonic() >= deadline:
                    log.error("could not record %s: %s", what, first_line(err))
                    return False
                log.warning("recording %s: database unavailable, retrying in %.1fs", what, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
    finally:
        if fresh is not None:
            fresh.close()
