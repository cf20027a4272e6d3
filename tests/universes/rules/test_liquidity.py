"""pl_symbol_liquidity (market/liquidity.py) against a straightforward computation from ohlcv_daily.

The small sample market (30 sessions) with hostile bars mixed in: a zero close, a NULL volume, a NaN
close, a deleted bar (a gap) and a symbol whose first bar comes mid-way. WINDOW is lowered to 7 so that
windows fill up and roll over within the market.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics

import numpy as np
import psycopg
import pytest

from tickstockpl.market import liquidity

SMALL_WINDOW = 7


def _naive(conn, through: dt.date, window: int) -> dict[str, tuple]:
    """Per symbol, from the bars themselves: (first session, sessions seen, window of dollar volumes,
    last valid close, its date), reading every bar on or before `through`."""
    sessions = [r[0] for r in conn.execute(
        "SELECT session FROM pl_market_sessions WHERE session <= %s ORDER BY session", (through,))]
    pos = {d: i for i, d in enumerate(sessions)}
    bars: dict[str, dict[dt.date, tuple]] = {}
    for symbol, day, close, volume in conn.execute(
            "SELECT symbol, date, close, volume FROM ohlcv_daily WHERE date <= %s", (through,)):
        if day in pos:
            bars.setdefault(symbol, {})[day] = (close, volume)
    out = {}
    for symbol, by_day in bars.items():
        first = min(by_day)
        span = sessions[pos[first]:]
        values = []
        last = (None, None)
        for day in span:
            close, volume = by_day.get(day, (None, None))
            valid = close is not None and not close.is_nan() and 0 < close < 10**15 and volume is not None and volume >= 0
            values.append(float(np.float32(float(close) * float(volume))) if valid else None)  # stored as real
            if valid:
                last = (float(close), day)
        out[symbol] = (first, len(span), tuple(values[-window:]), *last)
    return out


def _table(conn) -> dict[str, tuple]:
    return {r.symbol: (r.first_session, r.sessions_seen, r.dollar_volumes, r.last_close, r.last_valid_session)
            for r in liquidity.load(conn)}


def _close_enough(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for symbol in a:
        x, y = a[symbol], b[symbol]
        if x[:2] != y[:2] or x[4] != y[4] or len(x[2]) != len(y[2]):
            return False
        if (x[3] is None) != (y[3] is None) or (x[3] is not None and not math.isclose(x[3], y[3])):
            return False
        for u, v in zip(x[2], y[2]):
            if (u is None) != (v is None) or (u is not None and not math.isclose(u, v, rel_tol=1e-12)):
                return False
    return True


@pytest.fixture
def hostile_market(market_db_url, small_market):
    """The small market with broken bars; returns (url, sessions)."""
    days = small_market.sessions
    with psycopg.connect(market_db_url) as conn:
        a, b, c, d, e = [r[0] for r in conn.execute(
            "SELECT symbol FROM ohlcv_daily WHERE date = %s ORDER BY symbol LIMIT 5", (days[-1],))]
        conn.execute("UPDATE ohlcv_daily SET close = 0 WHERE symbol = %s AND date = %s", (a, days[12]))
        conn.execute("UPDATE ohlcv_daily SET volume = NULL WHERE symbol = %s AND date = %s", (b, days[-1]))
        conn.execute("UPDATE ohlcv_daily SET close = 'NaN' WHERE symbol = %s AND date = %s", (c, days[20]))
        conn.execute("DELETE FROM ohlcv_daily WHERE symbol = %s AND date = %s", (d, days[15]))
        conn.execute("DELETE FROM ohlcv_daily WHERE symbol = %s AND date < %s", (e, days[18]))  # a late first bar
        conn.execute("INSERT INTO ohlcv_daily (symbol, date, open, high, low, close, volume)"
                     " VALUES ('NEWBIE', %s, 10, 10, 10, 10, 1000)", (days[25],))
    return market_db_url, days


def test_incremental_equals_rebuild_equals_the_bars(hostile_market, monkeypatch):
    url, days = hostile_market
    monkeypatch.setattr(liquidity, "WINDOW", SMALL_WINDOW)
    with psycopg.connect(url) as conn:
        assert liquidity.rebuild(conn, days[9]) > 0
        assert _close_enough(_table(conn), _naive(conn, days[9], SMALL_WINDOW))
        for day in days[10:]:
            assert liquidity.update_session(conn, day) > 0
        incremental = _table(conn)
        naive = _naive(conn, days[-1], SMALL_WINDOW)
        assert _close_enough(incremental, naive)
        assert "NEWBIE" in incremental and incremental["NEWBIE"][1] == len(days) - 25
        liquidity.rebuild(conn, days[-1])
        assert _close_enough(_table(conn), incremental)
        # the full window (252) too: nothing rolls over in 30 sessions, so every window starts at the first bar
        monkeypatch.setattr(liquidity, "WINDOW", 252)
        liquidity.rebuild(conn, days[-1])
        assert _close_enough(_table(conn), _naive(conn, days[-1], 252))


def test_window_stats_match_a_direct_computation(hostile_market):
    url, days = hostile_market
    with psycopg.connect(url) as conn:
        liquidity.rebuild(conn, days[-1])
        rows = liquidity.load(conn)
        naive = _naive(conn, days[-1], 252)
    assert rows
    for row in rows:
        got = liquidity.window_stats(row.dollar_volumes, (5, 20, 200))
        values = naive[row.symbol][2]
        for n in (5, 20, 200):
            valid = [v for v in values[-n:] if v is not None]
            assert got.coverage[n] == len(valid)
            assert got.median_dollar_volume[n] == (statistics.median(valid) if valid else None)
            assert (got.mean_dollar_volume[n] is None) == (not valid)
            if valid:
                assert math.isclose(got.mean_dollar_volume[n], sum(valid) / len(valid), rel_tol=1e-12)
        streak = 0
        while streak < len(values) and values[len(values) - 1 - streak] is not None:
            streak += 1
        assert got.streak == streak


def test_refusals_and_idempotence(hostile_market):
    url, days = hostile_market
    with psycopg.connect(url) as conn:
        with pytest.raises(liquidity.LiquidityError, match="empty"):
            liquidity.update_session(conn, days[3])
        with pytest.raises(liquidity.LiquidityError, match="not an NYSE session"):
            liquidity.rebuild(conn, dt.date(2026, 11, 26))  # Thanksgiving
        liquidity.rebuild(conn, days[5])
        with pytest.raises(liquidity.LiquidityError, match="catch up or rebuild"):
            liquidity.update_session(conn, days[7])  # skips days[6]
        before = _table(conn)
        assert liquidity.update_session(conn, days[5]) == 0  # already folded: nothing happens
        with pytest.raises(liquidity.LiquidityError, match="after"):
            liquidity.update_session(conn, days[4])
        assert _table(conn) == before
        assert liquidity.catch_up(conn, days[-1]) > 0
        assert _close_enough(_table(conn), _naive(conn, days[-1], liquidity.WINDOW))


def test_window_stats_refuses_a_window_beyond_the_table():
    with pytest.raises(ValueError, match="253"):
        liquidity.window_stats([1.0], (253,))


def test_statistics_of_the_sample_market_feed_the_engine(market_db_url, small_market):
    """Snapshot + pl_symbol_liquidity -> SymbolStats -> the built-in definitions, on the real tables."""
    from tickstockpl.market import snapshot
    from tickstockpl.universes.rules import definition as rd
    from tickstockpl.universes.rules.engine import run
    from tickstockpl.universes.rules.schedule import SessionCalendar
    from tickstockpl.universes.rules.stats import from_market

    days = small_market.sessions
    with psycopg.connect(market_db_url) as conn:
        liquidity.rebuild(conn, days[-2])
        liquidity.update_session(conn, days[-1])
        snap = snapshot.load(conn, days[-1])
        rows = liquidity.load(conn)
        defs = rd.default_definitions()
        # a 20-session variant of tradable_us: the sample market holds 30 sessions
        short = rd.parse_definition("tradable_20", {**rd.to_mapping(defs["tradable_us"]), "entry": {
            "median_dollar_volume": {"sessions": 20, "min": 2_500_000}, "min_price": 5.0,
            "coverage": {"sessions": 20, "min_sessions": 18}, "recent_sessions": 5}})
        stats = from_market(snap.securities, rows, short.windows(), days[-1])
        with pytest.raises(ValueError, match="catch it up"):
            from_market(snap.securities, rows, short.windows(), days[-2])
    calendar = SessionCalendar(days)
    result = run(short, {}, stats, days[-1], calendar)
    by_symbol = {s.symbol: s for s in snap.securities}
    assert result.members
    for symbol in result.members:
        s = stats[symbol]
        assert by_symbol[symbol].type == "CS" and by_symbol[symbol].active
        assert s.median_dollar_volume[20] >= 2_500_000 and s.price >= 5 and s.coverage[20] >= 18 and s.streak >= 5
    inactive = [s.symbol for s in snap.securities if s.type == "CS" and not s.active]
    assert inactive and not set(inactive) & set(result.members)
    assert run(defs["crsp_mega"], {}, stats, days[-1], calendar).members == {}  # 11-27: no quarterly day
    daily = rd.parse_definition("mega_daily", {**rd.to_mapping(defs["crsp_mega"]),
                                               "reconstitution": {"schedule": "every_session"}})
    mega = run(daily, {}, stats, days[-1], calendar)
    caps = sorted((s.market_cap for s in stats.values() if s.market_cap and s.type == "CS" and s.active), reverse=True)
    assert mega.members and min(stats[s].market_cap for s in mega.members) >= max(
        stats[s].market_cap for s in set(stats) - set(mega.members) if stats[s].market_cap and stats[s].type == "CS"
        and stats[s].active and stats[s].exchange in daily.candidates.exchanges)
    assert sum(stats[s].market_cap for s in mega.members) <= 0.7 * sum(caps) * 1.0000001


def test_the_matrix_read_gives_the_statistics_of_the_rows(hostile_market, monkeypatch):
    """load_matrix + Matrix.stats + stats.from_table (what refresh_stats keeps) against load + stats.from_market, exactly,
    with the windows rolled over (WINDOW 7) and not (252)."""
    from tickstockpl.market.snapshot import load as load_snapshot
    from tickstockpl.universes.rules.stats import from_market, from_table

    url, days = hostile_market
    with psycopg.connect(url) as conn:
        securities = load_snapshot(conn, days[-1]).securities
        for window, sizes in ((SMALL_WINDOW, (1, 3, 7)), (252, (1, 5, 20, 29, 200, 252))):
            monkeypatch.setattr(liquidity, "WINDOW", window)
            liquidity.rebuild(conn, days[-1])
            rows, matrix = liquidity.load(conn), liquidity.load_matrix(conn)
            assert matrix.symbols == tuple(r.symbol for r in rows)
            slow = from_market(securities, rows, sizes, days[-1])
            fast = from_table(securities, matrix.stats(sizes), days[-1]).to_dict()
            assert slow.keys() == fast.keys()
            for symbol in slow:
                a, b = slow[symbol], fast[symbol]
                assert (a.price, a.ipo_sessions, a.streak, a.market_cap) == (b.price, b.ipo_sessions, b.streak, b.market_cap)
                assert dict(a.coverage) == dict(b.coverage), symbol
                assert dict(a.median_dollar_volume) == dict(b.median_dollar_volume), symbol
                assert dict(a.mean_dollar_volume) == dict(b.mean_dollar_volume), symbol
            assert any(s.streak < s.ipo_sessions for s in fast.values() if s.ipo_sessions)  # gaps were there
