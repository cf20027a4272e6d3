"""The newest history date (migration 0016, `pl_history_newest`) and the open statement that reads it
(sync/history.py OPEN_CTES): the plain INSERT only where no row of the environment starts on or after the
sync date, the upsert otherwise; the triggers keep the date whoever writes the table."""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg
import pytest

from tests.support.databases import migrated_before
from tickstockpl.db.migrate import upgrade
from tickstockpl.sync import history

ENV = "DEFAULT"
D1, D2, D3 = dt.date(2026, 11, 24), dt.date(2026, 11, 25), dt.date(2026, 11, 27)
INSERT = ("INSERT INTO pl_universe_membership (environment, universe, symbol, valid_from, valid_to, job_id)"
          " VALUES (%s, %s, %s, %s, %s, NULL)")


def newest(conn) -> dict[str, dt.date]:
    return dict(conn.execute("SELECT environment, valid_from FROM pl_history_newest").fetchall())


def test_migration_0016_keeps_every_history_row_and_starts_at_the_newest_date(pg):
    name = pg.create_database("history_0016")
    url = pg.url(name)
    try:
        with migrated_before(url, 16) as conn:
            for row in ((ENV, "themes:x:list", "A", D1, D2), (ENV, "themes:x:list", "A", D3, None),
                        (ENV, "themes:x:list", "B", D2, None), ("OTHER", "themes:x:list", "A", D1, None)):
                conn.execute(INSERT, row)
            before = conn.execute("SELECT (m.*)::text FROM pl_universe_membership m ORDER BY 1").fetchall()
        assert "0016_history_newest" in upgrade(url, fill_calendar=False)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT (m.*)::text FROM pl_universe_membership m ORDER BY 1").fetchall() == before
            assert newest(conn) == {ENV: D3, "OTHER": D1}
        assert upgrade(url, fill_calendar=False) == []
    finally:
        pg.drop_database(name)


def test_every_writer_raises_the_date_and_none_lowers_it(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert newest(conn) == {}
        conn.execute(INSERT, (ENV, "themes:x:list", "A", D2, None))
        assert newest(conn) == {ENV: D2}
        conn.execute(INSERT, (ENV, "themes:x:list", "B", D1, None))  # an older date (a backfill's) keeps it
        assert newest(conn) == {ENV: D2}
        with conn.cursor().copy("COPY pl_universe_membership (environment, universe, symbol, valid_from)"
                                " FROM STDIN") as copy:
            copy.write_row((ENV, "themes:x:list", "C", D3))
            copy.write_row(("OTHER", "themes:x:list", "C", D1))
        assert newest(conn) == {ENV: D3, "OTHER": D1}
        conn.execute("DELETE FROM pl_universe_membership WHERE valid_from = %s", (D3,))
        assert newest(conn) == {ENV: D3, "OTHER": D1}  # above the table's: the upsert then runs, still correct
        conn.execute("UPDATE pl_universe_membership SET valid_from = %s WHERE symbol = 'B'", (D3 + dt.timedelta(1),))
        assert newest(conn) == {ENV: D3 + dt.timedelta(1), "OTHER": D1}
        conn.execute("UPDATE pl_universe_membership SET valid_to = %s WHERE symbol = 'A'", (D3,))  # a close
        assert newest(conn) == {ENV: D3 + dt.timedelta(1), "OTHER": D1}
        conn.execute("TRUNCATE pl_universe_membership")
        assert newest(conn) == {}


def _rows(conn):
    return conn.execute("SELECT universe, symbol, valid_from, valid_to FROM pl_universe_membership"
                        " ORDER BY universe, symbol, valid_from").fetchall()


def test_the_open_statement_reopens_a_row_of_its_date_and_inserts_plainly_before_it(db_url):
    pairs = [("themes:x:list", "A"), ("themes:x:list", "B")]
    job = str(uuid.uuid4())
    with psycopg.connect(db_url, autocommit=True) as conn:
        # A's row opened on D2 and closed on D3 since (by a sync of D3): a sync of D2 again reopens it
        conn.execute(INSERT, (ENV, "themes:x:list", "A", D2, D3))
        with conn.cursor() as cur:  # the newest date is D2, not before D2: the upsert
            history.open_(cur, pairs[:1], environment=ENV, as_of=D2, job_id=job)
        assert _rows(conn) == [("themes:x:list", "A", D2, None)]

        # The plain path, shown by the row it cannot see: written with the triggers off, so that the newest date
        # stays below D3, a row starting on D3 makes the plain INSERT fail (the upsert would have reopened it).
        conn.execute("SET session_replication_role = replica")
        conn.execute(INSERT, (ENV, "themes:x:list", "B", D3, dt.date(2026, 11, 30)))
        conn.execute("RESET session_replication_role")
        assert newest(conn) == {ENV: D2}
        with pytest.raises(psycopg.errors.UniqueViolation), conn.cursor() as cur:
            history.open_(cur, pairs[1:], environment=ENV, as_of=D3, job_id=job)
        # once the date says so, the same statement takes the upsert
        conn.execute("UPDATE pl_universe_membership SET valid_from = valid_from WHERE symbol = 'B'")
        assert newest(conn) == {ENV: D3}
        with conn.cursor() as cur:
            history.open_(cur, pairs[1:], environment=ENV, as_of=D3, job_id=job)
        assert _rows(conn) == [("themes:x:list", "A", D2, None), ("themes:x:list", "B", D3, None)]


def test_a_first_run_takes_the_plain_insert_and_writes_the_same_rows(db_url):
    """No history in the environment (another's does not count): the plain INSERT, the rows as the upsert's."""
    pairs = [("themes:x:list", "A"), ("themes:y:list", "A"), ("themes:x:list", "B")]
    job = str(uuid.uuid4())
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(INSERT, ("OTHER", "themes:x:list", "A", D3, None))
        with conn.cursor() as cur:
            cur.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) " + history.OPEN_SQL,
                        history._open_params(pairs, ENV, D2, job))
            plan = cur.fetchone()[0][0]["Plan"]
        inserts = [p for p in _nodes(plan) if p.get("Node Type") == "ModifyTable"]
        assert len(inserts) == 2
        done = {bool(p.get("Conflict Resolution")): next(c["Actual Rows"] for c in p["Plans"]
                                                        if c["Parent Relationship"] == "Outer") for p in inserts}
        assert done == {False: 3, True: 0}  # the plain INSERT wrote the three rows, the upsert none
        assert conn.execute("SELECT universe, symbol, valid_from, valid_to, job_id::text FROM pl_universe_membership"
                            " WHERE environment = %s ORDER BY 1, 2", (ENV,)).fetchall() == sorted(
            (u, s, D2, None, job) for u, s in pairs)


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)
