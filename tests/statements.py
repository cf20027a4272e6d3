"""Helpers of the tests that count SQL statements (the baseline's and the sync's)."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from typing import Iterator

import psycopg

from tests.support.databases import DROPPER_THREAD
from tickstockpl.market import sample


@contextlib.contextmanager
def counted() -> Iterator[list[str]]:
    """Every statement sent through psycopg (execute and COPY) while the block runs, but the DROP DATABASE
    statements of the tests' own dropper thread (tests/support/databases.py), which run at any time."""
    sent: list[str] = []
    execute, copy = psycopg.Cursor.execute, psycopg.Cursor.copy

    def ours() -> bool:
        return threading.current_thread().name == DROPPER_THREAD

    def counting_execute(self, query, *args, **kwargs):
        if not ours():
            sent.append(str(query))
        return execute(self, query, *args, **kwargs)

    def counting_copy(self, statement, *args, **kwargs):
        if not ours():
            sent.append(str(statement))
        return copy(self, statement, *args, **kwargs)

    psycopg.Cursor.execute, psycopg.Cursor.copy = counting_execute, counting_copy
    try:
        yield sent
    finally:
        psycopg.Cursor.execute, psycopg.Cursor.copy = execute, copy


@contextlib.contextmanager
def sample_database(pg, template: str, *, stocks: int, sessions: int, seed: int):
    """(url, market): a database from `template` holding a sample market of `stocks` stocks
    (and a quarter as many ETFs), dropped afterwards."""
    name = pg.create_database(f"count{stocks}_{seed}", template=template)
    market = sample.generate(stocks=stocks, etfs=stocks // 4, sessions=sessions, end=dt.date(2026, 11, 27), seed=seed)
    try:
        with psycopg.connect(pg.url(name)) as conn:
            sample.write(conn, market)
        yield pg.url(name), market
    finally:
        pg.drop_database(name)
