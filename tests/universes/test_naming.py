import pytest

from tickstockpl.universes import naming
from tickstockpl.universes.model import KEY_MAX


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("Financial Services", "financial_services"),  # contract §5.2
        ("Oil & Gas", "oil_and_gas"),
        ("Technology", "technology"),
        ("E&P", "eandp"),  # same as AppV2's old lower().replace(' ', '_').replace('&', 'and')
        ("  Real   Estate ", "real_estate"),
        ("Consumer\tCyclical\n", "consumer_cyclical"),
        ("REIT - Industrial", "reit_-_industrial"),
        ("a__b", "a_b"),
        ("Électricité", "électricité"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_slug(label, expected):
    assert naming.slug(label) == expected


@pytest.mark.parametrize("label", ["Financial Services", "Oil & Gas", "Aerospace & Defense", "Auto Manufacturers"])
def test_slug_equals_the_old_appv2_key_for_ordinary_labels(label):
    assert naming.slug(label) == label.lower().replace(" ", "_").replace("&", "and")


@pytest.mark.parametrize(("label", "unknown"), [(None, True), ("", True), ("  ", True), ("Unknown", True),
                                                ("UNKNOWN ", True), ("Technology", False), ("Unknowns", False)])
def test_is_unknown(label, unknown):
    assert naming.is_unknown(label) is unknown


def test_problem_flags_empty_and_over_long_names_and_keys():
    assert naming.problem("market_cap", "mega_cap") is None
    assert naming.problem("x" * KEY_MAX, "k" * KEY_MAX) is None
    assert "empty key" in naming.problem("industry", "")
    assert "empty name" in naming.problem("", "list")
    assert "longer than 100" in naming.problem("industry", "k" * (KEY_MAX + 1))
    assert "longer than 100" in naming.problem("n" * (KEY_MAX + 1), "list")


def test_key_helpers():
    assert naming.top_key(1000) == "top_1000"
    assert naming.sector_leaders_key("financial_services", 10) == "top_10_financial_services"
    assert naming.detailed_key("etf_growth") == "etf_growth_detailed"
    assert naming.theme_key(" AI ") == "ai"
    assert naming.theme_display_name("ai", {}) == "Ai"  # key.title(), as AppV2's old job wrote it
    assert naming.theme_display_name("ai", {"ai": "Artificial Intelligence"}) == "Artificial Intelligence"
    assert naming.category_key("growth") == "etf_growth"
    assert naming.category_key("etf_growth") == "etf_growth"
    assert naming.category_key("Dividend Income") == "etf_dividend_income"
    assert naming.category_display_name("etf_dividend_income") == "Dividend Income ETFs"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SPDR S&P 500 ETF Trust", ("spdr", "s", "&", "p", "500", "etf", "trust")),
        ("iShares MSCI USA Min-Vol Factor", ("ishares", "msci", "usa", "min", "vol", "factor")),
        ("iShares Core U.S. Aggregate Bond", ("ishares", "core", "u", "s", "aggregate", "bond")),
        ("iShares Biotechnology ETF", ("ishares", "biotechnology", "etf")),
        ("snake_case", ("snake", "case")),
        ("", ()),
    ],
)
def test_words(text, expected):
    assert naming.words(text) == expected
