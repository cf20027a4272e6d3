"""Opening connections. Driver errors become `ServiceUnavailable` here, once."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import psycopg

from tickstockpl.errors import ServiceUnavailable

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
