"""The legacy baseline keeps working (the benchmark's reference) and its statement count is what
the contract describes: constant in the number of symbols, one INSERT per row."""

from __future__ import annotations

import datetime as dt

import psycopg

from bench import legacy
from tests.statements import counted, sample_database


def run_counted(url: str, today: dt.date) -> tuple[dict, int]:
    with psycopg.connect(url) as conn, counted() as sent:
        result = legacy.rebuild(conn, "DEFAULT", today)
    return result, len(sent)


def test_baseline_rebuilds_every_family_with_one_insert_per_row(market_db_url, small_market):
    with psycopg.connect(market_db_url) as conn:
        conn.execute("INSERT INTO cache_entries (type, name, key, value, environment)"
                     " VALUES ('app_settings', 'x', 'y', '1', 'DEFAULT')")
        conn.commit()
    result, statements = run_counted(market_db_url, small_market.end)
    with psycopg.connect(market_db_url) as conn:
        rows = conn.execute("SELECT type, name, key FROM cache_entries").fetchall()
    families = {(t, n) for t, n, _ in rows}
    assert {("stock_universe", "market_cap"), ("stock_universe", "sector_leaders"), ("stock_universe", "industry"),
            ("etf_universe", "Technology ETFs"), ("stock_etf_combo", "stock_etf_test"),
            ("stock_stats", "universe")} <= families
    assert ("app_settings", "x", "y") in rows  # other types untouched
    assert result["rows"] == len(rows) - 1
    assert statements > result["rows"] + 60  # the per-universe SELECTs, then one INSERT per row


def test_baseline_statement_count_does_not_depend_on_the_number_of_symbols(pg, schema_template):
    counts = []
    for stocks in (300, 900):
        with sample_database(pg, schema_template, stocks=stocks, sessions=5, seed=5) as (url, market):
            counts.append(run_counted(url, market.end)[1])
    assert counts[0] == counts[1]
