"""The sample market as a value (market/sample.py generates it, market/sample_io.py writes it): the
`SampleMarket` with its compact bar arrays, one session's bars (`SessionBars`) derived from the closes and
a counter-based hash of (seed, row, session), and `NextSession`. Imports neither of those modules.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np


@dataclass(frozen=True, eq=False)
class SampleMarket:
    """A generated market. `symbols` are sorted by symbol; the bar arrays follow `bar_symbols`."""

    seed: int
    symbols: tuple[dict, ...]
    sessions: tuple[dt.date, ...]
    bar_symbols: tuple[str, ...]  # symbols that have at least one bar: the rows of the arrays below
    closes: np.ndarray  # int32 cents, shape (len(bar_symbols), len(sessions)); 0 = no bar that day
    sigma: np.ndarray  # float64 daily volatility per row (shapes open/high/low)
    base_volume: np.ndarray  # float64 typical daily volume per row

    @property
    def end(self) -> dt.date:
        return self.sessions[-1]

    @property
    def bar_count(self) -> int:
        return int(np.count_nonzero(self.closes))

    @functools.cached_property
    def by_symbol(self) -> dict[str, dict]:
        return {row["symbol"]: row for row in self.symbols}

    @functools.cached_property
    def _rows(self) -> dict[str, int]:
        return {symbol: i for i, symbol in enumerate(self.bar_symbols)}

    def last_close(self, symbol: str, on_or_before: dt.date | None = None) -> float | None:
        """The latest close of `symbol` on or before a day (default: the end), in dollars."""
        row = self._rows.get(symbol)
        if row is None:
            return None
        upto = len(self.sessions) if on_or_before is None else _count_le(self.sessions, on_or_before)
        found = np.flatnonzero(self.closes[row, :upto])
        return int(self.closes[row, found[-1]]) / 100 if found.size else None

    def last_bar_date(self, symbol: str) -> dt.date | None:
        row = self._rows.get(symbol)
        found = np.flatnonzero(self.closes[row]) if row is not None else ()
        return self.sessions[int(found[-1])] if len(found) else None

    def session_bars(self, index: int) -> "SessionBars":
        """All bars of session `sessions[index]` (rows of `bar_symbols` that traded that day)."""
        return _derive_session(self, index)

    def iter_bars(self, sessions: Iterable[dt.date] | None = None) -> Iterator[tuple]:
        """Rows (symbol, date, open, high, low, close, volume), session by session; prices in dollars."""
        wanted = None if sessions is None else set(sessions)
        for j, day in enumerate(self.sessions):
            if wanted is not None and day not in wanted:
                continue
            bars = self.session_bars(j)
            for r, o, h, lo, c, v in zip(bars.rows.tolist(), bars.open.tolist(), bars.high.tolist(),
                                         bars.low.tolist(), bars.close.tolist(), bars.volume.tolist()):
                yield (self.bar_symbols[r], day, o / 100, h / 100, lo / 100, c / 100, v)


@dataclass(frozen=True, eq=False)
class SessionBars:
    """One session's bars as arrays: prices in cents, all int64, `rows` index `bar_symbols`."""

    day: dt.date
    rows: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    transactions: np.ndarray


@dataclass(frozen=True, eq=False)
class NextSession:
    """The market one session later (see `next_session`) and what changed."""

    market: SampleMarket
    session: dt.date
    ipo: str  # listed on `session`, its first bar that day
    delisted: str  # set inactive, no bar on `session`


# --------------------------------------------------------------------------------------------
# open / high / low / volume, derived per session

def _count_le(days: tuple[dt.date, ...], day: dt.date) -> int:
    return bisect.bisect_right(days, day)


# --------------------------------------------------------------------------------------------
# open / high / low / volume, derived per session

_M1, _M2, _M3 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix64(value: int) -> int:
    value = (value + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return value ^ (value >> 31)


def _uniform(seed: int, stream: int, rows: np.ndarray, col: int) -> np.ndarray:
    """Uniform (0, 1) numbers that depend only on (seed, stream, row, session): splitmix64."""
    key = np.uint64(_mix64(seed * 1_000_003 + stream))
    x = ((rows.astype(np.uint64) << np.uint64(24)) | np.uint64(col)) ^ key
    with np.errstate(over="ignore"):
        x = x + _M1
        x = (x ^ (x >> np.uint64(30))) * _M2
        x = (x ^ (x >> np.uint64(27))) * _M3
    x = x ^ (x >> np.uint64(31))
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) / float(2**53)


def _derive_session(market: SampleMarket, j: int) -> SessionBars:
    closes = market.closes[:, j]
    rows = np.flatnonzero(closes)
    close = closes[rows].astype(np.int64)
    prev = market.closes[rows, j - 1].astype(np.int64) if j > 0 else np.zeros_like(close)
    prev = np.where(prev > 0, prev, close)
    sigma = market.sigma[rows]
    u = [_uniform(market.seed, k, rows, j) for k in range(5)]
    open_ = np.rint(prev * np.exp(sigma * 0.6 * (2 * u[0] - 1))).astype(np.int64).clip(1, None)
    top = np.maximum(open_, close)
    bottom = np.minimum(open_, close)
    high = np.maximum(np.rint(top * np.exp(-sigma * 0.8 * np.log(u[1]))).astype(np.int64), top)
    low = np.minimum(np.rint(bottom * np.exp(sigma * 0.8 * np.log(u[2]))).astype(np.int64), bottom).clip(1, None)
    move = np.abs(np.log(close / prev))
    noise = np.exp(0.45 * np.log(u[3] / (1 - u[3])))
    volume = np.rint(market.base_volume[rows] * noise * (1 + 12 * move)).astype(np.int64).clip(100, None)
    transactions = np.maximum(1, np.rint(volume / (60 + 240 * u[4]))).astype(np.int64)
    return SessionBars(market.sessions[j], rows, open_, high, low, close, volume, transactions)
