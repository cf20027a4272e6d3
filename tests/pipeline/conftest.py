"""Fixtures of the pipeline tests: a small market with history up to a Tuesday and flat files after it.

Every pipeline test runs with the market clock at NOW (TICKSTOCKPL_NOW, `market_clock`), and the
servers they start inherit it (tests/live_server.py passes TICKSTOCKPL_NOW on)."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from tickstockpl import clock
from tickstockpl.settings import Settings
from tests.pipeline.helpers import add_symbols, good_bars, write_flat
from tests.support.markets import MARKET_NOW, SESSIONS

UTC = dt.timezone.utc
FRI, WED = SESSIONS  # the two newest sessions closed at MARKET_NOW (tests/support/markets.py)
TUE = dt.date(2026, 11, 24)
NOW = dt.datetime.fromisoformat(MARKET_NOW.replace("Z", "+00:00"))  # a Saturday: Friday's half day has closed
TICKERS = [f"T{i:03d}" for i in range(40)] + ["SPY", "QQQ"]


@pytest.fixture(autouse=True)
def market_clock(monkeypatch) -> dt.datetime:
    """The market clock (tickstockpl.clock) stands at NOW for every pipeline test."""
    monkeypatch.setenv(clock.ENV, NOW.isoformat())
    return NOW


@pytest.fixture
def market(db_url, tmp_path):
    """40 stocks with bars up to Tuesday; flat files for Wednesday and Friday."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_symbols(conn, TICKERS)
        conn.execute("UPDATE symbols SET type = 'ETF', market_cap = NULL WHERE symbol IN ('SPY', 'QQQ')")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO ohlcv_daily (symbol, date, open, high, low, close, volume)"
                            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                            [(t, TUE, o, h, l, c, v) for t, o, h, l, c, v in good_bars(TICKERS)])
    for day in (WED, FRI):
        write_flat(tmp_path, day, good_bars(TICKERS, base=12.0))
    return Settings(database_url=db_url, flatfiles_dir=tmp_path, data_dir=tmp_path / "data")
