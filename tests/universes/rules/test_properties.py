"""Properties of the rule engine on random markets and random definitions (hypothesis).

Each example draws a definition and a market path (market caps, dollar volumes and prices as random walks,
coverage and streaks, IPOs appearing, symbols going missing or inactive) over real NYSE sessions that cross
month boundaries, runs the engine session after session from an empty universe, and checks every step
against an oracle written from the rules (docs/RULE_UNIVERSES.md), not from the engine's code.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tickstockpl.universes.rules import definition as rd
from tickstockpl.universes.rules.engine import _candidate_checks, _is_candidate, _passes, _screen_checks, run, run_all
from tickstockpl.universes.rules.stats import SymbolStats
from tests.universes.rules.support import CALENDAR

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
N = 20  # the window of every screen of the random definitions
SECTORS = ("Tech", "Health", None)
MAINTENANCE_RULES = {"missing", "candidates.types", "candidates.exchanges", "candidates.active"}
START = CALENDAR.index(dt.date(2026, 1, 2))


@st.composite
def definitions(draw, *, plain: bool = False):
    """A random valid definition; `plain`: a band, no minimum stay and no sector cap (the churn property)."""
    entry, stay = {}, {}
    looser = st.sampled_from([0.5, 0.8, 1.0])
    if draw(st.booleans()):
        m = draw(st.sampled_from([1e6, 2.5e6, 5e6]))
        entry["median_dollar_volume"] = {"sessions": N, "min": m}
        stay["median_dollar_volume"] = {"sessions": N, "min": m * draw(looser)}
    if draw(st.booleans()):
        m = draw(st.sampled_from([1e6, 3e6]))
        entry["mean_dollar_volume"] = {"sessions": N, "min": m}
        stay["mean_dollar_volume"] = {"sessions": N, "min": m * draw(looser)}
    if draw(st.booleans()):
        p = draw(st.sampled_from([5.0, 10.0]))
        entry["min_price"], stay["min_price"] = p, p * draw(looser)
    if draw(st.booleans()):
        k = draw(st.integers(15, N))
        entry["coverage"] = {"sessions": N, "min_sessions": k}
        stay["coverage"] = {"sessions": N, "min_sessions": draw(st.integers(1, k))}
    if draw(st.booleans()):
        m = draw(st.integers(1, 10))
        entry["recent_sessions"], stay["recent_sessions"] = m, draw(st.integers(1, m))
    metric = draw(st.sampled_from(rd.METRICS))
    body = {"entry": entry, "stay": stay,
            "rank": {"metric": metric, **({"sessions": N} if metric != "market_cap" else {})},
            "candidates": {"min_ipo_sessions": draw(st.integers(0, 5))},
            "reconstitution": {"schedule": draw(st.sampled_from(["every_session", "monthly", "monthly", "quarterly"])),
                               },
            "min_stay_sessions": 0 if plain else draw(st.sampled_from([0, 0, 2, 5]))}
    kinds = ["top", "rank_range", "percentile_range"] if plain else list(rd.SELECTIONS)
    kind = draw(st.sampled_from(kinds))
    if kind == "top":
        body["selection"] = {"kind": kind, "count": draw(st.integers(1, 15))}
    elif kind == "rank_range":
        first = draw(st.integers(1, 6))
        body["selection"] = {"kind": kind, "first": first, "last": first + draw(st.integers(0, 10))}
    elif kind == "percentile_range":
        lo = draw(st.sampled_from([0.0, 50.0, 70.0, 85.0]))
        body["selection"] = {"kind": kind, "from_pct": lo, "to_pct": draw(st.sampled_from([x for x in (70.0, 85.0, 98.0, 100.0) if x > lo]))}
    else:
        body["selection"] = {"kind": kind}
    if kind in ("top", "rank_range"):
        ranks = draw(st.integers(1, 4)) if plain else draw(st.integers(0, 4))
        if ranks:
            body["band"] = {"ranks": ranks}
        if not plain and draw(st.booleans()):
            body["sector_cap"] = draw(st.sampled_from([0.3, 0.5]))
    elif kind == "percentile_range":
        pct = draw(st.sampled_from([1.0, 2.5, 5.0])) if plain else draw(st.sampled_from([0.0, 2.5, 5.0]))
        if pct:
            body["band"] = {"percentile": pct}
    if draw(st.booleans()):
        body["ipo_policy"], body["ipo_window_sessions"] = "fast_entry", draw(st.integers(1, 5))
    return rd.parse_definition("random", body)


@st.composite
def paths(draw):
    """A market path: (sessions, [{symbol: SymbolStats}] per session)."""
    seed = draw(st.integers(0, 2**32 - 1))
    count = draw(st.integers(3, 30))
    length = draw(st.integers(5, 45))
    offset = draw(st.integers(0, 200))
    rng = np.random.default_rng(seed)
    days = CALENDAR.days[START + offset: START + offset + length]
    log_cap = rng.normal(21, 2, count)
    log_dv = rng.normal(15, 1.2, count)
    log_price = rng.normal(2.2, 0.8, count)
    ipo_base = np.where(rng.random(count) < 0.3, rng.integers(-30, 1, count), rng.integers(1, 200, count))
    sectors = [SECTORS[i] for i in rng.integers(0, len(SECTORS), count)]
    dies = np.where(rng.random(count) < 0.15, rng.integers(0, length, count), length + 1)
    markets = []
    for t, _day in enumerate(days):
        log_cap = log_cap + rng.normal(0, 0.15, count)
        log_dv = log_dv + rng.normal(0, 0.2, count)
        log_price = log_price + rng.normal(0, 0.1, count)
        today = {}
        for i in range(count):
            age = int(ipo_base[i]) + t
            if age < 1 or rng.random() < 0.03:
                continue  # not listed yet, or no data today
            symbol = f"S{i:02d}"
            today[symbol] = SymbolStats(
                symbol=symbol, type="CS" if rng.random() > 0.01 else "ETF", exchange="XNAS", active=t < dies[i],
                sector=sectors[i], price=float(np.exp(log_price[i])), market_cap=float(np.exp(log_cap[i])),
                ipo_sessions=age, streak=int(min(age, rng.integers(0, 40))),
                median_dollar_volume={N: float(np.exp(log_dv[i]))},
                mean_dollar_volume={N: float(np.exp(log_dv[i] + rng.normal(0.1, 0.1)))},
                coverage={N: int(min(age, N, N - rng.integers(0, 8)))})
        markets.append(today)
    return days, markets


# --- the oracle ----------------------------------------------------------------------------------

def candidate(d, s, seasoning):
    c = d.candidates
    ok = s.type in c.types and (not c.exchanges or s.exchange in c.exchanges) and (s.active or not c.active)
    return ok and (not seasoning or (c.min_ipo_sessions == 0 or (s.ipo_sessions or 0) >= c.min_ipo_sessions))


def screen_failures(screens, s):
    failed = []
    for name in ("median_dollar_volume", "mean_dollar_volume"):
        w = getattr(screens, name)
        value = getattr(s, name).get(w.sessions) if w else None
        if w and (value is None or value < w.minimum):
            failed.append(name)
    if screens.min_price is not None and (s.price is None or s.price < screens.min_price):
        failed.append("min_price")
    if screens.coverage and s.coverage.get(screens.coverage.sessions, 0) < screens.coverage.min_sessions:
        failed.append("coverage")
    if screens.recent_sessions and s.streak < screens.recent_sessions:
        failed.append("recent_sessions")
    return failed


def ranking(d, market):
    def value(s):
        return s.market_cap if d.rank.metric == "market_cap" else getattr(s, d.rank.metric)[d.rank.sessions]

    ranked = sorted((-value(s), s.symbol) for s in market.values()
                    if candidate(d, s, False) and not screen_failures(d.stay, s) and value(s) and value(s) > 0)
    total = sum(-v for v, _ in ranked)
    ranks, pcts, running = {}, {}, 0.0
    for i, (v, symbol) in enumerate(ranked, 1):
        running += -v
        ranks[symbol], pcts[symbol] = i, min(100.0, running / total * 100)
    return ranks, pcts


def in_selection(d, rank, pct, banded):
    sel = d.selection
    if sel.kind == "all":
        return True
    if rank is None:
        return False
    if sel.kind in ("top", "rank_range"):
        b = d.band.ranks if banded else 0
        first, last = (1, sel.count) if sel.kind == "top" else (sel.first, sel.last)
        return first - b <= rank <= last + b
    b = d.band.percentile if banded else 0.0
    return sel.from_pct - b < pct <= sel.to_pct + b


def check_step(d, prev, result, market, day):
    recon = CALENDAR.is_reconstitution(day, d.reconstitution)
    assert result.reconstitution == recon
    ranks, pcts = ranking(d, market)
    members = result.members
    reasons = {r.symbol: r for r in result.changes}
    kept = {r.symbol: r for r in result.kept}
    assert len(reasons) == len(result.changes) and len(kept) == len(result.kept)
    # every change has exactly one reason, and nothing else has one
    assert set(reasons) == set(prev) ^ set(members)
    for symbol, r in reasons.items():
        assert r.action == ("entered" if symbol in members else "left")
        assert any(ch.isdigit() for ch in r.text) and r.text.startswith(r.action.replace("_", " "))
    for symbol in members:
        s = market.get(symbol)
        assert s is not None and candidate(d, s, seasoning=False)  # maintenance holds every session
        if symbol in prev:
            assert members[symbol] == prev[symbol]  # the entry date is kept
            if recon and symbol not in kept or (symbol in kept and kept[symbol].action == "kept_by_band"):
                # every member satisfies the stay rules (unless protected by the minimum stay)
                assert not screen_failures(d.stay, s), (symbol, screen_failures(d.stay, s))
                assert in_selection(d, ranks.get(symbol), pcts.get(symbol), banded=True)
            if symbol in kept:
                r = kept[symbol]
                assert recon
                if r.action == "kept_by_band":
                    assert r.rule == "band" and not in_selection(d, ranks.get(symbol), pcts.get(symbol), banded=False)
                else:
                    assert r.rule == "min_stay_sessions" and d.min_stay_sessions > 0
                    assert screen_failures(d.stay, s) or not in_selection(d, ranks.get(symbol), pcts.get(symbol), True)
                    assert CALENDAR.sessions_since(prev[symbol], day) - 1 < d.min_stay_sessions
        else:
            # every entrant satisfies the entry rules on its entry day
            assert members[symbol] == day
            assert candidate(d, s, seasoning=True) and not screen_failures(d.entry, s)
            assert in_selection(d, ranks.get(symbol), pcts.get(symbol), banded=False)
            if recon:
                assert reasons[symbol].rule == "selection"
            else:  # between reconstitution days only IPOs on the fast-entry policy join
                low = d.candidates.min_ipo_sessions
                assert d.ipo_policy == "fast_entry" and low <= s.ipo_sessions < low + d.ipo_window_sessions
                assert reasons[symbol].rule == "ipo_policy"
    for symbol in set(prev) - set(members):
        rule = reasons[symbol].rule
        s = market.get(symbol)
        if not recon:
            assert rule in MAINTENANCE_RULES  # between reconstitution days only maintenance changes happen
        # the reason names the rule that fired
        if rule == "missing":
            assert s is None
        elif rule.startswith("candidates."):
            assert not candidate(d, s, False)
        elif rule.startswith("stay."):
            assert rule.removeprefix("stay.") in screen_failures(d.stay, s)
        elif rule in ("selection", "band", "rank.metric"):
            assert not in_selection(d, ranks.get(symbol), pcts.get(symbol), banded=True)
        else:
            assert rule == "sector_cap" and d.sector_cap is not None
            assert not screen_failures(d.stay, s)
    # sector caps hold
    limit = d.sector_cap_count()
    if limit is not None:
        counts = {}
        for symbol in members:
            counts[market[symbol].sector] = counts.get(market[symbol].sector, 0) + 1
        assert max(counts.values(), default=0) <= limit
    c = result.churn
    assert (c.before, c.after) == (len(prev), len(members))
    assert (c.entered, c.left) == (len(set(members) - set(prev)), len(set(prev) - set(members)))
    assert 0.0 <= c.turnover <= 1.0


def replay(d, days, markets, check=True):
    members, churn = {}, 0
    for day, market in zip(days, markets):
        result = run(d, members, market, day, CALENDAR)
        if check:
            check_step(d, members, result, market, day)
            for symbol in list(market)[:3] + list(members)[:2]:
                answer = result.explain(symbol)
                assert answer.member == (symbol in result.members)
                assert answer.summary.startswith(("in:", "out:", "entered:", "left:", "kept by"))
                assert answer.summary.startswith(("in:", "entered:", "kept by")) == answer.member
                if not answer.member and symbol in market and symbol not in members and result.reconstitution:
                    failing = [c for c in answer.checks if not c.ok]
                    if failing:  # the summary names the first rule that keeps it out, with its numbers
                        assert answer.summary == f"out: {failing[0].text}"
        churn += result.churn.entered + result.churn.left
        members = dict(result.members)
    return churn


@PROPERTY_SETTINGS
@given(d=definitions(), path=paths())
def test_every_step_obeys_the_rules(d, path):
    replay(d, *path)


@PROPERTY_SETTINGS
@given(d=definitions(plain=True), path=paths())
def test_banded_churn_is_at_most_unbanded_churn(d, path):
    unbanded = rd.parse_definition(d.key, {**rd.to_mapping(d), "band": {}})
    assert d.band.active and not unbanded.band.active
    assert replay(d, *path, check=False) <= replay(unbanded, *path, check=False)


@PROPERTY_SETTINGS
@given(first=definitions(), second=definitions(), path=paths(), count=st.integers(1, 15))
def test_run_all_equals_run_of_each_definition(first, second, path, count):
    """run_all shares candidates, screens and rankings between definitions; each result equals run's."""
    # a third definition ranked like the first (the same candidates, stay screens and metric) with another
    # selection, so that the shared ranking serves two definitions
    variant = rd.parse_definition("variant", {**rd.to_mapping(first), "band": {}, "sector_cap": None,
                                              "selection": {"kind": "top", "count": count}})
    defs = {"random": first, "second": rd.parse_definition("second", rd.to_mapping(second)), "variant": variant}
    members: dict[str, dict] = {}
    for day, market in zip(*path):
        together = run_all(defs, members, market, day, CALENDAR)
        assert list(together) == list(defs)
        for key, d in defs.items():
            alone = run(d, members.get(key, {}), market, day, CALENDAR)
            got = together[key]
            assert got == alone and list(got.members.items()) == list(alone.members.items())
            assert list(got.ranks.items()) == list(alone.ranks.items())
        members = {key: dict(r.members) for key, r in together.items()}


def _edges() -> list:
    """The values where a screen of the random definitions is decided: missing, not finite, zero, and each
    bound they can draw (dollar volumes, prices, times the looser factors), just below it, at it, just above."""
    bounds = {m * f for m in (1e6, 2.5e6, 5e6, 3e6, 5.0, 10.0) for f in (0.5, 0.8, 1.0)}
    return [None, math.nan, math.inf, 0.0, *sorted(x for b in bounds for x in (math.nextafter(b, 0), b,
                                                                             math.nextafter(b, math.inf)))]


EDGE_NUMBERS = st.sampled_from(_edges())


@st.composite
def edge_stats(draw):
    """A SymbolStats of values at the edges of the random definitions' screens."""
    def window_value():
        value = draw(EDGE_NUMBERS)
        return {} if value is None and draw(st.booleans()) else {N: value}

    return SymbolStats(
        symbol="S", type=draw(st.sampled_from(["CS", "CS", "CS", "ETF", None])),
        exchange=draw(st.sampled_from(["XNAS", None])), active=draw(st.sampled_from([True, True, True, False])),
        sector=None, price=draw(EDGE_NUMBERS), market_cap=draw(EDGE_NUMBERS),
        ipo_sessions=draw(st.none() | st.integers(0, 6)), streak=draw(st.integers(0, 12)),
        median_dollar_volume=window_value(), mean_dollar_volume=window_value(),
        coverage={} if draw(st.booleans()) else {N: draw(st.integers(0, N))})


@settings(max_examples=400, deadline=None)
@given(d=definitions(), s=edge_stats(), seasoning=st.booleans())
def test_the_fast_rule_predicates_agree_with_the_worded_checks(d, s, seasoning):
    """_is_candidate and _passes decide what _candidate_checks and _screen_checks word: an entrant's reason is
    built from the checks only after the predicates admitted it, so the two must never disagree. Each screen
    is compared alone too (all of them at once would hide a disagreement behind another screen's failure)."""
    assert _is_candidate(d.candidates, s, seasoning) == all(c.ok for c in _candidate_checks(d, s, seasoning))
    for screens, side in ((d.entry, "entry"), (d.stay, "stay")):
        assert _passes(screens, s) == all(c.ok for c in _screen_checks(screens, s, side)), (side, screens, s)
        none = {f.name: None for f in dataclasses.fields(screens)}
        for name in none:
            alone = dataclasses.replace(screens, **{**none, name: getattr(screens, name)})
            assert _passes(alone, s) == all(c.ok for c in _screen_checks(alone, s, side)), (side, name, alone, s)


def _reference_ranking(d: rd.RuleDefinition, stats: dict[str, SymbolStats]) -> tuple[list, dict, dict]:
    """The ranking as its rule reads, one symbol at a time: the candidates passing the stay screens with a
    positive, finite metric, largest first and ties by symbol; percentile = running share of the total."""
    ranked = []
    for symbol, s in stats.items():
        if not (_is_candidate(d.candidates, s, False) and _passes(d.stay, s)):
            continue
        v = s.market_cap if d.rank.metric == "market_cap" else getattr(s, d.rank.metric).get(d.rank.sessions)
        if v is not None and 0.0 < v < math.inf:
            ranked.append((-v, symbol))
    ranked.sort()
    order = [symbol for _, symbol in ranked]
    total = math.fsum(-v for v, _ in ranked)
    running, pcts = 0.0, {}
    for v, symbol in ranked:
        running += -v
        pcts[symbol] = min(100.0, running / total * 100.0) if total > 0 else 100.0
    return order, {symbol: i + 1 for i, symbol in enumerate(order)}, pcts


_INFINITE = SymbolStats("S", price=math.inf, market_cap=math.inf, ipo_sessions=3, median_dollar_volume={N: math.inf},
                        mean_dollar_volume={N: math.inf}, coverage={N: N})


@settings(max_examples=300, deadline=None)
@given(d=definitions(), rows=st.lists(edge_stats(), min_size=0, max_size=12),
       sectors=st.lists(st.sampled_from(SECTORS), min_size=12, max_size=12))
@example(d=rd.parse_definition("inf", {"entry": {"median_dollar_volume": {"sessions": N, "min": 1e6},
                                                 "mean_dollar_volume": {"sessions": N, "min": 1e6}, "min_price": 5.0},
                                       "stay": {}, "selection": {"kind": "all"}}),
         rows=[_INFINITE, _INFINITE._replace(price=7.0, median_dollar_volume={N: 2e6}, mean_dollar_volume={N: 2e6})],
         sectors=[None] * 12)
def test_the_market_by_column_equals_the_rules_symbol_by_symbol(d, rows, sectors):
    """Market screens and ranks by column (numpy); on values at every edge of the screens (missing, NaN,
    infinite, at and beside each bound, ties of the metric) its candidates, passing sets and rankings equal
    the per-symbol predicates and the ranking's rule, whether it is given SymbolStats or their columns."""
    from tickstockpl.universes.rules.engine import Market
    from tickstockpl.universes.rules.stats import StatsColumns

    stats = {f"S{i:02d}": s._replace(symbol=f"S{i:02d}", sector=sector)
             for i, (s, sector) in enumerate(zip(reversed(rows), sectors))}  # not in symbol order: the stats' order is kept apart
    for market in (Market(stats), Market(StatsColumns.of_stats(stats))):
        for seasoning in (False, True):
            assert market.candidates(d.candidates, seasoning) == \
                {symbol for symbol, s in stats.items() if _is_candidate(d.candidates, s, seasoning)}
        for screens in (d.entry, d.stay):
            assert market.passing(screens) == {symbol for symbol, s in stats.items() if _passes(screens, s)}
        ranking = market.ranking(d)
        order, ranks, pcts = _reference_ranking(d, stats)
        assert list(ranking.order) == order and ranking.ranks == ranks
        assert list(ranking.percentiles.items()) == list(pcts.items())
        assert [market.position(symbol) for symbol in stats] == list(range(len(stats)))
        assert all(market.sector(symbol) == s.sector for symbol, s in stats.items())
