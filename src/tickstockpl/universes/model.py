"""What a universe is, which families exist, which mode builds which family.

A *universe* is one `cache_entries` row, identified by (type, name, key) within an
environment; its id in the change log, the membership history and events is "type:name:key".
A *family* is a kind of universe, built by one builder function and owned by the sync.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

# Family ids (one builder each, see universes/build.py).
MARKET_CAP = "market_cap"
MARKET_LEADERS = "market_leaders"
COMPLETE_STOCKS = "complete_stocks"
COMPLETE_ETFS = "complete_etfs"
COMBO = "combo"
STATS = "stats"
THEMES = "themes"
SECTOR_LEADERS = "sector_leaders"
INDUSTRY = "industry"
ETF_CATEGORIES = "etf_categories"
IPOS = "ipos"
# The rule universes (universes/rules/publish.py): built by the rule engine, not by universes/build.py, so
# not among ALL_FAMILIES; a full sync adds them when it can (sync/rules.py).
RULES = "rules"

ALL_FAMILIES = (
    MARKET_CAP, MARKET_LEADERS, COMPLETE_STOCKS, COMPLETE_ETFS, COMBO, STATS,
    THEMES, SECTOR_LEADERS, INDUSTRY, ETF_CATEGORIES, IPOS,
)

MODES = ("full", "market_cap", "themes", "ipos")

# Contract §6.1.
FAMILIES_BY_MODE: dict[str, frozenset[str]] = {
    "full": frozenset(ALL_FAMILIES),
    "market_cap": frozenset({MARKET_CAP, MARKET_LEADERS, COMPLETE_STOCKS, COMPLETE_ETFS, COMBO, STATS}),
    "themes": frozenset({THEMES, SECTOR_LEADERS, INDUSTRY, ETF_CATEGORIES}),
    "ipos": frozenset({IPOS}),
}

# cache_entries.type values the sync owns (contract §5); anything else is never touched.
STOCK_UNIVERSE = "stock_universe"
ETF_UNIVERSE = "etf_universe"
THEMES_TYPE = "themes"
COMBO_TYPE = "stock_etf_combo"
STATS_TYPE = "stock_stats"
OWNED_TYPES = (STOCK_UNIVERSE, ETF_UNIVERSE, THEMES_TYPE, COMBO_TYPE, STATS_TYPE)

# Fixed names and keys of universes (contract §5). AppV2 derives users' saved dropdown keys
# from (type, name, key): keep these strings stable.
MARKET_CAP_NAME = "market_cap"
MARKET_LEADERS_NAME = "market_leaders"
COMPLETE_NAME = "complete"  # in stock_universe and etf_universe
SECTOR_LEADERS_NAME = "sector_leaders"
INDUSTRY_NAME = "industry"
THEMES_NAME = "themes"
IPOS_NAME = "ipos"
RULES_NAME = "rules"  # stock_universe/rules/<definition key>
ALL_STOCKS_KEY = "all_stocks"
ALL_ETFS_KEY = "all_etfs"
THEME_LIST_KEY = "list"
COMBO_NAME = "stock_etf_test"
COMBO_KEY = "combo_test"
COMBO_DETAILED_KEY = "combo_test_detailed"
STATS_NAME = "universe"
STATS_KEY = "summary"
RECENT_IPOS_KEY = "recent_ipos"

_STOCK_UNIVERSE_NAMES = {
    MARKET_CAP_NAME: MARKET_CAP,
    MARKET_LEADERS_NAME: MARKET_LEADERS,
    COMPLETE_NAME: COMPLETE_STOCKS,
    SECTOR_LEADERS_NAME: SECTOR_LEADERS,
    INDUSTRY_NAME: INDUSTRY,
    THEMES_NAME: THEMES,
    IPOS_NAME: IPOS,
    RULES_NAME: RULES,
}

KEY_MAX = 100  # cache_entries.key / name are varchar(100)
TICKER_MAX = 20  # symbols.symbol is varchar(20) (contract §4.1)


@dataclass(frozen=True, slots=True)
class Entry:
    """One universe as the builders produce it: a row of cache_entries minus bookkeeping."""

    type: str
    name: str
    key: str
    value: Any  # JSON-compatible: dict / list / str / int / float (finite) / bool / None
    family: str

    @property
    def universe(self) -> str:
        return universe_id(self.type, self.name, self.key)


@dataclass(frozen=True, slots=True)
class Recorded:
    """A stored value PL wrote and did not read back: what its ledger row records of it (the members, in
    order, and the digest of the text PL sent; sync/encoding.py). The sync's read gives it in place of the
    value while the row is the one PL left; `members` and `member_count` answer for it as for the value."""

    members: tuple[str, ...]
    digest: str


def universe_id(type_: str, name: str, key: str) -> str:
    return f"{type_}:{name}:{key}"


def family_of(type_: str, name: str, key: str) -> str | None:
    """The family whose builder makes rows of this (type, name, key), or None (`dev_` rows, unknown
    names). It names a family; it does not make a row PL's: ownership is the ledger's
    (sync/ownership.py, contract §5.5), and AppV2 writes rows of these types too."""
    if key.startswith("dev_") or name.startswith("dev_"):
        return None
    if type_ == STOCK_UNIVERSE:
        return _STOCK_UNIVERSE_NAMES.get(name)
    if type_ == ETF_UNIVERSE:
        return COMPLETE_ETFS if name == COMPLETE_NAME else ETF_CATEGORIES
    if type_ == THEMES_TYPE:
        return THEMES
    if type_ == COMBO_TYPE:
        return COMBO
    if type_ == STATS_TYPE:
        return STATS
    return None


def members(value: Any) -> list[str]:
    """The symbols of a universe value, in order, whatever its shape (contract §5.1).

    Ticker array -> the array; StockObj/IndustryObj -> stocks[].ticker; EtfDetailObj ->
    etfs[].symbol; EtfCompleteObj -> etfs[].ticker; ComboObj -> stocks then etfs;
    StatsObj -> no members. Items that are not objects or have no non-empty text ticker
    (nor symbol) are left out. A `Recorded` value -> its recorded members.
    """
    if isinstance(value, Recorded):
        return list(value.members)
    if isinstance(value, list):
        return value[:] if _all_text(value) else [v for v in value if isinstance(v, str)]
    if not isinstance(value, dict):
        return []
    out: list[str] = []
    for field in ("stocks", "etfs"):
        items = value.get(field)
        if isinstance(items, list):
            out.extend(_item_tickers(items))
    return out


def _all_text(values: list) -> bool:
    """Whether every element is a str (C-speed: one pass of type())."""
    return not values or set(map(type, values)) == _STR_ONLY


_STR_ONLY = {str}


def _item_tickers(items: list) -> list[str]:
    """`ticker` (else `symbol`) of each item, keeping only non-empty text. The usual case, where
    every item is an object with a non-empty text ticker, takes one C-speed pass (measured: a
    third of the time of the item-by-item loop over the 2.6 MB of a 12,000-symbol market)."""
    for key in ("ticker", "symbol"):
        try:
            found = list(map(_GETTERS[key], items))
        except (KeyError, TypeError, IndexError):
            continue
        if _all_text(found) and "" not in found and (key == "ticker" or not any(map(_HAS_TICKER, items))):
            return found  # (by symbol only when no item has a ticker key, which would come first)
    return [
        ticker
        for item in items
        if isinstance(item, dict) and isinstance(ticker := item.get("ticker") or item.get("symbol"), str)
    ]


_GETTERS = {key: operator.itemgetter(key) for key in ("ticker", "symbol")}
_HAS_TICKER = operator.methodcaller("__contains__", "ticker")


def member_count(value: Any) -> int:
    """How many members `members(value)` would return (cheap for well-formed values)."""
    if isinstance(value, Recorded):
        return len(value.members)
    if isinstance(value, list):
        return len(value) if _all_text(value) else sum(1 for v in value if isinstance(v, str))
    if not isinstance(value, dict):
        return 0
    return sum(len(items) for field in ("stocks", "etfs") if isinstance(items := value.get(field), list))
