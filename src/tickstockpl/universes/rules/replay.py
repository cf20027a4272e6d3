"""Past sessions replayed from their bars, in memory (pure): the statistics each session had, and the rule
universes run session after session on them.

    windows = Windows(windows=(200,))                one rolling window per symbol, like pl_symbol_liquidity
    windows.start(symbol, first_session, seen, ...)  a symbol whose bars began before the replay's first session
    windows.advance(day, symbols, closes, volumes)   fold one session's bars in
    windows.rows()                                   LiquidityRow per symbol: what liquidity.load() reads after
                                                     liquidity.rebuild(conn, day)
    windows.stats(securities, day)                   what rules.stats.from_market(securities, rows, windows, day)
                                                     gives on those rows, by column (StatsColumns): the
                                                     engine's input of that session
    securities_on(today, prices, day)                the securities of a past session, survivorship-free (below)
    replay(definitions, today, sessions, calendar)   the rule universes session after session (an empty one is
                                                     constituted, as the sync does)

*Exactly as the table would.* A valid bar has a close above 0 and below 1e15 (not NaN) and a volume of 0 or
more; its dollar volume is close × volume rounded to a float4 (`real`), as the table stores it. The median is
statistics.median of the valid values of the last N sessions (every row's window sorted at once by numpy,
liquidity.window_medians: the two middle values averaged in float64 as statistics.median does); the mean is
math.fsum of them divided by their count (kept as an exact integer sum, updated by the value that enters and
the one that leaves: every float4 is a whole multiple of 2**-149, and Python divides integers correctly
rounded, as fsum rounds); coverage, streak, IPO age and the newest valid close as liquidity.window_stats and
the table define them. tests/universes/rules/test_replay.py checks the rows and statistics against liquidity.rebuild on
a real database, and the window arithmetic against window_stats on random windows.

*A past session's securities* (`securities_on`): today's symbols rows (the snapshot of the newest session),
each with the close of its newest bar on or before that day; a symbol without any bar by then is left out
(it had not traded yet); a symbol inactive today was active on every day up to its last bar (survivorship-free
within the bars: its last bar marks when it left); its market cap then = today's effective cap (contract
§6.4) × close then / today's close, i.e. that day's close × today's shares (PL keeps no history of shares).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from tickstockpl.market import liquidity
from tickstockpl.market.liquidity import LiquidityRow, window_medians
from tickstockpl.market.snapshot import Security, Snapshot
from tickstockpl.universes.rules.definition import RuleDefinition
from tickstockpl.universes.rules.engine import Market, RunResult
from tickstockpl.universes.rules.publish import run_session
from tickstockpl.universes.rules.schedule import SessionCalendar
from tickstockpl.universes.rules.stats import StatsColumns

_SCALE = 2.0 ** 149  # a float4 times this is a whole number (exactly: a power of two)
_DIVISOR = 1 << 149
_CLOSE_MAX = 1e15


class Windows:
    """The rolling per-symbol windows of pl_symbol_liquidity, moved one session at a time in memory, by column:
    a ring of WINDOW sessions per symbol (session t in column t mod WINDOW; NaN: no valid bar, or before the
    symbol's row began) and per row its first session, sessions seen, newest valid close and session, the
    valid sessions in a row ending at the newest, and per tracked window the exact sum of its values (a
    Python integer: every float4 times 2**149). `windows`: the window lengths whose median
    / mean / coverage `stats` reports (each 1 … WINDOW)."""

    def __init__(self, windows: Iterable[int]):
        self.size = liquidity.WINDOW
        self.windows = tuple(sorted(set(windows)))
        for n in self.windows:
            if not 1 <= n <= self.size:
                raise ValueError(f"window of {n} sessions: expected 1 to {self.size}")
        self.through: dt.date | None = None
        self._t = -1  # sessions folded in, less one: the ring column of the newest is _t % size
        self._index: dict[str, int] = {}  # symbol -> row
        self._symbols: list[str] = []
        self._first: list[dt.date] = []
        self._ring = np.full((0, self.size), np.nan)
        self._seen = np.zeros(0, dtype=np.int64)
        self._length = np.zeros(0, dtype=np.int64)  # sessions in the row's window (at most WINDOW)
        self._run = np.zeros(0, dtype=np.int64)
        self._last_close = np.zeros(0)  # NaN: none
        self._last_valid = np.zeros(0, dtype=np.int64)  # date.toordinal(), 0: none
        self._sum = [np.zeros(0, dtype=object) for _ in self.windows]

    def start(self, symbol: str, first_session: dt.date, seen: int, last_close: float | None,
              last_valid: dt.date | None) -> None:
        """A symbol whose bars began before the first session replayed: `seen` sessions from its first bar
        up to (and including) the session before the first one replayed, its newest valid close then. Its
        window starts empty: replay at least WINDOW sessions before the first one whose statistics count.
        Only before the first session is folded in."""
        if self.through is not None:
            raise ValueError("start a symbol before the first session is folded in")
        i = self._add([symbol], first_session)[0]
        self._seen[i] = seen
        self._last_close[i] = math.nan if last_close is None else last_close
        self._last_valid[i] = 0 if last_valid is None else last_valid.toordinal()

    def _add(self, symbols: Sequence[str], first: dt.date) -> list[int]:
        """New rows for `symbols` (their row numbers), the columns grown by a quarter when full."""
        start = len(self._symbols)
        needed = start + len(symbols)
        if needed > len(self._ring):
            capacity = max(64, needed + needed // 4)
            grow = capacity - len(self._ring)

            def more(array, fill):
                return np.concatenate([array, np.full((grow, *array.shape[1:]), fill, dtype=array.dtype)])

            self._ring = more(self._ring, np.nan)
            self._seen, self._length, self._run = (more(a, 0) for a in (self._seen, self._length, self._run))
            self._last_close, self._last_valid = more(self._last_close, np.nan), more(self._last_valid, 0)
            self._sum = [more(a, 0) for a in self._sum]
        for offset, symbol in enumerate(symbols):
            self._index[symbol] = start + offset
        self._symbols.extend(symbols)
        self._first.extend([first] * len(symbols))
        return list(range(start, needed))

    def advance(self, day: dt.date, symbols: Sequence[str], closes: Sequence, volumes: Sequence,
                valid: Sequence[bool] | None = None) -> None:
        """Fold in session `day`: the bars dated `day`, one per symbol (closes and volumes as floats, NaN or
        None where NULL; `valid`: each bar's validity as PostgreSQL decided it, else decided here from the
        floats; numpy arrays are taken as they are). Every symbol seen before gets this session's value (none
        without a valid bar); a symbol's first bar starts its row."""
        c, v = _floats(closes), _floats(volumes)
        with np.errstate(invalid="ignore", over="ignore"):
            if valid is None:
                valid = (c > 0) & (c < _CLOSE_MAX) & (v >= 0)
            dv = (c * v).astype(np.float32).astype(np.float64)
        valid = np.asarray(valid, dtype=bool).reshape(len(c))
        index = self._index
        new = [symbol for symbol in dict.fromkeys(symbols) if symbol not in index]
        if new:
            self._add(new, day)
        rows = len(self._symbols)
        at = np.fromiter((index[symbol] for symbol in symbols), dtype=np.int64, count=len(c))
        self._t += 1
        t, size = self._t, self.size
        value = np.full(rows, np.nan)
        value[at[valid]] = dv[valid]
        close = np.full(rows, np.nan)
        close[at[valid]] = c[valid]
        present = ~np.isnan(value)
        scaled = _scaled(value)
        ring = self._ring
        for k, n in enumerate(self.windows):  # the value n sessions back leaves window n
            if t >= n:
                self._sum[k][:rows] += scaled - _scaled(ring[:rows, (t - n) % size])
            else:
                self._sum[k][:rows] += scaled
        ring[:rows, t % size] = value
        self._seen[:rows] += 1
        np.minimum(self._length[:rows] + 1, size, out=self._length[:rows])
        self._run[:rows] = np.where(present, self._run[:rows] + 1, 0)
        self._last_close[:rows] = np.where(present, close, self._last_close[:rows])
        self._last_valid[:rows] = np.where(present, day.toordinal(), self._last_valid[:rows])
        self.through = day

    def _columns(self, n: int) -> list[int]:
        """The ring's columns of the last n sessions, oldest first."""
        return [(self._t - j) % self.size for j in range(n - 1, -1, -1)]

    def rows(self) -> list[LiquidityRow]:
        """Every row as liquidity.load() returns it (ordered by symbol)."""
        out = []
        for symbol in sorted(self._symbols):
            i = self._index[symbol]
            length = int(self._length[i])
            values = tuple(None if x != x else x for x in self._ring[i, self._columns(length)].tolist())
            close, valid = float(self._last_close[i]), int(self._last_valid[i])
            out.append(LiquidityRow(symbol, self.through, self._first[i], int(self._seen[i]), values,
                                    None if close != close else close, dt.date.fromordinal(valid) if valid else None))
        return out

    def stats(self, securities: Iterable[Security], day: dt.date) -> StatsColumns:
        """rules.stats.from_market(securities, self.rows(), self.windows, day), by column and without building
        the rows (`securities`: one per symbol, as a snapshot's)."""
        if self.through != day:
            raise ValueError(f"the windows stand at {self.through}, not at {day.isoformat()}")
        rows = len(self._symbols)
        medians, means, coverages = {}, {}, {}
        for k, n in enumerate(self.windows):
            # every column when n is the whole ring: the median does not depend on the sessions' order
            _valid, count, medians[n] = window_medians(self._ring[:rows] if n >= self.size
                                                       else self._ring[:rows, self._columns(n)])
            # the exact sum, correctly rounded (int / int), over the count: math.fsum(values) / count
            means[n] = np.array([(total / _DIVISOR) / c if c else math.nan
                                 for total, c in zip(self._sum[k][:rows].tolist(), count.tolist())], dtype=np.float64)
            coverages[n] = count
        return StatsColumns.of_securities(
            securities, self._index, price=self._last_close[:rows], ipo_sessions=self._seen[:rows],
            streak=np.minimum(self._run[:rows], self._length[:rows]), median_dollar_volume=medians,
            mean_dollar_volume=means, coverage=coverages)


def _floats(values: Sequence) -> np.ndarray:
    """A float64 array of `values` (None: NaN)."""
    if isinstance(values, np.ndarray):
        return values.astype(np.float64, copy=False)
    return np.array([math.nan if x is None else float(x) for x in values], dtype=np.float64)


def _scaled(values: np.ndarray) -> np.ndarray:
    """Each float4 value times 2**149 as a Python integer (exact: a power of two), 0 for NaN; an object array."""
    out = np.empty(len(values), dtype=object)
    out[:] = [int(x) for x in np.where(np.isnan(values), 0.0, values * _SCALE).tolist()]
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
    prices: Mapping[str, Price]  # each symbol's newest bar on or before the day (what `securities` came from)


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
        yield Replayed(session.day, securities, market, results, session.prices)
