"""The replay (universes/rules/replay.py): the statistics of past sessions rebuilt in memory from the bars
equal what pl_symbol_liquidity (liquidity.rebuild) and window_stats give at each of those sessions."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickstockpl.market import liquidity, snapshot
from tickstockpl.universes import backfill
from tickstockpl.universes.rules import definition as rd
from tickstockpl.universes.rules.publish import run_session
from tickstockpl.universes.rules.replay import Windows, replay, securities_on
from tickstockpl.universes.rules.schedule import SessionCalendar
from tickstockpl.universes.rules.stats import from_market
from tests.universes.rules.test_liquidity import SMALL_WINDOW, hostile_market  # noqa: F401 - a fixture

DAY0 = dt.date(2026, 1, 2)

bars = st.one_of(
    st.none(),  # no bar that session
    st.tuples(st.one_of(st.floats(-4.0, 6.0).map(lambda e: 10.0 ** e), st.sampled_from([0.0, -1.0, math.nan, 1e15, 3.1])),
              st.one_of(st.none(), st.integers(-5, 10**9), st.sampled_from([0, 1, 100, 12345]))),
)


@settings(max_examples=80, deadline=None)
@given(path=st.lists(bars, min_size=1, max_size=300), start=st.integers(0, 3), every=st.integers(1, 60))
def test_the_windows_equal_window_stats_on_random_bars(path, start, every):
    """One symbol's window against a direct computation and window_stats, every `every` sessions (the
    sessions before the first look are folded in at once, the later ones one by one)."""
    windows = Windows((1, 5, 20, 252))
    days = [DAY0 + dt.timedelta(days=i) for i in range(len(path) + start)]
    for day in days[:start]:  # sessions before the symbol's first bar: no row yet
        windows.advance(day, [], [], [])
    expected: list[float | None] = []
    seen = False
    for i, (day, bar) in enumerate(zip(days[start:], path)):
        if bar is None:
            windows.advance(day, [], [], [])
        else:
            windows.advance(day, ["A"], [bar[0]], [bar[1]])
        seen = seen or bar is not None
        if seen:
            close, volume = bar if bar is not None else (None, None)
            ok = close is not None and 0 < close < 1e15 and volume is not None and volume >= 0
            expected.append(float(np.float32(close * volume)) if ok else None)
        if i % every and i < len(path) - 1:
            continue
        if not seen:
            assert windows.rows() == []
            continue
        (row,) = windows.rows()
        assert row.dollar_volumes == tuple(expected[-liquidity.WINDOW:])
        (sec,) = [snapshot.Security("A", None, "CS", True, 1e9)]
        got = windows.stats([sec], day).to_dict()["A"]
        assert got == from_market([sec], [row], windows.windows, day)["A"]
        direct = liquidity.window_stats(row.dollar_volumes, windows.windows)
        assert dict(got.mean_dollar_volume) == direct.mean_dollar_volume  # fsum / count, exactly
        assert dict(got.median_dollar_volume) == direct.median_dollar_volume


def test_the_mean_is_fsum_not_a_running_sum():
    """Dollar volumes far apart in size: a plain sum of them (in any order) rounds differently from fsum."""
    values = [893104357376.0, 0.2648146152496338, 0.005349121522158384, 631664738304.0]  # float4 values
    assert sum(sorted(values)) != math.fsum(values) and sum(values) != math.fsum(values)
    windows = Windows((4,))
    for i, value in enumerate(values):
        windows.advance(DAY0 + dt.timedelta(days=i), ["A"], [value], [1])
    got = windows.stats([snapshot.Security("A", None, "CS", True, 1e9)], windows.through).to_dict()["A"]
    assert got.mean_dollar_volume[4] == math.fsum(values) / 4


def _replayed_windows(conn, start: dt.date, through: dt.date):
    """The windows moved session by session from the WINDOW-th session before `start` through `through`,
    yielding (session, windows) for every session from `start` on (what a backfill reads)."""
    days = backfill._sessions(conn, start, through)
    windows = Windows((3, 5, SMALL_WINDOW))
    prices = backfill._prior(conn, days[0], windows)
    for step in backfill.session_bars(conn, days, prices):
        windows.advance(step.day, step.symbols, step.closes, step.volumes, step.valid)
        if step.day >= start:
            yield step, windows


def test_replayed_statistics_equal_the_rebuilt_table(hostile_market, monkeypatch):
    """At several sessions the replayed rows and statistics equal liquidity.rebuild + load + from_market,
    with windows that roll over (WINDOW 7), broken bars, a gap, a late first bar and a symbol listed last;
    replays that start late (bars before their first session: windows.start) agree too."""
    url, days = hostile_market
    monkeypatch.setattr(liquidity, "WINDOW", SMALL_WINDOW)
    checked = 0
    with psycopg.connect(url, autocommit=True) as conn:
        securities = snapshot.load(conn, days[-1]).securities
        for start in (days[0], days[9], days[16]):
            for step, windows in _replayed_windows(conn, start, days[-1]):
                if step.day not in (start, days[12], days[20], days[25], days[-1]) or step.day < start:
                    continue
                with conn.transaction():
                    liquidity.rebuild(conn, step.day)
                    rows = liquidity.load(conn)
                got = windows.rows()
                # a replay that starts late has short windows for its first WINDOW sessions
                if days.index(step.day) - days.index(start) >= SMALL_WINDOW or start == days[0]:
                    assert got == rows
                    stats = from_market(securities, rows, windows.windows, step.day)
                    assert windows.stats(securities, step.day).to_dict() == stats
                    checked += 1
                else:  # what does not depend on the window agrees from the first session on
                    assert [(r.symbol, r.first_session, r.sessions_seen, r.last_close, r.last_valid_session) for r in got] \
                        == [(r.symbol, r.first_session, r.sessions_seen, r.last_close, r.last_valid_session) for r in rows]
    assert checked >= 8


def test_replay_runs_the_definitions_session_after_session(market_db_url, small_market):
    """replay() gives, at each session, the rule universes (publish.run_session) of the definitions on that session's statistics with the
    members of the session before; past securities are survivorship-free."""
    days = small_market.sessions
    defs = rd.default_definitions()
    short = {"tradable_10": rd.parse_definition("tradable_10", {**rd.to_mapping(defs["tradable_us"]), "entry": {
        "median_dollar_volume": {"sessions": 10, "min": 2_500_000}, "min_price": 5.0,
        "coverage": {"sessions": 10, "min_sessions": 9}, "recent_sessions": 5}}),
        "mega_daily": rd.parse_definition("mega_daily", {**rd.to_mapping(defs["crsp_mega"]),
                                                         "reconstitution": {"schedule": "every_session"}}),
        "crsp_mega": defs["crsp_mega"]}  # quarterly: no reconstitution day in the market, constituted on the first
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        today = snapshot.load(conn, days[-1])
        sessions = backfill._sessions(conn, days[10], days[-1])
        windows = Windows((10,))
        prices = backfill._prior(conn, sessions[0], windows)
        calendar = SessionCalendar(sessions)
        steps = list(replay(short, today, backfill.session_bars(conn, sessions, prices), calendar,
                            first=days[10], windows=windows))
    assert [s.day for s in steps] == list(days[10:])
    members: dict = {}
    for step in steps:
        again = run_session(short, members, step.stats, step.day, calendar)
        assert again == step.results
        members = {k: dict(r.members) for k, r in again.items()}
    assert steps[-1].results["tradable_10"].members and steps[-1].results["mega_daily"].members
    # the quarterly universe is constituted on the first session (as the sync's publish does), then only
    # maintained: it equals the daily one's constitution less the members lost to maintenance since
    first_run = steps[0].results["crsp_mega"]
    assert first_run.members == steps[0].results["mega_daily"].members and first_run.definition is defs["crsp_mega"]
    assert set(steps[-1].results["crsp_mega"].members) <= set(first_run.members)
    assert all(not r.reconstitution for s in steps[1:] for r in [s.results["crsp_mega"]])
    # a delisted stock (inactive today) was active, and could be a member, in the sessions it had bars for
    gone = [s for s in today.securities if s.type == "CS" and not s.active and s.last_bar_date is not None
            and s.last_bar_date >= days[11]]
    assert gone
    for sec in gone:
        then = {s.symbol: s for s in steps[0].securities}[sec.symbol]
        assert then.active and then.last_bar_date <= days[10]
        after = {s.symbol: s for s in steps[-1].securities}.get(sec.symbol)
        assert after is not None and after.active == (days[-1] <= sec.last_bar_date)
    # a symbol listed on the last session is not among the first session's securities
    late = [s.symbol for s in today.securities if s.list_date == days[-1] and s.last_bar_date == days[-1]]
    assert late and not set(late) & {s.symbol for s in steps[0].securities}


def test_market_cap_then_is_todays_cap_scaled_by_the_close():
    sec = snapshot.Security("A", None, "CS", True, 1000.0, last_close=20.0, last_bar_date=DAY0)
    from tickstockpl.universes.rules.replay import Price

    (then,) = securities_on(snapshot.Snapshot(DAY0, (sec,)), {"A": Price(10.0, DAY0)}, DAY0)
    assert then.market_cap == 500.0 and then.last_close == 10.0
    assert securities_on(snapshot.Snapshot(DAY0, (sec,)), {}, DAY0) == ()  # no bar by then: not listed yet
