"""Past sessions replayed from their bars, in memory (pure): the statistics each session had, and the rule
universes run session after session on them.

    windows = Windows(windows=(200,))                one rolling window per symbol, like pl_symbol_liquidity
    windows.start(symbol, first_session, seen, ...)  a symbol whose bars began before the replay's first session
    windows.advance(day, symbols, closes, volumes)   fold one session's bars in
    windows.rows()                                   LiquidityRow per symbol: what liquidity.load() reads after
                                                     liquidity.rebuild(conn, day)
    windows.stats(securities, day)                   what rules.stats.from_market(securities, rows, windows, day)
                                                     gives on those rows: the engine's input of that session
    securities_on(today, prices, day)                the securities of a past session, survivorship-free (below)
    replay(definitions, today, sessions, calendar)   the rule universes session after session (an empty one is
                                                     constituted, as the sync does)

*Exactly as the table would.* A valid bar has a close above 0 and below 1e15 (not NaN) and a volume of 0 or
more; its dollar volume is close × volume rounded to a float4 (`real`), as the table stores it. The median is
statistics.median of the valid values of the last N sessions (kept as a sorted list per window, updated by one
insertion and one removal a session); the mean is math.fsum of them divided by their count (kept as an exact
integer sum: every float4 is a whole multiple of 2**-149, and Python divides integers correctly rounded, as
fsum rounds); coverage, streak, IPO age and the newest valid close as liquidity.window_stats and the table
define them. tests/universes/rules/test_replay.py checks the rows and statistics against liquidity.rebuild on
a real database, and the window arithmetic against window_stats on random windows.

*A past session's securities* (`securities_on`): today's symbols rows (the snapshot of the newest session),
each with the close of its newest bar on or before that day; a symbol without any bar by then is left out
(it had not traded yet); a symbol inactive today was active on every day up to its last bar (survivorship-free
within the bars: its last bar marks when it left); its market cap then = today's effective cap (contract
§6.4) × close then / today's close, i.e. that day's close × today's shares (PL keeps no history of shares).
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from tickstockpl.market import liquidity
from tickstockpl.market.liquidity import LiquidityRow
from tickstockpl.market.snapshot import Security, Snapshot
from tickstockpl.universes.rules.definition import RuleDefinition
from tickstockpl.universes.rules.engine import Market, RunResult
from tickstockpl.universes.rules.publish import run_session
from tickstockpl.universes.rules.schedule import SessionCalendar
from tickstockpl.universes.rules.stats import SymbolStats

_SCALE = 2.0 ** 149  # a float4 times this is a whole number (exactly: a power of two)
_DIVISOR = 1 << 149
_CLOSE_MAX = 1e15


class _Row:
    """One symbol's window (pl_symbol_liquidity's row) and, per tracked window, its valid values sorted
    and their exact sum."""

    __slots__ = ("first", "seen", "values", "exact", "last_close", "last_valid", "run", "sorted", "sums")

    def __init__(self, first: dt.date, seen: int, last_close: float | None, last_valid: dt.date | None, n: int):
        self.first, self.seen = first, seen
        self.values: list[float | None] = []
        self.exact: list[int] = []
        self.last_close, self.last_valid = last_close, last_valid
        self.run = 0  # valid sessions in a row, ending at the newest
        self.sorted: list[list[float]] = [[] for _ in range(n)]
        self.sums = [0] * n


class Windows:
    """The rolling per-symbol windows of pl_symbol_liquidity, moved one session at a time in memory.
    `windows`: the window lengths whose median / mean / coverage `stats` reports (each 1 … WINDOW)."""

    def __init__(self, windows: Iterable[int]):
        self.size = liquidity.WINDOW
        self.windows = tuple(sorted(set(windows)))
        for n in self.windows:
            if not 1 <= n <= self.size:
                raise ValueError(f"window of {n} sessions: expected 1 to {self.size}")
        self.through: dt.date | None = None
        self._rows: dict[str, _Row] = {}
        # Sessions folded in before any statistics were asked for (the warm-up): kept as columns and folded
        # into the rows in bulk when first asked (`_settle`); after that each session is folded in at once.
        self._pending: list[tuple[dt.date, list[str], dict[str, tuple[float, float]]]] = []
        self._indexed = False

    def start(self, symbol: str, first_session: dt.date, seen: int, last_close: float | None,
              last_valid: dt.date | None) -> None:
        """A symbol whose bars began before the first session replayed: `seen` sessions from its first bar
        up to (and including) the session before the first one replayed, its newest valid close then. Its
        window starts empty: replay at least WINDOW sessions before the first one whose statistics count.
        Only before the first session is folded in."""
        if self.through is not None:
            raise ValueError("start a symbol before the first session is folded in")
        self._rows[symbol] = _Row(first_session, seen, last_close, last_valid, len(self.windows))

    def advance(self, day: dt.date, symbols: Sequence[str], closes: Sequence, volumes: Sequence,
                valid: Sequence[bool] | None = None) -> None:
        """Fold in session `day`: the bars dated `day`, one per symbol (closes and volumes as floats, NaN or
        None where NULL; `valid`: each bar's validity as PostgreSQL decided it, else decided here from the
        floats). Every symbol seen before gets this session's value (None without a valid bar); a symbol's
        first bar starts its row."""
        c = np.array([math.nan if x is None else float(x) for x in closes], dtype=np.float64)
        v = np.array([math.nan if x is None else float(x) for x in volumes], dtype=np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            if valid is None:
                valid = (c > 0) & (c < _CLOSE_MAX) & (v >= 0)
            dv = (c * v).astype(np.float32).astype(np.float64)
        valid = np.asarray(valid, dtype=bool)
        # symbol -> (dollar volume, close) of today's valid bars
        today = {symbol: (value, close) for symbol, ok, value, close in zip(symbols, valid.tolist(), dv.tolist(), c.tolist())
                 if ok}
        if not self._indexed:
            self._pending.append((day, list(symbols), today))
            self.through = day
            return
        rows, n_windows, size, windows = self._rows, len(self.windows), self.size, self.windows
        for symbol in symbols:
            if symbol not in rows:
                rows[symbol] = _Row(day, 0, None, None, n_windows)
        get = today.get
        insort, bisect_left = bisect.insort, bisect.bisect_left
        for symbol, row in rows.items():
            bar = get(symbol)
            values, exact = row.values, row.exact
            length = len(values)
            if bar is not None:
                value = bar[0]
                scaled = int(value * _SCALE)
                row.last_close, row.last_valid = bar[1], day
                row.run += 1
            else:
                value, scaled = None, 0
                row.run = 0
            for k in range(n_windows):
                n = windows[k]
                if length >= n:  # the value n sessions back leaves window n
                    old = values[length - n]
                    if old is not None:
                        ordered = row.sorted[k]
                        del ordered[bisect_left(ordered, old)]
                        row.sums[k] -= exact[length - n]
                if value is not None:
                    insort(row.sorted[k], value)
                    row.sums[k] += scaled
            values.append(value)
            exact.append(scaled)
            if length >= size:
                del values[0], exact[0]
            row.seen += 1
        self.through = day

    def _settle(self) -> None:
        """Fold the pending sessions into the rows at once (numpy columns), then index every window (its
        valid values sorted, their exact sum) for the session-by-session folding that follows."""
        self._indexed = True
        pending, self._pending = self._pending, []
        rows, size, windows = self._rows, self.size, self.windows
        first_column: dict[str, int] = {}
        for j, (day, symbols, _today) in enumerate(pending):
            for symbol in symbols:
                if symbol not in rows:
                    rows[symbol] = _Row(day, 0, None, None, len(windows))
                    first_column[symbol] = j
        position = {symbol: i for i, symbol in enumerate(rows)}
        count = len(pending)
        values = np.full((len(rows), count), np.nan)
        closes = np.full((len(rows), count), np.nan)
        for j, (_day, _symbols, today) in enumerate(pending):
            if today:
                at = np.fromiter((position[symbol] for symbol in today), dtype=np.int64, count=len(today))
                pairs = np.array(list(today.values()), dtype=np.float64)
                values[at, j], closes[at, j] = pairs[:, 0], pairs[:, 1]
        days = [day for day, _s, _t in pending]
        for symbol, row in rows.items():
            i, start = position[symbol], first_column.get(symbol, 0)
            span = values[i, start:]
            if span.size:
                ok = ~np.isnan(span)
                found = np.flatnonzero(ok)
                if found.size:
                    last = int(found[-1])
                    row.last_close, row.last_valid = float(closes[i, start + last]), days[start + last]
                    gaps = np.flatnonzero(~ok)
                    row.run = row.run + span.size if not gaps.size else span.size - 1 - int(gaps[-1])
                else:
                    row.run = 0
                row.values.extend(None if v != v else v for v in span[-size:].tolist())
                row.seen += span.size
            del row.values[:-size]
            row.exact = [0 if v is None else int(v * _SCALE) for v in row.values]
            for k, n in enumerate(windows):
                recent = [v for v in row.values[-n:] if v is not None]
                row.sorted[k] = sorted(recent)
                row.sums[k] = sum(int(v * _SCALE) for v in recent)

    def rows(self) -> list[LiquidityRow]:
        """Every row as liquidity.load() returns it (ordered by symbol)."""
        if not self._indexed:
            self._settle()
        return [LiquidityRow(symbol, self.through, row.first, row.seen, tuple(row.values), row.last_close,
                             row.last_valid) for symbol, row in sorted(self._rows.items())]

    def stats(self, securities: Iterable[Security], day: dt.date) -> dict[str, SymbolStats]:
        """rules.stats.from_market(securities, self.rows(), self.windows, day), without building the rows."""
        if self.through != day:
            raise ValueError(f"the windows stand at {self.through}, not at {day.isoformat()}")
        if not self._indexed:
            self._settle()
        rows, windows = self._rows, self.windows
        out = {}
        for sec in securities:
            row = rows.get(sec.symbol)
            if row is None:
                out[sec.symbol] = SymbolStats(sec.symbol, sec.type, sec.primary_exchange, bool(sec.active),
                                              sec.sector, None, sec.market_cap, None, 0)
                continue
            median, mean, coverage = {}, {}, {}
            for k, n in enumerate(windows):
                ordered = row.sorted[k]
                count = len(ordered)
                coverage[n] = count
                if count:
                    half = count // 2
                    median[n] = ordered[half] if count % 2 else (ordered[half - 1] + ordered[half]) / 2
                    mean[n] = (row.sums[k] / _DIVISOR) / count
                else:
                    median[n] = mean[n] = None
            # positional: a replay builds 12,000 of these a session, and keywords cost twice as much (1.6 against
            # 0.7 µs each, measured)
            out[sec.symbol] = SymbolStats(sec.symbol, sec.type, sec.primary_exchange, bool(sec.active), sec.sector,
                                          row.last_close, sec.market_cap, row.seen, min(row.run, len(row.values)),
                                          MappingProxyType(median), MappingProxyType(mean), MappingProxyType(coverage))
        return out


@dataclass(frozen=True, slots=True)
class Price:
    """A symbol's newest bar on or before the day being replayed (any bar, as the snapshot reads it)."""

    close: float | None
    day: dt.date


def securities_on(today: Snapshot, prices: Mapping[str, Price], day: dt.date) -> tuple[Security, ...]:
    """The securities of past session `day` from today's snapshot and each symbol's newest bar on or before
    `day` (see the module docstring). Sorted by symbol, as a snapshot's."""
    out = []
    for sec in today.securities:
        price = prices.get(sec.symbol)
        if price is None:
            continue  # no bar yet: not listed then
        active = sec.active or (sec.last_bar_date is not None and day <= sec.last_bar_date)
        cap = sec.market_cap
        if cap is not None and _positive(price.close) and _positive(sec.last_close):
            cap = cap * (price.close / sec.last_close)
            if not (0.0 < cap < math.inf):
                cap = None
        out.append(Security(*sec[:3], active, cap, *sec[5:13], price.close, price.day))
    return tuple(out)


def snapshot_on(securities: tuple[Security, ...], day: dt.date) -> Snapshot:
    """A Snapshot of past session `day` holding `securities` (`securities_on`), for the legacy builders."""
    return Snapshot(as_of=day, securities=securities, latest_session=day, expected_session=day)


def _positive(value) -> bool:
    return value is not None and 0.0 < value < math.inf


@dataclass(frozen=True)
class SessionBars:
    """One session to replay: its bars (parallel sequences; `valid` None: decided from the floats) and the
    newest bar of each symbol on or before it (`Price`, any bar: the snapshot's close)."""

    day: dt.date
    symbols: Sequence[str]
    closes: Sequence
    volumes: Sequence
    valid: Sequence[bool] | None
    prices: Mapping[str, Price]


@dataclass(frozen=True)
class Replayed:
    day: dt.date
    securities: tuple[Security, ...]
    stats: Market
    results: dict[str, RunResult]  # definition key -> its run that session


def replay(definitions: Mapping[str, RuleDefinition], today: Snapshot, sessions: Iterable[SessionBars],
           calendar: SessionCalendar, *, first: dt.date, windows: Windows | None = None) -> Iterator[Replayed]:
    """Fold every session into the windows, and from `first` on run every definition
    (`publish.run_session`, members carried from session to session; on `first` every universe is
    empty, so constituted); yields one Replayed per session from `first`. The sessions before `first` only
    fill the windows (give it WINDOW of them)."""
    needed = sorted({n for d in definitions.values() for n in d.windows()})
    windows = windows or Windows(needed)
    members: dict[str, dict[str, dt.date]] = {}
    for session in sessions:
        windows.advance(session.day, session.symbols, session.closes, session.volumes, session.valid)
        if session.day < first:
            continue
        securities = securities_on(today, session.prices, session.day)
        market = Market(windows.stats(securities, session.day))
        results = run_session(definitions, members, market, session.day, calendar)
        members = {key: dict(r.members) for key, r in results.items()}
        yield Replayed(session.day, securities, market, results)
