"""The change log in runs (sync/changelog.py, migrations 0011 and 0015): every change keeps its own id,
its place and its reason, the readers answer one change per row as before, and the migrations keep every
existing row."""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg
import pytest

from tests.support.databases import migrated_before
from tests.support.readers import run_async
from tickstockpl.db import locks
from tickstockpl.db.migrate import upgrade
from tickstockpl.sync import changelog, history
from tickstockpl.sync.diff import Change

ENV = "DEFAULT"

# Interleaved on purpose: two runs of one universe and action separated by another action, a change of
# the universe as a whole between runs, reasons that differ per symbol (the rule universes write those),
# and text COPY and array literals must escape (tab, newline, backslash, double quote, comma, braces).
CHANGES = [
    Change("stock_universe:market_cap:mega_cap", "AAPL", "added", "universe created"),
    Change("stock_universe:market_cap:mega_cap", "MSFT", "added", "universe created"),
    Change("stock_universe:market_cap:mega_cap", "OLD", "removed", "no longer a mega cap"),
    Change("stock_universe:market_cap:mega_cap", "NVDA", "added", "universe created"),
    Change("stock_universe:market_cap:mega_cap", None, "reordered", "member order changed"),
    Change("stock_universe:rules:liquid", "A", "added", "rule liquid: dollar volume 2.1M >= 1M"),
    Change("stock_universe:rules:liquid", "B", "added", "rule liquid: dollar volume 1.5M >= 1M"),
    Change("stock_universe:rules:liquid", "C", "added", "rule liquid: dollar volume 1.5M >= 1M"),
    Change("themes:Tab\tand \\ slash:list", 'Q"U,O{T}E', "added", "new\nline"),
    Change("themes:Tab\tand \\ slash:list", "BACK\\SLASH", "added", "new\nline"),
    Change("themes:Tab\tand \\ slash:list", "NULL", "added", "new\nline"),
    Change("themes:Tab\tand \\ slash:list", None, "created", "universe created (no members)"),
    Change("themes:Tab\tand \\ slash:list", None, "created", "universe created (no members)"),
]


def test_runs_join_consecutive_changes_of_one_universe_and_action_with_their_reasons_when_they_differ():
    R = changelog.Run
    assert changelog.runs(CHANGES) == [
        R("stock_universe:market_cap:mega_cap", "added", "universe created", ["AAPL", "MSFT"]),
        R("stock_universe:market_cap:mega_cap", "removed", "no longer a mega cap", ["OLD"]),
        R("stock_universe:market_cap:mega_cap", "added", "universe created", ["NVDA"]),
        R("stock_universe:market_cap:mega_cap", "reordered", "member order changed", None),
        R("stock_universe:rules:liquid", "added", "rule liquid: dollar volume 2.1M >= 1M", ["A", "B", "C"],
          ["rule liquid: dollar volume 2.1M >= 1M", "rule liquid: dollar volume 1.5M >= 1M",
           "rule liquid: dollar volume 1.5M >= 1M"]),
        R("themes:Tab\tand \\ slash:list", "added", "new\nline", ['Q"U,O{T}E', "BACK\\SLASH", "NULL"]),
        R("themes:Tab\tand \\ slash:list", "created", "universe created (no members)", None),
        R("themes:Tab\tand \\ slash:list", "created", "universe created (no members)", None),
    ]
    assert changelog.runs([]) == []
    # a change of the universe as a whole between two of the same action breaks the run
    split = [Change("u", "A", "added", "x"), Change("u", None, "added", "y"), Change("u", "B", "added", "z")]
    assert changelog.runs(split) == [R("u", "added", "x", ["A"]), R("u", "added", "y", None), R("u", "added", "z", ["B"])]


def _write(url: str, changes, job: str | None = None) -> str:
    job = job or str(uuid.uuid4())
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            assert changelog.write(cur, job, ENV, changes) == len(changes)
    return job



def _expected(changes, ids):
    return [(i, c.universe, c.symbol, c.action, c.reason) for i, c in zip(ids, changes)]


def test_every_change_is_read_back_one_per_row_with_its_own_id_in_the_order_it_was_logged(db_url):
    job = _write(db_url, CHANGES)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM pl_sync_changes").fetchone()[0] == 8  # runs, not changes
        rows = run_async(conn, changelog.page, ENV, since=None, universe=None, limit=1000, offset=0)
        first = rows[0].id
        assert [(r.id, r.universe, r.symbol, r.action, r.reason) for r in rows] == \
            _expected(CHANGES, range(first, first + len(CHANGES)))
        assert {r.job_id for r in rows} == {job}
        for limit, offset in ((1, 0), (2, 1), (3, 2), (4, 5), (5, 9), (100, 12), (100, 13)):
            window = run_async(conn, changelog.page, ENV, since=None, universe=None, limit=limit, offset=offset)
            assert window == rows[offset:offset + limit]
        liquid = run_async(conn, changelog.page, ENV, since=None, universe="stock_universe:rules:liquid", limit=2, offset=1)
        assert [(r.symbol, r.reason) for r in liquid] == [("B", "rule liquid: dollar volume 1.5M >= 1M"),
                                                          ("C", "rule liquid: dollar volume 1.5M >= 1M")]
        later = rows[0].created_at + dt.timedelta(microseconds=1)
        assert run_async(conn, changelog.page, ENV, since=later, universe=None, limit=10, offset=0) == []
        assert run_async(conn, changelog.page, "OTHER", since=None, universe=None, limit=10, offset=0) == []
        assert changelog.of_job(conn, job) == sorted(
            (c.universe, c.symbol, c.action, c.reason) for c in CHANGES if c.symbol is not None)
        raw = conn.execute("SELECT symbol, symbols FROM pl_sync_changes WHERE universe LIKE 'themes:%' ORDER BY id").fetchall()
        assert raw == [(None, ['Q"U,O{T}E', "BACK\\SLASH", "NULL"]), (None, None), (None, None)]
        liquid_rows = conn.execute("SELECT reason, reasons FROM pl_sync_changes WHERE universe = 'stock_universe:rules:liquid'"
                                   " ORDER BY id").fetchall()
        assert liquid_rows == [("rule liquid: dollar volume 2.1M >= 1M", [c.reason for c in CHANGES[5:8]])]
        view = conn.execute("SELECT id, universe, symbol, action, reason FROM pl_sync_change_rows WHERE job_id = %s"
                            " ORDER BY run_id, ordinal", (job,)).fetchall()
        assert view == _expected(CHANGES, range(first, first + len(CHANGES)))


def test_writes_of_two_jobs_get_blocks_of_ids_one_after_the_other(db_url):
    first_job = _write(db_url, CHANGES)
    second_job = _write(db_url, CHANGES[:3])
    with psycopg.connect(db_url) as conn:
        rows = run_async(conn, changelog.page, ENV, since=None, universe=None, limit=1000, offset=0)
    ids = [r.id for r in rows]
    assert ids == list(range(ids[0], ids[0] + len(CHANGES) + 3))
    assert [r.job_id for r in rows] == [first_job] * len(CHANGES) + [second_job] * 3


def test_a_second_writer_waits_for_the_first_to_commit_before_it_reserves_ids(db_url):
    """The reservation holds locks.CHANGE_LOG_IDS until commit: a second writer cannot take ids meanwhile."""
    with psycopg.connect(db_url) as first, psycopg.connect(db_url) as second:
        with first.cursor() as cur:
            changelog.write(cur, str(uuid.uuid4()), ENV, CHANGES)
        second.execute("SET lock_timeout = '50ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            with second.cursor() as cur:
                changelog.write(cur, str(uuid.uuid4()), "OTHER", CHANGES[:2])
        second.rollback()
        first.commit()
        with second.cursor() as cur:
            changelog.write(cur, str(uuid.uuid4()), "OTHER", CHANGES[:2])
        second.commit()
        held = second.execute(  # this database's only: other tests' syncs run in their own databases meanwhile
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (locks.CHANGE_LOG_IDS & 0xFFFFFFFF,)).fetchone()[0]
        assert held == 0
        ids = [r[0] for r in second.execute("SELECT id FROM pl_sync_change_rows ORDER BY run_id, ordinal")]
    assert ids == sorted(set(ids)) and len(ids) == len(CHANGES) + 2


def test_membership_rows_opened_keep_text_that_json_or_copy_would_escape(db_url):
    pairs = [("themes:Tab\tand \\ slash:list", "BACK\\SLASH"), ("themes:Tab\tand \\ slash:list", "NEW\nLINE"),
             ("themes:x:list", "AAPL")]
    day, job = dt.date(2026, 11, 27), str(uuid.uuid4())
    with psycopg.connect(db_url) as conn:
        with conn.cursor() as cur:
            history.open_(cur, pairs, environment=ENV, as_of=day, job_id=job)
        rows = conn.execute("SELECT universe, symbol, valid_from, valid_to, job_id::text FROM pl_universe_membership"
                            " ORDER BY universe, symbol").fetchall()
        assert rows == sorted((u, s, day, None, job) for u, s in pairs)
        found = conn.execute(history.MEMBERS_ON_SQL, {"env": ENV, "universe": "themes:Tab\tand \\ slash:list", "day": day})
        assert [r[0] for r in found] == ["BACK\\SLASH", "NEW\nLINE"]


# The readers as they were before 0011 (one change per row in pl_sync_changes): the oracle.
OLD_PAGE_SQL = (
    "SELECT id, job_id::text AS job_id, universe, symbol, action, reason, created_at FROM pl_sync_changes"
    " WHERE environment = %(env)s AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s::timestamptz)"
    " AND (%(universe)s::text IS NULL OR universe = %(universe)s::text)"
    " ORDER BY id LIMIT %(limit)s OFFSET %(offset)s")
OLD_OF_JOB_SQL = (
    "SELECT universe, symbol, action, reason FROM pl_sync_changes WHERE job_id = %(job)s"
    " AND symbol IS NOT NULL ORDER BY universe, action, symbol")
OLD_COLUMNS = "id, job_id, environment, universe, symbol, action, reason, metadata, created_at"


def test_migration_0011_keeps_every_row_and_the_readers_answer_as_before(pg):
    name = pg.create_database("changelog_0011")
    url = pg.url(name)
    try:
        with migrated_before(url, 11) as conn:
            jobs = [str(uuid.uuid4()) for _ in range(3)]
            # rows of an earlier PL: one per change, a metadata value, another environment, three days
            conn.execute(
                "INSERT INTO pl_sync_changes (job_id, environment, universe, symbol, action, reason, metadata, created_at)"
                " SELECT (%(jobs)s::uuid[])[1 + g %% 3], CASE WHEN g %% 7 = 0 THEN 'OTHER' ELSE 'DEFAULT' END,"
                "  'stock_universe:sector:s' || (g %% 4), CASE WHEN g %% 5 = 0 THEN NULL ELSE 'SYM' || g END,"
                "  CASE WHEN g %% 5 = 0 THEN 'updated' WHEN g %% 2 = 0 THEN 'added' ELSE 'removed' END,"
                "  'reason ' || (g %% 3), CASE WHEN g %% 11 = 0 THEN '{\"k\": 1}'::jsonb END,"
                "  '2026-11-20T14:00:00Z'::timestamptz + (g / 20) * interval '1 day' FROM generate_series(1, 60) g",
                {"jobs": jobs})
            before = conn.execute(f"SELECT ({OLD_COLUMNS})::text FROM pl_sync_changes ORDER BY id").fetchall()
            queries = [dict(env=env, since=since, universe=universe, limit=limit, offset=offset)
                       for env in ("DEFAULT", "OTHER")
                       for since in (None, dt.datetime(2026, 11, 21, 14, tzinfo=dt.timezone.utc))
                       for universe in (None, "stock_universe:sector:s1")
                       for limit, offset in ((100, 0), (7, 3), (5, 40))]
            old_pages = [conn.execute(OLD_PAGE_SQL, q).fetchall() for q in queries]
            old_jobs = [conn.execute(OLD_OF_JOB_SQL, {"job": j}).fetchall() for j in jobs]
        assert "0011_change_log_runs" in upgrade(url, fill_calendar=False)
        with psycopg.connect(url) as conn:
            after = conn.execute(f"SELECT ({OLD_COLUMNS})::text FROM pl_sync_changes ORDER BY id").fetchall()
            assert after == before  # every row, byte for byte
            assert conn.execute("SELECT count(*) FROM pl_sync_changes WHERE symbols IS NOT NULL").fetchone()[0] == 0
            view = conn.execute(f"SELECT ({OLD_COLUMNS})::text FROM pl_sync_change_rows ORDER BY run_id, ordinal").fetchall()
            assert view == before
            for q, old in zip(queries, old_pages):
                new = run_async(conn, changelog.page, q["env"], since=q["since"], universe=q["universe"], limit=q["limit"],
                                     offset=q["offset"])
                assert [tuple(r) for r in new] == [tuple(r) for r in old], q
            for j, old in zip(jobs, old_jobs):
                assert [tuple(r) for r in changelog.of_job(conn, j)] == [tuple(r) for r in old]
            # and the log goes on after the old rows, with ids after theirs
            with conn.cursor() as cur:
                changelog.write(cur, jobs[0], "DEFAULT", CHANGES[:2])
            conn.commit()
            tail = run_async(conn, changelog.page, "DEFAULT", since=None, universe=None, limit=1000, offset=0)[-2:]
            last_old = int(before[-1][0].strip("()").split(",")[0])
            assert [r.id for r in tail] == [last_old + 1, last_old + 2]
            assert [r.symbol for r in tail] == ["AAPL", "MSFT"]
        assert upgrade(url, fill_calendar=False) == []  # recorded once
    finally:
        pg.drop_database(name)


def test_migration_0015_keeps_every_row_and_the_view_answers_as_before(pg):
    name = pg.create_database("changelog_0015")
    url = pg.url(name)
    try:
        with migrated_before(url, 15) as conn:
            job = str(uuid.uuid4())
            # a row of one change (before 0011) and runs as 0011's writer left them (one reason per run)
            conn.execute("INSERT INTO pl_sync_changes (job_id, environment, universe, symbol, action, reason)"
                         " VALUES (%s, 'DEFAULT', 'themes:x:list', 'OLD', 'removed', 'gone')", (job,))
            conn.execute("INSERT INTO pl_sync_changes (id, job_id, environment, universe, symbols, symbol_count, action,"
                         " reason) VALUES (100, %s, 'DEFAULT', 'stock_universe:rules:liquid', '{A,B}', 2, 'added', 'r1'),"
                         " (102, %s, 'DEFAULT', 'stock_universe:rules:liquid', '{C}', 1, 'added', 'r2')", (job, job))
            columns = "id, job_id, environment, universe, symbol, symbols, symbol_count, action, reason, metadata, created_at"
            before = conn.execute(f"SELECT ({columns})::text FROM pl_sync_changes ORDER BY id").fetchall()
            view_before = conn.execute("SELECT * FROM pl_sync_change_rows ORDER BY run_id, ordinal").fetchall()
            assert len(view_before) == 4
        assert "0015_change_log_reasons" in upgrade(url, fill_calendar=False)
        with psycopg.connect(url) as conn:
            assert conn.execute(f"SELECT ({columns})::text FROM pl_sync_changes ORDER BY id").fetchall() == before
            assert conn.execute("SELECT count(*) FROM pl_sync_changes WHERE reasons IS NOT NULL").fetchone()[0] == 0
            assert conn.execute("SELECT * FROM pl_sync_change_rows ORDER BY run_id, ordinal").fetchall() == view_before
            # the shape is checked: reasons aligned with symbols, the first of them in `reason`
            for symbols, count, reason, reasons in ((["A", "B"], 2, "x", ["x"]), (["A"], 1, "y", ["x"]),
                                                    (None, None, "x", ["x"]), (["A"], 1, "x", [None])):
                with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
                    conn.execute("INSERT INTO pl_sync_changes (job_id, environment, universe, symbols, symbol_count,"
                                 " action, reason, reasons) VALUES (%s, 'DEFAULT', 'u', %s, %s, 'added', %s, %s)",
                                 (job, symbols, count, reason, reasons))
        assert upgrade(url, fill_calendar=False) == []
    finally:
        pg.drop_database(name)
