"""The rule engine on small hand-made markets: what each rule does and the reason it gives, with numbers."""

from __future__ import annotations

import datetime as dt

import pytest

from tickstockpl.universes.rules import definition as rd
from tickstockpl.universes.rules.engine import money, run
from tickstockpl.universes.rules.stats import SymbolStats
from tests.universes.rules.support import CALENDAR, QUIET, RECON, define, stock

MONTHLY = {"schedule": "monthly"}


def _texts(result):
    return {r.symbol: r.text for r in result.changes + result.kept}


def test_entered_by_rank_on_reconstitution_day():
    d = define(selection={"kind": "top", "count": 450}, reconstitution=MONTHLY)
    market = [stock(f"S{i:03d}", cap=1e12 - i * 1e9) for i in range(1, 501)]
    r = run(d, {}, market, RECON, CALENDAR)
    assert len(r.members) == 450 and list(r.members)[:2] == ["S001", "S002"]
    assert _texts(r)["S412"] == "entered: rank 412 ≤ 450 on reconstitution day 2026-12-01"
    assert "S451" not in r.members and r.explain("S451").summary == "out: rank 451 > 450"
    assert r.churn.entered == 450 and r.churn.left == 0 and r.churn.turnover == 1.0


def test_kept_by_percentile_band_then_left_beyond_it():
    d = define(selection={"kind": "percentile_range", "from_pct": 0, "to_pct": 70}, band={"percentile": 2.5},
               reconstitution=MONTHLY)
    prev = {"BIG": dt.date(2026, 6, 1)}
    r = run(d, prev, [stock("BIG", 718), stock("SMALL", 282)], RECON, CALENDAR)
    assert dict(r.members) == prev and r.changes == ()
    assert [k.text for k in r.kept] == ["kept by band: percentile 71.8% within 70% ± 2.5%"]
    assert r.kept[0].rule == "band"
    r = run(d, prev, [stock("BIG", 730), stock("SMALL", 270)], RECON, CALENDAR)
    assert r.members == {} and _texts(r)["BIG"] == "left: percentile 73.0% outside 70% ± 2.5% on reconstitution day 2026-12-01"
    # the same stock cannot enter at 71.8 %
    r = run(d, {}, [stock("BIG", 718), stock("SMALL", 282)], RECON, CALENDAR)
    assert r.members == {} and r.explain("BIG").summary == "out: percentile 71.8% > 70%"
    r = run(d, {}, [stock("BIG", 700.0004), stock("SMALL", 299.9996)], RECON, CALENDAR)
    assert r.explain("BIG").summary == "out: percentile 70.00004% > 70%"


def test_left_on_a_stay_screen_with_its_numbers():
    d = define(entry={"median_dollar_volume": {"sessions": 200, "min": 2_500_000}}, reconstitution=MONTHLY)
    prev = {"A": dt.date(2026, 1, 2), "B": dt.date(2026, 1, 2)}
    r = run(d, prev, [stock("A", dv=1.9e6), stock("B", dv=2.5e6)], RECON, CALENDAR)
    assert list(r.members) == ["B"]
    reason = r.changes[0]
    assert (reason.symbol, reason.action, reason.rule) == ("A", "left", "stay.median_dollar_volume")
    assert reason.text == "left: 200-session median dollar volume $1.9M < $2.5M on reconstitution day 2026-12-01"
    r = run(d, prev, [stock("A", dv=2_499_999.0), stock("B")], RECON, CALENDAR)
    assert _texts(r)["A"].startswith("left: 200-session median dollar volume $2,499,999 < $2,500,000")


def test_an_all_selection_gives_the_screens_numbers_as_the_reason():
    d = rd.default_definitions()["tradable_us"]
    r = run(d, {}, [stock("A", dv=3.1e6, price=20.0, coverage=195, streak=40)], RECON, CALENDAR)
    assert _texts(r)["A"] == ("entered: 200-session median dollar volume $3.1M ≥ $2.5M, close $20.00 ≥ $5.00, valid closes"
                              " on 195 of the last 200 sessions ≥ 180, a valid close on each of the last 20 sessions"
                              " on reconstitution day 2026-12-01")
    assert _texts(run(define(), {}, [stock("A")], RECON, CALENDAR))["A"] == (
        "entered: a candidate (no screens) on reconstitution day 2026-12-01")


def test_entry_stricter_than_stay():
    d = define(entry={"min_price": 5.0, "coverage": {"sessions": 200, "min_sessions": 180}},
               stay={"min_price": 3.0, "coverage": {"sessions": 200, "min_sessions": 150}}, reconstitution=MONTHLY)
    prev = {"OLD": dt.date(2026, 1, 2)}
    market = [stock("OLD", price=4.0, coverage=160), stock("NEW", price=4.0, coverage=190),
              stock("NEW2", price=6.0, coverage=170)]
    r = run(d, prev, market, RECON, CALENDAR)
    assert list(r.members) == ["OLD"]
    assert r.explain("NEW").summary == "out: close $4.00 < $5.00"
    assert r.explain("NEW2").summary == "out: valid closes on 170 of the last 200 sessions < 180"
    assert "in: member since 2026-01-02" in r.explain("OLD").summary


def test_between_reconstitution_days_only_maintenance():
    d = define(entry={"min_price": 5.0}, selection={"kind": "top", "count": 2}, reconstitution=MONTHLY)
    prev = {"A": dt.date(2026, 11, 2), "B": dt.date(2026, 11, 2), "C": dt.date(2026, 11, 2), "D": dt.date(2026, 11, 2)}
    market = [stock("A", 10, price=1.0), stock("B", 5, active=False), stock("D", 1, type="ETF"), stock("E", 100)]
    r = run(d, prev, market, QUIET, CALENDAR)
    assert not r.reconstitution and list(r.members) == ["A"]  # A fails the price and the rank: kept until reconstitution
    texts = _texts(r)
    assert texts["B"] == "left: inactive (delisted) on 2026-12-02"
    assert texts["C"] == "left: no data on 2026-12-02 (delisted or without bars)"
    assert texts["D"] == "left: type ETF not in CS on 2026-12-02"
    assert {x.rule for x in r.changes} == {"candidates.active", "missing", "candidates.types"}
    assert r.explain("E").summary.startswith("out: 2026-12-02 is no reconstitution day (next: 2027-01-04)")
    assert r.explain("A").summary == ("in: member since 2026-11-02; 2026-12-02 is no reconstitution day "
                                      "(only maintenance applies)")
    assert r.explain("C").summary == "left: no data on 2026-12-02 (delisted or without bars)"
    assert r.churn.to_dict() == {"before": 4, "after": 1, "entered": 0, "left": 3, "turnover": 0.6}


def test_rank_buffer_keeps_then_minimum_stay_protects():
    d = define(selection={"kind": "top", "count": 2}, band={"ranks": 1}, min_stay_sessions=5, reconstitution=MONTHLY)
    market = [stock("A", 40), stock("B", 30), stock("C", 20), stock("D", 10)]
    prev = {"C": dt.date(2026, 1, 2), "D": dt.date(2026, 11, 25)}  # D: a member for 3 sessions before 12-01
    r = run(d, prev, market, RECON, CALENDAR)
    assert list(r.members) == ["A", "B", "C", "D"]
    texts = _texts(r)
    assert texts["C"] == "kept by band: rank 3 ≤ 2 + 1"
    assert texts["D"] == "kept by minimum stay: member for 3 of 5 sessions (otherwise: rank 4 > 2 + 1)"
    later = run(d, dict(r.members), market, dt.date(2027, 1, 4), CALENDAR)
    assert list(later.members) == ["A", "B", "C"] and _texts(later)["D"].startswith("left: rank 4 > 2 + 1")


def test_sector_cap_keeps_the_best_ranked():
    d = define(selection={"kind": "top", "count": 4}, sector_cap=0.5, reconstitution=MONTHLY)
    market = [stock("T1", 100), stock("T2", 90), stock("T3", 80, sector="Tech"), stock("H1", 70, sector="Health"),
              stock("N1", 60, sector=None)]
    prev = {"T3": dt.date(2026, 1, 2)}
    r = run(d, prev, market, RECON, CALENDAR)
    assert list(r.members) == ["T1", "T2", "H1"]
    texts = _texts(r)
    assert texts["T3"] == "left: sector Tech at its cap of 2 (50% of 4), rank 3 on reconstitution day 2026-12-01"
    assert "N1" not in r.members  # rank 5 > 4
    assert r.explain("T3").summary.startswith("left: sector Tech")


def test_ipo_fast_entry_between_reconstitution_days():
    d = define(candidates={"min_ipo_sessions": 3}, selection={"kind": "top", "count": 3}, ipo_policy="fast_entry",
               ipo_window_sessions=5, reconstitution=MONTHLY)
    prev = {"A": dt.date(2026, 1, 2)}
    market = [stock("A", 50), stock("NEW", 100, ipo=3), stock("YOUNG", 90, ipo=2), stock("OLDER", 80, ipo=8),
              stock("LATE", 85, ipo=6)]
    r = run(d, prev, market, QUIET, CALENDAR)
    assert set(r.members) == {"A", "NEW", "LATE"}
    assert _texts(r)["NEW"] == "entered: IPO fast entry at age 3 sessions, rank 1 ≤ 3 on 2026-12-02"
    assert r.changes[-1].rule == "ipo_policy"
    assert r.members["NEW"] == QUIET
    assert r.explain("OLDER").summary == ("out: 2026-12-02 is no reconstitution day (next: 2027-01-04);"
                                          " it would fail: rank 4 > 3")
    assert r.explain("YOUNG").summary.startswith("out: 2026-12-02 is no reconstitution day")
    # waiting for the reconstitution day is the default
    waiting = run(rd.parse_definition("t", {**rd.to_mapping(d), "ipo_policy": "reconstitution"}), prev, market, QUIET,
                  CALENDAR)
    assert dict(waiting.members) == prev


def test_explain_unknown_and_unseasoned():
    d = define(candidates={"min_ipo_sessions": 10}, reconstitution=MONTHLY)
    r = run(d, {}, [stock("A", ipo=4), SymbolStats("Z", ipo_sessions=None)], RECON, CALENDAR)
    assert r.members == {}
    assert r.explain("A").summary == "out: IPO age 4 sessions < 10"
    assert r.explain("Z").summary == "out: IPO age unknown (needs 10 sessions)"
    assert r.explain("NOPE").summary == "out: no data on 2026-12-01"
    checks = {c.rule: c for c in r.explain("A").checks}
    assert checks["candidates.types"].ok and not checks["candidates.min_ipo_sessions"].ok


def test_the_statistics_are_immutable():
    """As the sync builds them (from the kept statistics) and as the replay's rows give them."""
    from tickstockpl.market.liquidity import LiquidityRow, StatsTable
    from tickstockpl.market.snapshot import Security
    from tickstockpl.universes.rules.stats import from_market, from_table

    security = Security("A", None, "CS", True, 1e9)
    table = StatsTable(RECON, (200,), ("A",), [300], [10.0], [5], {200: [1e6]}, {200: [1.1e6]}, {200: [180]})
    row = LiquidityRow("A", RECON, RECON, 1, (1e6,), 10.0, RECON)
    for s in (from_table([security], table, RECON).to_dict()["A"], from_market([security], [row], (200,), RECON)["A"]):
        with pytest.raises(TypeError):
            s.coverage[200] = 1
        with pytest.raises(TypeError):
            s.median_dollar_volume[200] = 1.0
        with pytest.raises(AttributeError):
            s.price = 1.0
    assert from_table([security], table, RECON).to_dict()["A"].coverage == {200: 180}


@pytest.mark.parametrize("value, text", [(1.9e6, "$1.9M"), (2.5e6, "$2.5M"), (950e3, "$950.0K"), (12.3e9, "$12.3B"),
                                         (310, "$310"), (2.1e12, "$2.1T")])
def test_money(value, text):
    assert money(value) == text


def test_built_ins_run_on_a_market():
    defs = rd.default_definitions()
    # dollar volume $10B / i: everything above the $2.5M screen; half the stocks in Tech
    market = [stock(f"S{i:04d}", cap=1e12 / i, dv=1e10 / i, sector=("Tech", "Health", "Tech", "Banks")[i % 4])
              for i in range(1, 2001)]
    for key, d in defs.items():
        r = run(d, {}, market, RECON, CALENDAR)
        assert r.reconstitution, key
        if key == "liquid_500":  # Tech is cut to 150 (30% of 500); the cap does not refill from lower ranks
            assert _sector_counts(r, market) == {"Tech": 150, "Health": 125, "Banks": 125}
            assert max(r.ranks[s] for s in r.members) <= 500
        if key == "tradable_us":
            assert len(r.members) == 2000
    mega = run(defs["crsp_mega"], {}, market, RECON, CALENDAR)
    large = run(defs["crsp_large"], {}, market, RECON, CALENDAR)
    mid = run(defs["crsp_mid"], {}, market, RECON, CALENDAR)
    assert set(mega.members) | set(mid.members) == set(large.members) and not set(mega.members) & set(mid.members)


def _sector_counts(result, market):
    sectors = {s.symbol: s.sector for s in market}
    counts = {}
    for symbol in result.members:
        counts[sectors[symbol]] = counts.get(sectors[symbol], 0) + 1
    return counts
