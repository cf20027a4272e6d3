"""The per-symbol statistics of one session: the engine's only view of the market (immutable).

Built at the edge from `symbols` (type, exchange, active, sector, market cap) and the rolling window of
`pl_symbol_liquidity` (market/liquidity.py: `window_stats`), never from 200 sessions of bars.

    median_dollar_volume[N] / mean_dollar_volume[N]   over the sessions with a valid bar among the last N
                                                      (None when none of them has one)
    coverage[N]                                       how many of the last N sessions have a valid close
    streak                                            consecutive sessions with a valid close ending today
    ipo_sessions                                      sessions since the symbol's first bar, today included
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping, NamedTuple


_EMPTY: Mapping = MappingProxyType({})


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


def from_table(securities, table, session) -> dict[str, SymbolStats]:
    """The SymbolStats of `securities` from the statistics of every row at once (market.liquidity.StatsTable:
    Matrix.stats, or pl_liquidity_stats as the sync reads it), for the table's windows; NaN means none.
    A table that does not stand at `session` is refused (ValueError). Pure."""
    if table.symbols and table.through != session:
        raise ValueError(f"pl_symbol_liquidity stands at {table.through.isoformat()} for some symbols, "
                         f"not at {session.isoformat()}: catch it up first")
    windows = table.windows
    per_window = [(table.median_dollar_volume[n], table.mean_dollar_volume[n], table.coverage[n]) for n in windows]
    rows = {}  # symbol -> (sessions seen, last close, streak, medians, means, coverages): one pass by column
    for i, symbol in enumerate(table.symbols):
        median, mean, coverage = {}, {}, {}
        for n, (medians, means, counts) in zip(windows, per_window):
            m = medians[i]
            median[n] = None if m != m else m  # NaN: none
            a = means[i]
            mean[n] = None if a != a else a
            coverage[n] = counts[i]
        rows[symbol] = (table.sessions_seen[i], table.last_close[i], table.streak[i], MappingProxyType(median),
                        MappingProxyType(mean), MappingProxyType(coverage))
    out = {}
    for sec in securities:
        row = rows.get(sec.symbol)
        if row is None:
            out[sec.symbol] = SymbolStats(sec.symbol, sec.type, sec.primary_exchange, bool(sec.active), sec.sector,
                                          None, sec.market_cap)
            continue
        seen, close, streak, median, mean, coverage = row
        out[sec.symbol] = SymbolStats(sec.symbol, sec.type, sec.primary_exchange, bool(sec.active), sec.sector,
                                      close, sec.market_cap, seen, streak, median, mean, coverage)
    return out
