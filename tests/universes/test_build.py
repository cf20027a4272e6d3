"""build(): family selection, ordering, collisions, skipped keys, and what AppV2 derives from it."""

import dataclasses
import json

import pytest

from tickstockpl.universes import model, naming
from tickstockpl.universes.build import BuildResult, build
from tickstockpl.universes.config import EtfCategory, default_config
from tickstockpl.universes.model import ALL_FAMILIES, FAMILIES_BY_MODE
from tests.universes.helpers import SECTORS, etf, realistic_snapshot, snapshot, stock

CONFIG = default_config()


def test_unknown_family_is_a_value_error():
    with pytest.raises(ValueError, match="unknown universe families: full, nope"):
        build(snapshot(), CONFIG, ["nope", model.STATS, "full"])


def test_a_single_family_id_string_is_accepted():
    result = build(snapshot(stock("A", 1e9)), CONFIG, model.STATS)
    assert [e.universe for e in result.entries] == ["stock_stats:universe:summary"]


def test_entries_are_sorted_and_unique():
    result = build(realistic_snapshot(600), CONFIG, ALL_FAMILIES)
    assert isinstance(result, BuildResult) and isinstance(result.entries, tuple)
    idents = [(e.type, e.name, e.key) for e in result.entries]
    assert idents == sorted(idents) and len(set(idents)) == len(idents)


@pytest.mark.parametrize("mode", model.MODES)
def test_each_mode_builds_exactly_its_families(mode):
    result = build(realistic_snapshot(600), CONFIG, FAMILIES_BY_MODE[mode])
    assert {e.family for e in result.entries} == FAMILIES_BY_MODE[mode]


def test_an_empty_market_still_gives_the_fixed_universes():
    result = build(snapshot(), CONFIG, ALL_FAMILIES)
    universes = {e.universe for e in result.entries}
    assert "stock_etf_combo:stock_etf_test:combo_test" in universes
    assert "stock_stats:universe:summary" in universes
    assert "stock_universe:market_cap:mega_cap" in universes
    assert not any(e.family in (model.SECTOR_LEADERS, model.INDUSTRY) for e in result.entries)
    assert result.warnings == ()


def test_a_later_duplicate_universe_is_skipped_with_a_warning():
    config = dataclasses.replace(CONFIG, themes={"ai": ("A",), "artificial": ("B",)},
                                 theme_names={"ai": "AI", "artificial": "AI"})
    result = build(snapshot(stock("A", 1e9), stock("B", 1e9)), config, [model.THEMES])
    values = {e.universe: e.value for e in result.entries}
    assert values["themes:AI:list"] == ["A"]
    assert values["stock_universe:themes:artificial"] == ["B"]
    assert result.warnings == ("skipped a themes universe: themes:AI:list is already built by themes",)


def test_slug_collisions_merge_and_over_long_keys_are_skipped():
    long_industry = "Very " * 25 + "Long Industry"
    snap = snapshot(
        *(stock(f"O{i}", 1e9 + i, industry="Oil & Gas") for i in range(2)),
        *(stock(f"P{i}", 2e9 + i, industry="oil and gas") for i in range(2)),
        *(stock(f"L{i}", 3e9 + i, industry=long_industry, sector=long_industry) for i in range(3)),
        *(stock(f"S{i}", 4e9 + i, industry="Software") for i in range(3)),
    )
    result = build(snap, CONFIG, [model.INDUSTRY, model.SECTOR_LEADERS])
    keys = {e.key for e in result.entries if e.family == model.INDUSTRY}
    assert keys == {"oil_and_gas", "software"}
    oil = next(e.value for e in result.entries if e.key == "oil_and_gas")
    assert oil["count"] == 4 and model.members(oil) == ["P1", "P0", "O1", "O0"]
    assert "merged industry spellings 'Oil & Gas', 'oil and gas' (one key: oil_and_gas)" in result.warnings
    skipped = [w for w in result.warnings if w.startswith("skipped")]
    assert len(skipped) == 2  # the industry and its sector leaders
    assert all("longer than 100 characters" in w for w in skipped)


def test_keys_the_sync_could_never_touch_again_are_skipped():
    snap = snapshot(*(stock(f"D{i}", 1e9 + i, industry="Dev Tools") for i in range(3)), etf("SPY", "SPDR S&P 500 ETF Trust"))
    config = dataclasses.replace(CONFIG, etf_categories=(EtfCategory("etf_spdr", "complete", ("SPDR",)),))
    result = build(snap, config, [model.INDUSTRY, model.ETF_CATEGORIES])
    assert result.entries == ()
    assert "skipped a industry universe: stock_universe/industry/dev_tools would not be recognised as a industry universe" in result.warnings
    assert sum("etf_universe/complete/etf_spdr" in w for w in result.warnings) == 2  # array and _detailed


def test_duplicate_and_empty_symbols_are_reported():
    snap = snapshot(stock("A", 2e9), stock("A", 9e9), stock("", 1e9), stock("  ", 1e9), stock("B", 1e9))
    result = build(snap, CONFIG, [model.COMPLETE_STOCKS])
    assert next(e.value for e in result.entries if e.key == "all_stocks") == ["A", "B"]
    assert "symbol 'A' appears 2 times in the snapshot; kept the first" in result.warnings
    assert "skipped a security with an empty symbol ''" in result.warnings
    assert "skipped a security with an empty symbol '  '" in result.warnings


def test_values_are_json_and_stock_items_all_carry_a_ticker():
    for entry in build(realistic_snapshot(1_500), CONFIG, ALL_FAMILIES).entries:
        json.dumps(entry.value, allow_nan=False)
        if isinstance(entry.value, dict):
            for item in entry.value.get("stocks", []):
                assert isinstance(item.get("ticker"), str) and item["ticker"]


def appv2_dropdown_keys(entries) -> set[str]:
    """The dropdown keys AppV2 derives from cache_entries (contract §5.2)."""
    keys = set()
    for e in entries:
        if e.type == "stock_universe" and isinstance(e.value, dict):
            keys.add(f"{e.name}_{e.key}")
        elif e.type == "etf_universe" and isinstance(e.value, list):
            keys.add(f"etf_{e.key}")
        elif e.type == "stock_etf_combo":
            keys.add(f"{e.name}:{e.key}")
        elif e.type == "themes":
            keys.add(f"theme_{e.name}")
    return keys


def test_appv2_dropdown_keys_for_a_realistic_market():
    keys = appv2_dropdown_keys(build(realistic_snapshot(3_000), CONFIG, ALL_FAMILIES).entries)
    expected = {
        "market_cap_mega_cap", "market_cap_large_cap", "market_cap_mid_cap", "market_cap_small_cap", "market_cap_micro_cap",
        "market_leaders_top_10_stocks", "market_leaders_top_50", "market_leaders_top_100", "market_leaders_top_250",
        "market_leaders_top_500", "complete_top_1000", "ipos_recent_ipos",
        "sector_leaders_top_10_technology", "sector_leaders_top_10_financial_services", "sector_leaders_top_10_healthcare",
        "sector_leaders_top_10_energy", "sector_leaders_top_10_real_estate",
        "etf_etf_broad_market", "etf_etf_growth", "etf_etf_value", "etf_etf_technology", "etf_etf_bonds",
        "etf_etf_international", "etf_etf_factor", "etf_etf_all", "etf_all_etfs",
        "stock_etf_test:combo_test", "stock_etf_test:combo_test_detailed",
        "theme_Ai", "theme_Biotech", "theme_Cloud", "theme_Crypto", "theme_Ev", "theme_Fintech", "theme_Semi",
        "theme_Cybersecurity",
    }
    assert expected <= keys
    industries = {k.removeprefix("industry_") for k in keys if k.startswith("industry_")}
    assert len(industries) == CONFIG.industry_count
    assert industries <= {naming.slug(i) for names in SECTORS.values() for i in names}
    assert {f"sector_leaders_top_10_{naming.slug(s)}" for s in SECTORS} <= keys


def test_a_full_size_market_builds_every_family():
    """12,000 symbols (2,400 ETFs). Speed is measured by the benchmark (bench/), never asserted here."""
    result = build(realistic_snapshot(12_000, etf_share=0.2), CONFIG, ALL_FAMILIES)
    assert len(result.entries) > 60
    assert {e.family for e in result.entries} == set(ALL_FAMILIES)
