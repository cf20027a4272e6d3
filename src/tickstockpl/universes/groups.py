"""PL's universes as AppV2's relational groups (`definition_groups` / `group_memberships`). Pure.

AppV2's `RelationshipCache` (contract §10.1) lists groups of type `UNIVERSE` and `ETF` with their
member counts and descriptions (the admin universe dropdown) and resolves `get_universe_symbols(name)`
to the members of the lower-case group `name`, a `:` in the request meaning the union of several
groups. So each universe becomes one group of type `UNIVERSE` whose name is lower case, has no `:`,
and stays the same from day to day (AppV2 keeps users' selections by name):

    cache_entries universe                         group name
    stock_universe / <name> / <key>                <name>_<key>        market_cap_large_cap,
                                                                       market_leaders_top_50,
                                                                       sector_leaders_top_10_technology,
                                                                       industry_semiconductors,
                                                                       themes_ai, complete_all_stocks,
                                                                       ipos_recent_ipos
    etf_universe / <display> / etf_<category>      etf_<category>      etf_growth, etf_all
    etf_universe / complete / <key>                etf_complete_<key>  etf_complete_top_100,
                                                                       etf_complete_all_etfs
    stock_etf_combo / stock_etf_test / combo_test  combo_stock_etf_test
    (no group: the `_detailed` twins, `themes / <display> / list` and `stock_etf_combo ... _detailed`
     have the same members as a universe above; `stock_stats` has no members)

Members are sorted by symbol (AppV2 reads them `ORDER BY symbol`); `weight` is left NULL: no PL
universe weights its members. `metadata` says what built the group.

A rule universe (`stock_universe / rules / <key>`, universes/rules) becomes the group `rules_<key>`
(rules_tradable_us, rules_liquid_500, rules_crsp_mega, ...) described by its definition's title and
description; its `liquidity_filter` is the definition's screens as JSON (rules.definition.liquidity_filter),
also kept in `metadata` so that a change of the definition updates the group. Every other group has no
liquidity_filter (None: the column is left as it is).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from tickstockpl.universes import model
from tickstockpl.universes.config import BANDS, UniverseConfig

GROUP_TYPE = "UNIVERSE"
SOURCE = "tickstockpl"
_UNSAFE = re.compile(r"[^a-z0-9_]+")


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    universe: str  # the universe id it mirrors ("type:name:key")
    description: str
    metadata: dict[str, Any]
    members: tuple[str, ...]  # sorted, unique
    liquidity_filter: dict[str, Any] | None = None  # a rule universe's screens (None: any other group)


def group_name(type_: str, name: str, key: str) -> str | None:
    """The group of a universe (module table), or None when the universe has no group of its own."""
    if key.endswith("_detailed") or type_ in (model.THEMES_TYPE, model.STATS_TYPE):
        return None
    if type_ == model.STOCK_UNIVERSE:
        raw = f"{name}_{key}"
    elif type_ == model.ETF_UNIVERSE:
        raw = f"etf_complete_{key}" if name == model.COMPLETE_NAME else key
    elif type_ == model.COMBO_TYPE:
        raw = f"combo_{name}"
    else:
        return None
    return _UNSAFE.sub("_", raw.lower()).strip("_") or None


def build_groups(entries: Iterable[model.Entry], config: UniverseConfig, as_of: str,
                 rule_definitions: Mapping[str, Any] | None = None) -> tuple[list[Group], list[str]]:
    """(groups, warnings): one group per universe that has one; two universes landing on one name keep
    the first (by universe id) and warn. `rule_definitions`: key -> RuleDefinition of the rule universes
    among `entries` (their descriptions and liquidity_filter)."""
    from tickstockpl.universes.rules.definition import liquidity_filter

    rule_definitions = rule_definitions or {}
    out: dict[str, Group] = {}
    warnings: list[str] = []
    for entry in sorted(entries, key=lambda e: e.universe):
        name = group_name(entry.type, entry.name, entry.key)
        if name is None:
            continue
        if name in out:
            warnings.append(f"relational group {name}: {entry.universe} and {out[name].universe} share the name;"
                            f" kept {out[name].universe}")
            continue
        definition = rule_definitions.get(entry.key) if entry.family == model.RULES else None
        if definition is not None:
            screens = liquidity_filter(definition)
            out[name] = Group(
                name=name, universe=entry.universe,
                description=f"{definition.title}: {definition.description} (TickStockPL)" if definition.description
                else f"{definition.title} (TickStockPL)",
                metadata={"source": SOURCE, "universe": entry.universe, "family": entry.family,
                          "rule": definition.description or definition.title, "as_of": as_of,
                          "liquidity_filter": screens},
                members=tuple(sorted(set(model.members(entry.value)))), liquidity_filter=screens,
            )
            continue
        out[name] = Group(
            name=name, universe=entry.universe,
            description=describe(entry, config),
            metadata={"source": SOURCE, "universe": entry.universe, "family": entry.family,
                      "rule": _RULES.get(entry.family, entry.family), "as_of": as_of},
            members=tuple(sorted(set(model.members(entry.value)))),
        )
    return list(out.values()), warnings


_RULES = {
    model.MARKET_CAP: "market-cap band of active common stocks (latest close x weighted shares), largest first",
    model.MARKET_LEADERS: "top N active common stocks by market cap",
    model.COMPLETE_STOCKS: "active common stocks by market cap",
    model.COMPLETE_ETFS: "active ETFs by market cap (else assets under management)",
    model.SECTOR_LEADERS: "top 10 active common stocks by market cap in one sector",
    model.INDUSTRY: "largest active common stocks of one of the largest industries",
    model.THEMES: "configured theme tickers that are active common stocks",
    model.ETF_CATEGORIES: "active ETFs whose name matches the category's words",
    model.COMBO: "top stocks by market cap and the essential ETFs",
    model.IPOS: "common stocks and ETFs listed recently",
}


def _money(value: float) -> str:
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6)):
        if value >= size:
            return f"${value / size:g}{unit}"
    return f"${value:,.0f}"


def describe(entry: model.Entry, config: UniverseConfig) -> str:
    """One sentence a person understands, naming the rule and the figures it uses."""
    family, key, name = entry.family, entry.key, entry.name
    if family == model.MARKET_CAP and key in BANDS:
        limits = config.market_cap_thresholds
        low = limits[key]
        upper = BANDS.index(key) - 1
        band = key.replace("_cap", "").title() + " caps"
        span = f"{_money(low)} or more" if upper < 0 else f"{_money(low)} to {_money(limits[BANDS[upper]])}"
        return f"{band}: US common stocks with a market cap of {span}, largest first (TickStockPL)"
    if family == model.MARKET_LEADERS:
        size = key.removeprefix("top_").removesuffix("_stocks")
        return f"Market leaders: the {size} largest US common stocks by market cap (TickStockPL)"
    if family == model.COMPLETE_STOCKS:
        what = "every eligible US common stock" if key == model.ALL_STOCKS_KEY else \
            f"the {key.removeprefix('top_')} largest US common stocks"
        return f"Complete list: {what}, by market cap (TickStockPL)"
    if family == model.COMPLETE_ETFS:
        what = "every active ETF" if key == model.ALL_ETFS_KEY else f"the {key.removeprefix('top_')} largest ETFs"
        return f"Complete ETF list: {what}, by market cap or assets (TickStockPL)"
    if family == model.SECTOR_LEADERS:
        sector = key.removeprefix("top_10_").replace("_", " ").title()
        return f"Sector leaders: the 10 largest {sector} stocks by market cap (TickStockPL)"
    if family == model.INDUSTRY:
        stocks = entry.value.get("stocks") if isinstance(entry.value, dict) else None
        first = stocks[0] if isinstance(stocks, list) and stocks and isinstance(stocks[0], dict) else {}
        label = first.get("industry") or key.replace("_", " ").title()
        return f"Industry: the largest {label} stocks by market cap (TickStockPL)"
    if family == model.THEMES:
        theme = config.theme_names.get(key, key.title())
        return f"Theme {theme}: its configured tickers that are active common stocks (TickStockPL)"
    if family == model.ETF_CATEGORIES:
        return f"{name}: active ETFs of this category, by name (TickStockPL)"
    if family == model.COMBO:
        return "Stocks and ETFs: the largest stocks plus the essential ETFs (TickStockPL)"
    if family == model.IPOS:
        return f"Recent IPOs: stocks and ETFs listed within the last {config.ipo_days} days (TickStockPL)"
    return f"{entry.universe} (TickStockPL)"
