"""The importer keeps pl_symbol_liquidity current in the transaction that writes a session's bars
(importer.import_sessions -> writer.store with importer.keep_liquidity -> market/liquidity.after_import):
a new session is folded in, a re-import of a session already folded in with changed bars rebuilds,
identical bars move nothing; a backfill of several sessions moves them once, after its last batch, also
when it stops early.

Each check compares the table with a rebuild from ohlcv_daily (the reference, tested against the bars
themselves in test_liquidity.py): both compute the dollar volumes with the same casts, so equal means equal.
"""

from __future__ import annotations

import datetime as dt

import psycopg

from tests.pipeline.helpers import ny_midnight_ns
from tickstockpl.market import liquidity
from tickstockpl.pipeline.imports.importer import import_sessions
from tickstockpl.pipeline.imports.session import SessionData


class Provider:
    """Answers each session with the data given (a provider of the importer's protocol)."""

    name = "test"

    def __init__(self, *answers: SessionData):
        self.answers = {a.session: a for a in answers}

    def fetch(self, session: dt.date) -> SessionData:
        return self.answers[session]

    def close(self) -> None:
        pass


def write_session(conn, data: SessionData, **_):
    """Import one session through the importer, as the pipeline does; its SessionResult."""
    report = import_sessions(conn, Provider(data), [data.session])
    assert report.complete, report.error
    return report.results[0]


def _rows(conn) -> dict[str, tuple]:
    return {r.symbol: (r.through, r.first_session, r.sessions_seen, r.dollar_volumes, r.last_close, r.last_valid_session)
            for r in liquidity.load(conn)}


def _rebuilt(url: str, through: dt.date) -> dict[str, tuple]:
    """The table as a rebuild would leave it, computed in a transaction that is rolled back."""
    with psycopg.connect(url) as conn:
        liquidity.rebuild(conn, through)
        out = _rows(conn)
        conn.rollback()
    return out


def _session_data(conn, day: dt.date, *, change: str | None = None) -> SessionData:
    """The stored bars of `day` as a provider would send them; `change`: a symbol whose volume doubles."""
    stamp = ny_midnight_ns(day) + 16 * 3600 * 10**9
    rows = []
    for symbol, o, h, l, c, v in conn.execute(
            "SELECT symbol, open::float8, high::float8, low::float8, close::float8, volume FROM ohlcv_daily"
            " WHERE date = %s AND close > 0 AND low <= least(open, close) AND high >= greatest(open, close)"
            " AND volume IS NOT NULL ORDER BY symbol", (day,)):
        rows.append((symbol, o, h, l, c, v * 2 if symbol == change else v, stamp))
    return SessionData(day, rows)


def _stats_kept(conn) -> bool:
    """Whether the import left the statistics kept (pl_liquidity_stats) current: computed from the table as
    it is now, at its session, equal to the windows' statistics computed afresh."""
    import math

    through, windows = conn.execute("SELECT through, windows FROM pl_liquidity_stats_state").fetchone()
    kept = liquidity.load_stats(conn, through, windows)
    fresh = liquidity.load_matrix(conn).stats(windows)

    def plain(table):
        return [[None if isinstance(v, float) and math.isnan(v) else v for v in column] for column in (
            table.sessions_seen, table.last_close, table.streak, *table.median_dollar_volume.values(),
            *table.mean_dollar_volume.values(), *table.coverage.values())]
    return liquidity.stats_current(conn) and kept.through == fresh.through and kept.symbols == fresh.symbols \
        and plain(kept) == plain(fresh) and len(kept.symbols) > 0


def _updated_at(conn) -> dt.datetime:
    return conn.execute("SELECT max(updated_at) FROM pl_symbol_liquidity").fetchone()[0]


def test_import_folds_the_new_session_in(market_db_url, small_market):
    days = small_market.sessions
    with psycopg.connect(market_db_url) as conn:
        data = _session_data(conn, days[-1])
        conn.execute("DELETE FROM ohlcv_daily WHERE date = %s", (days[-1],))
        liquidity.rebuild(conn, days[-2])
        conn.commit()
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        result = write_session(conn, data, known=None, provider="test")
        assert result.rows_written == len(data.rows) > 0
        after = _rows(conn)
        assert _stats_kept(conn)
    assert {r[0] for r in after.values()} == {days[-1]}
    assert after == _rebuilt(market_db_url, days[-1])


def test_first_import_into_an_empty_table_builds_it(market_db_url, small_market):
    days = small_market.sessions
    with psycopg.connect(market_db_url) as conn:
        data = _session_data(conn, days[-1])
        conn.execute("DELETE FROM ohlcv_daily WHERE date = %s", (days[-1],))
        assert not _rows(conn)
        conn.commit()
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        write_session(conn, data, known=None, provider="test")
        after = _rows(conn)
        assert _stats_kept(conn)
    assert after and after == _rebuilt(market_db_url, days[-1])


def test_a_changed_past_session_rebuilds_and_identical_bars_move_nothing(market_db_url, small_market):
    days = small_market.sessions
    past = days[-3]
    with psycopg.connect(market_db_url) as conn:
        liquidity.rebuild(conn, days[-1])
        conn.commit()
        symbol = conn.execute("SELECT symbol FROM ohlcv_daily WHERE date = %s AND volume > 0 ORDER BY symbol LIMIT 1",
                              (past,)).fetchone()[0]
        same = _session_data(conn, past)
        changed = _session_data(conn, past, change=symbol)
        conn.rollback()
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        before, stamp = _rows(conn), _updated_at(conn)
        # the same bars again (a re-import the provider answered identically): nothing written, nothing moved
        assert write_session(conn, same, known=None, provider="test").rows_written == 0
        assert _rows(conn) == before and _updated_at(conn) == stamp
        # one corrected volume of a session already folded in: the window is rebuilt, the table stays at the newest session
        assert write_session(conn, changed, known=None, provider="test").rows_written == 1
        after = _rows(conn)
        assert _stats_kept(conn)
    assert {r[0] for r in after.values()} == {days[-1]}
    assert after == _rebuilt(market_db_url, days[-1])
    old, new = before[symbol][3], after[symbol][3]
    position = len(old) - 3  # the third-newest session of the window
    assert new[position] == old[position] * 2 or abs(new[position] / old[position] - 2) < 1e-6
    assert new[:position] + new[position + 1:] == old[:position] + old[position + 1:]
    assert {s: r for s, r in after.items() if s != symbol} == {s: r for s, r in before.items() if s != symbol}


_SCANNED = "SELECT min(through), max(through), max(updated_at), count(*) FROM pl_symbol_liquidity"
_KEPT = f"SELECT low, high, stamp, n FROM ({liquidity.STATE_ROW}) AS liquidity"


def test_the_state_row_is_what_a_scan_of_the_table_finds_after_every_kind_of_write(market_db_url, small_market):
    """pl_symbol_liquidity_state (migration 0014's trigger) stands for a scan of the windows in the sync's
    fingerprint and the importer's checks: after PL's writes and anyone else's, in the writing transaction."""
    days = small_market.sessions
    with psycopg.connect(market_db_url) as conn:
        assert conn.execute(_KEPT).fetchone() == (None, None, None, 0)  # empty, as the migration found it
        data = _session_data(conn, days[-1])
        conn.execute("DELETE FROM ohlcv_daily WHERE date = %s", (days[-1],))
        liquidity.rebuild(conn, days[-2])  # DELETE + COPY
        assert conn.execute(_KEPT).fetchone() == conn.execute(_SCANNED).fetchone() != (None, None, None, 0)
        conn.commit()
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        write_session(conn, data, known=None, provider="test")  # a fold: UPDATE + INSERT
        assert conn.execute(_KEPT).fetchone() == conn.execute(_SCANNED).fetchone()
        assert conn.execute(_KEPT).fetchone()[:2] == (days[-1], days[-1])
        for edit in ("UPDATE pl_symbol_liquidity SET updated_at = updated_at + interval '1 second'"
                     " WHERE symbol = (SELECT min(symbol) FROM pl_symbol_liquidity)",  # someone else's writes
                     "UPDATE pl_symbol_liquidity SET through = through - 1 WHERE symbol = (SELECT max(symbol)"
                     " FROM pl_symbol_liquidity)",
                     "DELETE FROM pl_symbol_liquidity WHERE symbol = (SELECT min(symbol) FROM pl_symbol_liquidity)"):
            before = conn.execute(_KEPT).fetchone()
            conn.execute(edit)
            assert conn.execute(_KEPT).fetchone() == conn.execute(_SCANNED).fetchone() != before, edit
        conn.execute("TRUNCATE pl_symbol_liquidity")
        assert conn.execute(_KEPT).fetchone() == (None, None, None, 0)
        conn.execute("DELETE FROM pl_symbol_liquidity_state")  # the row gone: read as an empty table
        assert conn.execute(_KEPT).fetchone() == (None, None, None, 0)


def _without_last_sessions(url: str, days, count: int) -> list[SessionData]:
    """The bars of the last `count` sessions as a provider would send them, deleted from ohlcv_daily, and the
    table rebuilt at the session before them (a backfill of those sessions comes next)."""
    with psycopg.connect(url) as conn:
        datas = [_session_data(conn, d) for d in days[-count:]]
        conn.execute("DELETE FROM ohlcv_daily WHERE date >= %s", (days[-count],))
        liquidity.rebuild(conn, days[-count - 1])
        conn.commit()
    return datas


def test_a_backfill_moves_the_statistics_once_after_its_last_batch(market_db_url, small_market, monkeypatch):
    days = small_market.sessions
    datas = _without_last_sessions(market_db_url, days, 3)
    computed = []
    refresh = liquidity.refresh_stats
    monkeypatch.setattr(liquidity, "refresh_stats", lambda conn, *a, **kw: computed.append(1) or refresh(conn, *a, **kw))
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        report = import_sessions(conn, Provider(*datas), days[-3:], batch_rows=1)  # a transaction per session
        assert report.complete and report.sessions_imported == 3
        after = _rows(conn)
        assert _stats_kept(conn)
    assert computed == [1]  # once for the backfill (once per session before: 3)
    assert {r[0] for r in after.values()} == {days[-1]}
    assert after == _rebuilt(market_db_url, days[-1])


def test_a_backfill_that_stops_moves_the_statistics_to_the_sessions_it_wrote(market_db_url, small_market):
    days = small_market.sessions
    datas = _without_last_sessions(market_db_url, days, 3)
    datas[2] = SessionData(days[-1], datas[2].rows[:3])  # the newest session incomplete: refused, not written
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        report = import_sessions(conn, Provider(*datas), days[-3:], batch_rows=1)
        assert not report.complete and report.sessions_imported == 2 and report.failed_session == days[-1]
        after = _rows(conn)
        assert _stats_kept(conn)
    assert {r[0] for r in after.values()} == {days[-2]}
    assert after == _rebuilt(market_db_url, days[-2])
