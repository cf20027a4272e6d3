"""Reruns on unchanged inputs skip the build (sync/fingerprint.py); any change to what a sync reads
or wrote makes the next one build again. Real PostgreSQL with the small sample market."""

from __future__ import annotations

import datetime as dt
import shutil

import psycopg
import pytest

from tickstockpl.sync import fingerprint
from tickstockpl.sync.job import SyncRequest, run_sync
from tests.sync.test_sync_db import AS_OF, counts, snapshot_rows, sync


def test_a_rerun_on_unchanged_inputs_names_the_job_it_matches_and_writes_nothing(market_db_url):
    first = sync(market_db_url)
    assert first.unchanged_since is None
    with psycopg.connect(market_db_url) as conn:
        before, counts_before = snapshot_rows(conn), counts(conn)
    second = sync(market_db_url)
    assert second.unchanged_since == first.job_id
    assert (second.total_changes, second.rows_written, second.events, second.universes_updated) == (0, 0, 0, 0)
    assert second.universes_unchanged == first.universes_updated + first.universes_unchanged
    assert second.eligible_stocks == first.eligible_stocks and second.warnings == first.warnings
    assert second.as_of == first.as_of
    third = sync(market_db_url)  # the skipped job recorded the fingerprints too
    assert third.unchanged_since == second.job_id
    with psycopg.connect(market_db_url) as conn:
        assert snapshot_rows(conn) == before
        after = counts(conn)
        rows = conn.execute("SELECT job_id::text, status, inputs_digest, outputs_digest, result->>'unchanged_since'"
                            " FROM pl_sync_jobs ORDER BY created_at").fetchall()
    assert {k: after[k] for k in ("cache_entries", "pl_sync_changes", "pl_universe_membership")} == \
        {k: counts_before[k] for k in ("cache_entries", "pl_sync_changes", "pl_universe_membership")}
    assert [r[1] for r in rows] == ["completed"] * 3
    assert rows[0][2] == rows[1][2] == rows[2][2] and rows[0][3] == rows[1][3] == rows[2][3]
    assert [r[4] for r in rows] == [None, first.job_id, second.job_id]


def test_a_forced_rerun_builds_and_compares_and_still_writes_nothing(market_db_url):
    sync(market_db_url)
    with psycopg.connect(market_db_url) as conn:
        before = snapshot_rows(conn)
    forced = sync(market_db_url, force=True)
    assert forced.unchanged_since is None
    assert forced.total_changes == 0 and forced.universes_updated == 0 and forced.universes_unchanged > 0
    with psycopg.connect(market_db_url) as conn:
        assert snapshot_rows(conn) == before
    # A forced job is not the reference for a later rerun (it skipped validation), but the one before is.
    assert sync(market_db_url).unchanged_since is not None


def test_dry_runs_never_skip(market_db_url):
    sync(market_db_url)
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        result = run_sync(conn, SyncRequest(dry_run=True, as_of=AS_OF))
    assert result.unchanged_since is None and result.universes_unchanged > 0


def _latest_bar(conn):
    return conn.execute("SELECT symbol, date FROM ohlcv_daily WHERE date <= %s ORDER BY date DESC, symbol LIMIT 1",
                        (AS_OF,)).fetchone()


INPUT_CHANGES = {
    "a symbols row": lambda conn: conn.execute(
        "UPDATE symbols SET sector = sector WHERE symbol = (SELECT min(symbol) FROM symbols)"),
    "a bar read by the snapshot": lambda conn: conn.execute(
        "UPDATE ohlcv_daily SET close = close * 1.5 WHERE (symbol, date) = (%s, %s)", _latest_bar(conn)),
    "a deleted bar read by the snapshot": lambda conn: conn.execute(
        "DELETE FROM ohlcv_daily WHERE (symbol, date) = (%s, %s)", _latest_bar(conn)),
    "a new symbol": lambda conn: conn.execute(
        "INSERT INTO symbols (symbol, name, type, active, market_cap) VALUES ('ZZZNEW', 'New Co', 'CS', true, 5e9)"),
    "a cache_config row": lambda conn: conn.execute(
        "INSERT INTO cache_entries (type, name, key, value, environment)"
        " VALUES ('cache_config', 'complete_limits', 'stocks_full_metadata_limit', '1000', 'DEFAULT')"),
    "an owned cache row": lambda conn: conn.execute(
        "UPDATE cache_entries SET value = '[]' WHERE environment = 'DEFAULT' AND type = 'themes'"
        " AND key = (SELECT min(key) FROM cache_entries WHERE environment = 'DEFAULT' AND type = 'themes')"),
    "a deleted owned cache row": lambda conn: conn.execute(
        "DELETE FROM cache_entries WHERE environment = 'DEFAULT' AND type = 'stock_universe' AND name = 'market_cap'"
        " AND key = (SELECT min(key) FROM cache_entries WHERE type = 'stock_universe' AND name = 'market_cap')"),
    "the membership history": lambda conn: conn.execute(
        "DELETE FROM pl_universe_membership WHERE ctid = (SELECT min(ctid) FROM pl_universe_membership"
        " WHERE valid_to IS NULL)"),
}


@pytest.mark.parametrize("what", sorted(INPUT_CHANGES))
def test_any_change_to_what_a_sync_reads_or_wrote_makes_the_next_one_build(market_db_url, what):
    sync(market_db_url)
    assert sync(market_db_url).unchanged_since is not None
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        INPUT_CHANGES[what](conn)
    rebuilt = sync(market_db_url)
    assert rebuilt.unchanged_since is None
    again = sync(market_db_url)
    assert again.unchanged_since == rebuilt.job_id and again.total_changes == 0


def test_the_owned_rows_are_repaired_when_someone_else_changed_them(market_db_url):
    sync(market_db_url)
    with psycopg.connect(market_db_url) as conn:
        before = conn.execute("SELECT key, value::text FROM cache_entries WHERE type = 'themes' ORDER BY key").fetchall()
    INPUT_CHANGES["an owned cache row"](psycopg.connect(market_db_url, autocommit=True))
    repaired = sync(market_db_url)
    assert repaired.unchanged_since is None and repaired.universes_updated == 1
    with psycopg.connect(market_db_url) as conn:
        after = conn.execute("SELECT key, value::text FROM cache_entries WHERE type = 'themes' ORDER BY key").fetchall()
    assert after == before


def test_another_date_another_mode_or_other_code_builds(market_db_url, monkeypatch):
    sync(market_db_url)
    assert sync(market_db_url, as_of=AS_OF - dt.timedelta(days=1)).unchanged_since is None
    assert sync(market_db_url, mode="themes").unchanged_since is None  # no themes job to match yet
    assert sync(market_db_url, mode="themes").unchanged_since is not None
    sync(market_db_url)
    assert sync(market_db_url).unchanged_since is not None
    monkeypatch.setattr(fingerprint, "code_digest", lambda: "another version of the builders")
    assert sync(market_db_url).unchanged_since is None


@pytest.mark.parametrize("changed", ["universes/defaults.toml", "universes/families.py", "sync/diff.py",
                                     "market/snapshot.py"])
def test_the_code_digest_covers_the_builders_their_defaults_and_the_sync(tmp_path, changed):
    from importlib import resources

    package = tmp_path / "tickstockpl"
    shutil.copytree(str(resources.files("tickstockpl")), package)
    before = fingerprint.digest_of(package)
    assert before == fingerprint.code_digest() and len(before) == 64
    (package / "api" / "app.py").write_text("# not part of the sync\n")
    assert fingerprint.digest_of(package) == before
    with open(package / changed, "a", encoding="utf-8") as handle:
        handle.write("\n# changed\n")
    assert fingerprint.digest_of(package) != before


def _history_matches_cache(conn) -> bool:
    from tickstockpl.universes.model import members, universe_id
    expected = set()
    for type_, name, key, value in conn.execute(
            "SELECT type, name, key, value FROM cache_entries WHERE environment = 'DEFAULT' AND type = ANY(%s)",
            (["stock_universe", "etf_universe", "themes", "stock_etf_combo", "stock_stats"],)):
        expected |= {(universe_id(type_, name, key), s) for s in members(value)}
    open_rows = set(conn.execute("SELECT universe, symbol FROM pl_universe_membership"
                                 " WHERE environment = 'DEFAULT' AND valid_to IS NULL").fetchall())
    return open_rows == expected


def test_a_history_that_disagrees_with_the_cache_is_healed_by_the_next_sync(market_db_url):
    sync(market_db_url)
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        assert _history_matches_cache(conn)
        universe = conn.execute("SELECT universe FROM pl_universe_membership WHERE valid_to IS NULL"
                                " GROUP BY universe ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
        conn.execute("DELETE FROM pl_universe_membership WHERE ctid IN (SELECT ctid FROM pl_universe_membership"
                     " WHERE universe = %s AND valid_to IS NULL LIMIT 2)", (universe,))
        conn.execute("INSERT INTO pl_universe_membership (environment, universe, symbol, valid_from)"
                     " VALUES ('DEFAULT', %s, 'NOT_A_MEMBER', '2020-01-01')", (universe,))
        assert not _history_matches_cache(conn)
    assert sync(market_db_url).unchanged_since is None
    with psycopg.connect(market_db_url) as conn:
        assert _history_matches_cache(conn)
