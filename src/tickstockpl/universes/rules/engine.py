"""The rule engine (pure): one session of one rule universe.

    run(definition, previous, stats, session, calendar) -> RunResult
    run_all(definitions, previous_by_key, stats, session, calendar) -> {key: RunResult}   (the same results,
        sharing the candidates, the screens and the rankings between definitions: see `Market`)

`previous` maps each member of the previous session to its entry date; `stats` holds the session's
SymbolStats (one per symbol; a symbol without one has no data that day: delisted or without bars);
`calendar` is a SessionCalendar holding `session`. The order of a run:

1. Maintenance, every session: a member without statistics, inactive (when the definition asks for
   active candidates), or no longer of a candidate type or exchange leaves at once.
2. Ranking: the candidates (type, exchange, active) that pass the *stay* screens and have a positive
   metric, ordered by the metric (largest first, ties by symbol). Rank 1 is the largest; a symbol's
   percentile is the cumulative share of the metric's total down to and including it.
3. On a reconstitution day: a member stays when it passes the stay screens and lies within the selection
   widened by the band (a member inside the band but outside the selection is "kept by band"); a member
   of fewer than `min_stay_sessions` sessions stays whatever its screens and rank ("kept by minimum
   stay"). A non-member enters when it is seasoned (`min_ipo_sessions`), passes the entry screens and lies
   within the selection. Then the sector cap keeps, per sector (a missing sector counts as one sector),
   the members protected by the minimum stay first and then the best-ranked, up to floor(cap × size).
4. Between reconstitution days nothing else changes, except that with ipo_policy = "fast_entry" a symbol
   whose IPO age lies in [min_ipo_sessions, min_ipo_sessions + ipo_window_sessions) enters when it meets
   every entry rule (selection and sector cap included) that session.

Every change and every member kept by band or by minimum stay gets a Reason whose text carries the
numbers (e.g. "entered: rank 412 ≤ 450 on reconstitution day 2026-12-01"); `RunResult.explain(symbol)`
says why a symbol is in or out; `RunResult.churn` is the run's turnover.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Iterable, Mapping

from tickstockpl.universes.rules.definition import Candidates, RuleDefinition, Screens
from tickstockpl.universes.rules.schedule import SessionCalendar
from tickstockpl.universes.rules.stats import StatsColumns, SymbolStats

if TYPE_CHECKING:
    import numpy as np  # imported where used: a sync that skips (unchanged inputs) never pays for it

_INF = math.inf

NO_SECTOR = "(no sector)"

ENTERED, LEFT, KEPT_BY_BAND, KEPT_BY_MIN_STAY = "entered", "left", "kept_by_band", "kept_by_min_stay"


@dataclass(frozen=True, slots=True)
class Reason:
    """Why `symbol` entered, left or was kept; `rule` names the rule that fired (a field path of the
    definition, e.g. "stay.median_dollar_volume", "selection", "band", "sector_cap", or "missing")."""

    symbol: str
    action: str
    rule: str
    text: str


@dataclass(frozen=True, slots=True)
class Check:
    rule: str
    ok: bool
    text: str


@dataclass(frozen=True, slots=True)
class Churn:
    """Turnover of one run: (entered + left) / (members before + members after); 0 when both are 0."""

    before: int
    after: int
    entered: int
    left: int

    @property
    def turnover(self) -> float:
        total = self.before + self.after
        return (self.entered + self.left) / total if total else 0.0

    def to_dict(self) -> dict:
        return {"before": self.before, "after": self.after, "entered": self.entered, "left": self.left,
                "turnover": round(self.turnover, 6)}


@dataclass(frozen=True, slots=True)
class Explanation:
    symbol: str
    member: bool
    summary: str
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class RunResult:
    definition: RuleDefinition
    session: dt.date
    reconstitution: bool
    members: Mapping[str, dt.date]  # symbol -> entry date, in rank order (unranked members last)
    changes: tuple[Reason, ...]  # every entry and exit
    kept: tuple[Reason, ...]  # every member kept by band or by minimum stay
    churn: Churn
    ranks: Mapping[str, int]
    percentiles: Mapping[str, float]
    previous: Mapping[str, dt.date] = field(repr=False)
    stats: Mapping[str, SymbolStats] = field(repr=False)
    calendar: SessionCalendar = field(repr=False)

    def reason(self, symbol: str) -> Reason | None:
        for reason in self.changes + self.kept:
            if reason.symbol == symbol:
                return reason
        return None

    def explain(self, symbol: str) -> Explanation:
        """Why `symbol` is in or out of the universe after this run, with every rule's numbers."""
        return _explain(self, symbol)


def run(definition: RuleDefinition, previous: Mapping[str, dt.date], stats: Iterable[SymbolStats] | Mapping[str, SymbolStats],
        session: dt.date, calendar: SessionCalendar) -> RunResult:
    """One session of `definition` (see the module docstring)."""
    return _run(definition, previous, stats if isinstance(stats, Market) else Market(stats), session, calendar)


def run_all(definitions: Iterable[RuleDefinition] | Mapping[str, RuleDefinition],
            previous: Mapping[str, Mapping[str, dt.date]], stats: Iterable[SymbolStats] | Mapping[str, SymbolStats],
            session: dt.date, calendar: SessionCalendar) -> dict[str, RunResult]:
    """One session of every definition given (filter `enabled` first), sharing what they have in common:
    key -> the RunResult `run(definition, previous.get(key, {}), stats, session, calendar)` gives.

    The statistics are wrapped once (`Market`), and the candidates of each candidate rule, the symbols
    passing each set of screens and the ranking of each (candidates, stay screens, metric) are computed
    once for all: the eight built-ins need three rankings and two sets of screens, not eight of each."""
    if isinstance(definitions, Mapping):
        definitions = definitions.values()
    market = stats if isinstance(stats, Market) else Market(stats)
    return {d.key: _run(d, previous.get(d.key, {}), market, session, calendar) for d in definitions}


@dataclass(frozen=True, slots=True)
class Ranking:
    """The ranked candidates of one (candidates, stay screens, metric): `order` best first, their ranks
    (1 = the largest) and percentiles (the cumulative share of the metric's total down to each);
    `index`/`cumulative`: the same order as positions in the market's statistics, and the percentiles."""

    order: tuple[str, ...]
    ranks: dict[str, int]
    percentiles: dict[str, float]
    index: np.ndarray = field(repr=False, compare=False)
    cumulative: np.ndarray = field(repr=False, compare=False)


class _RowStats(Mapping):
    """symbol -> SymbolStats of a StatsColumns, each built on first use and kept (read-only)."""

    __slots__ = ("_columns", "_position", "_built")

    def __init__(self, columns: StatsColumns, position: dict[str, int]):
        self._columns, self._position, self._built = columns, position, {}

    def __getitem__(self, symbol: str) -> SymbolStats:
        found = self._built.get(symbol)
        if found is None:
            found = self._built[symbol] = self._columns.stats(self._position[symbol])
        return found

    def __contains__(self, symbol) -> bool:
        return symbol in self._position

    def __iter__(self):
        return iter(self._columns.symbols)

    def __len__(self) -> int:
        return len(self._columns.symbols)


class Market:
    """One session's statistics and what definitions share, each computed on first use and kept: the
    candidates of a candidate rule (with or without IPO seasoning), the symbols passing a set of screens, a
    ranking. Given SymbolStats (symbol -> SymbolStats, or an iterable) or a StatsColumns (the sync's and the
    replay's form); either way `stats` maps symbol -> SymbolStats (read-only; from columns each is built
    when first read) and the screens and rankings run on columns with numpy. Every answer equals the
    per-symbol rule functions' (`_is_candidate`, `_passes`, the ranking's order) on each symbol:
    tests/universes/rules/test_properties.py checks it on values at every edge."""

    __slots__ = ("stats", "columns", "_position", "_tiebreak", "_codes", "_masks", "_sets", "_rankings")

    def __init__(self, stats: Iterable[SymbolStats] | Mapping[str, SymbolStats] | StatsColumns):
        if isinstance(stats, StatsColumns):
            self.columns = stats
            self._position = {symbol: i for i, symbol in enumerate(stats.symbols)}
            self.stats: Mapping[str, SymbolStats] = _RowStats(stats, self._position)
        else:
            by_symbol = stats if isinstance(stats, Mapping) else {s.symbol: s for s in stats}
            self.stats = MappingProxyType(dict(by_symbol))
            self.columns = StatsColumns.of_stats(self.stats)
            self._position = {symbol: i for i, symbol in enumerate(self.stats)}
        self._tiebreak: np.ndarray | None = None
        self._codes: dict[str, tuple[np.ndarray, list]] = {}
        self._masks: dict[tuple, np.ndarray] = {}
        self._sets: dict[tuple, frozenset[str]] = {}
        self._rankings: dict[tuple, Ranking] = {}

    def position(self, symbol: str) -> int:
        """The symbol's place in the statistics' order (entrants are listed in it)."""
        return self._position[symbol]

    def sector(self, symbol: str) -> str | None:
        return self.columns.sector[self._position[symbol]]

    def candidates(self, candidates: Candidates, seasoning: bool) -> frozenset[str]:
        return self._set(_candidates_key(candidates, seasoning))

    def passing(self, screens: Screens) -> frozenset[str]:
        return self._set(("screens", screens))

    def candidate_mask(self, candidates: Candidates, seasoning: bool) -> np.ndarray:
        """`candidates` as a boolean array by position in the statistics (read-only: it is kept)."""
        return self._mask(_candidates_key(candidates, seasoning))

    def passing_mask(self, screens: Screens) -> np.ndarray:
        """`passing` as a boolean array by position in the statistics (read-only: it is kept)."""
        return self._mask(("screens", screens))

    def ranking(self, definition: RuleDefinition) -> Ranking:
        key = (definition.candidates, definition.stay, definition.rank)
        found = self._rankings.get(key)
        if found is None:
            found = self._rankings[key] = self._rank(definition)
        return found

    # --- by column -------------------------------------------------------------------------------

    def _set(self, key: tuple) -> frozenset[str]:
        found = self._sets.get(key)
        if found is None:
            found = self._sets[key] = frozenset(itertools.compress(self.columns.symbols, self._mask(key).tolist()))
        return found

    def _mask(self, key: tuple) -> np.ndarray:
        """The symbols (by position) a candidate rule admits, key ("candidates", rule, seasoned), or that
        pass a set of screens, key ("screens", screens): `_is_candidate` / `_passes` by column."""
        import numpy as np

        found = self._masks.get(key)
        if found is not None:
            return found
        cols = self.columns
        if key[0] == "candidates":
            c, seasoned = key[1], key[2]
            if seasoned:
                found = self.candidate_mask(c, False) & (cols.ipo_sessions >= c.min_ipo_sessions)
            else:
                found = self._category("type", c.types)
                if c.exchanges:
                    found &= self._category("exchange", c.exchanges)
                if c.active:
                    found &= cols.active
        else:
            screens: Screens = key[1]
            found = np.ones(len(cols), dtype=bool)
            for window, values in ((screens.median_dollar_volume, cols.median_dollar_volume),
                                   (screens.mean_dollar_volume, cols.mean_dollar_volume)):
                if window is not None:
                    found &= _at_least(values.get(window.sessions), window.minimum, len(cols))
            if screens.min_price is not None:
                found &= _at_least(cols.price, screens.min_price, len(cols))
            if screens.coverage is not None:
                have = cols.coverage.get(screens.coverage.sessions)  # a window not read: 0 sessions, as .get(n, 0)
                if have is None:
                    have = np.zeros(len(cols), dtype=np.int64)
                found &= have >= screens.coverage.min_sessions
            if screens.recent_sessions is not None:
                found &= cols.streak >= screens.recent_sessions
        self._masks[key] = found
        return found

    def _category(self, column: str, wanted) -> np.ndarray:
        """Whether each symbol's `column` (type, exchange) is `in wanted`, deciding each distinct value once."""
        import numpy as np

        coded = self._codes.get(column)
        if coded is None:
            index: dict = {}
            values = getattr(self.columns, column)
            codes = np.fromiter((index.setdefault(v, len(index)) for v in values), dtype=np.int64, count=len(values))
            coded = self._codes[column] = (codes, list(index))
        codes, distinct = coded
        return np.array([v in wanted for v in distinct], dtype=bool)[codes] if distinct else np.zeros(0, dtype=bool)

    def _rank(self, definition: RuleDefinition) -> Ranking:
        import numpy as np

        metric, window = definition.rank.metric, definition.rank.sessions
        cols = self.columns
        eligible = self.candidate_mask(definition.candidates, False) & self.passing_mask(definition.stay)
        values = cols.market_cap if metric == "market_cap" else getattr(cols, metric).get(window)
        if values is None:
            values = np.full(len(cols), np.nan)
        with np.errstate(invalid="ignore"):
            index = np.flatnonzero(eligible & (values > 0.0) & (values < _INF))
        if self._tiebreak is None:  # each symbol's place in symbol order: ties of the metric go by symbol
            self._tiebreak = np.empty(len(cols), dtype=np.int64)
            self._tiebreak[sorted(range(len(cols)), key=cols.symbols.__getitem__)] = np.arange(len(cols))
        index = index[np.lexsort((self._tiebreak[index], -values[index]))]  # largest first, then by symbol
        ranked = values[index]
        total = math.fsum(ranked.tolist())
        symbols = cols.symbols
        order = tuple([symbols[i] for i in index.tolist()])
        ranks = dict(zip(order, range(1, len(order) + 1)))
        if total > 0:  # the running sum added in rank order (add.accumulate adds one by one, left to right)
            cumulative = np.minimum(100.0, np.add.accumulate(ranked) / total * 100.0)
        else:
            cumulative = np.full(len(order), 100.0)
        return Ranking(order, ranks, dict(zip(order, cumulative.tolist())), index, cumulative)


def _candidates_key(candidates: Candidates, seasoning: bool) -> tuple:
    """The key of a candidate rule's mask: seasoning counts only where the rule asks for an IPO age."""
    return ("candidates", candidates, seasoning and candidates.min_ipo_sessions > 0)


def _at_least(values: np.ndarray | None, minimum, size: int) -> np.ndarray:
    """`v >= minimum` and finite for each value (NaN, a missing column: no)."""
    import numpy as np

    if values is None:
        return np.zeros(size, dtype=bool)
    return (values >= minimum) & (values != _INF)


def _run(definition: RuleDefinition, previous: Mapping[str, dt.date], market: Market, session: dt.date,
         calendar: SessionCalendar) -> RunResult:
    by_symbol = market.stats
    previous = MappingProxyType(dict(previous))
    recon = calendar.is_reconstitution(session, definition.reconstitution)
    ranking = market.ranking(definition)
    ranks, pcts = ranking.ranks, ranking.percentiles
    candidates = market.candidates(definition.candidates, False)
    min_stay = definition.min_stay_sessions
    changes: list[Reason] = []
    kept: list[Reason] = []
    day = session.isoformat()

    # 1. maintenance
    staying: dict[str, dt.date] = {}
    for symbol, entered in previous.items():
        if symbol in candidates:
            staying[symbol] = entered
            continue
        failed = _maintenance_failure(definition, by_symbol.get(symbol), symbol, day)
        if failed:
            changes.append(Reason(symbol, LEFT, failed.rule, f"left: {failed.text}"))
        else:
            staying[symbol] = entered

    protected: set[str] = set()
    entrants: dict[str, Reason] = {}
    cap_exempt = False
    if recon:
        # 3. members: stay screens and the banded selection, unless protected by the minimum stay
        stay_pass = market.passing(definition.stay)
        for symbol in list(staying):
            rank, pct = ranks.get(symbol), pcts.get(symbol)
            served = _sessions_served(calendar, staying[symbol], session) if min_stay else 0
            if symbol in stay_pass and _in_selection(definition, rank, pct, member=False):
                if served < min_stay:
                    protected.add(symbol)  # passes anyway; counted first under the sector cap
                continue  # the common case: no text to build
            s = by_symbol[symbol]
            failing = [c for c in _screen_checks(definition.stay, s, "stay") if not c.ok]
            sel = _selection_check(definition, rank, pct, member=True)
            if failing or not sel.ok:
                if served < min_stay:
                    protected.add(symbol)
                    why = (failing[0] if failing else sel).text
                    kept.append(Reason(symbol, KEPT_BY_MIN_STAY, "min_stay_sessions",
                                       f"kept by minimum stay: member for {served} of {min_stay}"
                                       f" sessions (otherwise: {why})"))
                    continue
                fired = failing[0] if failing else sel
                changes.append(Reason(symbol, LEFT, fired.rule, f"left: {fired.text} on reconstitution day {day}"))
                del staying[symbol]
            else:  # passes the screens and the band, not the selection itself
                kept.append(Reason(symbol, KEPT_BY_BAND, "band", f"kept by band: {sel.text}"))
                if served < min_stay:
                    protected.add(symbol)
        # non-members: seasoning, entry screens, selection
        for symbol in _entry_candidates(definition, market, ranking, previous):
            ok, text = _entry_ok(definition, by_symbol, symbol, ranks.get(symbol), pcts.get(symbol))
            if ok:
                entrants[symbol] = Reason(symbol, ENTERED, "selection", f"entered: {text} on reconstitution day {day}")
    elif definition.ipo_policy == "fast_entry":
        low = definition.candidates.min_ipo_sessions
        high = low + definition.ipo_window_sessions
        for symbol in _entry_candidates(definition, market, ranking, previous):
            s = by_symbol[symbol]
            if s.ipo_sessions is None or not (low <= s.ipo_sessions < high):
                continue
            ok, text = _entry_ok(definition, by_symbol, symbol, ranks.get(symbol), pcts.get(symbol))
            if ok:
                entrants[symbol] = Reason(symbol, ENTERED, "ipo_policy",
                                          f"entered: IPO fast entry at age {s.ipo_sessions} sessions, {text} on {day}")
    else:
        cap_exempt = True  # nothing can enter: the cap has nothing to decide

    # the sector cap, over members kept and entrants together
    limit = definition.sector_cap_count()
    if limit is not None and not cap_exempt:
        def order(symbol: str) -> tuple:
            return (symbol not in protected, ranks.get(symbol, math.inf), symbol)

        counts: dict[str, int] = {}
        if not recon:  # between reconstitution days members are not re-ranked: they fill their sectors first
            for symbol in staying:
                sector = market.sector(symbol) or NO_SECTOR
                counts[sector] = counts.get(sector, 0) + 1
            pool = sorted(entrants, key=order)
        else:
            pool = sorted(list(staying) + list(entrants), key=order)
        size = definition.selection.size
        for symbol in pool:
            sector = market.sector(symbol) or NO_SECTOR
            if counts.get(sector, 0) < limit:
                counts[sector] = counts.get(sector, 0) + 1
                continue
            text = (f"sector {sector} at its cap of {limit} ({definition.sector_cap * 100:g}% of {size}),"
                    f" rank {ranks.get(symbol, '-')}")
            if symbol in entrants:
                del entrants[symbol]
            else:
                del staying[symbol]
                kept[:] = [r for r in kept if r.symbol != symbol]
                changes.append(Reason(symbol, LEFT, "sector_cap", f"left: {text} on reconstitution day {day}"))

    new = dict(staying)
    for symbol in entrants:
        new[symbol] = session
    changes.extend(entrants.values())
    # in rank order, the unranked last by symbol
    ordered = {symbol: new[symbol] for symbol in ranking.order if symbol in new}
    if len(ordered) < len(new):
        ordered.update((symbol, new[symbol]) for symbol in sorted(s for s in new if s not in ranks))
    entered = sum(1 for r in changes if r.action == ENTERED)
    churn = Churn(before=len(previous), after=len(ordered), entered=entered, left=len(changes) - entered)
    return RunResult(definition, session, recon, MappingProxyType(ordered), tuple(changes), tuple(kept), churn,
                     MappingProxyType(ranks), MappingProxyType(pcts), previous, by_symbol, calendar)


# --- the rules -----------------------------------------------------------------------------------

def _entry_candidates(definition: RuleDefinition, market: Market, ranking: Ranking,
                      previous: Mapping[str, dt.date]) -> list[str]:
    """The non-members that could enter: within the (unbanded) selection, seasoned candidates passing
    the entry screens, in the statistics' order. `_entry_ok` still decides (and words) each."""
    import numpy as np

    sel = definition.selection
    eligible = market.candidate_mask(definition.candidates, True) & market.passing_mask(definition.entry)
    if sel.kind == "top":
        inside = ranking.index[:sel.count]
    elif sel.kind == "rank_range":
        inside = ranking.index[sel.first - 1:sel.last]
    elif sel.kind == "percentile_range":
        pcts = ranking.cumulative
        inside = ranking.index[(sel.from_pct < pcts) & (pcts <= sel.to_pct)]
    else:
        inside = None
    found = np.flatnonzero(eligible) if inside is None else np.sort(inside[eligible[inside]])
    symbols = market.columns.symbols
    return [symbol for symbol in map(symbols.__getitem__, found.tolist()) if symbol not in previous]


def _is_candidate(c: Candidates, s: SymbolStats, seasoning: bool) -> bool:
    """`_candidate_checks` all ok, without building their texts (the hot path of 12,000 symbols)."""
    if s.type not in c.types or (c.exchanges and s.exchange not in c.exchanges) or (c.active and not s.active):
        return False
    if seasoning and c.min_ipo_sessions:
        return s.ipo_sessions is not None and s.ipo_sessions >= c.min_ipo_sessions
    return True


def _passes(screens: Screens, s: SymbolStats) -> bool:
    """`_screen_checks` all ok, without building their texts."""
    w = screens.median_dollar_volume
    if w is not None:
        v = s.median_dollar_volume.get(w.sessions)
        if v is None or not v >= w.minimum or v == math.inf:
            return False
    w = screens.mean_dollar_volume
    if w is not None:
        v = s.mean_dollar_volume.get(w.sessions)
        if v is None or not v >= w.minimum or v == math.inf:
            return False
    if screens.min_price is not None and (s.price is None or not s.price >= screens.min_price or s.price == math.inf):
        return False
    if screens.coverage is not None and s.coverage.get(screens.coverage.sessions, 0) < screens.coverage.min_sessions:
        return False
    return screens.recent_sessions is None or s.streak >= screens.recent_sessions


def _in_selection(definition: RuleDefinition, rank: int | None, pct: float | None, member: bool) -> bool:
    """`_selection_check(...).ok` without its text."""
    sel, band = definition.selection, definition.band
    if sel.kind == "all":
        return True
    if rank is None:
        return False
    if sel.kind == "top":
        return rank <= sel.count + (band.ranks if member else 0)
    if sel.kind == "rank_range":
        buffer = band.ranks if member else 0
        return sel.first - buffer <= rank <= sel.last + buffer
    width = band.percentile if member else 0.0
    return sel.from_pct - width < pct <= sel.to_pct + width


def _maintenance_failure(definition: RuleDefinition, s: SymbolStats | None, symbol: str, day: str) -> Check | None:
    if s is None:
        return Check("missing", False, f"no data on {day} (delisted or without bars)")
    if _is_candidate(definition.candidates, s, False):
        return None
    for check in _candidate_checks(definition, s, seasoning=False):
        if not check.ok:
            return Check(check.rule, False, f"{check.text} on {day}")
    return None


def _candidate_checks(definition: RuleDefinition, s: SymbolStats, seasoning: bool = True) -> list[Check]:
    c = definition.candidates
    out = [Check("candidates.types", s.type in c.types,
                 f"type {s.type or 'unknown'} {'in' if s.type in c.types else 'not in'} {', '.join(c.types)}")]
    if c.exchanges:
        inside = s.exchange in c.exchanges
        out.append(Check("candidates.exchanges", inside,
                         f"exchange {s.exchange or 'unknown'} {'in' if inside else 'not in'} {', '.join(c.exchanges)}"))
    if c.active:
        out.append(Check("candidates.active", bool(s.active), "active" if s.active else "inactive (delisted)"))
    if seasoning and c.min_ipo_sessions:
        age = s.ipo_sessions
        if age is None:
            out.append(Check("candidates.min_ipo_sessions", False, f"IPO age unknown (needs {c.min_ipo_sessions} sessions)"))
        else:
            ok = age >= c.min_ipo_sessions
            out.append(Check("candidates.min_ipo_sessions", ok,
                             f"IPO age {age} sessions {'≥' if ok else '<'} {c.min_ipo_sessions}"))
    return out


def _screen_checks(screens: Screens, s: SymbolStats, side: str) -> list[Check]:
    out = []
    for name, label, values in (("median_dollar_volume", "median", s.median_dollar_volume),
                                ("mean_dollar_volume", "mean", s.mean_dollar_volume)):
        window = getattr(screens, name)
        if window is None:
            continue
        value = values.get(window.sessions)
        what = f"{window.sessions}-session {label} dollar volume"
        if value is None or not math.isfinite(value):
            out.append(Check(f"{side}.{name}", False, f"{what} unknown (no valid bar in the window)"))
        else:
            ok = value >= window.minimum
            shown, bound = money_pair(value, window.minimum)
            out.append(Check(f"{side}.{name}", ok, f"{what} {shown} {'≥' if ok else '<'} {bound}"))
    if screens.min_price is not None:
        price = s.price
        if price is None or not math.isfinite(price):
            out.append(Check(f"{side}.min_price", False, "no valid close"))
        else:
            ok = price >= screens.min_price
            shown, bound = price_text(price), price_text(screens.min_price)
            if shown == bound and price != screens.min_price:
                shown, bound = f"${price:,.6f}", f"${screens.min_price:,.6f}"
            out.append(Check(f"{side}.min_price", ok, f"close {shown} {'≥' if ok else '<'} {bound}"))
    if screens.coverage is not None:
        cov = screens.coverage
        have = s.coverage.get(cov.sessions, 0)
        ok = have >= cov.min_sessions
        out.append(Check(f"{side}.coverage", ok, f"valid closes on {have} of the last {cov.sessions} sessions "
                                                 f"{'≥' if ok else '<'} {cov.min_sessions}"))
    if screens.recent_sessions is not None:
        m = screens.recent_sessions
        ok = s.streak >= m
        text = (f"a valid close on each of the last {m} sessions" if ok
                else f"a valid close on only the last {s.streak} of the last {m} sessions")
        out.append(Check(f"{side}.recent_sessions", ok, text))
    return out


def _selection_check(definition: RuleDefinition, rank: int | None, pct: float | None, *, member: bool) -> Check:
    sel, band = definition.selection, definition.band
    if sel.kind == "all":
        return Check("selection", True, "every candidate passing the screens")
    if rank is None:
        return Check("rank.metric", False, f"not ranked ({definition.rank.metric.replace('_', ' ')} unknown, "
                                           "or a stay screen or candidate rule fails)")
    rule = "band" if member and band.active else "selection"
    buffer = band.ranks if member else 0
    if sel.kind in ("top", "rank_range"):
        first, last = (1, sel.count) if sel.kind == "top" else (sel.first, sel.last)
        lo, hi = max(1, first - buffer), last + buffer
        ok = lo <= rank <= hi
        edge = "" if not buffer else f" + {buffer}"
        if sel.kind == "top" or first == 1:
            text = f"rank {rank} {'≤' if ok else '>'} {last}{edge}"
        elif ok:
            text = f"rank {rank} within {first}..{last}" + (f" ± {buffer}" if buffer else "")
        else:
            text = f"rank {rank} outside {first}..{last}" + (f" ± {buffer}" if buffer else "")
        return Check(rule, ok, text)
    width = band.percentile if member else 0.0
    lo, hi = sel.from_pct - width, sel.to_pct + width
    ok = lo < pct <= hi
    edge = sel.to_pct if pct > sel.to_pct else sel.from_pct if pct <= sel.from_pct else None
    digits = 1
    while edge is not None and pct != edge and float(f"{pct:.{digits}f}") == edge and digits < 12:
        digits += 1  # 70.00004% is not "70.0% > 70%"
    shown = f"{pct:.{digits}f}"
    if edge is None:
        text = f"percentile {shown}% within {sel.from_pct:g}%–{sel.to_pct:g}%"
    elif width:
        text = f"percentile {shown}% {'within' if ok else 'outside'} {edge:g}% ± {width:g}%"
    else:
        text = f"percentile {shown}% {'>' if pct > sel.to_pct else '≤'} {edge:g}%"
    return Check(rule, ok, text)


def _entry_ok(definition: RuleDefinition, by_symbol: Mapping[str, SymbolStats], symbol: str, rank: int | None,
              pct: float | None) -> tuple[bool, str]:
    """Whether a non-member `_entry_candidates` listed enters, and the text of its reason. That list holds
    seasoned candidates passing the entry screens within the selection (by the market's columns, which
    equal `_is_candidate` and `_passes` symbol by symbol: tests/universes/rules/test_properties.py), so only
    the selection's own check is left, and the texts: 19,000 of them on a first sync. Where no rank decides
    (selection `all`) the screens' numbers are the reason, the only case that needs the symbol's SymbolStats
    (built on first use: skipping them for the ranked universes' 12,700 entrants saved 22-32 ms of a
    first sync's rule universes at 12,000 symbols, CPU time, medians of 9, three alternations). A
    refusal's text is built by explain, on demand."""
    if definition.selection.kind == "all":
        screens = _screen_checks(definition.entry, by_symbol[symbol], "entry")
        return True, ", ".join(c.text for c in screens) or "a candidate (no screens)"
    sel = _selection_check(definition, rank, pct, member=False)
    return sel.ok, sel.text


def _sessions_served(calendar: SessionCalendar, entered: dt.date, session: dt.date) -> int:
    """Sessions a member has been in before `session` (entered on the previous session: 1)."""
    return max(0, calendar.sessions_since(entered, session) - 1)


# --- explain -------------------------------------------------------------------------------------

def _explain(result: RunResult, symbol: str) -> Explanation:
    d, day = result.definition, result.session.isoformat()
    member = symbol in result.members
    s = result.stats.get(symbol)
    reason = result.reason(symbol)
    if s is None:
        checks = (Check("missing", False, f"no data on {day} (delisted, unknown or without bars)"),)
        summary = reason.text if reason else f"out: no data on {day}"
        return Explanation(symbol, member, summary, checks)
    was = symbol in result.previous
    rank, pct = result.ranks.get(symbol), result.percentiles.get(symbol)
    checks = _candidate_checks(d, s, seasoning=not was)
    checks += _screen_checks(d.stay if was else d.entry, s, "stay" if was else "entry")
    checks.append(_selection_check(d, rank, pct, member=was))
    if reason is not None:
        summary = reason.text
    elif member:
        since = result.members[symbol].isoformat()
        summary = (f"in: member since {since}; passes the stay rules on reconstitution day {day}" if result.reconstitution
                   else f"in: member since {since}; {day} is no reconstitution day (only maintenance applies)")
    else:
        failing = [c for c in checks if not c.ok]
        low = d.candidates.min_ipo_sessions
        fast = (d.ipo_policy == "fast_entry" and s.ipo_sessions is not None
                and low <= s.ipo_sessions < low + d.ipo_window_sessions)
        if not result.reconstitution and not fast:
            nxt = _next_reconstitution(result)
            why = f"; it would fail: {failing[0].text}" if failing else "; it meets the entry rules today"
            summary = f"out: {day} is no reconstitution day (next: {nxt}){why}"
        elif failing:
            summary = f"out: {failing[0].text}"
        else:
            summary = f"out: sector {s.sector or NO_SECTOR} is at its cap of {d.sector_cap_count()}"
    return Explanation(symbol, member, summary, tuple(checks))


def _next_reconstitution(result: RunResult) -> str:
    cal = result.calendar
    later = [day for day in cal.days if day > result.session]
    found = next((day for day in later if cal.is_reconstitution(day, result.definition.reconstitution)), None)
    return found.isoformat() if found else "beyond the calendar"


# --- numbers in words ----------------------------------------------------------------------------

def money(value: float) -> str:
    """$1.9M, $2.5M, $950K, $12.3B, $1.2T, $310."""
    for size, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= size:
            return f"${value / size:.1f}{unit}"
    return f"${value:,.0f}"


def money_pair(value: float, bound: float) -> tuple[str, str]:
    """Both amounts in words, with more digits when the short forms of two different amounts agree
    ("$2,499,999 < $2,500,000" rather than "$2.5M < $2.5M")."""
    a, b = money(value), money(bound)
    if a == b and value != bound:
        return f"${value:,.0f}" if abs(value - bound) >= 1 else f"${value:,.2f}", \
            f"${bound:,.0f}" if abs(value - bound) >= 1 else f"${bound:,.2f}"
    return a, b


def price_text(value: float) -> str:
    return f"${value:,.2f}"
