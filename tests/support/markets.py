"""The fixed dates every test market lives on, and the small hand-built markets written on them.

MARKET_NOW is the instant the tests see their markets from (the market clock, TICKSTOCKPL_NOW; fixture
`market_clock` in tests/conftest.py): Saturday 2026-11-28, so the newest closed NYSE session is the half
day of Friday 2026-11-27 and the one before it Wednesday 2026-11-25 (Thanksgiving closed) — SESSIONS.

Two hand-built markets share `write_market` (symbols, then one bar per symbol on each session):
    `load_market`            sixty synthetic stocks S000..S059 over four sectors, five ETFs, one IPO (NEWCO)
    tests/handback/market.py forty stocks, the first sixteen with real tickers, eleven ETFs, one IPO
The generated sample market (`small_market` in tests/conftest.py) is the third, not hand-built.
"""

from __future__ import annotations

import datetime as dt
from typing import Sequence

import psycopg

MARKET_NOW = "2026-11-28T15:00:00Z"
SESSIONS = (dt.date(2026, 11, 27), dt.date(2026, 11, 25))  # newest first: Friday's half day, Wednesday


def write_market(db_url: str, columns: Sequence[str], symbols: list[tuple], *, bar: tuple = (10, 11, 9, 10, 1000),
                 etf_sql: str | None = None, days: Sequence[dt.date] = SESSIONS) -> list[dt.date]:
    """Insert `symbols` (tuples in the order of `columns`), run `etf_sql` (an UPDATE of the ETF rows), and
    give every symbol the same bar (open, high, low, close, volume) on each of `days`; returns `days`."""
    names = ", ".join(columns)  # column names come from the test modules, never from input
    marks = ", ".join(["%s"] * len(columns))
    with psycopg.connect(db_url) as conn, conn.cursor() as cur:
        cur.executemany(f"INSERT INTO symbols ({names}) VALUES ({marks})", symbols)
        if etf_sql:
            cur.execute(etf_sql)
        for day in days:
            cur.execute("INSERT INTO ohlcv_daily (symbol, date, open, high, low, close, volume)"
                        " SELECT symbol, %s, %s, %s, %s, %s, %s FROM symbols", (day, *bar))
    return list(days)


# --- the API market ------------------------------------------------------------------------------
API_SECTORS = {
    "Technology": ("Software - Application", "Semiconductors"),
    "Healthcare": ("Biotechnology", "Medical Devices"),
    "Financial Services": ("Banks - Regional", "Asset Management"),
    "Energy": ("Oil & Gas E&P", "Oil & Gas Midstream"),
}
API_ETFS = {
    "SPY": "SPDR S&P 500 ETF Trust",
    "QQQ": "Invesco QQQ Trust Growth",
    "AGG": "iShares Core US Aggregate Bond ETF",
    "XLK": "Technology Select Sector SPDR Fund",
    "EEM": "iShares MSCI Emerging Markets ETF",
}
STOCKS = 60
IPO_SYMBOL = "NEWCO"
API_COLUMNS = ("symbol", "name", "type", "active", "market_cap", "market", "primary_exchange", "sector", "industry",
               "list_date")


def stock_symbol(i: int) -> str:
    return f"S{i:03d}"


def load_market(db_url: str) -> list[dt.date]:
    """Sixty common stocks over the market-cap bands (500 bn down by 0.85 each), four sectors and eight
    industries, five ETFs (essential ones for the combo universe), one IPO listed three days before the
    newest session; a bar per symbol on each of SESSIONS. Returns SESSIONS, newest first."""
    rows = []
    sector_names = list(API_SECTORS)
    for i in range(STOCKS):
        sector = sector_names[i % len(sector_names)]
        industry = API_SECTORS[sector][(i // len(sector_names)) % 2]
        cap = int(500e9 * (0.85 ** i))  # 500 bn down to ~30 m: every band
        rows.append((stock_symbol(i), f"Company {i}", "CS", True, cap, "stocks", "XNAS", sector, industry,
                     dt.date(2010, 1, 4)))
    rows.append((IPO_SYMBOL, "New Company", "CS", True, 5_000_000_000, "stocks", "XNYS", "Technology",
                 "Semiconductors", SESSIONS[0] - dt.timedelta(days=3)))
    for symbol, name in API_ETFS.items():
        rows.append((symbol, name, "ETF", True, None, "stocks", "ARCX", None, None, dt.date(2000, 1, 3)))
    return write_market(db_url, API_COLUMNS, rows,
                        etf_sql="UPDATE symbols SET aum_millions = 1000 + length(name) WHERE type = 'ETF'")


def hide_ipo_before(db_url: str, day: dt.date) -> None:
    """Make the IPO list after `day`, so a sync on `day` does not see it as listed yet."""
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE symbols SET active = false WHERE symbol = %s", (IPO_SYMBOL,))


def delist(db_url: str, *symbols: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE symbols SET active = false WHERE symbol = ANY(%s)", (list(symbols),))


def activate(db_url: str, *symbols: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE symbols SET active = true WHERE symbol = ANY(%s)", (list(symbols),))
