"""Data a real symbols table can hold: nothing may crash, and no value may hold NaN/Infinity."""

import datetime as dt
import json
import math

from tickstockpl.market.snapshot import Security
from tickstockpl.universes import model
from tickstockpl.universes.build import build
from tickstockpl.universes.config import default_config
from tests.universes.helpers import AS_OF, etf, snapshot, stock

HOSTILE = snapshot(
    stock("NULLSEC", 5e9, sector=None, industry=None),
    stock("BLANK", 5e9, sector="", industry="   ", name="", primary_exchange="", market=None),
    stock("UNK", 5e9, sector="Unknown", industry="UNKNOWN"),
    stock("NEG", -1e9),
    stock("ZERO", 0.0),
    stock("NAN", math.nan),
    stock("INF", math.inf),
    stock("NINF", -math.inf),
    stock("HUGE", 1e15),
    stock("HUGE2", 1e15),
    stock("BRK.B", 9e11, name="Berkshire Hathaway Inc. Class B"),
    stock("brk.a", 9e11, name=None),
    stock("ÜNI", 3e9, name="Ünïcødé Ltd ☃", sector="Tëchnology", industry="Sóftware & Sërvices"),
    stock("EMOJI", 2e9, name="🚀 Rocket Corp", sector="🚀", industry="🚀"),
    stock("TAB", 1e9, name="\tTabbed\n", sector="Technology\t"),
    stock("NOTYPE", 1e9, type=None),
    stock("LOWER", 1e9, type="cs"),
    Security(symbol="BARE", name=None, type="CS", active=True, market_cap=7e9),
    etf("NANETF", "Nan Fund", math.nan, aum_millions=math.nan),
    etf("INFETF", "Inf Fund Growth", math.inf, aum_millions=math.inf),
    etf("NEGETF", None, -5.0, aum_millions=-3.0),
    etf("HUGEAUM", "Huge Value Fund", None, aum_millions=1e303),  # * 1e6 overflows
    etf("UNIETF", "Ünïcødé Technology Fund ☃", 1e9),
    etf("SYMB", "!!! ??? ---"),
    etf("spy", "lower case spdr s&p 500 etf trust"),
    stock("IPO", math.nan, list_date=AS_OF),
    stock("IPODT", None, list_date=dt.datetime(2025, 6, 10, 23, 59)),
    etf("IPOETF", None, math.inf, list_date=AS_OF, etf_type=None, issuer=None),
)


def test_hostile_data_never_crashes_and_never_writes_nan_or_infinity():
    result = build(HOSTILE, default_config(), model.ALL_FAMILIES)
    assert result.entries
    for entry in result.entries:
        text = json.dumps(entry.value, allow_nan=False, ensure_ascii=False)
        assert "NaN" not in text and "Infinity" not in text
        if isinstance(entry.value, dict):
            for item in [*entry.value.get("stocks", []), *entry.value.get("etfs", [])]:
                assert item.get("ticker", item.get("symbol"))
                assert isinstance(item["name"], str) and item["name"]
                if "market_cap" in item:
                    assert isinstance(item["market_cap"], float) and math.isfinite(item["market_cap"])


def test_invalid_caps_are_not_eligible():
    result = build(HOSTILE, default_config(), [model.COMPLETE_STOCKS])
    all_stocks = next(e.value for e in result.entries if e.key == "all_stocks")
    assert all_stocks[:2] == ["HUGE", "HUGE2"]
    assert not {"NEG", "ZERO", "NAN", "INF", "NINF", "NOTYPE", "LOWER", "IPO", "IPODT"} & set(all_stocks)
    assert {"BRK.B", "brk.a", "ÜNI", "EMOJI", "BARE", "NULLSEC"} <= set(all_stocks)


def test_hostile_labels_are_written_as_unknown_or_stripped():
    result = build(HOSTILE, default_config(), [model.COMPLETE_STOCKS, model.SECTOR_LEADERS, model.INDUSTRY, model.IPOS])
    items = {i["ticker"]: i for e in result.entries if isinstance(e.value, dict) for i in e.value["stocks"]}
    assert items["BLANK"] | {"rank": 0} == {"name": "BLANK", "rank": 0, "sector": "Unknown", "ticker": "BLANK", "exchange": "Unknown",
                                            "industry": "Unknown", "market_cap": 5e9, "market": "Unknown"}
    assert items["brk.a"]["name"] == "brk.a"
    assert items["TAB"]["name"] == "Tabbed" and items["TAB"]["sector"] == "Technology"
    assert items["IPO"]["market_cap"] == 0.0
    keys = {e.key for e in result.entries}
    assert {"top_10_tëchnology", "top_10_🚀", "top_10_technology"} <= keys
    assert not any("unknown" in k for k in keys)


def test_hostile_etfs():
    result = build(HOSTILE, default_config(), [model.COMPLETE_ETFS, model.ETF_CATEGORIES, model.COMBO])
    values = {e.universe: e.value for e in result.entries}
    assert values["etf_universe:complete:all_etfs"][0] == "UNIETF"
    top = {e["ticker"]: e["market_cap"] for e in values["etf_universe:complete:top_100"]["etfs"]}
    assert top["NANETF"] == top["INFETF"] == top["NEGETF"] == top["HUGEAUM"] == 0.0
    assert values["etf_universe:Technology ETFs:etf_technology"] == ["UNIETF"]
    assert values["etf_universe:Broad Market ETFs:etf_broad_market"] == ["spy"]
    assert "spy" in values["stock_etf_combo:stock_etf_test:combo_test"]  # essential ETFs match case-insensitively
