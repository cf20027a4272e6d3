"""The small, fixed market the hand-back scenario runs on, and its flat-file writer.

Forty common stocks (the first sixteen with well-known tickers, so theme universes have members)
over five sectors and ten industries, caps from 3.5 tn down through every band, eleven ETFs whose
names exercise the ETF categories (a "Biotechnology" fund that must not land under Technology),
one listing three days before the newest session (an IPO), and one bar per symbol on each of two
fixed NYSE sessions (SESSIONS: the two newest closed at NOW). Everything is fixed, dates included:
the scenario's server runs with its market clock at NOW (TICKSTOCKPL_NOW, the Saturday the form was
captured), so every run on any day gives the same universes, sessions and as-of dates. The dates and
the writer are the tests' own (tests/support/markets.py).
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

from tests.support.markets import MARKET_NOW, SESSIONS, write_market

NY = ZoneInfo("America/New_York")

KNOWN = [  # ticker, name, sector, industry, market cap
    ("NVDA", "NVIDIA Corp", "Technology", "Semiconductors", 3.5e12),
    ("MSFT", "Microsoft Corp", "Technology", "Software - Infrastructure", 3.1e12),
    ("AAPL", "Apple Inc", "Technology", "Consumer Electronics", 3.0e12),
    ("GOOGL", "Alphabet Inc", "Communication Services", "Internet Content & Information", 2.1e12),
    ("AMZN", "Amazon.com Inc", "Consumer Cyclical", "Internet Retail", 2.0e12),
    ("META", "Meta Platforms Inc", "Communication Services", "Internet Content & Information", 1.4e12),
    ("AVGO", "Broadcom Inc", "Technology", "Semiconductors", 1.1e12),
    ("TSLA", "Tesla Inc", "Consumer Cyclical", "Auto Manufacturers", 9.0e11),
    ("JPM", "JPMorgan Chase & Co", "Financial Services", "Banks - Diversified", 6.5e11),
    ("V", "Visa Inc", "Financial Services", "Credit Services", 6.0e11),
    ("ORCL", "Oracle Corp", "Technology", "Software - Infrastructure", 4.5e11),
    ("AMD", "Advanced Micro Devices Inc", "Technology", "Semiconductors", 2.5e11),
    ("CRM", "Salesforce Inc", "Technology", "Software - Application", 2.4e11),
    ("PLTR", "Palantir Technologies Inc", "Technology", "Software - Infrastructure", 2.0e11),
    ("COIN", "Coinbase Global Inc", "Financial Services", "Financial Data & Stock Exchanges", 6.0e10),
    ("CRWD", "CrowdStrike Holdings Inc", "Technology", "Software - Infrastructure", 9.0e10),
]
SECTORS = {
    "Technology": ("Semiconductors", "Software - Application"),
    "Healthcare": ("Biotechnology", "Medical Devices"),
    "Financial Services": ("Banks - Regional", "Asset Management"),
    "Energy": ("Oil & Gas E&P", "Oil & Gas Midstream"),
    "Industrials": ("Aerospace & Defense", "Specialty Industrial Machinery"),
}
SYNTHETIC = 24  # S01 ... S24, caps 40 bn down by 0.75 each: every band down to micro
ETFS = {
    "SPY": "SPDR S&P 500 ETF Trust",
    "QQQ": "Invesco QQQ Trust Series 1",
    "IWM": "iShares Russell 2000 ETF",
    "VUG": "Vanguard Growth ETF",
    "VTV": "Vanguard Value ETF",
    "XLK": "Technology Select Sector SPDR Fund",
    "AGG": "iShares Core US Aggregate Bond ETF",
    "EEM": "iShares MSCI Emerging Markets ETF",
    "MTUM": "iShares MSCI USA Momentum Factor ETF",
    "IBB": "iShares Biotechnology ETF",
    "BND": "Vanguard Total Bond Market ETF",
}
IPO = ("NWCO", "Newco Robotics Inc", "Industrials", "Specialty Industrial Machinery", 4.2e9)
DELIST = "S24"  # the scenario delists it between two syncs
PRICE = 100.0


NOW = MARKET_NOW  # the market clock of the hand-back servers: a Saturday; SESSIONS: the two newest closed at NOW
SERVER_ENV = {"TICKSTOCKPL_NOW": NOW}  # tickstockpl.clock.ENV


COLUMNS = ("symbol", "name", "type", "active", "market_cap", "sector", "industry", "primary_exchange", "list_date",
           "market")


def symbol_rows(newest: dt.date) -> list[tuple]:
    rows = [(t, n, "CS", True, int(cap), s, i, "XNAS", dt.date(2005, 1, 3), "stocks") for t, n, s, i, cap in KNOWN]
    sector_names = list(SECTORS)
    for k in range(SYNTHETIC):
        sector = sector_names[k % len(sector_names)]
        industry = SECTORS[sector][(k // len(sector_names)) % 2]
        rows.append((f"S{k + 1:02d}", f"Sample Company {k + 1}", "CS", True, int(40e9 * 0.75 ** k), sector,
                     industry, "XNYS", dt.date(2012, 6, 1), "stocks"))
    ticker, name, sector, industry, cap = IPO
    rows.append((ticker, name, "CS", True, int(cap), sector, industry, "XNAS", newest - dt.timedelta(days=3), "stocks"))
    for ticker, name in ETFS.items():
        rows.append((ticker, name, "ETF", True, None, None, None, "ARCX", dt.date(2001, 1, 2), "stocks"))
    return rows


def load(db_url: str) -> list[dt.date]:
    """Write the market into an empty schema; returns the two sessions with bars (SESSIONS), newest first."""
    return write_market(
        db_url, COLUMNS, symbol_rows(SESSIONS[0]), bar=(PRICE, PRICE * 1.01, PRICE * 0.99, PRICE, 1_000_000),
        etf_sql="UPDATE symbols SET aum_millions = 500 + 10 * length(name), issuer = split_part(name, ' ', 1),"
                " etf_type = 'ETF' WHERE type = 'ETF'")


def move_session_to_flat_file(db_url: str, day: dt.date, folder: Path) -> Path:
    """Delete `day`'s bars from ohlcv_daily and write them as the provider's flat file for that day,
    so the pipeline's import phase has a real session to import."""
    with psycopg.connect(db_url) as conn:
        bars = conn.execute(
            "DELETE FROM ohlcv_daily WHERE date = %s RETURNING symbol, volume, open, close, high, low", (day,)
        ).fetchall()
    window_start = int(dt.datetime.combine(day, dt.time(), tzinfo=NY).timestamp()) * 1_000_000_000
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["ticker", "volume", "open", "close", "high", "low", "window_start", "transactions"])
    for symbol, volume, open_, close, high, low in sorted(bars):
        writer.writerow([symbol, volume, open_, close, high, low, window_start, 1200])
    folder.mkdir(parents=True, exist_ok=True)
    staged = folder / f".{day.isoformat()}.csv.gz.staged"
    staged.write_bytes(gzip.compress(text.getvalue().encode("utf-8")))
    return staged


def publish_flat_file(staged: Path) -> Path:
    """Give a staged file its real name: from now on the provider finds the session."""
    final = staged.with_name(staged.name.removeprefix(".").removesuffix(".staged"))
    staged.rename(final)
    return final
