"""The number of SQL statements of a sync is constant: it does not grow with the symbols, sectors,
industries, themes or ETF categories of the market (issue 6 allows this one count-based assertion;
no test here looks at wall-clock time)."""

from __future__ import annotations

import contextlib
import datetime as dt

import psycopg

from tickstockpl.jobs.runtime import start_job
from tickstockpl.market import sample


@contextlib.contextmanager
def counted():
    """Count every statement sent through psycopg (execute and COPY) while the block runs."""
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


def statements_of_a_daily_run_and_a_rerun(url: str, market) -> tuple[int, int, dict]:
    def sync(as_of: dt.date):
        return start_job(url, triggered_by="cli", background=False, as_of=as_of).result

    sync(market.sessions[-2])  # synced as of the session before: the next sync is a daily run
    with counted() as daily:
        result = sync(market.end)
    with counted() as rerun:
        again = sync(market.end)
    assert result.total_changes > 0 and again.unchanged_since == result.job_id
    return len(daily), len(rerun), {"universes": result.universes_updated + result.universes_unchanged}


def test_statement_count_is_constant_across_market_sizes(pg, schema_template):
    counts = []
    for stocks in (80, 1200):
        name = pg.create_database(f"stmts{stocks}", template=schema_template)
        market = sample.generate(stocks=stocks, etfs=stocks // 4, sessions=6, end=dt.date(2026, 11, 27), seed=11)
        with psycopg.connect(pg.url(name)) as conn:
            sample.write(conn, market)
        try:
            counts.append(statements_of_a_daily_run_and_a_rerun(pg.url(name), market))
        finally:
            pg.drop_database(name)
    (daily_small, rerun_small, small), (daily_large, rerun_large, large) = counts
    assert large["universes"] > small["universes"]  # more industries qualify in the larger market
    assert daily_small == daily_large <= 20
    assert rerun_small == rerun_large < daily_small
