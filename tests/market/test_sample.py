"""The sample market: determinism, coverage of the contract's cases, bar invariants, loading, files."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import re
from collections import Counter
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest

from tests.conftest import SMALL_MARKET
from tickstockpl.market import sample
from tickstockpl.market.sample_data import ESSENTIAL_ETFS

BANDS = (("mega", 200e9, None), ("large", 10e9, 200e9), ("mid", 2e9, 10e9), ("small", 300e6, 2e9),
         ("micro", 50e6, 300e6), ("below_micro", 0, 50e6))
# Contract §5.3: key -> (include, exclude); matched case-insensitively on whole words.
ETF_CATEGORIES = {
    "broad_market": (("Total Stock Market", "Total Market", "S&P 500", "Russell", "SPDR", "Core"),
                     ("Bond", "International", "Emerging", "Value", "Growth", "Technology", "Sector")),
    "growth": (("Growth",), ("Bond", "International")),
    "value": (("Value",), ("Bond", "International")),
    "technology": (("Technology", "Information Technology", "Tech"), ("Bond",)),
    "bonds": (("Bond", "Aggregate"), ()),
    "international": (("International", "Emerging Markets", "EAFE", "Developed Markets"), ("Bond",)),
    "factor": (("Factor", "Momentum", "Quality", "Min Vol", "Low Vol"), ()),
}


def has_word(name: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", name, re.IGNORECASE) is not None


def in_category(name: str, key: str) -> bool:
    include, exclude = ETF_CATEGORIES[key]
    return any(has_word(name, p) for p in include) and not any(has_word(name, p) for p in exclude)


def effective_cap(market, row) -> float | None:
    close, shares = market.last_close(row["symbol"]), row["weighted_shares_outstanding"]
    return close * shares if close and shares else row["market_cap"]


@pytest.fixture(scope="module")
def medium():
    return sample.generate(stocks=3000, etfs=600, sessions=60, end=dt.date(2026, 11, 27), seed=11)


def test_same_arguments_give_the_same_market(small_market):
    again = sample.generate(**SMALL_MARKET)
    assert again.symbols == small_market.symbols
    assert again.bar_symbols == small_market.bar_symbols
    assert np.array_equal(again.closes, small_market.closes)
    assert list(again.iter_bars()) == list(small_market.iter_bars())
    other = sample.generate(**{**SMALL_MARKET, "seed": 8})
    assert [r["symbol"] for r in other.symbols] != [r["symbol"] for r in small_market.symbols]


def test_sessions_are_real_nyse_sessions_ending_at_end(small_market):
    days = small_market.sessions
    assert len(days) == 30 and days[-1] == dt.date(2026, 11, 27)
    assert dt.date(2026, 11, 26) not in days  # Thanksgiving
    assert all(d.weekday() < 5 for d in days) and list(days) == sorted(set(days))
    # an end that is not a session: the last session before it
    assert sample.generate(stocks=10, etfs=0, sessions=3, end=dt.date(2026, 11, 29)).end == dt.date(2026, 11, 27)


def test_rows_have_the_contract_columns_and_unique_tickers(medium):
    symbols = [r["symbol"] for r in medium.symbols]
    assert len(symbols) == len(set(symbols)) == 3600
    assert symbols == sorted(symbols)
    for row in medium.symbols:
        assert tuple(row) == sample.SYMBOL_COLUMNS
        assert 1 <= len(row["symbol"]) <= 20 and row["symbol"] == row["symbol"].upper()
        assert row["type"] in ("CS", "ADRC", "ETF") and isinstance(row["active"], bool)
    assert Counter(r["type"] for r in medium.symbols)["ETF"] == 600
    assert any("." in s for s in symbols)  # class shares like ABC.B


def test_stocks_cover_sectors_industries_and_every_cap_band(medium):
    stocks = [r for r in medium.symbols if r["type"] == "CS"]
    sectors = {r["sector"] for r in stocks} - {None}
    assert len(sectors) == 11 and "Financial Services" in sectors
    assert any(r["sector"] is None and r["industry"] is None for r in stocks)
    industries = {r["industry"] for r in stocks} - {None}
    assert len(industries) >= 60
    assert {"Oil & Gas E&P", "Aerospace & Defense"} <= industries
    shared = {r["sector"] for r in stocks if r["industry"] == "Electronic Gaming & Multimedia"}
    assert shared == {"Technology", "Communication Services"}
    caps = [effective_cap(medium, r) for r in stocks if r["active"]]
    for band, low, high in BANDS:
        inside = [c for c in caps if c and c >= low and (high is None or c < high)]
        assert len(inside) >= 1, band
    assert any(c is None for c in caps)  # NULL caps: not eligible


def test_shares_are_consistent_with_cap_and_close(medium):
    checked = 0
    for row in medium.symbols:
        close, shares = medium.last_close(row["symbol"]), row["weighted_shares_outstanding"]
        if row["type"] == "CS" and close and shares:
            stale = medium.closes[medium._rows[row["symbol"]]]
            prices = stale[stale > 0] / 100
            # market_cap is the same shares at a close of the last few sessions (stale reference data)
            assert prices[-6:].min() * shares * 0.999 <= row["market_cap"] <= prices[-6:].max() * shares * 1.001
            checked += 1
    assert checked > 2500
    no_shares = [r for r in medium.symbols if r["type"] == "CS" and r["weighted_shares_outstanding"] is None]
    assert any(r["market_cap"] for r in no_shares) and any(r["market_cap"] is None for r in no_shares)


def test_etfs_exercise_every_category_and_exclusion(medium):
    etfs = {r["symbol"]: r for r in medium.symbols if r["type"] == "ETF"}
    active = {s: r["name"] for s, r in etfs.items() if r["active"]}
    assert set(ESSENTIAL_ETFS) <= set(active)
    for key, (include, exclude) in ETF_CATEGORIES.items():
        assert any(in_category(name, key) for name in active.values()), key
        for word in exclude:  # some fund matches the category but is excluded by this word
            assert any(any(has_word(n, p) for p in include) and has_word(n, word) for n in active.values()), (key, word)
    assert in_category(active["XLK"], "technology") and not in_category(active["XLK"], "broad_market")
    for biotech in ("IBB", "FBT"):
        assert "Biotechnology" in active[biotech] and not in_category(active[biotech], "technology")
    assert in_category(active["VTI"], "broad_market") and in_category(active["AGG"], "bonds")
    assert not in_category(active["AGG"], "broad_market") and not in_category(active["BNDX"], "international")
    assert not etfs["OLDT"]["active"]
    assert any(r["issuer"] is None for r in etfs.values()) and any(r["etf_type"] is None for r in etfs.values())
    assert any(r["aum_millions"] is None for r in etfs.values())
    assert any(r["market_cap"] for r in etfs.values()) and any(r["market_cap"] is None for r in etfs.values())


def test_lifecycles_ipos_delistings_missing_and_stale_bars(small_market):
    m, end = small_market, small_market.end
    recent = [r for r in m.symbols if (end - r["list_date"]).days < 30]
    assert {r["type"] for r in recent} >= {"CS", "ETF"} and len(recent) >= 3
    assert any(r["list_date"] == end for r in recent if r["type"] == "CS")
    for row in recent:  # no bar before the listing day
        first = np.flatnonzero(m.closes[m._rows[row["symbol"]]])[0]
        assert m.sessions[first] == row["list_date"]
    inactive = [r for r in m.symbols if not r["active"]]
    assert {r["type"] for r in inactive} == {"CS", "ETF"}
    assert all(m.last_bar_date(r["symbol"]) is None or m.last_bar_date(r["symbol"]) < end for r in inactive)
    without_bars = [r for r in m.symbols if r["symbol"] not in m.bar_symbols]
    assert without_bars and all(m.last_close(r["symbol"]) is None for r in without_bars)
    stale = [s for s in m.bar_symbols if m.by_symbol[s]["active"] and m.last_bar_date(s) < end]
    assert stale
    assert Counter(r["type"] for r in m.symbols)["ADRC"] >= 3
    assert any(not r["name"].isascii() for r in m.symbols if r["type"] == "ADRC")


def test_bars_are_plausible(medium):
    seen = 0
    for j in range(len(medium.sessions)):
        bars = medium.session_bars(j)
        assert np.all(bars.low >= 1)
        assert np.all(bars.low <= np.minimum(bars.open, bars.close))
        assert np.all(bars.high >= np.maximum(bars.open, bars.close))
        assert np.all(bars.volume > 0) and np.all(bars.transactions > 0)
        seen += len(bars.rows)
    assert seen == medium.bar_count
    rows = list(medium.iter_bars(sessions=[medium.end]))
    assert len(rows) == len(medium.session_bars(len(medium.sessions) - 1).rows)
    symbol, day, o, h, lo, c, v = rows[0]
    assert day == medium.end and lo <= min(o, c) <= max(o, c) <= h and c == medium.last_close(symbol)


def test_large_market_is_generated_in_compact_form():
    market = sample.generate(stocks=9600, etfs=2400, sessions=250, end=dt.date(2026, 11, 27))
    assert len(market.symbols) == 12000 and len(market.sessions) == 250
    assert market.closes.dtype == np.int32 and market.closes.nbytes <= 12000 * 250 * 4
    assert market.bar_count > 0.95 * 12000 * 250


def test_write_loads_symbols_and_bars_with_copy(db_url, small_market):
    with psycopg.connect(db_url) as conn:
        sample.write(conn, small_market)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS  # not committed
    with psycopg.connect(db_url) as conn:
        columns = ", ".join(sample.SYMBOL_COLUMNS)
        stored = conn.execute(f"SELECT {columns} FROM symbols ORDER BY symbol").fetchall()
        assert len(stored) == len(small_market.symbols)
        for row, expected in zip(stored, small_market.symbols):
            got = dict(zip(sample.SYMBOL_COLUMNS, row))
            for key in ("aum_millions", "expense_ratio", "net_assets"):
                got[key] = None if got[key] is None else float(got[key])
            assert got == {k: expected[k] for k in sample.SYMBOL_COLUMNS}
        bars = conn.execute("SELECT symbol, date, open, high, low, close, volume FROM ohlcv_daily").fetchall()
    assert len(bars) == small_market.bar_count
    as_float = {(s, d): (float(o), float(h), float(lo), float(c), v) for s, d, o, h, lo, c, v in bars}
    expected = {(s, d): (o, h, lo, c, v) for s, d, o, h, lo, c, v in small_market.iter_bars()}
    assert as_float == expected


def test_flat_files_have_the_exact_header_and_the_bars(tmp_path, small_market):
    days = list(small_market.sessions[-2:])
    paths = sample.write_flat_files(small_market, tmp_path, days)
    assert [p.name for p in paths] == ["2026-11-25.csv.gz", "2026-11-27.csv.gz"]
    for path, day in zip(paths, days):
        text = gzip.decompress(path.read_bytes()).decode()
        assert text.splitlines()[0] == "ticker,volume,open,close,high,low,window_start,transactions"
        rows = list(csv.DictReader(io.StringIO(text)))
        midnight = dt.datetime.combine(day, dt.time(0), tzinfo=ZoneInfo("America/New_York"))
        assert {int(r["window_start"]) for r in rows} == {int(midnight.timestamp()) * 10**9}
        assert [r["ticker"] for r in rows] == sorted(r["ticker"] for r in rows)
        expected = {s: (o, h, lo, c, v) for s, d, o, h, lo, c, v in small_market.iter_bars(sessions=[day])}
        got = {r["ticker"]: (float(r["open"]), float(r["high"]), float(r["low"]), float(r["close"]), int(r["volume"]))
               for r in rows}
        assert got == expected
    again = sample.write_flat_files(small_market, tmp_path / "again", days)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]
    with pytest.raises(ValueError):
        sample.write_flat_files(small_market, tmp_path, [dt.date(2026, 11, 26)])


def test_next_session_moves_prices_lists_one_ipo_and_delists_one(db_url, small_market):
    nxt = sample.next_session(small_market)
    new = nxt.market
    assert nxt.session == dt.date(2026, 11, 30) and new.sessions == small_market.sessions + (nxt.session,)
    assert list(new.iter_bars(small_market.sessions)) == list(small_market.iter_bars())  # history unchanged
    ipo, gone = new.by_symbol[nxt.ipo], new.by_symbol[nxt.delisted]
    assert nxt.ipo not in small_market.by_symbol and ipo["list_date"] == nxt.session and ipo["active"]
    assert new.last_bar_date(nxt.ipo) == nxt.session and new.last_close(nxt.ipo, small_market.end) is None
    assert small_market.by_symbol[nxt.delisted]["active"] and not gone["active"]
    assert new.last_bar_date(nxt.delisted) == small_market.end
    moved = [s for s in small_market.bar_symbols
             if small_market.last_bar_date(s) == small_market.end and new.last_bar_date(s) == nxt.session]
    assert len(moved) > 400 and any(new.last_close(s) != small_market.last_close(s) for s in moved)
    assert {r["symbol"] for r in new.symbols} == {r["symbol"] for r in small_market.symbols} | {nxt.ipo}
    assert sample.next_session(small_market).market.by_symbol.keys() == new.by_symbol.keys()  # deterministic

    with psycopg.connect(db_url) as conn:
        sample.write(conn, small_market)
        conn.commit()
        sample.apply_next_session(conn, small_market, nxt)
        conn.commit()
        assert conn.execute("SELECT count(*) FROM ohlcv_daily").fetchone()[0] == new.bar_count
        assert conn.execute("SELECT active FROM symbols WHERE symbol = %s", (nxt.delisted,)).fetchone() == (False,)
        row = conn.execute("SELECT list_date, close FROM symbols JOIN ohlcv_daily USING (symbol) WHERE symbol = %s",
                           (nxt.ipo,)).fetchone()
        assert row[0] == nxt.session and float(row[1]) == new.last_close(nxt.ipo)
    with pytest.raises(ValueError):
        sample.apply_next_session(None, new, nxt)


def test_market_db_url_holds_the_small_market(market_db_url, small_market):
    with psycopg.connect(market_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM symbols").fetchone()[0] == len(small_market.symbols)
        assert conn.execute("SELECT count(*), max(date) FROM ohlcv_daily").fetchone() == (
            small_market.bar_count, small_market.end)
        assert conn.execute("SELECT count(*) FROM cache_entries").fetchone()[0] == 0
