"""One builder per universe family (contract §5): `(snapshot, config, warnings) -> [Entry]`.

Each builder accepts a `Snapshot` or a `Market` (the snapshot prepared once, see `prepare`);
`build()` prepares once and passes the Market to every builder, so the securities are sorted
once and every top-N list is a prefix of the one ordering of eligible stocks:

    eligible stocks   active CS with a finite, positive cap; cap DESC, symbol ASC
    active ETFs       by symbol (categories, combo) and by size DESC, symbol ASC (complete)

Warnings (merged spellings, skipped keys) are appended to `warnings`; nothing here raises for
odd data. Decisions the contract leaves open:
- sectors and industries are grouped by slug, so spellings with one slug are merged (warned);
- an industry's "sector" is the most common known sector of all its eligible stocks (ties:
  alphabetical); "Unknown" only when none of them has a sector;
- themes and ETF categories with no member are written as [] so AppV2's dropdowns keep them;
- recent IPOs: as_of - ipo_days <= list_date <= as_of, newest first, ties by symbol;
- an entry whose (type, name, key) would be read back by `model.family_of` as another family,
  or not at all (e.g. an industry slug starting with "dev_"), is skipped with a warning, so the
  sync never writes a row it could not later update or delete.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections import Counter
from functools import cached_property
from typing import Callable, Iterable, Sequence

from tickstockpl.market.snapshot import Security, Snapshot
from tickstockpl.universes import model, naming, shapes
from tickstockpl.universes.config import EtfCategory, UniverseConfig
from tickstockpl.universes.model import Entry


class Market:
    """A snapshot prepared for the builders: deduplicated, classified and sorted once."""

    def __init__(self, snapshot: Snapshot, warnings: list[str]):
        self.as_of = snapshot.as_of
        self.session = snapshot.latest_session or snapshot.as_of
        unique = _unique_by_symbol(snapshot.securities, warnings)
        # By symbol, then (stable sorts with plain keys: tuple keys cost three times as much)
        # eligible stocks by cap DESC, so equal caps stay in symbol order.
        self.securities: tuple[Security, ...] = tuple(sorted(unique.values(), key=_symbol))
        valid_cap = shapes.valid_cap
        stocks: list[Security] = []
        caps: list[float] = []
        for security in self.securities:
            if security.is_eligible_stock:
                cap = valid_cap(security.market_cap)
                if cap is not None:
                    stocks.append(security)
                    caps.append(cap)
        order = sorted(range(len(stocks)), key=caps.__getitem__, reverse=True)  # reverse keeps ties in order
        self.eligible: tuple[Security, ...] = tuple([stocks[i] for i in order])
        self._caps = [caps[i] for i in order]  # descending, aligned with `eligible`
        self._neg_caps = [-cap for cap in self._caps]  # ascending: bisect finds band edges
        self.etfs: tuple[Security, ...] = tuple(s for s in self.securities if s.is_etf)

    @cached_property
    def stock_symbol_of(self) -> dict[str, str]:
        """Upper-cased ticker -> the stored symbol of that active CS (config tickers are upper case)."""
        symbols = sorted(s.symbol for s in self.securities if s.is_stock)
        return {symbol.strip().upper(): symbol for symbol in reversed(symbols)}  # reversed: the first wins

    @cached_property
    def etf_position_of(self) -> dict[str, int]:
        """Upper-cased ticker -> position of that active ETF in `etfs`."""
        return {etf.symbol.strip().upper(): p for p, etf in reversed(list(enumerate(self.etfs)))}  # first wins

    @cached_property
    def rows(self) -> tuple[tuple, ...]:
        """Stock rows (shapes.stock_fields) aligned with `eligible`."""
        return tuple(map(shapes.stock_fields, self.eligible, self._caps))

    @cached_property
    def etf_rows(self) -> tuple[tuple, ...]:
        """ETF rows (shapes.etf_fields) aligned with `etfs`."""
        return tuple(map(shapes.etf_fields, self.etfs))

    def groups(self, label_of: Callable[[Security], str | None], what: str, warnings: list[str]) -> dict[str, list[int]]:
        """slug(label) -> positions in `eligible` (cap order) of the stocks with that known label.

        Labels with one slug are merged (with a warning naming the spellings); missing, blank and
        "Unknown" labels are left out.
        """
        by_label: dict[str | None, list[int]] = {}
        for position, stock in enumerate(self.eligible):
            by_label.setdefault(label_of(stock), []).append(position)
        merged: dict[str, list[int]] = {}
        labels: dict[str, list[str]] = {}
        for label, positions in by_label.items():
            if naming.is_unknown(label):
                continue
            key = naming.slug(label)
            merged.setdefault(key, []).extend(positions)
            labels.setdefault(key, []).append(label)
        for key in sorted(labels):
            if len(labels[key]) > 1:  # several raw labels, one slug: back into cap order
                merged[key].sort()
                spellings = sorted({label.strip() for label in labels[key]})
                if len(spellings) > 1:
                    names = ", ".join(repr(s) for s in spellings)
                    warnings.append(f"merged {what} spellings {names} (one key: {key})")
        return merged

    def at_or_above(self, cap: float) -> int:
        """How many eligible stocks have a cap >= `cap` (they are the first ones)."""
        return bisect_right(self._neg_caps, -cap)

    @cached_property
    def etf_rows_by_size(self) -> tuple[tuple, ...]:
        """ETF rows by COALESCE(market_cap, aum_millions*1e6, 0) DESC, symbol ASC."""
        return tuple(sorted(self.etf_rows, key=lambda row: (-row[-1], row[0])))

    @cached_property
    def etf_names(self) -> EtfNameIndex:
        """The word index of active ETF names (built on first use)."""
        return EtfNameIndex(self.etfs)


class EtfNameIndex:
    """Whole-word phrase matching over ETF names (naming.words), with one inverted index."""

    def __init__(self, etfs: Sequence[Security]):
        self.etfs = tuple(etfs)
        self._padded: list[str] = []
        self._postings: dict[str, set[int]] = {}
        self._cache: dict[str, frozenset[int]] = {}
        for index, etf in enumerate(self.etfs):
            words = naming.words(etf.name) if isinstance(etf.name, str) else ()
            self._padded.append(f" {' '.join(words)} ")
            for word in set(words):
                self._postings.setdefault(word, set()).add(index)

    def matching(self, phrase: str) -> frozenset[int]:
        """Indexes of the ETFs whose name contains the words of `phrase` consecutively."""
        if phrase not in self._cache:
            words = naming.words(phrase)
            candidates = self._postings.get(words[0], set()) if words else set()
            if len(words) > 1:
                needle = f" {' '.join(words)} "
                candidates = {i for i in candidates if needle in self._padded[i]}
            self._cache[phrase] = frozenset(candidates)
        return self._cache[phrase]

    def members(self, category: EtfCategory) -> list[int]:
        """Positions (in symbol order) of the category's ETFs: any include phrase (all when
        there is none) and no exclude phrase."""
        chosen = set(range(len(self.etfs))) if not category.include else set()
        for phrase in category.include:
            chosen |= self.matching(phrase)
        for phrase in category.exclude:
            chosen -= self.matching(phrase)
        return sorted(chosen)


def prepare(source: Snapshot | Market, warnings: list[str]) -> Market:
    """`source` itself when already prepared, else a Market built from the snapshot."""
    return source if isinstance(source, Market) else Market(source, warnings)


# --- the families ---------------------------------------------------------------------------

def market_cap(source: Snapshot | Market, config: UniverseConfig, warnings: list[str]) -> list[Entry]:
    """stock_universe/market_cap/<band>: StockObj of each band [threshold, next larger threshold)."""
    market = prepare(source, warnings)
    out: list[Entry] = []
    start = 0
    for band, low in sorted(config.market_cap_thresholds.items(), key=lambda item: -item[1]):
        end = market.at_or_above(low)
        _add(out, warnings, model.STOCK_UNIVERSE, model.MARKET_CAP_NAME, band,
             shapes.stock_obj(market.rows[start:end]), model.MARKET_CAP)
        start = end
    return out


def market_leaders(source: Snapshot | Market, config: UniverseConfig, warnings: list[str]) -> list[Entry]:
    """stock_universe/market_leaders/<key>: StockObj of the N largest eligible stocks."""
    market = prepare(source, warnings)
    out: list[Entry] = []
    for key, size in config.leader_sizes.items():
        _add(out, warnings, model.STOCK_UNIVERSE, model.MARKET_LEADERS_NAME, key,
             shapes.stock_obj(market.rows[:size]), model.MARKET_LEADERS)
    return out


def complete_stocks(source: Snapshot | Market, config: UniverseConfig, warnings: list[str]) -> list[Entry]:
    """stock_universe/complete/top_<limit> (StockObj) and .../all_stocks (ticker array)."""
    market = prepare(source, warnings)
    limit = config.stocks_full_metadata_limit
    out: list[Entry] = []
    _add(out, warnings, model.STOCK_UNIVERSE, model.COMPLETE_NAME, naming.top_key(limit),
         shapes.stock_obj(market.rows[:limit]), model.COMPLETE_STOCKS)
    _add(out, warnings, model.STOCK_UNIVERSE, model.COMPLETE_NAME, model.ALL_STOCKS_KEY,
         [s.symbol for s in market.eligible], model.COMPLETE_STOCKS)
    return out


def complete_etfs(source: Snapshot | Market, config: UniverseConfig, warnings: list[str]) -> list[Entry]:
    """etf_universe/complete/top_<limit> (EtfCompleteObj) and .../all_etfs (ticker array), by size."""
    market = prepare(source, warnings)
    limit = config.etfs_full_metadata_limit
    ranked = market.etf_rows_by_size
    out: list[Entry] = []
    _add(out, warnings, model.ETF_UNIVERSE, model.COMPLETE_NAME, naming.top_key(limit),
         shapes.etf_complete_obj(ranked[:limit]), model.COMPLETE_ETFS)
    _add(out, warnings, model.ETF_UNIVERSE, model.COMPLETE_NAME, model.ALL_ETFS_KEY,
         [row[0] for row in ranked], model.COMPLETE_ETFS)
    return out


def combo(source: Snapshot | Market, config: UniverseConfig, warnings: list[str]) -> list[Entry]:
    """stock_etf_combo/stock_etf_test/combo_test (array) and combo_test_detailed (ComboObj); always both."""
    market = prepare(source, warnings)
    count = config.combo_stock_count
    stocks = market.eligible[:count]
    found = {market.etf_position_of[t] for t in config.essential_etfs if t in market.etf_position_of}
    etf_rows = [market.etf_rows[p] for p in sorted(found)]
    description = f"Top {config.combo_stock_count} stocks by market cap plus essential ETFs"
    out: list[Entry] = []
    _add(out, warnings, model.COMBO_TYPE, model.COMBO_NAME, model.COMBO_KEY,
         [*(s.symbol for s in stocks), *(row[0] for row in etf_rows)], model.COMBO)
    _add(out, warnings, model.COMBO_TYPE, model.COMBO_NAME, model.COMBO_DETAILED_KEY,
         shapes.combo_obj(market.rows[:count], etf_rows, description), model.COMBO)
    return out


def stats(source: Snapshot | Market, config: UniverseConfig, warnings: list[str]) -> list[Entry]:
    """stock_stats/universe/summary: StatsObj of the eligible stocks as of the latest session."""
    market = prepare(source, warnings)
    out: list[Entry] = []
    _add(out, warnings, model.STATS_TYPE, model.STATS_NAME, model.STATS_KEY,
         shapes.stats_obj(market.rows, market.session), model.STATS)
    return out


def themes(source: Snapshot | Market, config: UniverseConfig, warnings: list[str]) -> list[Entry]:
    """themes/<display name>/list and stock_universe/themes/<key>: configured active CS by symbol."""
    market = prepare(source, warnings)
    out: list[Entry] = []
    for key in sorted(config.themes):
        symbols = sorted({market.stock_symbol_of[t] for t in config.themes[key] if t in market.stock_symbol_of})
        name = naming.theme_display_name(key, config.theme_names)
        _add(out, warnings, model.THEMES_TYPE, name, model.THEME_LIST_KEY, list(symbols), model.THEMES)
        _add(out, warnings, model.STOCK_UNIVERSE, model.THEMES_NAME, key, list(symbols), model.THEMES)
    return out


def sector_leaders(source: Snapshot | Market, config: UniverseConfig, warnings: list[str]) -> list[Entry]:
    """stock_universe/sector_leaders/top_<N>_<slug(sector)>: the N largest of each known sector."""
    market = prepare(source, warnings)
    size = config.sector_leader_size
    out: list[Entry] = []
    for sector_slug, positions in market.groups(_sector, "sector", warnings).items():
        _add(out, warnings, model.STOCK_UNIVERSE, model.SECTOR_LEADERS_NAME, naming.sector_leaders_key(sector_slug, size),
             shapes.stock_obj([market.rows[p] for p in positions[:size]]), model.SECTOR_LEADERS)
    return out


def industry(source: Snapshot | Market, config: UniverseConfig, warnings: list[str]) -> list[Entry]:
    """stock_universe/industry/<slug(industry)>: IndustryObj of the largest industries' largest stocks."""
    market = prepare(source, warnings)
    groups = market.groups(_industry, "industry", warnings)
    qualified = [(slug, positions) for slug, positions in groups.items() if len(positions) >= config.industry_min_stocks]
    qualified.sort(key=lambda item: (-len(item[1]), item[0]))
    out: list[Entry] = []
    for industry_slug, positions in qualified[: config.industry_count]:
        rows = [market.rows[p] for p in positions[: config.industry_size]]
        sector = _majority_sector(market.eligible[p] for p in positions)
        _add(out, warnings, model.STOCK_UNIVERSE, model.INDUSTRY_NAME, industry_slug,
             shapes.industry_obj(rows, sector), model.INDUSTRY)
    return out


def etf_categories(source: Snapshot | Market, config: UniverseConfig, warnings: list[str]) -> list[Entry]:
    """etf_universe/<display name>/<key> (array) and <key>_detailed (EtfDetailObj) per category."""
    market = prepare(source, warnings)
    index = market.etf_names
    out: list[Entry] = []
    for category in config.etf_categories:
        rows = [market.etf_rows[p] for p in index.members(category)]
        _add(out, warnings, model.ETF_UNIVERSE, category.display_name, category.key,
             [row[0] for row in rows], model.ETF_CATEGORIES)
        _add(out, warnings, model.ETF_UNIVERSE, category.display_name, naming.detailed_key(category.key),
             shapes.etf_detail_obj(rows), model.ETF_CATEGORIES)
    return out


def ipos(source: Snapshot | Market, config: UniverseConfig, warnings: list[str]) -> list[Entry]:
    """stock_universe/ipos/recent_ipos: StockObj of active CS and ETFs listed in the last ipo_days days."""
    market = prepare(source, warnings)
    first = market.as_of - dt.timedelta(days=config.ipo_days)
    recent = []
    for security in market.securities:
        listed = security.list_date
        if listed.__class__ is not dt.date:  # the loader's case is a plain date; anything else is converted
            listed = _as_date(listed)
        if listed is not None and first <= listed <= market.as_of and (security.is_stock or security.is_etf):
            recent.append((-listed.toordinal(), security.symbol, security))
    recent.sort(key=lambda item: item[:2])
    out: list[Entry] = []
    _add(out, warnings, model.STOCK_UNIVERSE, model.IPOS_NAME, model.RECENT_IPOS_KEY,
         shapes.stock_obj([shapes.stock_fields(item[2]) for item in recent]), model.IPOS)
    return out


Builder = Callable[[Snapshot | Market, UniverseConfig, list[str]], list[Entry]]

BUILDERS: dict[str, Builder] = {
    model.MARKET_CAP: market_cap,
    model.MARKET_LEADERS: market_leaders,
    model.COMPLETE_STOCKS: complete_stocks,
    model.COMPLETE_ETFS: complete_etfs,
    model.COMBO: combo,
    model.STATS: stats,
    model.THEMES: themes,
    model.SECTOR_LEADERS: sector_leaders,
    model.INDUSTRY: industry,
    model.ETF_CATEGORIES: etf_categories,
    model.IPOS: ipos,
}


# --- helpers --------------------------------------------------------------------------------

def _add(out: list[Entry], warnings: list[str], type_: str, name: str, key: str, value, family: str) -> None:
    """Append Entry(type_, name, key, value, family) unless its name/key is unusable (then warn)."""
    problem = naming.problem(name, key)
    if problem is None and model.family_of(type_, name, key) != family:
        problem = f"{type_}/{name}/{key} would not be recognised as a {family} universe"
    if problem is not None:
        warnings.append(f"skipped a {family} universe: {problem}")
        return
    out.append(Entry(type_, name, key, value, family))


def _unique_by_symbol(securities: Sequence[Security], warnings: list[str]) -> dict[str, Security]:
    """Symbol -> security, the first occurrence winning; empty symbols are dropped. Warns of both."""
    ordered = securities[::-1]  # reversed: the first occurrence is assigned last
    unique = dict(zip(map(_symbol, ordered), ordered))
    if len(unique) != len(securities):
        for symbol, count in sorted(Counter(s.symbol for s in securities).items(), key=lambda item: str(item[0])):
            if count > 1:
                warnings.append(f"symbol {symbol!r} appears {count} times in the snapshot; kept the first")
    if set(map(type, unique)) == {str} and "" not in unique and not any(map(str.isspace, unique)):
        return unique  # the usual case, checked at C speed
    for symbol in [symbol for symbol in unique if not isinstance(symbol, str) or not symbol.strip()]:
        warnings.append(f"skipped a security with an empty symbol {symbol!r}")
        del unique[symbol]
    return unique


def _symbol(security: Security) -> str:
    return security.symbol


def _sector(stock: Security) -> str | None:
    return stock.sector


def _industry(stock: Security) -> str | None:
    return stock.industry


def _majority_sector(stocks: Iterable[Security]) -> str:
    """The most common known sector of `stocks` (ties: alphabetical), else "Unknown"."""
    counts: dict[str, int] = {}
    for raw, count in Counter(stock.sector for stock in stocks).items():
        if not naming.is_unknown(raw):
            counts[raw.strip()] = counts.get(raw.strip(), 0) + count
    if not counts:
        return naming.UNKNOWN
    return min(counts, key=lambda label: (-counts[label], label))


def _as_date(value) -> dt.date | None:
    """A list_date as a date (datetimes are cut to their date); None when unusable."""
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else None
