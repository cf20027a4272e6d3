import dataclasses
import json

import pytest

from tickstockpl.errors import ConfigError
from tickstockpl.universes.config import (
    ConfigRow,
    EtfCategory,
    UniverseConfig,
    apply_overrides,
    config_from_toml,
    decode_value,
    default_config,
)

CONTRACT_ESSENTIAL_ETFS = ("SPY QQQ IWM VTI VUG VTV MTUM VGT XLK XLF XLV XLE XLI XLP XLY AGG BND VEA EEM IEFA").split()


# --- defaults ----------------------------------------------------------------------------------

def test_defaults_match_the_contract():
    config = default_config()
    assert config.market_cap_thresholds == {
        "mega_cap": 200e9, "large_cap": 10e9, "mid_cap": 2e9, "small_cap": 300e6, "micro_cap": 50e6,
    }
    assert config.leader_sizes == {"top_10_stocks": 10, "top_50": 50, "top_100": 100, "top_250": 250, "top_500": 500}
    assert (config.sector_leader_size, config.industry_count, config.industry_min_stocks, config.industry_size) == (10, 20, 3, 15)
    assert (config.stocks_full_metadata_limit, config.etfs_full_metadata_limit) == (1000, 100)
    assert (config.combo_stock_count, config.ipo_days) == (50, 30)
    assert list(config.essential_etfs) == CONTRACT_ESSENTIAL_ETFS
    assert config.extra == {}


def test_default_etf_categories_are_the_contract_table():
    categories = {c.key: c for c in default_config().etf_categories}
    assert {k: c.display_name for k, c in categories.items()} == {
        "etf_broad_market": "Broad Market ETFs", "etf_growth": "Growth ETFs", "etf_value": "Value ETFs",
        "etf_technology": "Technology ETFs", "etf_bonds": "Bond ETFs", "etf_international": "International ETFs",
        "etf_factor": "Factor ETFs", "etf_all": "All ETFs",
    }
    assert categories["etf_broad_market"].include == ("Total Stock Market", "Total Market", "S&P 500", "Russell", "SPDR", "Core")
    assert categories["etf_broad_market"].exclude == ("Bond", "International", "Emerging", "Value", "Growth", "Technology", "Sector")
    assert categories["etf_technology"].include == ("Technology", "Information Technology", "Tech")
    assert categories["etf_international"].include == ("International", "Emerging Markets", "EAFE", "Developed Markets")
    assert categories["etf_factor"].include == ("Factor", "Momentum", "Quality", "Min Vol", "Low Vol")
    assert categories["etf_all"].include == () and categories["etf_all"].exclude == ()


def test_default_themes_are_real_and_plentiful():
    themes = default_config().themes
    assert {"ai", "biotech", "cloud", "crypto", "ev", "fintech", "semi", "cybersecurity"} <= set(themes)
    for key, tickers in themes.items():
        assert key == key.lower()
        assert 8 <= len(tickers) <= 20, key
        assert len(set(tickers)) == len(tickers)
        assert all(t == t.upper() and 1 <= len(t) <= 5 for t in tickers), key


def test_config_is_frozen():
    config = default_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.ipo_days = 5


def test_config_from_toml_names_its_source():
    with pytest.raises(ConfigError, match=r"^custom.toml: not valid TOML"):
        config_from_toml("ipo_days = [", "custom.toml")
    with pytest.raises(ConfigError, match=r"^custom.toml: missing or malformed entry 'complete_limits'"):
        config_from_toml("ipo_days = 3", "custom.toml")


def test_direct_construction_is_validated():
    base = default_config()
    with pytest.raises(ConfigError, match="strictly decrease"):
        dataclasses.replace(base, market_cap_thresholds={**base.market_cap_thresholds, "mid_cap": 1e12})
    with pytest.raises(ConfigError, match="sector_leader_size"):
        dataclasses.replace(base, sector_leader_size=0)
    with pytest.raises(ConfigError, match="etf_categories has a key twice"):
        dataclasses.replace(base, etf_categories=base.etf_categories + base.etf_categories[:1])


# --- overrides ---------------------------------------------------------------------------------

def override(*rows: tuple) -> UniverseConfig:
    return apply_overrides(default_config(), [ConfigRow(*row) for row in rows])


def test_no_rows_change_nothing():
    assert apply_overrides(default_config(), []) == default_config()


def test_unknown_names_are_ignored():
    assert override(("app_settings", "x", "whatever"), ("priority_stocks", "y", [1, 2])) == default_config()


@pytest.mark.parametrize("value", [250e9, 250_000_000_000, "250000000000", "2.5e11", b"2.5e11"])
def test_threshold_override_accepts_numbers_and_json_text(value):
    assert override(("market_cap_thresholds", "mega_cap", value)).market_cap_thresholds["mega_cap"] == 250e9


def test_threshold_overrides_apply_per_key():
    config = override(("market_cap_thresholds", "micro_cap", 25e6), ("market_cap_thresholds", "small_cap", 250e6))
    assert config.market_cap_thresholds == {
        "mega_cap": 200e9, "large_cap": 10e9, "mid_cap": 2e9, "small_cap": 250e6, "micro_cap": 25e6,
    }


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (("market_cap_thresholds", "mega_cap", "abc"),
         'cache_config row market_cap_thresholds/mega_cap: expected a finite positive number, got "abc"'),
        (("market_cap_thresholds", "mega_cap", -5), "market_cap_thresholds/mega_cap: expected a finite positive number, got -5"),
        (("market_cap_thresholds", "mega_cap", 0), "market_cap_thresholds/mega_cap: expected a finite positive number"),
        (("market_cap_thresholds", "mega_cap", "NaN"), "market_cap_thresholds/mega_cap: expected a finite positive number"),
        (("market_cap_thresholds", "mega_cap", "Infinity"), "market_cap_thresholds/mega_cap: expected a finite positive number"),
        (("market_cap_thresholds", "mega_cap", True), "market_cap_thresholds/mega_cap: expected a finite positive number, got true"),
        (("market_cap_thresholds", "mega_cap", 10**400), "market_cap_thresholds/mega_cap: expected a finite positive number"),
        (("market_cap_thresholds", "mega_cap", None), "market_cap_thresholds/mega_cap: expected a finite positive number, got null"),
        (("market_cap_thresholds", "nano_cap", 1e6), "market_cap_thresholds/nano_cap: unknown band"),
        (("market_cap_thresholds", "mid_cap", 20e9),
         "cache_config row market_cap_thresholds/mid_cap: market-cap thresholds must strictly decrease from mega_cap "
         "to micro_cap, but large_cap=1e+10 is not above mid_cap=2e+10"),
        (("theme_definitions", "ai", "NVDA,AMD"), 'theme_definitions/ai: expected an array of tickers, got "NVDA,AMD"'),
        (("theme_definitions", "ai", ["NVDA", 3]), "theme_definitions/ai: expected tickers of 1 to 20 characters, got 3"),
        (("theme_definitions", "ai", ["NVDA", " "]), "theme_definitions/ai: expected tickers"),
        (("theme_definitions", "ai", ["X" * 21]), "theme_definitions/ai: expected tickers"),
        (("theme_definitions", " ", ["NVDA"]), "theme_definitions/ : empty theme name"),
        (("complete_limits", "stocks_full_metadata_limit", 0), "complete_limits/stocks_full_metadata_limit: expected an integer from 1 to 100000, got 0"),
        (("complete_limits", "stocks_full_metadata_limit", 100001), "expected an integer from 1 to 100000"),
        (("complete_limits", "etfs_full_metadata_limit", 2.5), "complete_limits/etfs_full_metadata_limit: expected an integer"),
        (("complete_limits", "etfs_full_metadata_limit", "many"), 'got "many"'),
        (("complete_limits", "all_limit", 5), "complete_limits/all_limit: unknown limit"),
        (("etf_categories", "etf_bespoke", "Bespoke ETFs"), "etf_categories/etf_bespoke: expected an object"),
        (("etf_categories", "etf_growth", {"include": "Growth"}), "etf_categories/etf_growth: include: expected an array of words"),
        (("etf_categories", "etf_growth", {"include": ["Growth", "--"]}), 'include: expected words (letters or digits), got "--"'),
        (("etf_categories", "etf_growth", {"exclude": [7]}), "exclude: expected words"),
        (("etf_categories", "etf_growth", {"name": ""}), "display_name: expected a non-empty string"),
        (("etf_categories", "etf_dividend", {"display_name": "Dividend ETFs"}), 'etf_categories/etf_dividend: a new category needs an "include"'),
        (("etf_categories", "", ["Growth"]), "etf_categories/: empty category key"),
        (("industry_groups", "banks", "Banks"), 'cache_config row industry_groups/banks: expected a JSON object or array, got "Banks"'),
        (("sic_mapping", "3571", 12), "sic_mapping/3571: expected a JSON object or array, got 12"),
        (("sic_ranges", "tech", None), "sic_ranges/tech: expected a JSON object or array, got null"),
    ],
)
def test_malformed_rows_raise_config_error_naming_the_row(row, message):
    with pytest.raises(ConfigError) as raised:
        override(row)
    assert message in str(raised.value)
    assert str(raised.value).startswith(f"cache_config row {row[0]}/")


def test_a_bad_row_fails_even_after_good_rows():
    with pytest.raises(ConfigError, match="complete_limits/etfs_full_metadata_limit"):
        override(("complete_limits", "stocks_full_metadata_limit", 500), ("complete_limits", "etfs_full_metadata_limit", -1))


def test_threshold_order_error_names_both_rows_when_both_were_overridden():
    with pytest.raises(ConfigError, match="market_cap_thresholds/large_cap and cache_config row market_cap_thresholds/mid_cap"):
        override(("market_cap_thresholds", "large_cap", 1e9), ("market_cap_thresholds", "mid_cap", 5e9))


def test_theme_override_replaces_and_adds():
    config = override(("theme_definitions", "AI", '["nvda", " amd ", "NVDA"]'), ("theme_definitions", "Clean Energy", ["ENPH", "FSLR"]))
    assert config.themes["ai"] == ("NVDA", "AMD")
    assert config.themes["clean energy"] == ("ENPH", "FSLR")
    assert config.themes["biotech"] == default_config().themes["biotech"]


def test_an_empty_theme_is_allowed():
    assert override(("theme_definitions", "ai", [])).themes["ai"] == ()


def test_limit_overrides():
    config = override(("complete_limits", "stocks_full_metadata_limit", "2000"), ("complete_limits", "etfs_full_metadata_limit", 250.0))
    assert (config.stocks_full_metadata_limit, config.etfs_full_metadata_limit) == (2000, 250)


def test_etf_category_override_forms():
    config = override(
        ("etf_categories", "etf_growth", {"name": "Growth Funds"}),
        ("etf_categories", "value", ["Value", "Dividend Value"]),
        ("etf_categories", "etf_dividend", json.dumps({"display_name": "Dividend ETFs", "include": ["Dividend"], "exclude": ["Bond"]})),
        ("etf_categories", "etf_commodities", ["Gold", "Commodity"]),
    )
    categories = {c.key: c for c in config.etf_categories}
    assert categories["etf_growth"] == EtfCategory("etf_growth", "Growth Funds", ("Growth",), ("Bond", "International"))
    assert categories["etf_value"] == EtfCategory("etf_value", "Value ETFs", ("Value", "Dividend Value"), ("Bond", "International"))
    assert categories["etf_dividend"] == EtfCategory("etf_dividend", "Dividend ETFs", ("Dividend",), ("Bond",))
    assert categories["etf_commodities"] == EtfCategory("etf_commodities", "Commodities ETFs", ("Gold", "Commodity"), ())
    assert [c.key for c in config.etf_categories][:8] == [c.key for c in default_config().etf_categories]


def test_extra_rows_are_kept():
    config = override(
        ("industry_groups", "banks", ["Banks", "Regional Banks"]),
        ("sic_mapping", "3571", '{"sector": "Technology", "industry": "Computer Hardware"}'),
        ("sic_ranges", "tech", [{"start": 3570, "end": 3579}]),
    )
    assert config.extra == {
        "industry_groups": {"banks": ["Banks", "Regional Banks"]},
        "sic_mapping": {"3571": {"sector": "Technology", "industry": "Computer Hardware"}},
        "sic_ranges": {"tech": [{"start": 3570, "end": 3579}]},
    }


def test_overrides_do_not_touch_the_base():
    base = default_config()
    override_config = apply_overrides(base, [ConfigRow("theme_definitions", "ai", ["X"]),
                                             ConfigRow("market_cap_thresholds", "mega_cap", 3e11)])
    assert base == default_config()
    assert override_config.themes["ai"] == ("X",)


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [('{"a": 1}', {"a": 1}), ("[1, 2]", [1, 2]), ("12", 12), ('"text"', "text"), ("abc", "abc"),
     ({"a": 1}, {"a": 1}), (5, 5), (None, None), (b"[1]", [1])],
)
def test_decode_value(raw, decoded):
    assert decode_value(raw) == decoded


def test_a_bare_display_name_renames_a_known_category_and_is_refused_for_an_unknown_one():
    from tickstockpl.errors import ConfigError
    from tickstockpl.universes.config import ConfigRow, apply_overrides, default_config

    base = default_config()
    renamed = apply_overrides(base, [ConfigRow("etf_categories", "etf_growth", "Growth Funds")])
    growth = {c.key: c for c in renamed.etf_categories}["etf_growth"]
    before = {c.key: c for c in base.etf_categories}["etf_growth"]
    assert growth.display_name == "Growth Funds" and growth.include == before.include
    import pytest

    with pytest.raises(ConfigError, match="etf_categories/etf_sectors"):
        apply_overrides(base, [ConfigRow("etf_categories", "etf_sectors", "Sector ETFs")])
