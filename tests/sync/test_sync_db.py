"""The sync against a real PostgreSQL holding a small sample market (fixture `market_db_url`)."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import psycopg
import pytest

from tickstockpl.errors import ConfigError, JobConflict, ValidationFailed
from tickstockpl.jobs.runtime import get_job, start_job
from tickstockpl.sync.job import SyncRequest, run_sync
from tickstockpl.universes.model import members

AS_OF = dt.date(2026, 11, 27)

FOREIGN_ROWS = [
    ("app_settings", "ui", "theme", '{"dark": true}', "DEFAULT"),
    ("cache_config", "complete_limits", "stocks_full_metadata_limit", "1000", "DEFAULT"),
    ("priority_stocks", "list", "main", '["AAPL"]', "DEFAULT"),
    ("UNIVERSE", "x", "y", '["A"]', "DEFAULT"),
    ("stock_universe", "market_cap", "dev_mega_cap", '{"count": 0, "stocks": []}', "DEFAULT"),
    ("stock_universe", "market_cap", "mega_cap", '{"count": 0, "stocks": []}', "TEST"),
    ("stock_universe", "legacy_name", "anything", '[]', "DEFAULT"),
]


def sync(url, **kw):
    kw.setdefault("as_of", AS_OF)
    return start_job(url, triggered_by="cli", background=False, **kw).result


def snapshot_rows(conn, where="TRUE"):
    return conn.execute(
        f"SELECT type, name, key, value::text, environment, created_at, updated_at FROM cache_entries WHERE {where}"
        " ORDER BY type, name, key, environment"
    ).fetchall()


def counts(conn):
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("cache_entries", "pl_sync_changes", "pl_universe_membership", "pl_event_outbox")}


def test_full_sync_writes_every_family_and_touches_nothing_else(market_db_url):
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        for row in FOREIGN_ROWS:
            conn.execute("INSERT INTO cache_entries (type, name, key, value, environment) VALUES (%s,%s,%s,%s,%s)", row)
        foreign_before = snapshot_rows(conn, "NOT (type = ANY(ARRAY['stock_universe','etf_universe','themes','stock_etf_combo','stock_stats']) AND environment = 'DEFAULT') OR key LIKE 'dev\\_%' OR name = 'legacy_name'")
    result = sync(market_db_url)
    assert result.total_changes > 0 and result.universes_updated > 0
    with psycopg.connect(market_db_url) as conn:
        foreign_after = snapshot_rows(conn, "NOT (type = ANY(ARRAY['stock_universe','etf_universe','themes','stock_etf_combo','stock_stats']) AND environment = 'DEFAULT') OR key LIKE 'dev\\_%' OR name = 'legacy_name'")
        assert foreign_after == foreign_before
        names = {(t, n) for t, n in conn.execute("SELECT DISTINCT type, name FROM cache_entries WHERE environment='DEFAULT'")}
        for expected in [("stock_universe", "market_cap"), ("stock_universe", "market_leaders"),
                         ("stock_universe", "complete"), ("stock_universe", "sector_leaders"),
                         ("stock_universe", "industry"), ("stock_universe", "themes"), ("stock_universe", "ipos"),
                         ("etf_universe", "complete"), ("stock_etf_combo", "stock_etf_test"),
                         ("stock_stats", "universe")]:
            assert expected in names
        combo = conn.execute("SELECT value FROM cache_entries WHERE type='stock_etf_combo' AND key='combo_test'").fetchone()[0]
        assert isinstance(combo, list) and combo
        for (value,) in conn.execute("SELECT value FROM cache_entries WHERE type='stock_universe' AND jsonb_typeof(value)='object'"):
            assert all("ticker" in item for item in value["stocks"])
        job = conn.execute("SELECT status, result->>'total_changes' FROM pl_sync_jobs").fetchall()
        assert job == [("completed", str(result.total_changes))]


def test_rerun_on_unchanged_data_writes_nothing(market_db_url):
    sync(market_db_url)
    with psycopg.connect(market_db_url) as conn:
        before = snapshot_rows(conn)
        counts_before = counts(conn)
    second = sync(market_db_url)
    assert second.total_changes == 0 and second.rows_written == 0 and second.events == 0
    assert second.universes_updated == 0
    with psycopg.connect(market_db_url) as conn:
        assert snapshot_rows(conn) == before  # updated_at did not move
        after = counts(conn)
    assert after["pl_sync_changes"] == counts_before["pl_sync_changes"]
    assert after["pl_universe_membership"] == counts_before["pl_universe_membership"]
    with psycopg.connect(market_db_url) as conn:
        events = [r[0] for r in conn.execute("SELECT event FROM pl_event_outbox WHERE message LIKE %s ORDER BY id",
                                             (f'%{second.job_id}%',))]
    assert "universe_updated" not in events and events[0] == "cache_sync_triggered" and events[-1] == "cache_sync_completed"


def test_dry_run_writes_nothing(market_db_url):
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        before = counts(conn)
        result = run_sync(conn, SyncRequest(dry_run=True, as_of=AS_OF))
        assert result.universes_updated > 0 and result.rows_written == 0
        assert counts(conn) == before
        assert conn.execute("SELECT count(*) FROM pl_sync_jobs").fetchone()[0] == 0


def test_failure_after_some_writes_leaves_every_row_as_before(market_db_url):
    sync(market_db_url)
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        # change the data so the next sync has work, then make its last write fail inside the transaction
        conn.execute("UPDATE ohlcv_daily SET close = close * 3 WHERE date = %s AND symbol IN "
                     "(SELECT symbol FROM symbols WHERE type = 'CS' ORDER BY symbol LIMIT 40)", (AS_OF,))
        conn.execute("CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$BEGIN RAISE EXCEPTION 'injected failure'; END$$")
        conn.execute("CREATE TRIGGER boom BEFORE INSERT ON pl_event_outbox FOR EACH ROW "
                     "WHEN (NEW.event = 'universe_updated') EXECUTE FUNCTION boom()")
        before = snapshot_rows(conn)
        counts_before = counts(conn)
    with pytest.raises(psycopg.Error, match="injected failure"):
        sync(market_db_url)
    with psycopg.connect(market_db_url) as conn:
        assert snapshot_rows(conn) == before
        after = counts(conn)
        assert after["pl_sync_changes"] == counts_before["pl_sync_changes"]
        assert after["pl_universe_membership"] == counts_before["pl_universe_membership"]
        status, error = conn.execute("SELECT status, error_details FROM pl_sync_jobs ORDER BY created_at DESC LIMIT 1").fetchone()
    assert status == "failed" and "injected failure" in error


def test_validation_refuses_missing_session_and_force_overrides(market_db_url):
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM ohlcv_daily WHERE date = %s", (AS_OF,))
    with pytest.raises(ValidationFailed, match="no bars for the most recent completed session 2026-11-27"):
        sync(market_db_url)
    with psycopg.connect(market_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM cache_entries").fetchone()[0] == 0
        assert conn.execute("SELECT status FROM pl_sync_jobs").fetchone()[0] == "failed"
    assert sync(market_db_url, force=True).total_changes > 0


def test_validation_refuses_when_half_the_eligible_stocks_vanish(market_db_url):
    sync(market_db_url)
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        conn.execute("UPDATE symbols SET active = false WHERE symbol IN "
                     "(SELECT symbol FROM symbols WHERE type='CS' ORDER BY symbol LIMIT (SELECT count(*) * 6 / 10 FROM symbols WHERE type='CS'))")
        before = snapshot_rows(conn)
    with pytest.raises(ValidationFailed, match="fewer than half"):
        sync(market_db_url)
    with psycopg.connect(market_db_url) as conn:
        assert snapshot_rows(conn) == before


def test_malformed_config_row_fails_before_writing_and_names_the_row(market_db_url):
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO cache_entries (type, name, key, value, environment)"
                     " VALUES ('cache_config', 'market_cap_thresholds', 'mega_cap', '\"lots\"', 'DEFAULT')")
    with pytest.raises(ConfigError, match="market_cap_thresholds/mega_cap"):
        sync(market_db_url)
    with psycopg.connect(market_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM cache_entries WHERE type <> 'cache_config'").fetchone()[0] == 0


def test_themes_mode_touches_only_its_families(market_db_url):
    sync(market_db_url)
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        conn.execute("UPDATE ohlcv_daily SET close = close * 2 WHERE date = %s", (AS_OF,))
        market_cap_before = snapshot_rows(conn, "name IN ('market_cap', 'market_leaders', 'complete') OR type IN ('stock_stats', 'stock_etf_combo')")
    result = sync(market_db_url, mode="themes", force=True)
    assert set(result.changes_by_family) <= {"themes", "sector_leaders", "industry", "etf_categories"}
    with psycopg.connect(market_db_url) as conn:
        assert snapshot_rows(conn, "name IN ('market_cap', 'market_leaders', 'complete') OR type IN ('stock_stats', 'stock_etf_combo')") == market_cap_before


def test_delisting_and_history(market_db_url):
    first = sync(market_db_url)
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        top = conn.execute("SELECT value->100 #>> '{}' FROM cache_entries WHERE key = 'all_stocks'").fetchone()[0]
        conn.execute("UPDATE symbols SET active = false WHERE symbol = %s", (top,))
    second = sync(market_db_url, as_of=dt.date(2026, 11, 27))
    assert top in second.delisted
    with psycopg.connect(market_db_url) as conn:
        reasons = {r[0] for r in conn.execute("SELECT reason FROM pl_sync_change_rows WHERE symbol = %s AND job_id = %s"
                                              " AND universe NOT LIKE 'stock\\_universe:rules:%%'", (top, second.job_id))}
        assert reasons == {"delisted"}
        # the rule universes give their own reason, with the rule that fired (docs/RULE_UNIVERSES.md)
        ruled = {r[0] for r in conn.execute("SELECT reason FROM pl_sync_change_rows WHERE symbol = %s AND job_id = %s"
                                            " AND universe LIKE 'stock\\_universe:rules:%%'", (top, second.job_id))}
        assert ruled and all(r.startswith("left: inactive (delisted)") for r in ruled)
        message = conn.execute("SELECT message FROM pl_event_outbox WHERE event = 'delisting_cleanup'").fetchone()[0]
        payload = json.loads(message)["payload"]
        assert payload["removed_count"] == 1 and payload["symbols"] == [top]
        open_rows = conn.execute("SELECT count(*) FROM pl_universe_membership WHERE symbol = %s AND valid_to IS NULL", (top,)).fetchone()[0]
        assert open_rows == 0  # opened and closed on the same as-of day: interval dropped
    assert first.job_id != second.job_id


def test_a_second_job_while_one_is_live_is_refused(market_db_url):
    with psycopg.connect(market_db_url, autocommit=True) as holder:
        from tickstockpl.db import locks

        holder.execute("SELECT pg_advisory_lock(%s)", (locks.CACHE_SYNC,))
        with pytest.raises(JobConflict):
            sync(market_db_url)


def test_failed_job_is_recorded_and_the_next_succeeds(market_db_url):
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM ohlcv_daily WHERE date = %s", (AS_OF,))
    with pytest.raises(ValidationFailed):
        sync(market_db_url)
    ok = sync(market_db_url, force=True)
    with psycopg.connect(market_db_url) as conn:
        job = get_job(conn, ok.job_id)
    assert job.status == "completed" and job.result["total_changes"] == ok.total_changes


def test_a_sync_of_an_earlier_date_again_reopens_the_history_rows_it_had_opened(market_db_url, small_market):
    """History is opened with a plain insert; a pair whose row started on the sync date (closed since by
    a later sync) makes it fail and the upsert reopens that row instead (sync/history.py): the open rows
    then match the stored members again, with no duplicate interval."""
    earlier = small_market.sessions[-8]
    first = sync(market_db_url, as_of=earlier, force=True)
    later = sync(market_db_url)
    closed_query = ("SELECT universe, symbol FROM pl_universe_membership WHERE valid_from = %s AND valid_to IS NOT NULL")
    with psycopg.connect(market_db_url) as conn:
        closed = set(conn.execute(closed_query, (earlier,)).fetchall())
    again = sync(market_db_url, as_of=earlier, force=True)
    assert later.total_changes > 0 and again.total_changes > 0 and closed
    with psycopg.connect(market_db_url) as conn:
        reopened = set(conn.execute(
            "SELECT universe, symbol FROM pl_universe_membership WHERE valid_from = %s AND valid_to IS NULL AND job_id = %s",
            (earlier, again.job_id)).fetchall()) & closed
        stored = {f"{t}:{n}:{k}": v for t, n, k, v in conn.execute(
            "SELECT c.type, c.name, c.key, c.value FROM cache_entries c JOIN pl_cache_ledger l USING"
            " (environment, type, name, key) WHERE c.environment = 'DEFAULT'")}
        open_rows: dict[str, set[str]] = {}
        for universe, symbol in conn.execute(
                "SELECT universe, symbol FROM pl_universe_membership WHERE environment = 'DEFAULT' AND valid_to IS NULL"):
            open_rows.setdefault(universe, set()).add(symbol)
    assert reopened  # rows of the first job, closed by the later one, are open again (the upsert ran)
    assert {u: set(members(v)) for u, v in stored.items() if members(v)} == open_rows
    assert first.job_id != again.job_id


@pytest.mark.parametrize("server_setting, during_write", [("4MB", "256MB"), ("1GB", "1GB")])
def test_the_write_transaction_raises_work_mem_and_never_lowers_it(market_db_url, server_setting, during_write):
    """store.WRITE_SETTINGS: the upsert's values stay in memory (at least WRITE_WORK_MEM_KB); a larger setting
    of the server's is kept; the setting is transaction-local, so the connection has its own again after."""
    seen = []
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        conn.execute("SELECT set_config('work_mem', %s, false)", (server_setting,))
        result = run_sync(conn, SyncRequest(as_of=AS_OF), job_id=str(uuid.uuid4()),
                          before_commit=lambda c, r: seen.append(c.execute("SHOW work_mem").fetchone()[0]))
        after = conn.execute("SHOW work_mem").fetchone()[0]
    assert result.universes_updated > 0
    assert seen == [during_write]
    assert after == server_setting
