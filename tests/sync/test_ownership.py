"""PL changes only what it wrote (contract §5.5): the ownership rule, pure and against PostgreSQL.

The database holds what AppV2's installations hold next to PL's universes (contract §10.2):
AppV2's curated rows of PL's types, the old synchronizer's leftovers, configuration rows, other
environments and `dev_` rows. Whatever a sync does (every mode, reruns, a refusal, a dry run), every
row PL does not build stays byte-identical: compared by a digest of the whole row.
"""

from __future__ import annotations

import datetime as dt
import json

import psycopg
import pytest

from tickstockpl.errors import ConfigError
from tickstockpl.jobs.runtime import start_job
from tickstockpl.sync import ownership
from tickstockpl.sync.job import SyncRequest, run_sync
from tickstockpl.universes.model import Entry

AS_OF = dt.date(2026, 11, 27)

# AppV2's scripts/sql/insert_etf_groups.sql rows (ticker arrays) and the old synchronizer's
# `etf_universe / Complete / top_100`, none of which PL builds.
APPV2_CURATED = [
    ("etf_universe", "Core ETFs", "etf_core", '["SPY", "QQQ", "IWM", "VTI"]'),
    ("etf_universe", "Sector ETFs", "etf_sector", '["XLK", "XLF", "XLV", "XLE", "XLI"]'),
    ("etf_universe", "Equal Weight Sectors", "etf_equal_weight_sectors", '["RSP", "RYT", "RYH"]'),
    ("stock_etf_combo", "Stock ETF Group", "stock_etf_group", '["AAPL", "MSFT", "SPY", "QQQ"]'),
    ("etf_universe", "Complete", "top_100", '{"count": 1, "etfs": [{"ticker": "SPY", "rank": 1}]}'),
]
OTHER_ROWS = [
    ("app_settings", "ui", "theme", '{"dark": true}', "DEFAULT"),
    ("cache_config", "complete_limits", "stocks_full_metadata_limit", "1000", "DEFAULT"),
    ("priority_stocks", "list", "main", '["AAPL"]', "DEFAULT"),
    ("UNIVERSE", "sp500", "members", '["AAPL"]', "DEFAULT"),
    ("stock_universe", "market_cap", "dev_mega_cap", '{"count": 0, "stocks": []}', "DEFAULT"),
    ("stock_universe", "market_cap", "mega_cap", '{"count": 0, "stocks": []}', "OTHER"),
    ("etf_universe", "Core ETFs", "etf_core", '["SPY"]', "OTHER"),
    ("themes", "Dev Theme", "dev_list", '["AAPL"]', "DEFAULT"),
]
# A row of a key PL builds, left by the old synchronizer: the first sync takes it over.
OLD_MEGA_CAP = ("stock_universe", "market_cap", "mega_cap", '{"count": 1, "stocks": [{"ticker": "OLD", "rank": 1}]}')


def seed(conn) -> None:
    for type_, name, key, value in [*APPV2_CURATED, OLD_MEGA_CAP]:
        conn.execute("INSERT INTO cache_entries (type, name, key, value, environment, created_at, updated_at)"
                     " VALUES (%s, %s, %s, %s, 'DEFAULT', '2026-01-02 03:04:05', '2026-01-02 03:04:05')",
                     (type_, name, key, value))
    for type_, name, key, value, env in OTHER_ROWS:
        conn.execute("INSERT INTO cache_entries (type, name, key, value, environment) VALUES (%s, %s, %s, %s, %s)",
                     (type_, name, key, value, env))


def row_digests(conn) -> dict[tuple, str]:
    """(type, name, key, environment) -> md5 of the whole row as JSON (every column, whatever the schema)."""
    return {(t, n, k, e): d for t, n, k, e, d in conn.execute(
        "SELECT c.type, c.name, c.key, c.environment, md5(row_to_json(c)::text) FROM cache_entries c")}


def foreign_digests(conn) -> dict[tuple, str]:
    """The digests of every row PL does not build: rows of other types, environments, and any row
    not among the universes recorded in PL's ledger."""
    built = {(t, n, k, e) for t, n, k, e in conn.execute(
        "SELECT type, name, key, environment FROM pl_cache_ledger")}
    return {ident: d for ident, d in row_digests(conn).items() if ident not in built}


def refuse_a_sync(conn) -> None:
    """A sync that fails before writing: a malformed cache_config row (removed again afterwards)."""
    conn.execute("INSERT INTO cache_entries (type, name, key, value, environment, created_at, updated_at)"
                 " VALUES ('cache_config', 'market_cap_thresholds', 'mega_cap', '\"abc\"', 'DEFAULT', now(), now())")
    try:
        with pytest.raises(ConfigError, match="market_cap_thresholds"):
            run_sync(conn, SyncRequest(as_of=AS_OF))
    finally:
        conn.execute("DELETE FROM cache_entries WHERE type = 'cache_config' AND name = 'market_cap_thresholds'")


def sync(url, **kw):
    kw.setdefault("as_of", AS_OF)
    return start_job(url, triggered_by="cli", background=False, **kw).result


@pytest.fixture
def appv2_db(market_db_url):
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        seed(conn)
        before = row_digests(conn)
    return market_db_url, before


def test_no_sync_changes_a_row_pl_does_not_build(appv2_db):
    url, before = appv2_db
    untouchable = {ident: d for ident, d in before.items() if ident[:3] != OLD_MEGA_CAP[:3] or ident[3] != "DEFAULT"}
    first = sync(url)
    assert first.total_changes > 0
    assert "stock_universe:market_cap:mega_cap" in first.adopted
    assert {"etf_universe:Core ETFs:etf_core", "etf_universe:Complete:top_100",
            "stock_etf_combo:Stock ETF Group:stock_etf_group"} <= set(first.foreign)
    for step in (lambda: sync(url),  # unchanged rerun
                 lambda: sync(url, force=True),  # forced rerun builds and compares everything
                 lambda: sync(url, mode="market_cap"), lambda: sync(url, mode="themes"),
                 lambda: sync(url, mode="ipos")):
        step()
        with psycopg.connect(url) as conn:
            after = row_digests(conn)
        assert {i: after.get(i) for i in untouchable} == untouchable
    with psycopg.connect(url, autocommit=True) as conn:
        dry = run_sync(conn, SyncRequest(dry_run=True, as_of=AS_OF))
        assert "etf_universe:Sector ETFs:etf_sector" in dry.foreign
        refuse_a_sync(conn)
        after = row_digests(conn)
        assert {i: after.get(i) for i in untouchable} == untouchable
        # nothing announced the curated rows or their members as gone
        messages = [m for (m,) in conn.execute("SELECT message FROM pl_event_outbox")]
        assert not any("etf_core" in m or "stock_etf_group" in m or "Complete:top_100" in m for m in messages)
        assert not any(m for m in messages if '"delisting_cleanup"' in m and '"RSP"' in m)
        logged = conn.execute("SELECT universe, action FROM pl_sync_change_rows WHERE universe = ANY(%s)",
                              (["etf_universe:Core ETFs:etf_core", "etf_universe:Complete:top_100"],)).fetchall()
        assert logged == []


def test_the_first_sync_adopts_the_old_row_of_a_key_it_builds_and_logs_it(appv2_db):
    url, _ = appv2_db
    sync(url)
    with psycopg.connect(url) as conn:
        logged = conn.execute("SELECT action, reason FROM pl_sync_change_rows"
                              " WHERE universe = 'stock_universe:market_cap:mega_cap' AND symbol IS NULL").fetchall()
        value = conn.execute("SELECT value FROM cache_entries WHERE type = 'stock_universe' AND name = 'market_cap'"
                             " AND key = 'mega_cap' AND environment = 'DEFAULT'").fetchone()[0]
        assert [a for a, _ in logged] == ["adopted"]
        assert "OLD" not in [s["ticker"] for s in value["stocks"]]
        assert conn.execute("SELECT count(*) FROM pl_sync_change_rows WHERE universe = 'stock_universe:market_cap:mega_cap'"
                            " AND symbol = 'OLD' AND action = 'removed'").fetchone()[0] == 1
    again = sync(url, force=True)
    assert again.adopted == [] and again.total_changes == 0


def test_a_row_pl_wrote_and_someone_edited_is_reported_and_put_back_when_built(appv2_db):
    url, _ = appv2_db
    sync(url)
    with psycopg.connect(url, autocommit=True) as conn:
        original = conn.execute("SELECT value::text FROM cache_entries WHERE type = 'stock_universe'"
                                " AND name = 'market_leaders' AND key = 'top_50'").fetchone()[0]
        conn.execute("UPDATE cache_entries SET value = '[\"EDITED\"]' WHERE type = 'stock_universe'"
                     " AND name = 'market_leaders' AND key = 'top_50'")
    result = sync(url)
    assert result.restored == ["stock_universe:market_leaders:top_50"]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT value::text FROM cache_entries WHERE type = 'stock_universe'"
                            " AND name = 'market_leaders' AND key = 'top_50'").fetchone()[0] == original
        assert conn.execute("SELECT count(*) FROM pl_sync_change_rows WHERE action = 'edited'"
                            " AND universe = 'stock_universe:market_leaders:top_50'").fetchone()[0] == 1
    assert sync(url, force=True).restored == []


def _theme_config(conn, tickers: list[str] | None) -> None:
    conn.execute("DELETE FROM cache_entries WHERE type = 'cache_config' AND name = 'theme_definitions'"
                 " AND key = 'zeta'")
    if tickers is not None:
        conn.execute("INSERT INTO cache_entries (type, name, key, value, environment)"
                     " VALUES ('cache_config', 'theme_definitions', 'zeta', %s, 'DEFAULT')",
                     (psycopg.types.json.Jsonb(tickers),))


def _active_stocks(conn, n: int) -> list[str]:
    return [s for (s,) in conn.execute("SELECT symbol FROM symbols WHERE active AND type = 'CS'"
                                       " ORDER BY symbol LIMIT %s", (n,))]


def test_a_universe_pl_no_longer_builds_is_deleted_only_when_unedited(appv2_db):
    url, _ = appv2_db
    with psycopg.connect(url, autocommit=True) as conn:
        _theme_config(conn, _active_stocks(conn, 3))
    sync(url)
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM cache_entries WHERE type = 'themes' AND name = 'Zeta'").fetchone()[0] == 1
        _theme_config(conn, None)
    sync(url)
    with psycopg.connect(url, autocommit=True) as conn:  # PL wrote it, nobody edited it: gone
        assert conn.execute("SELECT count(*) FROM cache_entries WHERE type = 'themes' AND name = 'Zeta'").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM pl_cache_ledger WHERE name = 'Zeta'").fetchone()[0] == 0
        _theme_config(conn, _active_stocks(conn, 3))
    sync(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE cache_entries SET value = '[\"MINE\"]' WHERE type = 'themes' AND name = 'Zeta'")
        edited = conn.execute("SELECT md5(row_to_json(c)::text) FROM cache_entries c WHERE type = 'themes'"
                              " AND name = 'Zeta'").fetchone()[0]
        _theme_config(conn, None)
    result = sync(url)
    assert result.edited == ["themes:Zeta:list"] and any("themes:Zeta:list" in w for w in result.warnings)
    with psycopg.connect(url) as conn:  # edited since PL wrote it: left as is
        assert conn.execute("SELECT md5(row_to_json(c)::text) FROM cache_entries c WHERE type = 'themes'"
                            " AND name = 'Zeta'").fetchone()[0] == edited


_ZETA = "type = 'themes' AND name = 'Zeta'"


def _md5_digest(conn) -> None:
    """Zeta's ledger digest as a version before the jsonb hash wrote it: md5 of the value's text."""
    conn.execute("UPDATE pl_cache_ledger l SET value_digest = md5(c.value::text) FROM cache_entries c"
                 " WHERE c.environment = l.environment AND c.type = l.type AND c.name = l.name AND c.key = l.key"
                 " AND c.type = 'themes' AND c.name = 'Zeta'")


@pytest.mark.parametrize("digest", ["jsonb hash", "md5 of an earlier version"])
def test_a_rewrite_of_the_same_value_is_not_an_edit_and_another_value_is(appv2_db, digest):
    """The ledger's digest (sync/store.py DIGEST) tells another writer's rewrite of PL's value from an edit,
    also for a digest an earlier version wrote (md5 of the text)."""
    url, _ = appv2_db
    with psycopg.connect(url, autocommit=True) as conn:
        _theme_config(conn, _active_stocks(conn, 3))
    sync(url)
    with psycopg.connect(url, autocommit=True) as conn:
        stored, value_hash = conn.execute(
            "SELECT l.value_digest, jsonb_hash_extended(c.value, 0)::text FROM pl_cache_ledger l JOIN cache_entries c"
            " USING (environment, type, name, key) WHERE c.type = 'themes' AND c.name = 'Zeta'").fetchone()
        assert stored == value_hash  # what a sync records
        if digest != "jsonb hash":
            _md5_digest(conn)
        conn.execute(f"UPDATE cache_entries SET value = value WHERE {_ZETA}")  # a new row version, the same value
        _theme_config(conn, None)
    result = sync(url)
    assert result.edited == []
    with psycopg.connect(url, autocommit=True) as conn:  # PL's value, rewritten by someone: still PL's, deleted
        assert conn.execute(f"SELECT count(*) FROM cache_entries WHERE {_ZETA}").fetchone()[0] == 0
        _theme_config(conn, _active_stocks(conn, 3))
    sync(url)
    with psycopg.connect(url, autocommit=True) as conn:
        if digest != "jsonb hash":
            _md5_digest(conn)
        conn.execute(f"UPDATE cache_entries SET value = '[\"MINE\"]' WHERE {_ZETA}")
        edited = conn.execute(f"SELECT md5(row_to_json(c)::text) FROM cache_entries c WHERE {_ZETA}").fetchone()[0]
        _theme_config(conn, None)
    result = sync(url)
    assert result.edited == ["themes:Zeta:list"]
    with psycopg.connect(url) as conn:  # edited: left byte-identical
        assert conn.execute(f"SELECT md5(row_to_json(c)::text) FROM cache_entries c WHERE {_ZETA}").fetchone()[0] == edited


# --- the rule itself, pure ------------------------------------------------------------------

def _entry(type_, name, key, family="market_cap"):
    return Entry(type_, name, key, [], family)


def _found(type_, name, key, ledger=None, edited=False):
    return ownership.FoundRow(type_, name, key, [], ledger, edited)


def test_split_classifies_every_row():
    built = [_entry("stock_universe", "market_cap", "mega_cap"), _entry("themes", "Ai", "list", "themes")]
    found = [
        _found("stock_universe", "market_cap", "mega_cap"),  # built, never written by PL -> adopted
        _found("themes", "Ai", "list", "themes", edited=True),  # built, edited -> restored
        _found("themes", "Old", "list", "themes"),  # PL's, no longer built -> deletable
        _found("themes", "Mine", "list", "themes", edited=True),  # PL's, edited, not built -> left
        _found("etf_universe", "Core ETFs", "etf_core"),  # foreign
        _found("stock_universe", "market_leaders", "top_50", "market_leaders"),  # PL's, out of scope
    ]
    split = ownership.split(found, built, frozenset({"market_cap", "themes"}))
    assert {r.universe for r in split.touchable} == {
        "stock_universe:market_cap:mega_cap", "themes:Ai:list", "themes:Old:list"}
    assert split.adopted == ("stock_universe:market_cap:mega_cap",)
    assert split.restored == ("themes:Ai:list",)
    assert split.edited == ("themes:Mine:list",)
    assert split.foreign == ("etf_universe:Core ETFs:etf_core",)
    assert [e.universe for e in split.built] == [e.universe for e in built] and split.blocked == ()


def test_under_a_type_key_unique_constraint_colliding_universes_are_blocked_not_written():
    built = [_entry("themes", "Ai", "list", "themes"), _entry("themes", "Cloud", "list", "themes"),
             _entry("etf_universe", "complete", "top_100", "complete_etfs")]
    found = [_found("themes", "Cloud", "list", "themes"), _found("etf_universe", "Complete", "top_100")]
    split = ownership.split(found, built, frozenset({"themes", "complete_etfs"}), unique_key=ownership.TYPE_KEY)
    assert [e.universe for e in split.built] == ["themes:Cloud:list"]  # the stored one keeps its place
    assert [u for u, _ in split.blocked] == ["etf_universe:complete:top_100", "themes:Ai:list"]
    assert all("holds" in why for _, why in split.blocked)


# --- on every schema AppV2 has (contract §10.3) -----------------------------------------------

from tests.appv2_schemas import HISTORICAL, MAINTENANCE, MODEL, appv2_database, insert_cache_entry  # noqa: E402,F401


@pytest.mark.parametrize("variant", [MODEL, MAINTENANCE, HISTORICAL])
def test_on_every_appv2_schema_rows_pl_does_not_build_stay_byte_identical(variant, appv2_database, small_market):
    url = appv2_database(variant, market=small_market)
    with psycopg.connect(url, autocommit=True) as conn:
        for type_, name, key, value in APPV2_CURATED:
            insert_cache_entry(conn, type_, name, key, json.loads(value))
        for type_, name, key, value, env in OTHER_ROWS:
            insert_cache_entry(conn, type_, name, key, json.loads(value), env)
        before = row_digests(conn)
    from tickstockpl.sync.prune import prune

    first = sync(url)
    second = sync(url, force=True)
    for mode in ("market_cap", "themes", "ipos", "full"):
        sync(url, mode=mode)
    with psycopg.connect(url, autocommit=True) as conn:
        run_sync(conn, SyncRequest(dry_run=True, as_of=AS_OF))
        refuse_a_sync(conn)
        assert prune(conn, "DEFAULT", legacy=True, named=[], apply=False).rows  # (the old `Complete/top_100`)
        after = row_digests(conn)
        assert {i: after.get(i) for i in before} == before
        ledger = {(t, n, k) for t, n, k in conn.execute("SELECT type, name, key FROM pl_cache_ledger")}
        assert not ledger & {(t, n, k) for t, n, k, _ in APPV2_CURATED}
        # written times are UTC whatever the column type and the database TimeZone
        skew = conn.execute(
            "SELECT max(abs(extract(epoch FROM (CASE WHEN pg_typeof(updated_at)::text = 'timestamp with time zone'"
            " THEN updated_at::timestamptz ELSE updated_at::timestamp AT TIME ZONE 'UTC' END) - now())))"
            " FROM cache_entries c JOIN pl_cache_ledger l USING (environment, type, name, key)").fetchone()[0]
        assert skew is not None and skew < 3600
    assert first.universes_updated > 0 and second.total_changes == 0
    if variant == MAINTENANCE:  # unique (type, key, environment): the theme rows share key 'list'
        assert any("themes:" in w and "not written" in w for w in first.warnings)
    else:
        assert not any("not written" in w for w in first.warnings)


# --- cache prune: the operator's explicit removal ---------------------------------------------

def test_prune_lists_the_old_synchronizers_leftovers_and_removes_only_what_it_listed(appv2_db):
    from tickstockpl.sync.prune import prune

    url, _ = appv2_db
    with psycopg.connect(url, autocommit=True) as conn:
        insert_legacy = ("INSERT INTO cache_entries (type, name, key, value, environment)"
                         " VALUES (%s, %s, %s, %s, 'DEFAULT')")
        conn.execute(insert_legacy, ("themes", "Old Theme", "list", '["AAPL", "MSFT"]'))
        conn.execute(insert_legacy, ("stock_universe", "sector_leaders", "top_10_gone_sector", '{"count": 0, "stocks": []}'))
    sync(url)
    with psycopg.connect(url, autocommit=True) as conn:
        before = row_digests(conn)
        listed = prune(conn, "DEFAULT", legacy=True, named=[], apply=False)
        assert row_digests(conn) == before  # a dry run changes nothing
        universes = [r["universe"] for r in listed.rows]
        assert universes == ["etf_universe:Complete:top_100", "stock_universe:sector_leaders:top_10_gone_sector",
                             "themes:Old Theme:list"]
        assert not listed.applied
        # AppV2's curated rows match no documented key; PL's own rows are never candidates
        assert not any("etf_core" in u or "stock_etf_group" in u or "dev_" in u for u in universes)
        done = prune(conn, "DEFAULT", legacy=True, named=["etf_universe:Core ETFs:etf_core"], apply=True)
        assert done.applied and sorted(r["universe"] for r in done.rows) == sorted(
            universes + ["etf_universe:Core ETFs:etf_core"])
        after = row_digests(conn)
        removed = set(before) - set(after)
        assert {f"{t}:{n}:{k}" for t, n, k, e in removed if e == "DEFAULT"} == {r["universe"] for r in done.rows}
        assert all(e == "DEFAULT" for *_, e in removed)
        assert {i: d for i, d in before.items() if i not in removed} == after
        pruned = conn.execute("SELECT universe FROM pl_sync_change_rows WHERE action = 'pruned' ORDER BY universe").fetchall()
        assert [u for (u,) in pruned] == sorted(r["universe"] for r in done.rows)
        events = [m for (m,) in conn.execute("SELECT message FROM pl_event_outbox WHERE message LIKE %s",
                                              (f"%{done.prune_id}%",))]
        assert len(events) == len(done.rows) and all('"deleted"' in m for m in events)


def test_prune_refuses_rows_that_are_not_foreign(appv2_db):
    from tickstockpl.sync.prune import prune

    url, _ = appv2_db
    sync(url)
    with psycopg.connect(url, autocommit=True) as conn:
        before = row_digests(conn)
        for named in (["stock_universe:market_cap:mega_cap"], ["app_settings:ui:theme"], ["no-colons"],
                      ["etf_universe:Nope:missing"]):
            with pytest.raises(ConfigError):
                prune(conn, "DEFAULT", legacy=False, named=named, apply=True)
        with pytest.raises(ConfigError):
            prune(conn, "DEFAULT", legacy=False, named=[], apply=True)
        assert row_digests(conn) == before
