"""rules/publish.publish, the pure step "rule universes of one session" the sync and a replay share:
entries in the StockObj shape, constitution of a universe without members, the calendar afterwards,
reasons (the engine's, or explain's for a change the engine did not make), churn, and both inputs
(LiquidityRow objects and the matrix) giving the same universes."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.universes.rules.support import CALENDAR, QUIET, RECON, define
from tickstockpl.market.liquidity import LiquidityRow
from tickstockpl.market.snapshot import Security
from tickstockpl.universes.rules import publish as rp

DAY_BEFORE_QUIET = RECON  # 2026-12-01, then 2026-12-02 (QUIET)


def security(symbol: str, cap: float, sector: str = "Tech", active: bool = True) -> Security:
    return Security(symbol, f"{symbol} Inc", "CS", active, cap, "XNAS", "stocks", sector, "Software")


def row(symbol: str, dv: float, session: dt.date, close: float = 20.0, n: int = 30) -> LiquidityRow:
    return LiquidityRow(symbol, session, session, n, tuple([dv] * n), close, session)


SECURITIES = [security(f"S{i}", 1e9 * (10 - i)) for i in range(10)]
TOP3 = {"top3": define("top3", rank={"metric": "market_cap"}, selection={"kind": "top", "count": 3},
                       reconstitution={"schedule": "monthly"})}


def rows_on(session: dt.date, dv=lambda i: 5e6) -> list[LiquidityRow]:
    return [row(f"S{i}", dv(i), session) for i in range(10)]


def test_a_universe_without_members_is_constituted_then_follows_its_calendar():
    first = rp.publish(TOP3, rows_on(QUIET), SECURITIES, {}, QUIET, CALENDAR)  # no reconstitution day
    (entry,) = first.entries
    assert (entry.type, entry.name, entry.key, entry.family) == ("stock_universe", "rules", "top3", "rules")
    assert [s["ticker"] for s in entry.value["stocks"]] == ["S0", "S1", "S2"] and entry.value["count"] == 3
    assert [s["rank"] for s in entry.value["stocks"]] == [1, 2, 3]
    assert first.constituted == {"top3"}
    churn = first.churn()["stock_universe:rules:top3"]
    assert (churn["before"], churn["after"], churn["entered"], churn["turnover"], churn["constituted"]) == (0, 3, 3, 1.0, True)
    assert first.reason("top3", "S0", "added").text.startswith("entered: rank 1 ≤ 3")
    # the next session is no reconstitution day: S3 overtakes S2 by market cap, nothing changes
    members = dict(first.results["top3"].members)
    moved = [security("S3", 9.5e9) if s.symbol == "S3" else s for s in SECURITIES]
    later = CALENDAR.days[CALENDAR.index(QUIET) + 1]
    second = rp.publish(TOP3, rows_on(later), moved, {"top3": members}, later, CALENDAR)
    assert list(second.results["top3"].members) == ["S0", "S1", "S2"] and not second.constituted
    assert second.results["top3"].members["S0"] == QUIET  # entry dates carried
    assert second.churn()["stock_universe:rules:top3"]["turnover"] == 0.0


def test_maintenance_and_explain_reasons_between_reconstitution_days():
    members = {"S0": dt.date(2026, 11, 2), "S1": dt.date(2026, 11, 2), "S9": dt.date(2026, 11, 2)}
    securities = [security("S1", 9e9, active=False) if s.symbol == "S1" else s for s in SECURITIES]
    out = rp.publish(TOP3, rows_on(QUIET), securities, {"top3": members}, QUIET, CALENDAR)
    assert list(out.results["top3"].members) == ["S0", "S9"]  # S9 stays: no reconstitution day
    left = out.reason("top3", "S1", "removed")
    assert left.rule == "candidates.active" and left.text == "left: inactive (delisted) on 2026-12-02"
    # a change the engine did not make (e.g. the stored row held S5): explain's summary, as a change text
    ghost = out.reason("top3", "S5", "removed")
    assert ghost.rule == "selection"  # the first failing check: rank 6 > 3
    assert ghost.text.startswith("left: 2026-12-02 is no reconstitution day")


def test_a_disabled_definition_is_not_published_and_both_inputs_agree():
    from tickstockpl.market.liquidity import Matrix
    import numpy as np

    defs = {**TOP3, "off": define("off", enabled=False), "all": define("all", entry={"min_price": 10.0})}
    rows = rows_on(RECON, dv=lambda i: 1e6 * (i + 1))
    out = rp.publish(defs, rows, SECURITIES, {}, RECON, CALENDAR)
    assert [e.key for e in out.entries] == ["all", "top3"]
    values = np.full((10, 252), np.nan, dtype=np.float32)
    values[:, -30:] = np.array([r.dollar_volumes for r in rows], dtype=np.float32)
    matrix = Matrix(tuple(r.symbol for r in rows), tuple(r.through for r in rows), tuple(r.sessions_seen for r in rows),
                    tuple(r.last_close for r in rows), values)
    table = matrix.stats(sorted({w for d in defs.values() for w in d.windows()}))  # what pl_liquidity_stats holds
    same = rp.publish(defs, table, SECURITIES, {}, RECON, CALENDAR)
    assert same.entries == out.entries and same.churn() == out.churn()
    assert out.screens["all"]["entry"] == {"min_price": 10.0}


def test_rows_not_at_the_session_are_refused():
    with pytest.raises(ValueError, match="catch it up first"):
        rp.publish(TOP3, rows_on(RECON), SECURITIES, {}, QUIET, CALENDAR)
