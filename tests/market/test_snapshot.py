"""market.snapshot.load against real data: latest closes, effective caps, as-of dates, index use."""

from __future__ import annotations

import datetime as dt
import json
import math

import psycopg
import pytest

from tickstockpl.market import sample
from tickstockpl.market.snapshot import LOAD_SQL, effective_market_cap, load, params


def active_stock_with(market, predicate):
    for row in market.symbols:
        if row["type"] == "CS" and row["active"] and predicate(row):
            return row
    raise AssertionError("the small market has no such stock")


def test_latest_close_and_cap_for_every_kind_of_symbol(market_db_url, small_market):
    m = small_market
    with psycopg.connect(market_db_url) as conn:
        snap = load(conn, m.end)
    assert snap.as_of == m.end and snap.latest_session == m.end
    assert snap.bars_on_latest_session == len(m.session_bars(len(m.sessions) - 1).rows)
    by = snap.by_symbol()
    assert list(by) == sorted(r["symbol"] for r in m.symbols)
    for row in m.symbols:
        sec = by[row["symbol"]]
        close = m.last_close(row["symbol"])
        assert sec.last_close == close and sec.last_bar_date == m.last_bar_date(row["symbol"])
        shares = row["weighted_shares_outstanding"]
        expected = close * shares if close and shares else row["market_cap"]
        assert sec.market_cap == (pytest.approx(expected) if expected else None), row["symbol"]
        assert (sec.type, sec.active, sec.sector, sec.list_date) == (row["type"], row["active"], row["sector"],
                                                                     row["list_date"])
    # the three situations of a latest close
    on_last = active_stock_with(m, lambda r: m.last_bar_date(r["symbol"]) == m.end)
    older = next(s for s in m.bar_symbols if m.by_symbol[s]["active"] and m.last_bar_date(s) < m.end)
    never = next(r for r in m.symbols if r["symbol"] not in m.bar_symbols)
    assert by[on_last["symbol"]].last_bar_date == m.end
    assert by[older].last_bar_date < m.end and by[older].last_close == m.last_close(older)
    assert by[never["symbol"]].last_close is None and by[never["symbol"]].last_bar_date is None
    assert by[never["symbol"]].market_cap == (float(never["market_cap"]) if never["market_cap"] else None)


def test_cap_falls_back_to_stored_cap_without_shares(market_db_url, small_market):
    row = next(r for r in small_market.symbols if r["type"] == "CS" and r["symbol"] in small_market.bar_symbols
               and r["weighted_shares_outstanding"] is None and r["market_cap"])
    with psycopg.connect(market_db_url) as conn:
        sec = load(conn, small_market.end).by_symbol()[row["symbol"]]
    assert sec.last_close is not None and sec.market_cap == float(row["market_cap"])


def test_invalid_values_make_the_cap_unknown(market_db_url, small_market):
    day = small_market.end
    cases = {  # symbol -> (market_cap, shares, close on the last session)
        "ZZNAN": (5_000_000_000, 1_000_000, "NaN"),      # NaN close: stored cap
        "ZZZERO": (0, 1_000_000, "0"),                    # zero close and zero stored cap: unknown
        "ZZNEG": (-7, -5, "12.5"),                        # negative shares and cap: unknown
        "ZZINF": (None, 10, "Infinity"),                  # infinite close, no stored cap: unknown
        "ZZOK": (1, 3, "2.50"),                           # close x shares wins over the stored cap
    }
    with psycopg.connect(market_db_url) as conn:
        for symbol, (cap, shares, close) in cases.items():
            conn.execute("INSERT INTO symbols (symbol, type, active, market_cap, weighted_shares_outstanding,"
                         " aum_millions) VALUES (%s, 'CS', true, %s, %s, 'NaN')", (symbol, cap, shares))
            conn.execute("INSERT INTO ohlcv_daily (symbol, date, open, high, low, close, volume)"
                         " VALUES (%s, %s, 1, 1, 1, %s::numeric, 100)", (symbol, day, close))
        by = load(conn, day).by_symbol()
    assert by["ZZNAN"].market_cap == 5e9 and math.isnan(by["ZZNAN"].last_close)
    assert by["ZZZERO"].market_cap is None and not by["ZZZERO"].is_eligible_stock
    assert by["ZZNEG"].market_cap is None
    assert by["ZZINF"].market_cap is None
    assert by["ZZOK"].market_cap == 7.5 and by["ZZOK"].is_eligible_stock
    assert all(by[s].aum_millions is None for s in cases)


@pytest.mark.parametrize("close, shares, stored, expected", [
    (10.0, 5, 99, 50.0), (None, 5, 99, 99.0), (10.0, None, 99, 99.0), (float("nan"), 5, 99, 99.0),
    (10.0, 0, None, None), (-1.0, 5, -3, None), (float("inf"), 5, 0, None), (1e300, 1e300, 4, 4.0),
    (10.0, 5, float("nan"), 50.0), (None, None, "x", None),
])
def test_effective_market_cap_rule(close, shares, stored, expected):
    assert effective_market_cap(close, shares, stored) == expected


def test_past_as_of_ignores_later_bars(market_db_url, small_market):
    m = small_market
    past = m.sessions[-6]
    with psycopg.connect(market_db_url) as conn:
        snap = load(conn, past)
        holiday = load(conn, dt.date(2026, 11, 26))  # Thanksgiving: the session before it counts
        before_everything = load(conn, m.sessions[0] - dt.timedelta(days=1))
    assert snap.latest_session == past
    assert snap.bars_on_latest_session == len(m.session_bars(len(m.sessions) - 6).rows)
    for sec in snap.securities:
        assert sec.last_close == m.last_close(sec.symbol, past)
        assert sec.last_bar_date is None or sec.last_bar_date <= past
    ipo = next(r for r in m.symbols if r["list_date"] == m.end)
    assert snap.by_symbol()[ipo["symbol"]].last_close is None
    assert holiday.latest_session == dt.date(2026, 11, 25)
    assert before_everything.latest_session is None and before_everything.bars_on_latest_session == 0
    assert all(s.last_close is None for s in before_everything.securities)


def test_no_symbols_still_reports_the_latest_session(market_db_url, small_market):
    with psycopg.connect(market_db_url) as conn:
        conn.execute("DELETE FROM symbols")
        snap = load(conn, small_market.end)
    assert snap.securities == () and snap.latest_session == small_market.end
    assert snap.bars_on_latest_session == len(small_market.session_bars(len(small_market.sessions) - 1).rows)


def _plan_nodes(node):
    yield node
    for child in node.get("Plans", ()):
        yield from _plan_nodes(child)


def test_finding_latest_closes_does_not_read_the_history(db_url):
    """1,000 sessions of bars: the plan reaches ohlcv_daily only through indexes, and the rows it
    reads are about one session's worth, not the history."""
    market = sample.generate(stocks=200, etfs=40, sessions=1000, end=dt.date(2026, 11, 27), seed=3)
    with psycopg.connect(db_url) as conn:
        sample.write(conn, market)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE ohlcv_daily")
        conn.execute("VACUUM ANALYZE symbols")
    total = market.bar_count
    with psycopg.connect(db_url) as conn:
        plan = conn.execute("EXPLAIN (FORMAT JSON) " + LOAD_SQL, params(market.end)).fetchone()[0]
        plan = plan if isinstance(plan, list) else json.loads(plan)
        on_bars = [n for n in _plan_nodes(plan[0]["Plan"]) if n.get("Relation Name") == "ohlcv_daily"]
        assert on_bars and all(n["Node Type"] != "Seq Scan" for n in on_bars), [n["Node Type"] for n in on_bars]

        snap = load(conn, market.end)  # same transaction: pg_stat_xact_* shows this backend's reads
        seq_scans, seq_read, idx_scans, idx_fetched = conn.execute(
            "SELECT seq_scan, seq_tup_read, idx_scan, idx_tup_fetch FROM pg_stat_xact_user_tables"
            " WHERE relname = 'ohlcv_daily'"
        ).fetchone()
    assert snap.latest_session == market.end and len(snap.securities) == 240
    assert seq_scans == 0 and seq_read == 0 and idx_scans >= 2
    assert 200 <= idx_fetched < total / 100  # ~one session (240 rows) plus one lookup per symbol without a bar
