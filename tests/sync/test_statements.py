"""The number of SQL statements of a sync is constant: it does not grow with the symbols, sectors,
industries, themes or ETF categories of the market (issue 6 allows this one count-based assertion;
no test here looks at wall-clock time)."""

from __future__ import annotations

import datetime as dt

import psycopg

from tests.statements import counted, sample_database
from tickstockpl.jobs.runtime import start_job
from tickstockpl.market import liquidity


def statements_of_a_daily_run_and_a_rerun(url: str, market) -> tuple[int, int, dict]:
    def sync(as_of: dt.date):
        return start_job(url, triggered_by="cli", background=False, as_of=as_of).result

    sync(market.sessions[-2])  # synced as of the session before: the next sync is a daily run
    with psycopg.connect(url) as conn:  # the import of the newest session moves the rule universes' statistics
        liquidity.catch_up(conn, market.end)
    with counted() as daily:
        result = sync(market.end)
    with counted() as rerun:
        again = sync(market.end)
    assert result.total_changes > 0 and again.unchanged_since == result.job_id
    assert result.churn  # the rule universes were built
    return len(daily), len(rerun), {"universes": result.universes_updated + result.universes_unchanged}


def test_statement_count_is_constant_across_market_sizes(pg, schema_template, market_clock):
    counts = []
    for stocks in (80, 1200):
        with sample_database(pg, schema_template, stocks=stocks, sessions=6, seed=11) as (url, market):
            counts.append(statements_of_a_daily_run_and_a_rerun(url, market))
    (daily_small, rerun_small, small), (daily_large, rerun_large, large) = counts
    assert large["universes"] > small["universes"]  # more industries qualify in the larger market
    assert daily_small == daily_large <= 25  # issue 13's budget, the rule universes included
    assert rerun_small == rerun_large < daily_small
