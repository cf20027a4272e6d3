"""Helpers of the rule-engine tests: a calendar of real NYSE sessions and quick statistics."""

from __future__ import annotations

import datetime as dt

from tickstockpl.market.calendar import sessions_between
from tickstockpl.universes.rules import definition as rd
from tickstockpl.universes.rules.schedule import SessionCalendar
from tickstockpl.universes.rules.stats import SymbolStats

CALENDAR = SessionCalendar.from_sessions(sessions_between(dt.date(2025, 10, 1), dt.date(2027, 3, 31)))
RECON = dt.date(2026, 12, 1)  # the first session of December 2026: a monthly and quarterly reconstitution day
QUIET = dt.date(2026, 12, 2)  # no reconstitution day of a monthly or quarterly calendar


def stock(symbol: str, cap: float = 1e9, *, dv: float = 5e6, n: int = 200, price: float = 20.0, sector: str = "Tech",
          coverage: int | None = None, streak: int = 200, ipo: int = 1000, active: bool = True, type: str = "CS",
          exchange: str = "XNAS") -> SymbolStats:
    return SymbolStats(symbol=symbol, type=type, exchange=exchange, active=active, sector=sector, price=price,
                       market_cap=cap, ipo_sessions=ipo, streak=streak, median_dollar_volume={n: dv},
                       mean_dollar_volume={n: dv}, coverage={n: n if coverage is None else coverage})


def define(key: str = "t", **body) -> rd.RuleDefinition:
    return rd.parse_definition(key, body)
