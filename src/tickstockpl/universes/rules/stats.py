"""The per-symbol statistics of one session: the engine's only view of the market (immutable).

Built at the edge from `symbols` (type, exchange, active, sector, market cap) and the rolling window of
`pl_symbol_liquidity` (market/liquidity.py: `window_stats`), never from 200 sessions of bars.

    median_dollar_volume[N] / mean_dollar_volume[N]   over the sessions with a valid bar among the last N
                                                      (None when none of them has one)
    coverage[N]                                       how many of the last N sessions have a valid close
    streak                                            consecutive sessions with a valid close ending today
    ipo_sessions                                      sessions since the symbol's first bar, today included

Two forms of one session's statistics: a mapping symbol -> SymbolStats (`from_market`, tests), and
`StatsColumns`, the same numbers by column (`from_table`, the replay's windows), which the engine's Market
screens and ranks with numpy and turns into SymbolStats only for the symbols whose reasons it words.
"""

from __future__ import annotations

import importlib
import math
import sys
import threading
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Mapping, NamedTuple

if TYPE_CHECKING:
    import numpy as np  # imported where used: a sync that skips (unchanged inputs) never pays for it

_EMPTY: Mapping = MappingProxyType({})


def start_numpy_import() -> None:
    """Import numpy in a thread of its own, now, so that a sync building the rule universes finds it loaded.

    A fresh process pays 60-110 ms for that import (measured), all of it on the critical path when the first
    numpy function asks for it. sync/inputs.read starts it once the snapshot statement says the sync builds
    (started before that statement, it made the unchanged rerun 0.15 s slower: the thread's CPU time
    competed with the rerun's own work), so it runs while the main thread waits on the statements that
    follow; the daily sync at 12,000 symbols took 1.94 s instead of 2.13 s (medians of 6, alternating, on a
    loaded machine). A later `import numpy` waits for this one to finish (the import lock), and a failure
    here is that import's to report."""
    if "numpy" not in sys.modules:
        threading.Thread(target=_import_quietly, args=("numpy",), name="import-numpy", daemon=True).start()


def _import_quietly(name: str) -> None:
    try:
        importlib.import_module(name)
    except ImportError:  # reported by the import that needs it
        pass


class SymbolStats(NamedTuple):
    """One symbol's statistics of one session. A NamedTuple, not a frozen dataclass: a sync builds 12,000
    of them and a replay 12,000 a session, and a frozen dataclass with read-only copies of its mappings
    cost 8 µs each against under 1 µs (measured). The mappings are read-only views where this module
    builds them (from_market, from_table); nothing changes them after."""

    symbol: str
    type: str | None = "CS"
    exchange: str | None = None
    active: bool = True
    sector: str | None = None
    price: float | None = None
    market_cap: float | None = None
    ipo_sessions: int | None = None
    streak: int = 0
    median_dollar_volume: Mapping[int, float | None] = _EMPTY
    mean_dollar_volume: Mapping[int, float | None] = _EMPTY
    coverage: Mapping[int, int] = _EMPTY

    def metric(self, name: str, sessions: int | None) -> float | None:
        """The value of a ranking metric (None when unknown, not finite or not positive)."""
        return positive(self.market_cap if name == "market_cap" else getattr(self, name).get(sessions))


_INF = float("inf")


def positive(value) -> float | None:
    """`value` as a float when it is a finite number above 0, else None (a ranking metric's rule)."""
    if value is None:
        return None
    value = value if value.__class__ is float else float(value)
    return value if 0.0 < value < _INF else None


def from_market(securities, rows, windows, session) -> dict[str, SymbolStats]:
    """The statistics of `session` from the snapshot's securities (market.snapshot.Security) and the rows of
    pl_symbol_liquidity (market.liquidity.LiquidityRow), for the windows a definition reads
    (RuleDefinition.windows()). Pure.

    price = the newest valid close of the liquidity row (a close above 0 with a volume); a security without a
    row (no bar on any session) has no price, no dollar volume, no coverage and an unknown IPO age. A row that
    does not stand at `session` is refused (ValueError): move the table first (liquidity.catch_up).
    """
    from tickstockpl.market.liquidity import window_stats

    by_symbol = {r.symbol: r for r in rows}
    windows = tuple(windows)
    out = {}
    for sec in securities:
        row = by_symbol.get(sec.symbol)
        if row is not None and row.through != session:
            raise ValueError(f"pl_symbol_liquidity stands at {row.through.isoformat()} for {sec.symbol}, "
                             f"not at {session.isoformat()}: catch it up first")
        w = window_stats(row.dollar_volumes, windows) if row is not None else None
        out[sec.symbol] = SymbolStats(
            symbol=sec.symbol, type=sec.type, exchange=sec.primary_exchange, active=bool(sec.active),
            sector=sec.sector, price=row.last_close if row is not None else None, market_cap=sec.market_cap,
            ipo_sessions=row.sessions_seen if row is not None else None, streak=w.streak if w else 0,
            median_dollar_volume=MappingProxyType(w.median_dollar_volume) if w else _EMPTY,
            mean_dollar_volume=MappingProxyType(w.mean_dollar_volume) if w else _EMPTY,
            coverage=MappingProxyType(w.coverage) if w else _EMPTY)
    return out


def from_table(securities, table, session) -> "StatsColumns":
    """The statistics of `securities` (in their order) from the statistics of every row at once
    (market.liquidity.StatsTable: Matrix.stats, or pl_liquidity_stats as the sync reads it), for the table's
    windows; NaN means none. A table that does not stand at `session` is refused (ValueError). Pure."""
    import numpy as np

    if table.symbols and table.through != session:
        raise ValueError(f"pl_symbol_liquidity stands at {table.through.isoformat()} for some symbols, "
                         f"not at {session.isoformat()}: catch it up first")
    def floats(values) -> np.ndarray:
        if isinstance(values, np.ndarray):  # load_stats: NaN already stands for None
            return values.astype(np.float64)
        return np.array([math.nan if v is None else v for v in values], dtype=np.float64)

    return StatsColumns.of_securities(
        securities, {symbol: i for i, symbol in enumerate(table.symbols)}, price=floats(table.last_close),
        ipo_sessions=np.asarray(table.sessions_seen, dtype=np.int64), streak=np.asarray(table.streak, dtype=np.int64),
        median_dollar_volume={n: np.asarray(table.median_dollar_volume[n], dtype=np.float64) for n in table.windows},
        mean_dollar_volume={n: np.asarray(table.mean_dollar_volume[n], dtype=np.float64) for n in table.windows},
        coverage={n: np.asarray(table.coverage[n], dtype=np.int64) for n in table.windows})


def _none(value):
    return None if value != value else value  # NaN: none


@dataclass(frozen=True, eq=False)
class StatsColumns:
    """One session's statistics by column, aligned with `symbols` (one symbol once): what a mapping of
    SymbolStats holds, without building 12,000 objects a session. The floats are float64 arrays with NaN for
    None; `ipo_sessions` is -1 for a symbol without a liquidity row (no bar on any session), whose price,
    windows and streak are then empty, as `from_market` gives them. `stats(i)` is row i as a SymbolStats."""

    symbols: tuple[str, ...]
    type: tuple[str | None, ...]
    exchange: tuple[str | None, ...]
    active: np.ndarray  # bool
    sector: tuple[str | None, ...]
    price: np.ndarray
    market_cap: np.ndarray
    ipo_sessions: np.ndarray  # int64
    streak: np.ndarray  # int64
    median_dollar_volume: Mapping[int, np.ndarray]
    mean_dollar_volume: Mapping[int, np.ndarray]
    coverage: Mapping[int, np.ndarray]  # int64

    @classmethod
    def of_securities(cls, securities, row_of: Mapping[str, int], *, price, ipo_sessions, streak,
                      median_dollar_volume, mean_dollar_volume, coverage) -> "StatsColumns":
        """The columns of the snapshot's securities (market.snapshot.Security, one per symbol, in their order)
        with the window statistics of the liquidity table's rows: arrays indexed by row, `row_of` the row of
        each symbol. A security without a row gets NaN, -1 (IPO age) and 0 (streak, coverage)."""
        import numpy as np

        securities = list(securities)
        at = np.fromiter((row_of.get(s.symbol, -1) for s in securities), dtype=np.int64, count=len(securities))
        has = at >= 0
        take = np.where(has, at, 0)

        def column(values: np.ndarray, missing) -> np.ndarray:
            if not len(values):
                return np.full(len(at), missing, dtype=values.dtype)
            return np.where(has, values[take], missing)

        caps = np.array([math.nan if s.market_cap is None else s.market_cap for s in securities], dtype=np.float64)
        return cls(tuple(s.symbol for s in securities), tuple(s.type for s in securities),
                   tuple(s.primary_exchange for s in securities),
                   np.array([bool(s.active) for s in securities], dtype=bool), tuple(s.sector for s in securities),
                   column(price, math.nan), caps, column(ipo_sessions, -1), column(streak, 0),
                   MappingProxyType({n: column(v, math.nan) for n, v in median_dollar_volume.items()}),
                   MappingProxyType({n: column(v, math.nan) for n, v in mean_dollar_volume.items()}),
                   MappingProxyType({n: column(v, 0) for n, v in coverage.items()}))

    @classmethod
    def of_stats(cls, stats: Mapping[str, SymbolStats]) -> "StatsColumns":
        """The columns of SymbolStats objects, in the mapping's order (None as NaN or -1; a window a symbol
        lacks as NaN or 0, which the rules read as `.get(n)` / `.get(n, 0)` do)."""
        import numpy as np

        rows = list(stats.values())
        windows = {name: sorted({n for s in rows for n in getattr(s, name)})
                   for name in ("median_dollar_volume", "mean_dollar_volume", "coverage")}

        def floats(values) -> np.ndarray:
            return np.array([math.nan if v is None else v for v in values], dtype=np.float64)

        return cls(
            tuple(stats), tuple(s.type for s in rows), tuple(s.exchange for s in rows),
            np.array([bool(s.active) for s in rows], dtype=bool), tuple(s.sector for s in rows),
            floats(s.price for s in rows), floats(s.market_cap for s in rows),
            np.array([-1 if s.ipo_sessions is None else s.ipo_sessions for s in rows], dtype=np.int64),
            np.array([s.streak for s in rows], dtype=np.int64),
            MappingProxyType({n: floats(s.median_dollar_volume.get(n) for s in rows)
                              for n in windows["median_dollar_volume"]}),
            MappingProxyType({n: floats(s.mean_dollar_volume.get(n) for s in rows)
                              for n in windows["mean_dollar_volume"]}),
            MappingProxyType({n: np.array([s.coverage.get(n, 0) for s in rows], dtype=np.int64)
                              for n in windows["coverage"]}))

    def __len__(self) -> int:
        return len(self.symbols)

    def stats(self, i: int) -> SymbolStats:
        """Row i as the SymbolStats `from_market` gives (None for NaN; a symbol without a row: empty windows)."""
        symbol = self.symbols[i]
        age = int(self.ipo_sessions[i])
        if age < 0:
            cap = _none(float(self.market_cap[i]))
            return SymbolStats(symbol, self.type[i], self.exchange[i], bool(self.active[i]), self.sector[i], None, cap)
        return SymbolStats(symbol, self.type[i], self.exchange[i], bool(self.active[i]), self.sector[i],
                           _none(float(self.price[i])), _none(float(self.market_cap[i])), age, int(self.streak[i]),
                           MappingProxyType({n: _none(float(v[i])) for n, v in self.median_dollar_volume.items()}),
                           MappingProxyType({n: _none(float(v[i])) for n, v in self.mean_dollar_volume.items()}),
                           MappingProxyType({n: int(v[i]) for n, v in self.coverage.items()}))

    def to_dict(self) -> dict[str, SymbolStats]:
        """symbol -> SymbolStats of every row (what `from_market` would give for the same numbers)."""
        return {symbol: self.stats(i) for i, symbol in enumerate(self.symbols)}
