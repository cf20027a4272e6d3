"""Helpers of the tests that count SQL statements (the baseline's and the sync's)."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Iterator

import psycopg

from tickstockpl.market import sample


@contextlib.contextmanager
def counted() -> Iterator[list[str]]:
    """Every statement sent through psycopg (execute and COPY) while the block runs."""
    sent: list[str] = []
    execute, copy = psycopg.Cursor.execute, psycopg.Cursor.copy

    def counting_execute(self, query, *args, **kwargs):
        sent.append(str(query))
        return execute(self, query, *args, **kwargs)

    def counting_copy(self, statement, *args, **kwargs):
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
