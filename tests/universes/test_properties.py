"""Properties of build() over random snapshots (hypothesis)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickstockpl.market.snapshot import Security, Snapshot
from tickstockpl.universes import model, naming
from tickstockpl.universes.build import build
from tickstockpl.universes.config import default_config
from tests.universes.helpers import AS_OF

CONFIG = dataclasses.replace(
    default_config(),
    # small sizes so that random markets of a few dozen symbols hit every limit
    leader_sizes={"top_3": 3, "top_10_stocks": 10, "top_50": 50},
    stocks_full_metadata_limit=7, etfs_full_metadata_limit=4, sector_leader_size=3,
    industry_count=3, industry_min_stocks=2, industry_size=2, combo_stock_count=5,
    themes={"ai": ("A", "B", "C", "SPY", "ZZ"), "empty": ()},
)
THRESHOLDS = sorted(CONFIG.market_cap_thresholds.values())
PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DAY = dt.timedelta(days=1)
# A security is one integer, decoded field by field in this mixed radix (index 0 = the simplest
# option, so hypothesis shrinks towards plain active common stocks). One draw per security keeps
# generation fast; the tables hold the values that matter: band edges, ties, invalid numbers,
# labels that merge or are unknown, names that match ETF categories or are blank.
CHOICES: dict[str, list] = {
    "type": ["CS", "CS", "CS", "ETF", "ADRC", None],
    "active": [True, True, True, True, False],
    "market_cap": [
        1e9, 5e9, 5e9, 1e15, 123_456_789.0, 7.5e10, 3.3e8, 2.5e12, 60e6, 1e5,
        *THRESHOLDS, *(math.nextafter(t, 0.0) for t in THRESHOLDS),
        None, math.nan, math.inf, -math.inf, 0.0, -1.0,
    ],
    "sector": [None, "", " ", "Unknown", "Technology", "technology", "Technology ", "Oil & Gas", "oil and gas",
               "Financial Services", "Health Care", "Ünïcode", "x" * 101],
    "industry": [None, "", "Unknown", "Software", "Software\t", "Banks", "Oil & Gas", "oil  and gas", "dev tools", "Mining",
                 "Ünïcode"],
    "name": [None, "", "  ", "Vanguard Growth ETF", "SPDR S&P 500 ETF Trust", "iShares Biotechnology ETF",
             "Total Bond Market", "Tech Momentum Factor", "Ünïcødé ☃", "🚀", "x" * 300],
    "primary_exchange": [None, "", "XNAS", "XNYS"],
    "market": [None, "stocks"],
    "list_date": [None, AS_OF, AS_OF - DAY, AS_OF - 30 * DAY, AS_OF - 31 * DAY, AS_OF + DAY, AS_OF - 10 * DAY],
    "etf_type": [None, "ETF", "ETN"],
    "issuer": [None, "Vanguard"],
    "aum_millions": [None, 100.0, 5e3, math.nan, math.inf, -5.0, 1e303],
}
RADIX = math.prod(len(options) for options in CHOICES.values())
SPECIAL_SYMBOLS = ["A", "B", "C", "SPY", "QQQ", "brk.b", "Ü", "a"]


def decode(symbol: str, number: int) -> Security:
    fields = {}
    for field, options in CHOICES.items():
        number, index = divmod(number, len(options))
        fields[field] = options[index]
    return Security(symbol=symbol, **fields)


@st.composite
def snapshots(draw) -> Snapshot:
    specials = draw(st.sets(st.sampled_from(SPECIAL_SYMBOLS)))
    count = draw(st.integers(min_value=0, max_value=60))
    numbers = draw(st.lists(st.integers(min_value=0, max_value=RADIX - 1), min_size=count, max_size=count))
    symbols = [*sorted(specials), *(f"S{i:02d}" for i in range(len(numbers)))]
    numbers += draw(st.lists(st.integers(min_value=0, max_value=RADIX - 1), min_size=len(specials), max_size=len(specials)))
    return Snapshot(as_of=AS_OF, securities=tuple(decode(s, n) for s, n in zip(symbols, numbers)),
                    latest_session=draw(st.none() | st.just(AS_OF - DAY)))


def eligible_by_cap(snapshot: Snapshot) -> list[Security]:
    """The contract's ordering, computed independently of the builders."""
    ok = [s for s in snapshot.securities if s.active and s.type == "CS" and s.market_cap is not None
          and math.isfinite(s.market_cap) and s.market_cap > 0]
    return sorted(ok, key=lambda s: (-s.market_cap, s.symbol))


def values_of(result) -> dict[str, object]:
    return {e.universe: e.value for e in result.entries}


@PROPERTY_SETTINGS
@given(snapshots())
def test_lists_are_ranked_counted_and_free_of_duplicates(snapshot):
    for entry in build(snapshot, CONFIG, model.ALL_FAMILIES).entries:
        value = entry.value
        tickers = model.members(value)
        assert len(tickers) == len(set(tickers)), entry.universe
        if isinstance(value, dict) and "count" in value:
            items = [*value.get("stocks", []), *value.get("etfs", [])]
            assert value["count"] == len(items)
            for field in ("stocks", "etfs"):
                ranks = [item["rank"] for item in value.get(field, []) if "rank" in item]
                assert ranks == list(range(1, len(ranks) + 1))
            assert all(isinstance(item.get("ticker", item.get("symbol")), str) for item in items)


@PROPERTY_SETTINGS
@given(snapshots())
def test_values_are_strict_json(snapshot):
    for entry in build(snapshot, CONFIG, model.ALL_FAMILIES).entries:
        json.dumps(entry.value, allow_nan=False)
        assert not naming.problem(entry.name, entry.key)


@PROPERTY_SETTINGS
@given(snapshots())
def test_market_cap_bands_partition_the_eligible_stocks_above_micro(snapshot):
    values = values_of(build(snapshot, CONFIG, [model.MARKET_CAP]))
    bands = [model.members(values[f"stock_universe:market_cap:{band}"]) for band in CONFIG.market_cap_thresholds]
    in_bands = [t for band in bands for t in band]
    assert len(in_bands) == len(set(in_bands))  # disjoint
    micro = CONFIG.market_cap_thresholds["micro_cap"]
    expected = [s.symbol for s in eligible_by_cap(snapshot) if s.market_cap >= micro]
    assert in_bands == expected  # complete, and in cap order band after band
    for (band, low), members in zip(CONFIG.market_cap_thresholds.items(), bands):
        caps = {s.symbol: s.market_cap for s in snapshot.securities}
        assert all(caps[t] >= low for t in members), band


@PROPERTY_SETTINGS
@given(snapshots())
def test_every_top_list_is_a_prefix_of_all_stocks(snapshot):
    values = values_of(build(snapshot, CONFIG, [model.MARKET_LEADERS, model.COMPLETE_STOCKS, model.COMBO]))
    all_stocks = values["stock_universe:complete:all_stocks"]
    assert all_stocks == [s.symbol for s in eligible_by_cap(snapshot)]
    tops = [values[f"stock_universe:market_leaders:{key}"] for key in CONFIG.leader_sizes]
    tops.append(values[f"stock_universe:complete:top_{CONFIG.stocks_full_metadata_limit}"])
    tops.append({"stocks": values["stock_etf_combo:stock_etf_test:combo_test_detailed"]["stocks"]})
    for top in tops:
        members = model.members(top)
        assert members == all_stocks[: len(members)]
    for key, size in CONFIG.leader_sizes.items():
        assert values[f"stock_universe:market_leaders:{key}"]["count"] == min(size, len(all_stocks))


@PROPERTY_SETTINGS
@given(snapshots())
def test_sector_and_industry_lists_are_the_largest_of_their_group(snapshot):
    values = values_of(build(snapshot, CONFIG, [model.SECTOR_LEADERS, model.INDUSTRY]))
    ranked = eligible_by_cap(snapshot)
    for universe, value in values.items():
        _, name, key = universe.split(":", 2)
        field = "sector" if name == "sector_leaders" else "industry"
        group = key.removeprefix(f"top_{CONFIG.sector_leader_size}_") if field == "sector" else key
        expected = [s.symbol for s in ranked if not naming.is_unknown(getattr(s, field))
                    and naming.slug(getattr(s, field)) == group]
        assert model.members(value) == expected[: len(model.members(value))]
        assert len(model.members(value)) == min(len(expected), CONFIG.sector_leader_size if field == "sector" else CONFIG.industry_size)


@PROPERTY_SETTINGS
@given(snapshots(), st.randoms(use_true_random=False))
def test_build_is_deterministic_and_independent_of_input_order(snapshot, rng):
    first = build(snapshot, CONFIG, model.ALL_FAMILIES)
    assert build(snapshot, CONFIG, model.ALL_FAMILIES) == first
    shuffled = list(snapshot.securities)
    rng.shuffle(shuffled)
    assert build(dataclasses.replace(snapshot, securities=tuple(shuffled)), CONFIG, model.ALL_FAMILIES) == first
