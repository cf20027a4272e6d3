"""Each family builder against small hand-built snapshots (contract §5)."""

import dataclasses
import datetime as dt

import pytest

from tickstockpl.universes import families, model
from tickstockpl.universes.config import EtfCategory, default_config
from tests.universes.helpers import AS_OF, etf, snapshot, stock

CONFIG = default_config()


def run(family, snap, config=CONFIG):
    warnings: list[str] = []
    entries = families.BUILDERS[family](snap, config, warnings)
    return {(e.type, e.name, e.key): e.value for e in entries}, warnings


def tickers(value):
    return model.members(value)


# --- market cap bands --------------------------------------------------------------------------

def test_bands_use_half_open_intervals_and_skip_below_micro():
    snap = snapshot(
        stock("MEGA", 200e9), stock("LARGE", 199.9e9), stock("LOWLARGE", 10e9), stock("MID", 9.99e9), stock("LOWMID", 2e9),
        stock("SMALL", 1.99e9), stock("LOWSMALL", 300e6), stock("MICRO", 299e6), stock("LOWMICRO", 50e6), stock("NANO", 49.9e6),
    )
    values, _ = run(model.MARKET_CAP, snap)
    band = {key: tickers(v) for (_, _, key), v in values.items()}
    assert band == {
        "mega_cap": ["MEGA"], "large_cap": ["LARGE", "LOWLARGE"], "mid_cap": ["MID", "LOWMID"],
        "small_cap": ["SMALL", "LOWSMALL"], "micro_cap": ["MICRO", "LOWMICRO"],
    }
    assert all(t == "stock_universe" and n == "market_cap" for t, n, _ in values)


def test_bands_follow_configured_thresholds():
    config = dataclasses.replace(CONFIG, market_cap_thresholds={
        "mega_cap": 100e9, "large_cap": 50e9, "mid_cap": 5e9, "small_cap": 1e9, "micro_cap": 1e6})
    values, _ = run(model.MARKET_CAP, snapshot(stock("A", 150e9), stock("B", 60e9), stock("C", 2e6)), config)
    assert tickers(values[("stock_universe", "market_cap", "mega_cap")]) == ["A"]
    assert tickers(values[("stock_universe", "market_cap", "large_cap")]) == ["B"]
    assert tickers(values[("stock_universe", "market_cap", "micro_cap")]) == ["C"]


def test_only_eligible_stocks_count():
    snap = snapshot(stock("OK", 1e9), stock("OFF", 1e9, active=False), stock("ADR", 1e9, type="ADRC"),
                    stock("NOCAP", None), etf("SPY", "SPDR S&P 500 ETF Trust", 1e9))
    values, _ = run(model.MARKET_CAP, snap)
    assert tickers(values[("stock_universe", "market_cap", "small_cap")]) == ["OK"]


def test_equal_caps_break_by_symbol():
    snap = snapshot(stock("ZZZ", 5e9), stock("AAA", 5e9), stock("MMM", 5e9), stock("BIG", 6e9))
    values, _ = run(model.MARKET_CAP, snap)
    stocks = values[("stock_universe", "market_cap", "mid_cap")]["stocks"]
    assert [(s["rank"], s["ticker"]) for s in stocks] == [(1, "BIG"), (2, "AAA"), (3, "MMM"), (4, "ZZZ")]


# --- leaders and complete ----------------------------------------------------------------------

def test_market_leaders_are_prefixes():
    snap = snapshot(*(stock(f"S{i:03d}", 1e9 + i) for i in range(120)))
    values, _ = run(model.MARKET_LEADERS, snap)
    assert set(k for _, _, k in values) == {"top_10_stocks", "top_50", "top_100", "top_250", "top_500"}
    everything = [f"S{i:03d}" for i in reversed(range(120))]
    for key, size in CONFIG.leader_sizes.items():
        value = values[("stock_universe", "market_leaders", key)]
        assert tickers(value) == everything[:size]
        assert value["count"] == min(size, 120)


def test_complete_stocks():
    snap = snapshot(stock("A", 1e9), stock("B", 3e9), stock("C", 2e9), stock("D", None))
    config = dataclasses.replace(CONFIG, stocks_full_metadata_limit=2)
    values, _ = run(model.COMPLETE_STOCKS, snap, config)
    assert values[("stock_universe", "complete", "all_stocks")] == ["B", "C", "A"]
    assert tickers(values[("stock_universe", "complete", "top_2")]) == ["B", "C"]
    values, _ = run(model.COMPLETE_STOCKS, snap)
    assert ("stock_universe", "complete", "top_1000") in values


def test_complete_etfs_order_by_cap_then_aum_then_zero_then_symbol():
    snap = snapshot(
        etf("CAP", "Cap Fund", 5e9), etf("AUM", "Aum Fund", None, aum_millions=7000.0),
        etf("NONE2", "None Fund", None), etf("NONE1", "None Fund", None), etf("BOTH", "Both", 1e9, aum_millions=9e6),
        etf("DEAD", "Dead Fund", 9e12, active=False), stock("STOCK", 9e12),
    )
    values, _ = run(model.COMPLETE_ETFS, snap)
    assert values[("etf_universe", "complete", "all_etfs")] == ["AUM", "CAP", "BOTH", "NONE1", "NONE2"]
    top = values[("etf_universe", "complete", "top_100")]
    assert [(e["rank"], e["ticker"], e["market_cap"]) for e in top["etfs"]] == [
        (1, "AUM", 7e9), (2, "CAP", 5e9), (3, "BOTH", 1e9), (4, "NONE1", 0.0), (5, "NONE2", 0.0)]


# --- combo and stats ---------------------------------------------------------------------------

def test_combo_is_top_stocks_then_existing_essential_etfs_sorted():
    snap = snapshot(
        *(stock(f"S{i:02d}", 1e9 * (i + 1)) for i in range(60)),
        etf("SPY", "SPDR S&P 500 ETF Trust"), etf("AGG", "iShares Core U.S. Aggregate Bond ETF"),
        etf("QQQ", "Invesco QQQ Trust", active=False), etf("ARKK", "ARK Innovation ETF"),
    )
    values, _ = run(model.COMBO, snap)
    array = values[("stock_etf_combo", "stock_etf_test", "combo_test")]
    assert array == [f"S{i:02d}" for i in range(59, 9, -1)] + ["AGG", "SPY"]
    detailed = values[("stock_etf_combo", "stock_etf_test", "combo_test_detailed")]
    assert detailed["count"] == 52 and detailed["composition"] == {"stocks": 50, "etfs": 2}
    assert tickers(detailed) == array
    assert [s["rank"] for s in detailed["stocks"]] == list(range(1, 51))


def test_combo_is_written_even_when_empty():
    values, _ = run(model.COMBO, snapshot())
    assert values[("stock_etf_combo", "stock_etf_test", "combo_test")] == []
    assert values[("stock_etf_combo", "stock_etf_test", "combo_test_detailed")]["count"] == 0


def test_stats_describe_the_latest_session_not_the_clock():
    snap = snapshot(stock("A", 1e9), stock("B", 3e9), as_of=dt.date(2025, 6, 14), session=dt.date(2025, 6, 13))
    values, _ = run(model.STATS, snap)
    overview = values[("stock_stats", "universe", "summary")]["overview"]
    assert overview["last_updated"] == "2025-06-13"
    assert (overview["total_stocks"], overview["total_market_cap"], overview["average_market_cap"]) == (2, 4e9, 2e9)
    values, _ = run(model.STATS, snapshot(stock("A", 1e9), session=None))
    assert values[("stock_stats", "universe", "summary")]["overview"]["last_updated"] == AS_OF.isoformat()


# --- themes ------------------------------------------------------------------------------------

def test_themes_keep_active_common_stocks_sorted_and_write_both_rows():
    config = dataclasses.replace(CONFIG, themes={"ai": ("NVDA", "MSFT", "SPY", "OLD", "GONE", "AMD")}, theme_names={})
    snap = snapshot(stock("NVDA", None), stock("MSFT", 3e12), stock("OLD", 1e9, active=False), stock("amd", 2e11),
                    etf("SPY", "SPDR S&P 500 ETF Trust"))
    values, _ = run(model.THEMES, snap, config)
    assert values == {("themes", "Ai", "list"): ["MSFT", "NVDA", "amd"], ("stock_universe", "themes", "ai"): ["MSFT", "NVDA", "amd"]}


def test_empty_themes_are_written_and_display_names_apply():
    config = dataclasses.replace(CONFIG, themes={"ev": ("TSLA",), "ai": ("NVDA",)}, theme_names={"ai": "AI"})
    values, _ = run(model.THEMES, snapshot(stock("NVDA", 1e12)), config)
    assert values[("themes", "Ev", "list")] == [] and values[("stock_universe", "themes", "ev")] == []
    assert values[("themes", "AI", "list")] == ["NVDA"]


# --- sector leaders and industries -------------------------------------------------------------

def test_sector_leaders_top_n_per_known_sector():
    snap = snapshot(
        *(stock(f"T{i:02d}", 1e9 * (i + 1), sector="Technology") for i in range(12)),
        stock("OIL", 5e9, sector="Oil & Gas"), stock("FIN", 4e9, sector="Financial Services"),
        stock("NOSEC", 9e9, sector=None), stock("UNK", 9e9, sector="Unknown"), stock("BLANK", 9e9, sector="  "),
    )
    values, warnings = run(model.SECTOR_LEADERS, snap)
    assert set(k for _, _, k in values) == {"top_10_technology", "top_10_oil_and_gas", "top_10_financial_services"}
    tech = values[("stock_universe", "sector_leaders", "top_10_technology")]
    assert tickers(tech) == [f"T{i:02d}" for i in range(11, 1, -1)] and tech["count"] == 10
    assert warnings == []
    config = dataclasses.replace(CONFIG, sector_leader_size=3)
    values, _ = run(model.SECTOR_LEADERS, snap, config)
    assert tickers(values[("stock_universe", "sector_leaders", "top_3_technology")]) == ["T11", "T10", "T09"]


def test_sector_spellings_with_one_slug_merge_with_a_warning():
    snap = snapshot(stock("A", 3e9, sector="Oil & Gas"), stock("B", 2e9, sector="oil and gas"), stock("C", 1e9, sector="Oil  &  Gas "))
    values, warnings = run(model.SECTOR_LEADERS, snap)
    assert list(values) == [("stock_universe", "sector_leaders", "top_10_oil_and_gas")]
    assert tickers(values[("stock_universe", "sector_leaders", "top_10_oil_and_gas")]) == ["A", "B", "C"]
    assert warnings == ["merged sector spellings 'Oil  &  Gas', 'Oil & Gas', 'oil and gas' (one key: oil_and_gas)"]


def test_labels_differing_only_in_blanks_share_a_group_in_cap_order():
    snap = snapshot(stock("SMALL", 1e9, sector="Technology"), stock("BIG", 9e9, sector="Technology"),
                    stock("MID", 5e9, sector=" Technology\t"))
    values, warnings = run(model.SECTOR_LEADERS, snap)
    assert tickers(values[("stock_universe", "sector_leaders", "top_10_technology")]) == ["BIG", "MID", "SMALL"]
    assert warnings == []


def test_industries_need_three_stocks_and_keep_the_fifteen_largest():
    snap = snapshot(
        *(stock(f"SW{i:02d}", 1e9 * (i + 1), industry="Software") for i in range(20)),
        stock("B1", 1e9, industry="Banks"), stock("B2", 2e9, industry="Banks"),
        stock("N1", 1e9, industry=None), stock("N2", 1e9, industry="Unknown"), stock("N3", 1e9, industry=""),
    )
    values, _ = run(model.INDUSTRY, snap)
    assert list(values) == [("stock_universe", "industry", "software")]
    software = values[("stock_universe", "industry", "software")]
    assert software["count"] == 15 and tickers(software) == [f"SW{i:02d}" for i in range(19, 4, -1)]
    assert software["sector"] == "Technology"


def test_industry_in_two_sectors_is_one_row_with_the_majority_sector():
    snap = snapshot(
        stock("A", 5e9, sector="Technology", industry="Software"), stock("B", 4e9, sector="Communication", industry="Software"),
        stock("C", 3e9, sector="Communication", industry="Software"), stock("D", 2e9, sector=None, industry="Software"),
        stock("E", 1e9, sector="Unknown", industry="Software"),
    )
    values, _ = run(model.INDUSTRY, snap)
    assert list(values) == [("stock_universe", "industry", "software")]
    value = values[("stock_universe", "industry", "software")]
    assert value["sector"] == "Communication" and value["count"] == 5


def test_industry_majority_ties_go_alphabetical_and_none_known_is_unknown():
    snap = snapshot(
        stock("A", 5e9, sector="Technology", industry="Tools"), stock("B", 4e9, sector="Industrials", industry="Tools"),
        stock("C", 3e9, sector=None, industry="Tools"),
        stock("D", 3e9, sector=None, industry="Misc"), stock("E", 3e9, sector="unknown", industry="Misc"), stock("F", 1e9, sector="", industry="Misc"),
    )
    values, _ = run(model.INDUSTRY, snap)
    assert values[("stock_universe", "industry", "tools")]["sector"] == "Industrials"
    assert values[("stock_universe", "industry", "misc")]["sector"] == "Unknown"


def test_top_industries_by_count_with_ties_by_slug():
    config = dataclasses.replace(CONFIG, industry_count=2, industry_min_stocks=1, industry_size=2)
    snap = snapshot(
        *(stock(f"Z{i}", 1e9 + i, industry="Zinc Mining") for i in range(3)),
        *(stock(f"A{i}", 1e9 + i, industry="Auto Parts") for i in range(3)),
        *(stock(f"M{i}", 1e9 + i, industry="Metals") for i in range(4)),
        stock("L", 9e12, industry="Lonely"),
    )
    values, _ = run(model.INDUSTRY, snap, config)
    assert list(values) == [("stock_universe", "industry", "metals"), ("stock_universe", "industry", "auto_parts")]
    assert tickers(values[("stock_universe", "industry", "metals")]) == ["M3", "M2"]


# --- ETF categories ----------------------------------------------------------------------------

ETFS = snapshot(
    etf("VTI", "Vanguard Total Stock Market ETF"), etf("SPY", "SPDR S&P 500 ETF Trust"),
    etf("IWM", "iShares Russell 2000 ETF"), etf("VUG", "Vanguard Growth ETF"), etf("VTV", "Vanguard Value ETF"),
    etf("XLK", "Technology Select Sector SPDR Fund"), etf("IBB", "iShares Biotechnology ETF"),
    etf("FBT", "First Trust NYSE Arca Biotech Index Fund"), etf("BND", "Vanguard Total Bond Market ETF"),
    etf("AGG", "iShares Core U.S. Aggregate Bond ETF"), etf("EFA", "iShares MSCI EAFE ETF"),
    etf("EEM", "iShares MSCI Emerging Markets ETF"), etf("MTUM", "iShares MSCI USA Momentum Factor ETF"),
    etf("USMV", "iShares MSCI USA Min Vol Factor ETF"), etf("SPLV", "Invesco S&P 500 Low Volatility ETF"),
    etf("VGT", "Vanguard Information Technology ETF"), etf("BNDX", "Vanguard Total International Bond ETF"),
    etf("GLD", "SPDR Gold Shares"), etf("OLD", "Old Growth Fund", active=False), etf("NONAME", None),
    etf("SPGR", "S&P500 Growthy Fund"), stock("GROW", 1e9, name="Growth Corp"),
)


def categories(snap=ETFS, config=CONFIG):
    values, warnings = run(model.ETF_CATEGORIES, snap, config)
    assert warnings == []
    by_key = {key: value for (_, _, key), value in values.items()}
    return by_key, values


def test_etf_categories_match_whole_words():
    by_key, _ = categories()
    assert by_key["etf_broad_market"] == ["GLD", "IWM", "SPLV", "SPY", "VTI"]
    assert by_key["etf_growth"] == ["VUG"]  # not SPGR: "Growthy" is another word
    assert by_key["etf_value"] == ["VTV"]
    assert by_key["etf_technology"] == ["VGT", "XLK"]  # not IBB (Biotechnology) nor FBT (Biotech)
    assert by_key["etf_bonds"] == ["AGG", "BND", "BNDX"]
    assert by_key["etf_international"] == ["EEM", "EFA"]  # BNDX excluded (Bond)
    assert by_key["etf_factor"] == ["MTUM", "USMV"]  # "Low Vol" does not match "Low Volatility"
    assert by_key["etf_all"] == sorted(s.symbol for s in ETFS.securities if s.is_etf)


def test_etf_categories_write_array_and_detailed_under_the_display_name():
    _, values = categories()
    assert values[("etf_universe", "Technology ETFs", "etf_technology")] == ["VGT", "XLK"]
    detailed = values[("etf_universe", "Technology ETFs", "etf_technology_detailed")]
    assert detailed == {"count": 2, "etfs": [
        {"symbol": "VGT", "name": "Vanguard Information Technology ETF", "etf_type": "ETF", "issuer": "Vanguard"},
        {"symbol": "XLK", "name": "Technology Select Sector SPDR Fund", "etf_type": "ETF", "issuer": "Vanguard"}]}
    assert len(values) == 2 * len(CONFIG.etf_categories)


def test_empty_categories_are_written():
    by_key, _ = categories(snapshot(etf("GLD", "SPDR Gold Shares")))
    assert by_key["etf_growth"] == [] and by_key["etf_growth_detailed"] == {"count": 0, "etfs": []}


def test_configured_categories_match_case_insensitively():
    config = dataclasses.replace(CONFIG, etf_categories=(
        EtfCategory("etf_biotech", "Biotech ETFs", ("biotechnology", "BIOTECH"), ("nyse arca",)),))
    by_key, _ = categories(config=config)
    assert by_key == {"etf_biotech": ["IBB"], "etf_biotech_detailed": {"count": 1, "etfs": [
        {"symbol": "IBB", "name": "iShares Biotechnology ETF", "etf_type": "ETF", "issuer": "Vanguard"}]}}


# --- IPOs --------------------------------------------------------------------------------------

def test_recent_ipos_window_and_order():
    days = dt.timedelta
    snap = snapshot(
        stock("TODAY", 1e9, list_date=AS_OF), stock("EDGE", None, list_date=AS_OF - days(30)),
        stock("OLD", 1e9, list_date=AS_OF - days(31)), stock("FUTURE", 1e9, list_date=AS_OF + days(1)),
        etf("NEWETF", "New Fund", None, list_date=AS_OF - days(3)), stock("AAA", 2e9, list_date=AS_OF - days(3)),
        stock("DEAD", 1e9, list_date=AS_OF, active=False), stock("ADR", 1e9, list_date=AS_OF, type="ADRC"),
        stock("NODATE", 1e9), stock("STAMP", 1e9, list_date=dt.datetime(2025, 6, 1, 9, 30)),
    )
    values, _ = run(model.IPOS, snap)
    value = values[("stock_universe", "ipos", "recent_ipos")]
    assert tickers(value) == ["TODAY", "AAA", "NEWETF", "STAMP", "EDGE"]
    newetf = value["stocks"][2]
    assert newetf["market_cap"] == 0.0 and newetf["sector"] == "Unknown" and newetf["industry"] == "Unknown"
    assert value["stocks"][4]["market_cap"] == 0.0
    assert [s["rank"] for s in value["stocks"]] == [1, 2, 3, 4, 5]


def test_ipo_window_follows_config():
    config = dataclasses.replace(CONFIG, ipo_days=0)
    snap = snapshot(stock("TODAY", 1e9, list_date=AS_OF), stock("YESTERDAY", 1e9, list_date=AS_OF - dt.timedelta(days=1)))
    values, _ = run(model.IPOS, snap, config)
    assert tickers(values[("stock_universe", "ipos", "recent_ipos")]) == ["TODAY"]


# --- every builder -----------------------------------------------------------------------------

@pytest.mark.parametrize("family", model.ALL_FAMILIES)
def test_every_builder_tags_its_family_and_accepts_a_plain_snapshot(family):
    snap = dataclasses.replace(ETFS, securities=ETFS.securities + tuple(
        stock(t, 1e9, list_date=AS_OF) for t in ("NVDA", "MSFT", "AMD")))
    entries = families.BUILDERS[family](snap, CONFIG, [])
    assert entries
    for entry in entries:
        assert entry.family == family
        assert model.family_of(entry.type, entry.name, entry.key) == family
        assert entry.type in model.OWNED_TYPES


def test_builders_cover_every_family():
    assert set(families.BUILDERS) == set(model.ALL_FAMILIES)
