"""The JSON values of universes (contract §5.1).

A security's display fields are computed once into a *row* (a plain tuple) and every universe
it appears in is built from rows, so a stock in ten universes is formatted once:

    stock_fields(stock) -> stock row   (name, sector, ticker, exchange, industry, market_cap, market)
    etf_fields(etf)     -> ETF row     (ticker, name, etf_type, issuer, exchange, market, market_cap)

    stock_obj(stock_rows)              -> StockObj       {"count", "stocks": [StockItem]}
    industry_obj(stock_rows, sector)   -> IndustryObj    StockObj + "sector"
    etf_detail_obj(etf_rows)           -> EtfDetailObj   {"count", "etfs": [{"symbol", "name", "etf_type", "issuer"}]}
    etf_complete_obj(etf_rows)         -> EtfCompleteObj {"count", "etfs": [{"name", "rank", "ticker", "etf_type",
                                                                            "issuer", "exchange", "market_cap"}]}
    combo_obj(stock_rows, etf_rows, d) -> ComboObj       {"count", "description", "composition": {"stocks", "etfs"},
                                                          "stocks": [StockItem + "type": "stock"],
                                                          "etfs": [{"name", "ticker", "etf_type", "issuer",
                                                                    "exchange", "market", "type": "etf"}]}
    stats_obj(stock_rows, session)     -> StatsObj       {"overview": {...}}
    (ticker arrays are plain lists of symbols, built by the families)

Rules every value follows:
- every stock item carries "ticker" (the symbol exactly as stored); ranks are 1-based and
  contiguous in list order; "count" is the length of the list;
- text fields are never null: name = the stripped name, or the ticker when it is missing or
  blank; exchange (= primary_exchange), market, sector, industry, issuer = the stripped value,
  or "Unknown"; etf_type = the stripped value or "ETF";
- numbers are finite floats (PostgreSQL jsonb rejects NaN/Infinity): a stock's unknown,
  invalid or non-positive cap is 0.0; an ETF's market_cap is its ordering size (`etf_size`);
- nothing depends on the clock: StatsObj.last_updated is the session the figures describe.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from functools import lru_cache
from typing import Iterable, Sequence

from tickstockpl.market.snapshot import Security
from tickstockpl.universes.naming import UNKNOWN, is_unknown, slug

STOCK_FIELDS = ("name", "sector", "ticker", "exchange", "industry", "market_cap", "market")
ETF_FIELDS = ("ticker", "name", "etf_type", "issuer", "exchange", "market", "market_cap")
_INF = math.inf


def valid_cap(value) -> float | None:
    """`value` as a float when it is a finite, positive number, else None."""
    if value.__class__ is float:  # the loader's case, kept fast; NaN fails both comparisons
        return value if 0.0 < value < _INF else None
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if 0.0 < number < _INF else None


def etf_size(etf: Security) -> float:
    """The ordering size of an ETF: COALESCE(market_cap, aum_millions * 1e6, 0) over valid values."""
    cap = valid_cap(etf.market_cap)
    if cap is not None:
        return cap
    aum = valid_cap(etf.aum_millions)
    if aum is not None and aum * 1e6 < _INF:
        return aum * 1e6
    return 0.0


@lru_cache(maxsize=8192)  # few distinct values (exchanges, sectors...), each seen thousands of times
def label(value: str | None, default: str = UNKNOWN) -> str:
    """A text field for display: the stripped value, or `default` when missing or blank."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return default


def display_name(security: Security) -> str:
    """The security's stripped name, or its ticker when the name is missing or blank."""
    name = security.name
    if isinstance(name, str):
        name = name.strip()
        if name:
            return name
    return security.symbol


def stock_fields(stock: Security, cap: float | None = None) -> tuple:
    """The stock row: the StockItem fields but rank, in the order of STOCK_FIELDS. `cap`: the
    stock's valid cap when the caller has it already."""
    return (
        display_name(stock),
        label(stock.sector),
        stock.symbol,
        label(stock.primary_exchange),
        label(stock.industry),
        cap if cap is not None else valid_cap(stock.market_cap) or 0.0,
        label(stock.market),
    )


def etf_fields(etf: Security) -> tuple:
    """The ETF row, in the order of ETF_FIELDS (market_cap = etf_size)."""
    return (
        etf.symbol,
        display_name(etf),
        label(etf.etf_type, "ETF"),
        label(etf.issuer),
        label(etf.primary_exchange),
        label(etf.market),
        etf_size(etf),
    )


def stock_items(rows: Sequence[tuple]) -> list[dict]:
    """StockItems {name, rank, sector, ticker, exchange, industry, market_cap, market} of
    stock rows in the given order, ranked from 1."""
    return [
        {"name": name, "rank": rank, "sector": sector, "ticker": ticker, "exchange": exchange,
         "industry": industry, "market_cap": cap, "market": market}
        for rank, (name, sector, ticker, exchange, industry, cap, market) in enumerate(rows, 1)
    ]


def stock_obj(rows: Sequence[tuple]) -> dict:
    """StockObj of stock rows in the given order, ranked from 1."""
    return {"count": len(rows), "stocks": stock_items(rows)}


def industry_obj(rows: Sequence[tuple], sector: str) -> dict:
    """IndustryObj: the StockObj of stock rows plus the industry's `sector`."""
    value = stock_obj(rows)
    value["sector"] = sector
    return value


def etf_detail_obj(rows: Sequence[tuple]) -> dict:
    """EtfDetailObj of ETF rows (note: members are keyed "symbol", not "ticker")."""
    items = [
        {"symbol": ticker, "name": name, "etf_type": etf_type, "issuer": issuer}
        for ticker, name, etf_type, issuer, _exchange, _market, _size in rows
    ]
    return {"count": len(items), "etfs": items}


def etf_complete_obj(rows: Sequence[tuple]) -> dict:
    """EtfCompleteObj of ETF rows in the given order, ranked from 1."""
    items = [
        {"name": name, "rank": rank, "ticker": ticker, "etf_type": etf_type, "issuer": issuer,
         "exchange": exchange, "market_cap": size}
        for rank, (ticker, name, etf_type, issuer, exchange, _market, size) in enumerate(rows, 1)
    ]
    return {"count": len(items), "etfs": items}


def combo_obj(stock_rows: Sequence[tuple], etf_rows: Sequence[tuple], description: str) -> dict:
    """ComboObj: ranked stock items marked "type": "stock", then ETF items marked "type": "etf"."""
    stocks = stock_items(stock_rows)
    for item in stocks:
        item["type"] = "stock"
    etfs = [
        {"name": name, "ticker": ticker, "etf_type": etf_type, "issuer": issuer, "exchange": exchange,
         "market": market, "type": "etf"}
        for ticker, name, etf_type, issuer, exchange, market, _size in etf_rows
    ]
    return {
        "count": len(stocks) + len(etfs),
        "description": description,
        "composition": {"stocks": len(stocks), "etfs": len(etfs)},
        "stocks": stocks,
        "etfs": etfs,
    }


def stats_obj(rows: Sequence[tuple], session: dt.date) -> dict:
    """StatsObj over the stock rows of the eligible stocks as of `session`.

    unique_* count distinct known values compared by slug (blank and "Unknown" are not
    counted). total_market_cap is clamped to the largest finite float should the sum ever
    overflow; average_market_cap is computed without overflow.
    """
    caps = [row[5] for row in rows]
    count = len(caps)
    try:
        total = math.fsum(caps)
    except OverflowError:
        total = math.inf
    if not total < _INF:
        total = sys.float_info.max
    average = math.fsum(cap / count for cap in caps) if count else 0.0
    return {
        "overview": {
            "total_stocks": count,
            "unique_exchanges": _distinct({row[3] for row in rows}),
            "unique_markets": _distinct({row[6] for row in rows}),
            "total_market_cap": total,
            "average_market_cap": average,
            "unique_sectors": _distinct({row[1] for row in rows}),
            "last_updated": session.isoformat(),
        }
    }


def _distinct(values: Iterable[str]) -> int:
    return len({slug(value) for value in values if not is_unknown(value)})
