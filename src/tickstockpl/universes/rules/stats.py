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


def _frozen(mapping: Mapping | None) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


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
        value = self.market_cap if name == "market_cap" else getattr(self, name).get(sessions)
        if value is None or not (0.0 < float(value) < float("inf")):
            return None
        return float(value)
