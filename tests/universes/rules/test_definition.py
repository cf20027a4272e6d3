"""Rule-universe definitions: the built-ins, overrides from cache_config rows, and bad definitions."""

from __future__ import annotations

import json

import pytest

from tickstockpl.errors import ConfigError
from tickstockpl.universes import model
from tickstockpl.universes.config import ConfigRow, default_config
from tickstockpl.universes.rules import definition as rd

BUILT_INS = ("tradable_us", "liquid_500", "liquid_1500", "crsp_mega", "crsp_large", "crsp_mid", "crsp_small",
             "crsp_micro")


def test_built_ins_are_the_documented_ones():
    defs = rd.default_definitions()
    assert tuple(defs) == BUILT_INS
    t = defs["tradable_us"]
    assert (t.entry.median_dollar_volume.sessions, t.entry.median_dollar_volume.minimum) == (200, 2_500_000)
    assert (t.entry.coverage.sessions, t.entry.coverage.min_sessions, t.entry.recent_sessions) == (200, 180, 20)
    assert t.entry.min_price == 5.0 and t.stay == t.entry and t.reconstitution.schedule == "every_session"
    for key, size in (("liquid_500", 500), ("liquid_1500", 1500)):
        d = defs[key]
        assert (d.rank.metric, d.rank.sessions, d.selection.count) == ("mean_dollar_volume", 200, size)
        assert d.sector_cap == 0.30 and d.sector_cap_count() == size * 3 // 10
        assert d.reconstitution.schedule == "monthly"
    bands = [(defs[k].selection.from_pct, defs[k].selection.to_pct) for k in BUILT_INS[3:]]
    assert bands == [(0, 70), (0, 85), (70, 85), (85, 98), (98, 100)]
    assert all(defs[k].band.percentile == 2.5 for k in BUILT_INS[3:])


def test_keys_do_not_collide_with_the_legacy_universes():
    # published as stock_universe/rules/<key>: the rule family, which no legacy builder (ALL_FAMILIES) is
    assert model.family_of(model.STOCK_UNIVERSE, "rules", "tradable_us") == model.RULES
    assert model.RULES not in model.ALL_FAMILIES
    legacy_keys = set(default_config().leader_sizes) | set(default_config().market_cap_thresholds)
    assert not legacy_keys & set(BUILT_INS)


def test_round_trip_through_a_mapping():
    for key, d in rd.default_definitions().items():
        assert rd.parse_definition(key, rd.to_mapping(d)) == d


def test_override_rows_merge_over_the_built_in():
    rows = [
        ConfigRow("rule_universes", "liquid_500", json.dumps({"selection": {"count": 400}, "band": {"ranks": 40}})),
        ConfigRow("rule_universes", "tradable_us", {"entry": {"min_price": 3}}),
        ConfigRow("market_cap_thresholds", "mega_cap", 1),  # another name: not ours
        ConfigRow("rule_universes", "crsp_micro", {"enabled": False}),
        ConfigRow("rule_universes", "liquid_500", {"sector_cap": 0.25}),  # later rows win, earlier ones stay
    ]
    out = rd.apply_overrides(rd.default_definitions(), rows)
    assert out["liquid_500"].selection.count == 400 and out["liquid_500"].band.ranks == 40
    assert out["liquid_500"].sector_cap_count() == 100
    assert out["tradable_us"].entry.min_price == 3 and out["tradable_us"].entry.coverage.min_sessions == 180
    assert not out["crsp_micro"].enabled
    assert out["crsp_mega"] == rd.default_definitions()["crsp_mega"]


def test_a_stay_that_defaults_to_the_entry_follows_an_overridden_entry():
    rows = [ConfigRow("rule_universes", "tradable_us", {"entry": {"min_price": 3}}),
            ConfigRow("rule_universes", "liquid_500", {"stay": {"min_price": 4}}),
            ConfigRow("rule_universes", "liquid_500", {"entry": {"min_price": 6}})]
    out = rd.apply_overrides(rd.default_definitions(), rows)
    assert out["tradable_us"].stay == out["tradable_us"].entry and out["tradable_us"].stay.min_price == 3
    # a stay given explicitly stays its own
    assert out["liquid_500"].entry.min_price == 6 and out["liquid_500"].stay.min_price == 4
    assert out["liquid_500"].stay.coverage.min_sessions == 180


def test_a_row_that_changes_a_kind_replaces_that_table():
    rows = [ConfigRow("rule_universes", "liquid_500", {"selection": {"kind": "rank_range", "first": 1, "last": 300},
                                                       "reconstitution": {"schedule": "semi_annual"},
                                                       "rank": {"metric": "market_cap"}}),
            ConfigRow("rule_universes", "crsp_mega", {"reconstitution": {"schedule": "monthly"}})]
    out = rd.apply_overrides(rd.default_definitions(), rows)
    assert out["liquid_500"].selection.size == 300 and out["liquid_500"].reconstitution.months == (6, 12)
    assert out["liquid_500"].rank == rd.Rank("market_cap") and out["crsp_mega"].reconstitution.schedule == "monthly"


def test_a_new_key_needs_a_whole_definition():
    row = ConfigRow("rule_universes", "my_top_50", {"title": "Top 50", "selection": {"kind": "top", "count": 50}})
    out = rd.apply_overrides(rd.default_definitions(), [row])
    assert out["my_top_50"].selection.count == 50 and out["my_top_50"].rank.metric == "market_cap"


BAD = [
    ({"selection": {"kind": "top", "count": -5}}, "selection.count: expected an integer from 1 to 100000, got -5"),
    ({"selection": {"kind": "best"}}, "selection.kind: expected one of"),
    ({"selection": {"kind": "top", "count": 5, "first": 1}}, "selection.first: unknown field"),
    ({"selection": {"kind": "rank_range", "first": 50, "last": 10}}, "selection.last: expected an integer from 50"),
    ({"selection": {"kind": "percentile_range", "from_pct": 80, "to_pct": 70}}, "selection.to_pct: must be above"),
    ({"selection": {"kind": "percentile_range", "from_pct": 0, "to_pct": 170}}, "selection.to_pct: expected a finite number"),
    ({"entry": {"median_dollar_volume": {"sessions": 300, "min": 1}}}, "entry.median_dollar_volume.sessions: expected an integer from 1 to 252"),
    ({"entry": {"median_dollar_volume": {"sessions": 20, "min": "lots"}}}, "entry.median_dollar_volume.min: expected a finite number"),
    ({"stay": {"coverage": {"sessions": 20, "min_sessions": 21}}}, "stay.coverage.min_sessions: expected an integer from 1 to 20"),
    ({"entry": {"min_price": float("nan")}}, "entry.min_price: expected a finite number"),
    ({"entry": {"volume": 1}}, "entry.volume: unknown field"),
    ({"rank": {"metric": "mean_dollar_volume"}}, "rank.sessions: expected an integer"),
    ({"rank": {"metric": "market_cap", "sessions": 20}}, "rank.sessions: market_cap has no window"),
    ({"rank": {"metric": "beta"}}, "rank.metric: expected one of"),
    ({"sector_cap": 0.3}, "sector_cap: needs a selection of kind top or rank_range, not all"),
    ({"selection": {"kind": "top", "count": 5}, "sector_cap": 1.5}, "sector_cap: expected a finite number above 0 and at most 1"),
    ({"selection": {"kind": "top", "count": 5}, "band": {"ranks": 2, "percentile": 1}}, "band: a rank buffer or a percentile band, not both"),
    ({"selection": {"kind": "top", "count": 5}, "band": {"percentile": 1}}, "band.percentile: a percentile band needs"),
    ({"band": {"ranks": 3}}, "band.ranks: a rank buffer needs"),
    ({"reconstitution": {"schedule": "weekly"}}, "reconstitution.schedule: expected one of"),
    ({"reconstitution": {"schedule": "quarterly", "months": [1, 2, 3, 4]}}, "reconstitution.months: quarterly months must be evenly spaced"),
    ({"reconstitution": {"schedule": "semi_annual", "months": [6]}}, "reconstitution.months: semi_annual needs 2 months"),
    ({"reconstitution": {"schedule": "monthly", "months": [1]}}, "reconstitution.months: monthly takes no months"),
    ({"reconstitution": {"schedule": "quarterly", "months": [0, 3, 6, 9]}}, "reconstitution.months: expected distinct months"),
    ({"candidates": {"types": []}}, "candidates.types: expected a non-empty array"),
    ({"candidates": {"active": "yes"}}, "candidates.active: expected true or false"),
    ({"candidates": {"min_ipo_sessions": 1.5}}, "candidates.min_ipo_sessions: expected an integer"),
    ({"ipo_policy": "fast_entry"}, "ipo_window_sessions: fast_entry needs a window"),
    ({"ipo_policy": "always"}, "ipo_policy: expected one of"),
    ({"min_stay_sessions": True}, "min_stay_sessions: expected an integer"),
    ({"enabled": 1}, "enabled: expected true or false"),
    ({"colour": "red"}, "colour: unknown field"),
    ({"title": ""}, "title: expected a non-empty string"),
    ({"entry": []}, "entry: expected a table/object"),
]


@pytest.mark.parametrize("body, message", BAD)
def test_bad_definitions_name_the_definition_and_field(body, message):
    with pytest.raises(ConfigError) as err:
        rd.parse_definition("my_rules", body)
    text = str(err.value)
    assert text.startswith("rule universe my_rules: ") and message in text and "\n" not in text


@pytest.mark.parametrize("key", ["", "Upper", "dev_x", "a-b", "x" * 101, 5])
def test_bad_keys(key):
    with pytest.raises(ConfigError, match="key: expected lower-case"):
        rd.parse_definition(key, {})


def test_a_bad_row_names_the_row_and_loses_nothing():
    base = rd.default_definitions()
    rows = [ConfigRow("rule_universes", "liquid_500", '{"selection": {"count": 0}}')]
    with pytest.raises(ConfigError) as err:
        rd.apply_overrides(base, rows)
    assert str(err.value).startswith("cache_config row rule_universes/liquid_500: rule universe liquid_500: selection.count")
    assert base == rd.default_definitions()
    with pytest.raises(ConfigError, match="rule_universes/tradable_us: .*expected a JSON object, got \"not json\""):
        rd.apply_overrides(base, [ConfigRow("rule_universes", "tradable_us", "not json")])


def test_bad_toml_names_the_source():
    with pytest.raises(ConfigError, match="mine.toml: not valid TOML"):
        rd.definitions_from_toml("[universe", "mine.toml")
    with pytest.raises(ConfigError, match="mine.toml: rule universe x: selection.count"):
        rd.definitions_from_toml("[universe.x]\nselection = { kind = 'top', count = 0 }\n", "mine.toml")


def test_the_docs_name_every_built_in_and_quote_real_reasons():
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    text = (root / "docs" / "RULE_UNIVERSES.md").read_text(encoding="utf-8")
    for key in rd.default_definitions():
        assert f"`{key}`" in text
    block = text.split("```\n")[1]  # the reason examples
    engine_tests = (root / "tests" / "universes" / "rules" / "test_engine.py").read_text(encoding="utf-8")
    lines = [line for line in block.splitlines() if line.strip()]
    assert len(lines) >= 8
    for line in lines:
        assert line.split(" on reconstitution day")[0] in engine_tests, line
