"""A stored value PL wrote and nobody changed is not read back: the ledger's members and text digest stand
for it (universes.model.Recorded, sync/encoding.py, migration 0013). The plan must be the one the value
itself gives."""

from __future__ import annotations

import datetime as dt

import psycopg
from hypothesis import given, settings, strategies as st

from tickstockpl.jobs.runtime import start_job
from tickstockpl.sync.job import SyncRequest, run_sync
from tickstockpl.sync import diff, encoding
from tickstockpl.sync.store import read_stored
from tickstockpl.universes.model import Entry, Recorded, member_count, members
from tickstockpl.universes.build import build
from tickstockpl.universes.config import default_config
from tickstockpl.universes.model import FAMILIES_BY_MODE
from tickstockpl.market.snapshot import read as read_snapshot

EARLIER, LATER = dt.date(2026, 11, 25), dt.date(2026, 11, 27)


def sync(url, **kw):
    return start_job(url, triggered_by="cli", background=False, **kw).result


def dry_run(url, as_of):
    with psycopg.connect(url, autocommit=True) as conn:
        return run_sync(conn, SyncRequest(dry_run=True, as_of=as_of))


def stored_values(conn) -> dict[str, object]:
    return {f"{t}:{n}:{k}": v for t, n, k, v in conn.execute(
        "SELECT type, name, key, value FROM cache_entries WHERE environment = 'DEFAULT'")}


def comparable(result) -> dict:
    out = result.to_dict()
    for key in ("job_id", "duration_seconds"):
        out.pop(key)
    return out


def test_the_rows_pl_left_come_back_as_their_recorded_members(market_db_url):
    sync(market_db_url, as_of=EARLIER)
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        found = read_stored(conn, "DEFAULT").found
        actual = stored_values(conn)
    assert found and all(isinstance(row.value, Recorded) for row in found)
    for row in found:
        assert list(row.value.members) == members(actual[row.universe])
        assert member_count(row.value) == member_count(actual[row.universe])
        assert len(row.value.digest) == 32


def test_a_row_changed_by_someone_else_is_read_back_whole(market_db_url):
    sync(market_db_url, as_of=EARLIER)
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        # the same value written again by someone else: a new row version, so the ledger's record no longer holds
        conn.execute("UPDATE cache_entries SET value = value WHERE key = 'mega_cap' AND environment = 'DEFAULT'")
        found = {row.universe: row for row in read_stored(conn, "DEFAULT").found}
        actual = stored_values(conn)
    mega = found["stock_universe:market_cap:mega_cap"]
    assert mega.value == actual["stock_universe:market_cap:mega_cap"] and not mega.edited
    assert sum(not isinstance(row.value, Recorded) for row in found.values()) == 1


def test_the_next_session_plans_the_same_from_the_records_as_from_the_values(market_db_url):
    sync(market_db_url, as_of=EARLIER)
    from_records = dry_run(market_db_url, LATER)
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        conn.execute("UPDATE pl_cache_ledger SET members = NULL")  # as a ledger from before migration 0013
        assert not any(isinstance(row.value, Recorded) for row in read_stored(conn, "DEFAULT").found)
    from_values = dry_run(market_db_url, LATER)
    assert from_records.total_changes > 0
    assert comparable(from_records) == comparable(from_values)


def test_a_forced_rerun_finds_every_recorded_universe_unchanged_and_records_them_again(market_db_url):
    first = sync(market_db_url, as_of=LATER)
    again = sync(market_db_url, as_of=LATER, force=True)
    assert first.total_changes > 0 and again.total_changes == 0 and again.universes_updated == 0
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        conn.execute("UPDATE pl_cache_ledger SET members = NULL, text_digest = NULL")
    read_back = sync(market_db_url, as_of=LATER, force=True)  # compared value by value: the same answer
    assert read_back.total_changes == 0
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        # nothing was written, so nothing was recorded: the values are read again next time
        assert conn.execute("SELECT count(*) FROM pl_cache_ledger WHERE members IS NOT NULL").fetchone()[0] == 0
    earlier = sync(market_db_url, as_of=EARLIER)  # a day whose values differ: those written are recorded again
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        recorded = conn.execute("SELECT count(members), count(*) FROM pl_cache_ledger WHERE job_id = %s",
                                (earlier.job_id,)).fetchone()
    assert recorded == (earlier.universes_updated, earlier.universes_updated) and earlier.universes_updated > 0


def test_every_built_value_counts_as_many_members_as_it_lists(market_db_url):
    """drift and validate count stored members with member_count; a Recorded value counts its list, which
    is the same number only if PL's values list every item they count."""
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        snap = read_snapshot(conn, LATER).snapshot
    built = build(snap, default_config(), FAMILIES_BY_MODE["full"])
    assert built.entries
    for entry in built.entries:
        assert member_count(entry.value) == len(members(entry.value)), entry.universe


def test_members_that_cannot_be_joined_are_not_recorded():
    assert encoding.joined_members([]) == ""
    assert encoding.split_members("") == ()
    assert encoding.split_members(encoding.joined_members(["A", "BRK.B"])) == ("A", "BRK.B")
    assert encoding.joined_members(["A", "B\nC"]) is None
    assert encoding.joined_members(["A", ""]) is None
    entry = Entry("themes", "odd", "list", ["A", "B\nC"], "themes")
    the_plan = diff.plan([], [entry], active_symbols=frozenset())
    assert the_plan.written[entry.universe].members is None


tickers = st.lists(st.sampled_from(["A", "B", "C", "D", "E", "BRK.B"]), unique=True, max_size=5)
values = st.one_of(
    tickers,
    st.builds(lambda ts, caps: {"count": len(ts), "stocks": [{"ticker": t, "market_cap": c} for t, c in zip(ts, caps)]},
              tickers, st.lists(st.floats(min_value=1, max_value=1e13), min_size=5, max_size=5)),
)


@settings(max_examples=200, deadline=None)
@given(old=values, new=values, active=tickers)
def test_a_recorded_value_plans_as_the_value_itself(old, new, active):
    """What PL wrote (its text's digest and members) gives the plan the value read back would give. (Where
    two values are equal in Python but not as text, 1 and 1.0, the record calls the value changed, as its
    bytes in jsonb are; no builder writes a field as an integer one day and a float the next.)"""
    written = diff.written(old)
    recorded = Recorded(encoding.split_members(written.members), written.digest)
    built = [Entry("themes", "t", "list", new, "themes")]
    by_value = diff.plan([Entry("themes", "t", "list", old, "themes")], built, active_symbols=frozenset(active))
    by_record = diff.plan([Entry("themes", "t", "list", recorded, "themes")], built, active_symbols=frozenset(active))
    assert by_record == by_value


def test_a_row_rewritten_by_a_pl_from_before_the_record_is_read_back_whole(market_db_url):
    """A PL from before migration 0013 writes the row and moves row_xmin (and value_digest) to its own write,
    leaving the members and text digest of the value before: that record must not stand for the new value."""
    sync(market_db_url, as_of=EARLIER)
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("UPDATE cache_entries SET value = '{\"count\": 0, \"stocks\": []}'"
                         " WHERE key = 'mega_cap' AND environment = 'DEFAULT'")
            conn.execute("UPDATE pl_cache_ledger l SET row_xmin = c.xmin, value_digest = jsonb_hash_extended(c.value, 0)::text"
                         " FROM cache_entries c WHERE c.environment = l.environment AND c.type = l.type"
                         " AND c.name = l.name AND c.key = l.key AND l.key = 'mega_cap'")
        found = {row.universe: row for row in read_stored(conn, "DEFAULT").found}
    mega = found["stock_universe:market_cap:mega_cap"]
    assert mega.value == {"count": 0, "stocks": []} and not mega.edited  # PL's write, as the ledger says
    assert sum(not isinstance(row.value, Recorded) for row in found.values()) == 1
