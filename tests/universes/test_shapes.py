import datetime as dt
import json
import math
import sys

import pytest

from tickstockpl.universes import shapes
from tests.universes.helpers import etf, stock

STOCK_ITEM_KEYS = {"name", "rank", "sector", "ticker", "exchange", "industry", "market_cap", "market"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1.5e9, 1.5e9), (7, 7.0), (None, None), (0.0, None), (-3.0, None), (math.nan, None), (math.inf, None),
     (-math.inf, None), (True, None), ("12", 12.0), ("x", None), (10**400, None), (1e15, 1e15)],
)
def test_valid_cap(value, expected):
    assert shapes.valid_cap(value) == expected


def test_stock_item_fields_and_defaults():
    row = shapes.stock_fields(stock("AAPL", 3e12, sector=" Technology ", industry=None, name="  Apple Inc. ",
                                    primary_exchange=None, market=""))
    (item,) = shapes.stock_items([row])
    assert item == {"name": "Apple Inc.", "rank": 1, "sector": "Technology", "ticker": "AAPL",
                    "exchange": "Unknown", "industry": "Unknown", "market_cap": 3e12, "market": "Unknown"}
    assert set(item) == STOCK_ITEM_KEYS == set(shapes.STOCK_FIELDS) | {"rank"}


@pytest.mark.parametrize("name", [None, "", "   "])
def test_a_missing_name_becomes_the_ticker(name):
    assert shapes.stock_items([shapes.stock_fields(stock("brk.b", 1e9, name=name))])[0]["name"] == "brk.b"


@pytest.mark.parametrize("cap", [None, math.nan, math.inf, -1e9, 0])
def test_an_invalid_cap_is_written_as_zero(cap):
    assert shapes.stock_fields(stock("X", cap))[5] == 0.0


def test_stock_obj_ranks_from_one_and_counts():
    rows = [shapes.stock_fields(stock(s, c)) for s, c in [("B", 3e9), ("A", 2e9), ("C", 1e9)]]
    value = shapes.stock_obj(rows)
    assert value["count"] == 3
    assert [(i["rank"], i["ticker"]) for i in value["stocks"]] == [(1, "B"), (2, "A"), (3, "C")]
    assert shapes.stock_obj([]) == {"count": 0, "stocks": []}


def test_industry_obj_adds_sector():
    value = shapes.industry_obj([shapes.stock_fields(stock("A", 1e9))], "Technology")
    assert value["sector"] == "Technology" and value["count"] == 1 and value["stocks"][0]["ticker"] == "A"


def test_etf_rows_and_objects():
    rows = [
        shapes.etf_fields(etf("SPY", "SPDR S&P 500 ETF Trust", 5e11, issuer="State Street")),
        shapes.etf_fields(etf("NEW", None, None, etf_type=None, issuer=None, primary_exchange=None, aum_millions=12.5)),
        shapes.etf_fields(etf("ZERO", "Zero Fund", None, etf_type=" ", aum_millions=math.nan)),
    ]
    assert shapes.etf_detail_obj(rows) == {"count": 3, "etfs": [
        {"symbol": "SPY", "name": "SPDR S&P 500 ETF Trust", "etf_type": "ETF", "issuer": "State Street"},
        {"symbol": "NEW", "name": "NEW", "etf_type": "ETF", "issuer": "Unknown"},
        {"symbol": "ZERO", "name": "Zero Fund", "etf_type": "ETF", "issuer": "Vanguard"},
    ]}
    complete = shapes.etf_complete_obj(rows)
    assert complete["count"] == 3
    assert complete["etfs"][1] == {"name": "NEW", "rank": 2, "ticker": "NEW", "etf_type": "ETF", "issuer": "Unknown",
                                   "exchange": "Unknown", "market_cap": 12.5e6}
    assert [e["market_cap"] for e in complete["etfs"]] == [5e11, 12.5e6, 0.0]


def test_etf_size_is_cap_then_aum_then_zero():
    assert shapes.etf_size(etf("A", "A", 2e9, aum_millions=5.0)) == 2e9
    assert shapes.etf_size(etf("A", "A", None, aum_millions=5.0)) == 5e6
    assert shapes.etf_size(etf("A", "A", math.nan, aum_millions=-5.0)) == 0.0
    assert shapes.etf_size(etf("A", "A", None, aum_millions=1e305)) == 0.0  # * 1e6 overflows


def test_combo_obj():
    stock_rows = [shapes.stock_fields(stock("AAPL", 3e12))]
    etf_rows = [shapes.etf_fields(etf("SPY", "SPDR S&P 500 ETF Trust", market=None))]
    value = shapes.combo_obj(stock_rows, etf_rows, "Top 1 plus ETFs")
    assert value["count"] == 2
    assert value["description"] == "Top 1 plus ETFs"
    assert value["composition"] == {"stocks": 1, "etfs": 1}
    assert value["stocks"][0]["type"] == "stock" and set(value["stocks"][0]) == STOCK_ITEM_KEYS | {"type"}
    assert value["etfs"] == [{"name": "SPDR S&P 500 ETF Trust", "ticker": "SPY", "etf_type": "ETF", "issuer": "Vanguard",
                              "exchange": "ARCX", "market": "Unknown", "type": "etf"}]


def test_stats_obj():
    rows = [shapes.stock_fields(s) for s in [
        stock("A", 3e9, sector="Technology", primary_exchange="XNAS"),
        stock("B", 1e9, sector="technology", primary_exchange="XNYS"),
        stock("C", 2e9, sector=None, primary_exchange=None),
    ]]
    overview = shapes.stats_obj(rows, dt.date(2025, 6, 13))["overview"]
    assert overview == {"total_stocks": 3, "unique_exchanges": 2, "unique_markets": 1, "total_market_cap": 6e9,
                        "average_market_cap": 2e9, "unique_sectors": 1, "last_updated": "2025-06-13"}


def test_stats_obj_of_nothing_and_of_overflowing_caps():
    empty = shapes.stats_obj([], dt.date(2025, 1, 2))["overview"]
    assert (empty["total_stocks"], empty["total_market_cap"], empty["average_market_cap"]) == (0, 0.0, 0.0)
    huge = [shapes.stock_fields(stock(f"H{i}", sys.float_info.max / 2)) for i in range(4)]
    overview = shapes.stats_obj(huge, dt.date(2025, 1, 2))["overview"]
    assert overview["total_market_cap"] == sys.float_info.max
    assert math.isfinite(overview["average_market_cap"])
    json.dumps(overview, allow_nan=False)
