"""Flat files, row validation, the atomic session writer and the choice of sessions to import."""

from __future__ import annotations

import datetime as dt
import gzip

import psycopg
import pytest

from tickstockpl.errors import DataError, ProviderError
from tickstockpl.pipeline.imports import SessionData
from tickstockpl.pipeline.imports.flatfiles import FlatFileProvider, parse_csv
from tickstockpl.pipeline.imports.importer import import_sessions, missing_sessions
from tickstockpl.pipeline.imports.writer import validate, write_session
from tests.pipeline.helpers import add_symbols, csv_text, good_bars, ny_midnight_ns, write_flat

UTC = dt.timezone.utc
WED, FRI, MON = dt.date(2026, 11, 25), dt.date(2026, 11, 27), dt.date(2026, 11, 30)
AFTER_MONDAY_CLOSE = dt.datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
TICKERS = ["AAPL", "AMZN", "GOOG", "META", "MSFT", "NVDA", "TSLA", "NFLX", "ORCL", "INTC"]


@pytest.fixture
def conn(db_url):
    with psycopg.connect(db_url, autocommit=True) as connection:
        add_symbols(connection, TICKERS)
        yield connection


def bars_in_db(conn, day):
    return {r[0]: r[1:] for r in conn.execute(
        "SELECT symbol, open::float8, high::float8, low::float8, close::float8, volume FROM ohlcv_daily"
        " WHERE date = %s", (day,))}


def test_a_file_with_bad_rows_imports_the_good_ones_and_reports_every_rejection(conn, tmp_path):
    ns = ny_midnight_ns(FRI)
    rows = good_bars(TICKERS) + [
        "BADNUM,100,abc,10,11,9,%d,5" % ns,                  # unreadable number
        "NEG,100,-1,10,11,9,%d,5" % ns,                      # non-positive price
        "RANGE,100,10,10,9,11,%d,5" % ns,                    # high < low
        "VOL,-5,10,10,11,9,%d,5" % ns,                       # negative volume
        "OLD,100,10,10,11,9,%d,5" % ny_midnight_ns(WED),     # another day's bar
        "AAPL,100,10,10,11,9,%d,5" % ns,                     # duplicate ticker
        "SHORT,100,10",                                      # too few fields
        "NEWCO,100,10,10,11,9,%d,5" % ns,                    # valid, ticker unknown to `symbols`
    ]
    write_flat(tmp_path, FRI, rows)
    report = import_sessions(conn, FlatFileProvider(tmp_path), [FRI], run_id=None)
    assert report.complete and report.sessions_imported == 1
    result = report.results[0]
    assert result.rows_received == 18
    assert result.rows_imported == 11 and result.rows_rejected == 7
    assert result.reasons == {"duplicate ticker": 1, "bad volume": 1, "inconsistent range": 1,
                              "non-positive price": 1, "unreadable": 2, "wrong date": 1}
    assert result.unknown_tickers == 1 and result.unknown_sample == ["NEWCO"]
    assert {r["ticker"] for r in result.rejections} == {"BADNUM", "NEG", "RANGE", "VOL", "OLD", "AAPL", "line 18"}
    stored = bars_in_db(conn, FRI)
    assert set(stored) == set(TICKERS) | {"NEWCO"}
    assert stored["AAPL"] == (10.0, 11.0, 9.0, 10.5, 1000)  # the first AAPL row, not the duplicate
    record = conn.execute("SELECT provider, rows_imported, rows_rejected, unknown_tickers, jsonb_array_length(rejections)"
                          " FROM pl_import_sessions WHERE session_date = %s", (FRI,)).fetchone()
    assert record == ("flatfiles", 11, 7, 1, 7)


def test_truncated_gzip_imports_nothing(conn, tmp_path):
    path = write_flat(tmp_path, FRI, good_bars(TICKERS))
    path.write_bytes(path.read_bytes()[:-30])
    report = import_sessions(conn, FlatFileProvider(tmp_path), [FRI])
    assert not report.complete and report.sessions_failed == 1 and report.failed_session == FRI
    assert "truncated or not valid gzip" in report.error
    assert bars_in_db(conn, FRI) == {}
    assert conn.execute("SELECT count(*) FROM pl_import_sessions").fetchone()[0] == 0


def test_wrong_header_and_missing_file_are_provider_errors(tmp_path):
    provider = FlatFileProvider(tmp_path)
    with pytest.raises(ProviderError, match="no flat file for session 2026-11-27"):
        provider.fetch(FRI)
    (tmp_path / "2026-11-27.csv.gz").write_bytes(gzip.compress(b"symbol,open,close\nAAPL,1,2\n"))
    with pytest.raises(ProviderError, match="header must be exactly ticker,volume,open,close,high,low"):
        provider.fetch(FRI)


def test_nested_year_month_layout_is_found(tmp_path):
    nested = tmp_path / "2026" / "11"
    write_flat(nested, FRI, good_bars(["AAPL"]))
    assert [r[0] for r in FlatFileProvider(tmp_path).fetch(FRI).rows] == ["AAPL"]


def test_utc_midnight_timestamps_count_as_the_session_too():
    utc_midnight = int(dt.datetime(2026, 11, 27, tzinfo=UTC).timestamp()) * 10**9
    text = csv_text(FRI, [f"AAPL,100,10,10,11,9,{utc_midnight},5", f"MSFT,100,10,10,11,9,{utc_midnight - 1},5"])
    accepted, result = validate(parse_csv(text, FRI), None, "flatfiles")
    assert [a[0] for a in accepted] == ["AAPL"] and result.reasons == {"wrong date": 1}


def test_a_session_is_written_whole_or_not_at_all(conn):
    data = SessionData(FRI, [(t, o, h, l, c, v, ny_midnight_ns(FRI)) for t, o, h, l, c, v in good_bars(TICKERS)])

    def explode(tx_conn, result):
        assert result.rows_imported == 10
        raise RuntimeError("crash after the upsert, before commit")

    with pytest.raises(RuntimeError):
        write_session(conn, data, known=frozenset(TICKERS), provider="test", before_commit=explode)
    assert bars_in_db(conn, FRI) == {}
    result = write_session(conn, data, known=frozenset(TICKERS), provider="test")
    assert result.rows_written == 10 and len(bars_in_db(conn, FRI)) == 10
    again = write_session(conn, data, known=frozenset(TICKERS), provider="test")
    assert again.rows_imported == 10 and again.rows_written == 0  # identical rows are not rewritten


def test_too_many_rejected_rows_fail_the_session(conn):
    ns = ny_midnight_ns(FRI)
    rows = [("AAPL", 10.0, 11.0, 9.0, 10.0, 5.0, ns)] + [(f"X{i}", -1.0, 1.0, 1.0, 1.0, 1.0, ns) for i in range(3)]
    with pytest.raises(DataError, match="3 of 4 rows rejected .*non-positive price x3"):
        write_session(conn, SessionData(FRI, rows), known=None, provider="test")
    with pytest.raises(DataError, match="no usable bars"):
        write_session(conn, SessionData(FRI, []), known=None, provider="test")
    assert bars_in_db(conn, FRI) == {}


def test_import_stops_at_the_first_failed_session(conn, tmp_path):
    write_flat(tmp_path, WED, good_bars(TICKERS))
    write_flat(tmp_path, MON, good_bars(TICKERS))  # FRI is missing
    report = import_sessions(conn, FlatFileProvider(tmp_path), [MON, FRI, WED])
    assert report.sessions_imported == 1 and report.failed_session == FRI and not report.complete
    assert bars_in_db(conn, MON) == {}  # not written past the hole


def test_cancel_is_honoured_between_sessions(conn, tmp_path):
    for day in (WED, FRI, MON):
        write_flat(tmp_path, day, good_bars(TICKERS))
    calls = []
    report = import_sessions(conn, FlatFileProvider(tmp_path), [WED, FRI, MON],
                             should_cancel=lambda: calls.append(1) or len(calls) > 1)
    assert report.cancelled and report.sessions_imported == 1 and not report.complete
    assert len(bars_in_db(conn, WED)) == 10 and bars_in_db(conn, FRI) == {}


def test_missing_sessions_after_the_last_imported_one(conn):
    conn.execute("INSERT INTO ohlcv_daily (symbol, date, open, high, low, close, volume)"
                 " VALUES ('AAPL', '2026-11-24', 1, 1, 1, 1, 1)")
    found = missing_sessions(conn, MON, AFTER_MONDAY_CLOSE)
    assert found.sessions == [WED, FRI, MON] and found.last_imported == dt.date(2026, 11, 24)
    bounded = missing_sessions(conn, MON, AFTER_MONDAY_CLOSE, max_backfill=2)
    assert bounded.sessions == [FRI, MON] and bounded.dropped == 1
    before_close = dt.datetime(2026, 11, 30, 20, 59, tzinfo=UTC)
    assert missing_sessions(conn, MON, before_close).sessions == [WED, FRI]
    assert missing_sessions(conn, dt.date(2026, 11, 24), AFTER_MONDAY_CLOSE).sessions == []


def test_missing_sessions_on_an_empty_table(conn):
    assert missing_sessions(conn, MON, AFTER_MONDAY_CLOSE).sessions == [MON]
    assert missing_sessions(conn, MON, AFTER_MONDAY_CLOSE, initial_sessions=3).sessions == [WED, FRI, MON]
    assert missing_sessions(conn, dt.date(2026, 11, 29), AFTER_MONDAY_CLOSE).sessions == [FRI]  # a Sunday target


def test_a_backfill_writes_several_whole_sessions_per_transaction(conn, tmp_path):
    days = [WED, FRI, MON]
    for day in days:
        write_flat(tmp_path, day, good_bars(TICKERS))
    seen = []

    def before_commit(tx_conn, result):
        seen.append((result.session, tx_conn.info.transaction_status.name))

    report = import_sessions(conn, FlatFileProvider(tmp_path), days, before_commit=before_commit, batch_rows=15)
    assert report.complete and report.sessions_imported == 3 and report.rows_imported == 30
    assert [s for s, _ in seen] == days and {t for _, t in seen} == {"INTRANS"}
    assert [r.rows_written for r in report.results] == [10, 10, 10]
    assert conn.execute("SELECT count(DISTINCT date) FROM ohlcv_daily").fetchone()[0] == 3
    assert conn.execute("SELECT count(*) FROM pl_import_sessions").fetchone()[0] == 3


def test_a_failure_inside_a_batch_keeps_the_sessions_before_it(conn, tmp_path):
    write_flat(tmp_path, WED, good_bars(TICKERS))
    write_flat(tmp_path, FRI, good_bars(TICKERS))
    write_flat(tmp_path, MON, [("AAPL", -1.0, 1.0, 1.0, 1.0, 1)])  # unusable: every row rejected
    report = import_sessions(conn, FlatFileProvider(tmp_path), [WED, FRI, MON], batch_rows=10_000)
    assert report.sessions_imported == 2 and report.failed_session == MON and "no usable bars" in report.error
    assert conn.execute("SELECT array_agg(DISTINCT date ORDER BY date) FROM ohlcv_daily").fetchone()[0] == [WED, FRI]


def test_rest_provider_into_the_database(conn):
    from tickstockpl.pipeline.imports.rest import RestProvider
    from tests.pipeline.helpers import ScriptedServer, grouped_body

    empty = {"status": "OK", "resultsCount": 0, "results": []}
    with ScriptedServer([(200, {}, grouped_body(FRI, good_bars(TICKERS))), (200, {}, empty)]) as server:
        provider = RestProvider("key-for-the-test", server.url, sleep=lambda s: None)
        report = import_sessions(conn, provider, [FRI, MON])
    assert report.sessions_imported == 1 and report.failed_session == MON
    assert "session 2026-11-30: no usable bars (0 received" in report.error
    assert len(bars_in_db(conn, FRI)) == 10 and bars_in_db(conn, MON) == {}
    assert conn.execute("SELECT provider FROM pl_import_sessions").fetchall() == [("rest",)]


def test_a_session_much_smaller_than_the_previous_one_is_incomplete(conn, tmp_path):
    write_flat(tmp_path, WED, good_bars(TICKERS))
    write_flat(tmp_path, FRI, good_bars(TICKERS[:4]))  # 4 bars after a day of 10: not fully published
    report = import_sessions(conn, FlatFileProvider(tmp_path), [WED, FRI])
    assert report.sessions_imported == 1 and report.failed_session == FRI
    assert "looks incomplete: 4 usable bars against 10" in report.error
    assert bars_in_db(conn, FRI) == {}
    write_flat(tmp_path, FRI, good_bars(TICKERS[:6]))
    assert import_sessions(conn, FlatFileProvider(tmp_path), [FRI]).complete


def test_a_reimport_updates_only_the_corrected_bars(conn, tmp_path):
    bars = good_bars(TICKERS)
    write_flat(tmp_path, FRI, bars)
    first = import_sessions(conn, FlatFileProvider(tmp_path), [FRI])
    assert first.results[0].rows_written == 10
    corrected = [("AAPL", 10.0, 11.0, 9.0, 10.75, 1000)] + bars[1:]
    write_flat(tmp_path, FRI, corrected)
    again = import_sessions(conn, FlatFileProvider(tmp_path), [FRI])
    assert again.results[0].rows_imported == 10 and again.results[0].rows_written == 1
    assert bars_in_db(conn, FRI)["AAPL"] == (10.0, 11.0, 9.0, 10.75, 1000)


def test_bars_added_by_another_writer_mid_import_fail_the_session_cleanly(conn, tmp_path, monkeypatch):
    from tickstockpl.pipeline.imports import writer

    write_flat(tmp_path, FRI, good_bars(TICKERS))
    # Another writer's bar appears after the "no bars yet" check: the plain INSERT meets the unique index.
    monkeypatch.setattr(writer, "NO_BARS_YET", "SELECT %s::date[] IS NOT NULL")
    conn.execute("INSERT INTO ohlcv_daily (symbol, date, open, high, low, close, volume)"
                 " VALUES ('AAPL', %s, 1, 1, 1, 1, 1)", (FRI,))
    report = import_sessions(conn, FlatFileProvider(tmp_path), [FRI])
    assert report.failed_session == FRI and "another writer added bars" in report.error
    assert len(bars_in_db(conn, FRI)) == 1 and conn.execute("SELECT count(*) FROM pl_import_sessions").fetchone()[0] == 0
