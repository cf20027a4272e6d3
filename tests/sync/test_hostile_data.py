"""Odd and hostile rows in `symbols` and `ohlcv_daily`: the sync skips or copes, never crashes or half-writes."""

from __future__ import annotations

import datetime as dt
import json

import psycopg

from tickstockpl.jobs.runtime import start_job

AS_OF = dt.date(2026, 11, 27)

HOSTILE = [
    # symbol, name, type, active, market_cap, shares, sector, industry
    ("brk.b", "lowercase & dot", "CS", True, 900_000_000_000, None, "Financial Services", "Insurance - Diversified"),
    ("ZZNULL", None, "CS", True, None, None, None, None),
    ("ZZNEG", "", "CS", True, -5, None, "Technology", "Semiconductors"),
    ("ZZHUGE", "Huge Cap", "CS", True, 9_000_000_000_000_000, None, "technology", "Semiconductors"),
    ("ZZUNI", "Société Générale — 株式会社 ✓", "CS", True, 5_000_000_000, None, "Financial Services", "Banks - Regional"),
    ("ZZLONG", "Long industry", "CS", True, 4_000_000_000, None, "Industrials", "x" * 100),
    ("ZZETF", None, "ETF", True, None, None, None, None),
    ("ZZTYPE", "No type", None, True, 4_000_000_000, None, "Industrials", "Conglomerates"),
    ("ZZACT", "Null active", "CS", None, 4_000_000_000, None, "Industrials", "Conglomerates"),
]


def test_sync_copes_with_hostile_symbols(market_db_url):
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        for row in HOSTILE:
            conn.execute("INSERT INTO symbols (symbol, name, type, active, market_cap, weighted_shares_outstanding,"
                         " sector, industry) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)", row)
        conn.execute("INSERT INTO ohlcv_daily (symbol, date, open, high, low, close, volume)"
                     " VALUES ('ZZNEG', %s, 1, 1, 1, 'NaN', 10), ('ZZUNI', %s, 0, 0, 0, 0, 0)", (AS_OF, AS_OF))
    result = start_job(market_db_url, triggered_by="cli", as_of=AS_OF, background=False).result
    assert result.total_changes > 0
    with psycopg.connect(market_db_url) as conn:
        all_stocks = conn.execute("SELECT value FROM cache_entries WHERE key = 'all_stocks'").fetchone()[0]
        assert "brk.b" in all_stocks and "ZZHUGE" in all_stocks and "ZZUNI" in all_stocks
        for excluded in ("ZZNULL", "ZZNEG", "ZZETF", "ZZTYPE", "ZZACT"):
            assert excluded not in all_stocks
        keys = [r[0] for r in conn.execute("SELECT key FROM cache_entries")]
        assert all(len(k) <= 100 for k in keys)
        for (value,) in conn.execute("SELECT value::text FROM cache_entries"):
            json.loads(value)  # finite numbers only: jsonb would have refused NaN/Infinity anyway
        unicode_item = conn.execute(
            "SELECT item FROM cache_entries, jsonb_array_elements(value->'stocks') item"
            " WHERE key = 'top_1000' AND item->>'ticker' = 'ZZUNI'").fetchone()[0]
        assert unicode_item["name"] == "Société Générale — 株式会社 ✓"
    assert any("technology" in w for w in result.warnings)  # "Technology" and "technology" merged, with a warning
