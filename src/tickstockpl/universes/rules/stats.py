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

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping


_EMPTY: Mapping = MappingProxyType({})


def _frozen(mapping: Mapping | None) -> Mapping:
    """A read-only copy; a read-only view (MappingProxyType) is kept as it is (the replay builds 12,000 of
    them a session over dicts nobody else holds), an empty mapping is the one shared empty view."""
    if mapping.__class__ is MappingProxyType:
        return mapping
    return MappingProxyType(dict(mapping)) if mapping else _EMPTY


@dataclass(frozen=True, slots=True)
class SymbolStats:
    symbol: str
    type: str | None = "CS"
    exchange: str | None = None
    active: bool = True
    sector: str | None = None
    price: float | None = None
    market_cap: float | None = None
    ipo_sessions: int | None = None
    streak: int = 0
    median_dollar_volume: Mapping[int, float | None] = field(default_factory=dict)
    mean_dollar_volume: Mapping[int, float | None] = field(default_factory=dict)
    coverage: Mapping[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("median_dollar_volume", "mean_dollar_volume", "coverage"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

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
            median_dollar_volume=w.median_dollar_volume if w else {},
            mean_dollar_volume=w.mean_dollar_volume if w else {}, coverage=w.coverage if w else {})
    return out


def from_matrix(securities, matrix, windows, session) -> dict[str, SymbolStats]:
    """`from_market` for the whole table read at once (market.liquidity.Matrix, `load_matrix`): the same
    statistics, computed for every row in one pass of numpy (market.liquidity.Matrix.stats). Pure."""
    import math

    if any(through != session for through in matrix.through):
        late = next(t for t in matrix.through if t != session)
        raise ValueError(f"pl_symbol_liquidity stands at {late.isoformat()} for some symbols, "
                         f"not at {session.isoformat()}: catch it up first")
    windows = tuple(windows)
    computed = matrix.stats(windows)
    position = {symbol: i for i, symbol in enumerate(matrix.symbols)}
    columns = {n: (computed.median_dollar_volume[n].tolist(), computed.mean_dollar_volume[n].tolist(),
                   computed.coverage[n].tolist()) for n in windows}
    streaks = computed.streak.tolist()
    out = {}
    for sec in securities:
        i = position.get(sec.symbol)
        if i is None:
            out[sec.symbol] = SymbolStats(symbol=sec.symbol, type=sec.type, exchange=sec.primary_exchange,
                                          active=bool(sec.active), sector=sec.sector, market_cap=sec.market_cap)
            continue
        median, mean, coverage = {}, {}, {}
        for n, (medians, means, counts) in columns.items():
            m = medians[i]
            median[n] = None if math.isnan(m) else m
            a = means[i]
            mean[n] = None if math.isnan(a) else a
            coverage[n] = counts[i]
        out[sec.symbol] = SymbolStats(
            symbol=sec.symbol, type=sec.type, exchange=sec.primary_exchange, active=bool(sec.active),
            sector=sec.sector, price=matrix.last_close[i], market_cap=sec.market_cap,
            ipo_sessions=matrix.sessions_seen[i], streak=streaks[i], median_dollar_volume=median,
            mean_dollar_volume=mean, coverage=coverage)
    return out
