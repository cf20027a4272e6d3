"""Opening connections. Driver errors become `ServiceUnavailable` (the server cannot be reached) or
`ConfigError` (the URL itself is malformed) here, once."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import psycopg

from tickstockpl.errors import ConfigError, ServiceUnavailable, TickStockError

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
        raise ServiceUnavailable(f"cannot connect to PostgreSQL: {_first_line(err)}") from None
    except psycopg.ProgrammingError as err:  # the connection string itself cannot be parsed
        raise ConfigError(f"invalid database URL: {_first_line(err)}") from None


@contextmanager
def connection(url: str, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    conn = connect(url, autocommit=autocommit)
    try:
        yield conn
    finally:
        conn.close()


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else err.__class__.__name__


def write_until_recorded(conn: psycopg.Connection, url: str, write: Callable[[psycopg.Connection], None], *,
                         what: str, retry_s: float) -> bool:
    """Run `write` on `conn` or, once `conn` is gone (the database restarted), on a fresh connection,
    retrying with backoff for up to `retry_s`; returns whether it was recorded. Used to record how a
    job or run ended with its real reason rather than leave it to abandoned-job recovery."""
    deadline = time.monotonic() + retry_s
    delay = 0.5
    fresh = None
    try:
        while True:
            try:
                target = conn
                if conn.closed or conn.broken:
                    if fresh is None or fresh.closed or fresh.broken:
                        fresh = connect(url, autocommit=True)
                    target = fresh
                write(target)
                return True
            except (psycopg.Error, TickStockError) as err:
                if time.monotonic() >= deadline:
                    log.error("could not record %s: %s", what, _first_line(err))
                    return False
                log.warning("recording %s: database unavailable, retrying in %.1fs", what, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
    finally:
        if fresh is not None:
            fresh.close()
