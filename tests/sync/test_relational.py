"""PL's universes in AppV2's relational tables (contract §10.1), on AppV2's table shapes.

The readers below restate, as SQL written here from the facts of §10.1, what AppV2's
`RelationshipCache.get_available_universes()` and `get_universe_symbols(name)` ask: groups of type
UNIVERSE or ETF of the environment with member counts, and the members of a lower-case group name,
a `:` meaning the union of several groups.
"""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from tests.appv2_schemas import MAINTENANCE, MODEL, appv2_database  # noqa: F401
from tickstockpl.jobs.runtime import start_job
from tickstockpl.universes.groups import group_name

AS_OF = dt.date(2026, 11, 27)


def sync(url, **kw):
    kw.setdefault("as_of", AS_OF)
    return start_job(url, triggered_by="cli", background=False, **kw).result


def available_universes(conn, types=("UNIVERSE", "ETF")) -> dict[str, tuple[str, str | None, int]]:
    return {name: (type_, description, count) for name, type_, description, count in conn.execute(
        "SELECT dg.name, dg.type, dg.description, count(gm.symbol) FROM definition_groups dg"
        " LEFT JOIN group_memberships gm ON dg.id = gm.group_id"
        " WHERE dg.type = ANY(%s) AND dg.environment = 'DEFAULT' GROUP BY dg.id ORDER BY dg.type, dg.name",
        (list(types),))}


def universe_symbols(conn, key: str) -> list[str]:
    out: set[str] = set()
    for name in [part.strip() for part in key.split(":") if part.strip()]:
        out.update(s for (s,) in conn.execute(
            "SELECT gm.symbol FROM definition_groups dg JOIN group_memberships gm ON dg.id = gm.group_id"
            " WHERE dg.name = %s AND dg.type IN ('UNIVERSE', 'ETF') AND dg.environment = 'DEFAULT'"
            " ORDER BY gm.symbol", (name,)))
    return sorted(out)


def appv2_groups(conn) -> None:
    """AppV2's own groups: a CSV-loaded UNIVERSE, ETF holdings, and a UNIVERSE whose name PL would use."""
    for name, type_, members in (("sp500", "UNIVERSE", ["AAPL", "MSFT", "ZZZ1"]), ("SPY", "ETF", ["AAPL", "MSFT"]),
                                 ("etf_growth", "UNIVERSE", ["VUG"])):
        gid = conn.execute("INSERT INTO definition_groups (name, type, description, environment)"
                           " VALUES (%s, %s, %s, 'DEFAULT') RETURNING id", (name, type_, f"AppV2 {name}")).fetchone()[0]
        for symbol in members:
            conn.execute("INSERT INTO group_memberships (group_id, symbol) VALUES (%s, %s)", (gid, symbol))


def group_digests(conn) -> dict:
    groups = {(n, t): d for n, t, d in conn.execute(
        "SELECT name, type, md5(row_to_json(g)::text) FROM definition_groups g")}
    members = {(n, t, s): d for n, t, s, d in conn.execute(
        "SELECT g.name, g.type, m.symbol, md5(row_to_json(m)::text) FROM group_memberships m"
        " JOIN definition_groups g ON g.id = m.group_id")}
    return {"groups": groups, "members": members}


def appv2_part(digests) -> dict:
    pl = {"sp500", "SPY", "etf_growth"}
    return {"groups": {k: v for k, v in digests["groups"].items() if k[0] in pl},
            "members": {k: v for k, v in digests["members"].items() if k[0] in pl}}


@pytest.fixture
def groups_url(appv2_database, small_market):
    url = appv2_database(MODEL, market=small_market)
    with psycopg.connect(url, autocommit=True) as conn:
        appv2_groups(conn)
    return url


def cache_members(conn, type_, name, key) -> list[str]:
    from tickstockpl.universes.model import members

    value = conn.execute("SELECT value FROM cache_entries WHERE environment = 'DEFAULT' AND type = %s AND name = %s"
                         " AND key = %s", (type_, name, key)).fetchone()[0]
    return members(value)


def test_each_universe_is_a_group_appv2_lists_and_resolves(groups_url):
    with psycopg.connect(groups_url) as conn:
        before = group_digests(conn)
    result = sync(groups_url)
    assert result.groups["created"] > 40 and result.groups["deleted"] == 0
    assert any("etf_growth" in w and "AppV2 already has" in w for w in result.warnings)
    with psycopg.connect(groups_url) as conn:
        listed = available_universes(conn)
        large = cache_members(conn, "stock_universe", "market_cap", "large_cap")
        assert listed["market_cap_large_cap"][0] == "UNIVERSE"
        assert listed["market_cap_large_cap"][2] == len(large) > 0
        assert "Large caps" in listed["market_cap_large_cap"][1] and "$10B to $200B" in listed["market_cap_large_cap"][1]
        assert universe_symbols(conn, "market_cap_large_cap") == sorted(large)
        union = universe_symbols(conn, "market_cap_large_cap:sp500")
        assert union == sorted(set(large) | {"AAPL", "MSFT", "ZZZ1"})
        for (name,) in conn.execute("SELECT name FROM pl_group_ledger"):
            assert name == name.lower() and ":" not in name and name in listed
        assert listed["etf_growth"] == ("UNIVERSE", "AppV2 etf_growth", 1)  # AppV2's, not overwritten
        assert appv2_part(group_digests(conn)) == appv2_part(before)
        meta = conn.execute("SELECT metadata FROM definition_groups WHERE name = 'market_cap_large_cap'").fetchone()[0]
        assert meta["source"] == "tickstockpl" and meta["as_of"] == "2026-11-27" and meta["rule"]
        assert conn.execute("SELECT count(*) FROM group_memberships m JOIN definition_groups g ON g.id = m.group_id"
                            " WHERE g.name = 'market_cap_large_cap' AND m.weight IS NOT NULL").fetchone()[0] == 0
        # every group PL wrote mirrors a universe, named by the documented rule
        for universe, name in conn.execute("SELECT universe, name FROM pl_group_ledger"):
            assert group_name(*universe.split(":", 2)) == name
        events = [m for (m,) in conn.execute("SELECT message FROM pl_event_outbox WHERE event = 'universe_updated'"
                                              " AND message LIKE '%%market_cap:large_cap%%'")]
        assert events and '"group":"market_cap_large_cap"' in events[0]


def test_an_unchanged_rerun_writes_no_group_row_and_a_change_is_applied_as_a_diff(groups_url):
    sync(groups_url)
    with psycopg.connect(groups_url, autocommit=True) as conn:
        versions = conn.execute("SELECT array_agg(xmin::text ORDER BY id) FROM definition_groups").fetchone()[0]
        members = conn.execute("SELECT array_agg(xmin::text ORDER BY id) FROM group_memberships").fetchone()[0]
    again = sync(groups_url, force=True)  # builds and compares everything
    assert again.groups == {"created": 0, "updated": 0, "deleted": 0, "members_added": 0, "members_removed": 0,
                            "skipped": again.groups["skipped"]}
    with psycopg.connect(groups_url, autocommit=True) as conn:
        assert conn.execute("SELECT array_agg(xmin::text ORDER BY id) FROM definition_groups").fetchone()[0] == versions
        assert conn.execute("SELECT array_agg(xmin::text ORDER BY id) FROM group_memberships").fetchone()[0] == members
        gone = cache_members(conn, "stock_universe", "market_cap", "large_cap")[0]
        conn.execute("UPDATE symbols SET active = false WHERE symbol = %s", (gone,))
    changed = sync(groups_url)
    assert changed.groups["members_removed"] >= 1 and changed.groups["created"] == 0
    with psycopg.connect(groups_url) as conn:
        assert gone not in universe_symbols(conn, "market_cap_large_cap")
    themes_only = sync(groups_url, mode="themes", force=True)  # another mode deletes no group of this one
    assert themes_only.groups["deleted"] == 0


def test_a_type_check_that_refuses_universe_skips_the_groups_and_the_sync_succeeds(appv2_database, small_market):
    url = appv2_database(MODEL, market=small_market)
    with psycopg.connect(url, autocommit=True) as conn:
        name = conn.execute("SELECT conname FROM pg_constraint WHERE conrelid = 'definition_groups'::regclass"
                            " AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%%type%%'").fetchone()[0]
        conn.execute(f'ALTER TABLE definition_groups DROP CONSTRAINT "{name}"')
        conn.execute("ALTER TABLE definition_groups ADD CONSTRAINT only_appv2_types"
                     " CHECK (type IN ('ETF', 'THEME', 'SECTOR', 'SEGMENT', 'CUSTOM'))")
    result = sync(url)
    assert result.universes_updated > 0 and result.groups is None
    assert any("relational groups skipped" in w and "UNIVERSE" in w for w in result.warnings)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM definition_groups").fetchone()[0] == 0


def test_a_refusal_the_catalog_does_not_show_skips_the_groups_not_the_sync(groups_url):
    with psycopg.connect(groups_url, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION no_pl() RETURNS trigger LANGUAGE plpgsql AS"
                     " $$BEGIN RAISE EXCEPTION 'groups are read-only today'; END$$")
        conn.execute("CREATE TRIGGER no_pl BEFORE INSERT ON definition_groups FOR EACH ROW EXECUTE FUNCTION no_pl()")
        before = group_digests(conn)
    result = sync(groups_url)
    assert result.universes_updated > 0 and result.groups["created"] == 0
    assert any("relational groups not written" in w and "read-only today" in w for w in result.warnings)
    with psycopg.connect(groups_url) as conn:
        assert group_digests(conn) == before
        assert conn.execute("SELECT count(*) FROM pl_cache_ledger").fetchone()[0] > 40  # cache_entries written


def test_without_the_tables_nothing_is_said(appv2_database, small_market):
    from tests.appv2_schemas import HISTORICAL

    result = sync(appv2_database(HISTORICAL, market=small_market))
    assert result.groups is None and not any("relational" in w for w in result.warnings)
