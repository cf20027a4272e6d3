"""The import on AppV2's historical `ohlcv_daily` (symbol VARCHAR(10), DECIMAL(12,4) prices): a bar the real
columns cannot hold is rejected row by row with its reason; the session's other rows import."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from tests.appv2_schemas import HISTORICAL, MODEL, appv2_database  # noqa: F401
from tests.pipeline.helpers import add_symbols, good_bars, ny_midnight_ns, write_flat
from tickstockpl.db.check import ohlcv_limits
from tickstockpl.errors import DataError
from tickstockpl.pipeline.imports import SessionData
from tickstockpl.pipeline.imports.flatfiles import FlatFileProvider
from tickstockpl.pipeline.imports.importer import import_sessions
from tickstockpl.pipeline.imports.writer import write_session

FRI = dt.date(2026, 11, 27)
TICKERS = ["AAPL", "AMZN", "GOOG", "META", "MSFT", "NVDA", "TSLA", "NFLX", "ORCL", "INTC"]
LONG = "ABCDEFGHIJK"  # 11 characters: one more than AppV2's historical VARCHAR(10)


def bars_in_db(conn, day):
    return {r[0]: r[1:] for r in conn.execute(
        "SELECT symbol, open::float8, close::float8, volume FROM ohlcv_daily WHERE date = %s", (day,))}


def recorded(conn, day):
    return conn.execute("SELECT rows_imported, rows_rejected, unknown_tickers, rejections FROM pl_import_sessions"
                        " WHERE session_date = %s", (day,)).fetchone()


def test_the_catalog_gives_the_real_limits(appv2_database):
    with psycopg.connect(appv2_database(HISTORICAL)) as conn:
        limits = ohlcv_limits(conn)
    assert limits.ticker_width == 10 and limits.price_max == {c: 1e8 for c in ("open", "high", "low", "close")}
    assert limits.price_types["close"] == "numeric(12,4)" and limits.volume_max is None
    with psycopg.connect(appv2_database(MODEL)) as conn:
        limits = ohlcv_limits(conn)
    assert limits.ticker_width == 20 and not limits.price_max and limits.volume_max is None


def test_an_11_character_ticker_is_rejected_with_its_reason_and_the_session_imports(appv2_database, tmp_path):
    with psycopg.connect(appv2_database(HISTORICAL), autocommit=True) as conn:
        add_symbols(conn, TICKERS)
        huge = ("BRKX", 123_456_789.0, 123_456_790.0, 123_456_780.0, 123_456_789.5, 10)  # >= 10^8: no DECIMAL(12,4)
        write_flat(tmp_path, FRI, good_bars(TICKERS) + [(LONG, 10.0, 11.0, 9.0, 10.5, 500), huge])
        report = import_sessions(conn, FlatFileProvider(tmp_path), [FRI])
        assert report.error is None and report.sessions_imported == 1, report.error
        result = report.results[0]
        assert (result.rows_received, result.rows_imported, result.rows_rejected) == (12, 10, 2)
        assert result.reasons == {"price out of range": 1, "ticker too long": 1}
        assert {"ticker": LONG, "reason": "ticker longer than 10 characters (ohlcv_daily.symbol is varchar(10))"} \
            in result.rejections
        assert any(r["ticker"] == "BRKX" and "numeric(12,4)" in r["reason"] for r in result.rejections)
        assert result.unknown_tickers == 0 and LONG not in result.unknown_sample and result.known_imported == 10
        assert sorted(bars_in_db(conn, FRI)) == sorted(TICKERS)
        imported, rejected, unknown, rejections = recorded(conn, FRI)
        assert (imported, rejected, unknown) == (10, 2, 0)
        assert {r["ticker"] for r in rejections} == {LONG, "BRKX"}


def test_the_same_file_imports_the_long_ticker_where_the_column_is_wide(appv2_database, tmp_path):
    with psycopg.connect(appv2_database(MODEL), autocommit=True) as conn:
        add_symbols(conn, TICKERS)
        write_flat(tmp_path, FRI, good_bars(TICKERS) + [(LONG, 10.0, 11.0, 9.0, 10.5, 500)])
        report = import_sessions(conn, FlatFileProvider(tmp_path), [FRI])
        assert report.results[0].rows_imported == 11 and report.results[0].unknown_tickers == 1
        assert LONG in bars_in_db(conn, FRI)


def test_rows_that_need_copy_escaping_are_fitted_too(appv2_database):
    ts = ny_midnight_ns(FRI)
    escaped_long = "AB\\CDEFGHIJK"  # a backslash: written as rows, not as COPY text
    rows = [(t, 10.0, 11.0, 9.0, 10.5, 100.0, ts) for t in TICKERS] + [(escaped_long, 10.0, 11.0, 9.0, 10.5, 100.0, ts),
                                                                      ("A\\B", 10.0, 11.0, 9.0, 10.5, 100.0, ts)]
    with psycopg.connect(appv2_database(HISTORICAL), autocommit=True) as conn:
        result = write_session(conn, SessionData(FRI, rows), known=frozenset(TICKERS), provider="test")
        assert (result.rows_imported, result.rows_rejected, result.unknown_tickers) == (11, 1, 1)
        assert result.unknown_sample == ["A\\B"]
        assert set(bars_in_db(conn, FRI)) == set(TICKERS) | {"A\\B"}


def test_a_session_left_without_enough_rows_writes_nothing(appv2_database):
    ts = ny_midnight_ns(FRI)
    rows = [(f"LONGTICKER{i:02d}", 10.0, 11.0, 9.0, 10.5, 100.0, ts) for i in range(6)] + [
        ("AAPL", 10.0, 11.0, 9.0, 10.5, 100.0, ts)]
    with psycopg.connect(appv2_database(HISTORICAL), autocommit=True) as conn:
        with pytest.raises(DataError, match=r"6 of 7 rows rejected .*ticker too long x6; nothing imported"):
            write_session(conn, SessionData(FRI, rows), known=None, provider="test")
        assert bars_in_db(conn, FRI) == {} and recorded(conn, FRI) is None



def test_revisions_compare_prices_as_the_appv2_columns_store_them(appv2_database, tmp_path):
    """DECIMAL(12,4): an answer with more decimals than the column keeps is no revision; a real change is."""
    from tickstockpl.pipeline.revisions import revise
    from tickstockpl.settings import Settings

    url = appv2_database(HISTORICAL)
    fine = [(t, o, h, l, c + 0.00001, v) for t, o, h, l, c, v in good_bars(TICKERS)]
    with psycopg.connect(url, autocommit=True) as conn:
        add_symbols(conn, TICKERS)
        write_flat(tmp_path, FRI, fine)
        assert import_sessions(conn, FlatFileProvider(tmp_path), [FRI]).error is None
    settings = Settings(database_url=url, flatfiles_dir=tmp_path, data_dir=tmp_path / "data")
    now = dt.datetime(2026, 11, 30, 13, 0, tzinfo=dt.timezone.utc)
    same = revise(settings, url, [FRI], provider=FlatFileProvider(tmp_path), now_utc=now, sync=False)
    assert same.revisions == 0
    write_flat(tmp_path, FRI, [(t, o, h, l, c - 0.25 if t == "AAPL" else c, v) for t, o, h, l, c, v in fine])
    changed = revise(settings, url, [FRI], provider=FlatFileProvider(tmp_path), now_utc=now, sync=False)
    assert changed.revisions == 1 and changed.sample[0]["symbol"] == "AAPL"
    assert changed.sample[0]["old_close"] == 10.5 and changed.sample[0]["new_close"] == 10.25
