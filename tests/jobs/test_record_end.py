"""How work records its end once its own connection failed (db/connect.write_until_recorded, which
jobs/single_flight.record_end runs for sync jobs and pipeline runs).

The work's own connection gets one try. After a failure it is closed and a fresh connection writes
the end. A connection may go on looking healthy while every statement on it fails; CI once saw a
sync's job left `running` after a restart mid-COPY, the suspected case (not reproduced here). Closing
the work's connection also ends its transaction and lets go of the locks the fresh write would
otherwise wait for.
"""

from __future__ import annotations

import logging

import psycopg

from tickstockpl.db.connect import write_until_recorded


def _table(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE ends (id int PRIMARY KEY, status text NOT NULL)")
        conn.execute("INSERT INTO ends VALUES (1, 'running')")


def test_a_failure_on_the_own_connection_moves_the_write_to_a_fresh_one_that_is_not_blocked(db_url):
    _table(db_url)
    own = psycopg.connect(db_url)
    own.execute("SELECT status FROM ends WHERE id = 1 FOR UPDATE")  # the work's transaction holds the row
    tries: list[str] = []

    def write(target: psycopg.Connection) -> None:
        tries.append("own" if target is own else "fresh")
        if target is own:
            target.execute("SELECT 1 / 0")  # fails, and leaves the row lock held while the transaction lives
        target.execute("UPDATE ends SET status = 'failed' WHERE id = 1")

    # no time for retries: the move to a fresh connection is not a retry
    assert write_until_recorded(own, db_url, write, what="the end", retry_s=0) is True
    assert tries == ["own", "fresh"]
    assert own.closed
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT status FROM ends WHERE id = 1").fetchone()[0] == "failed"


def test_a_healthy_own_connection_writes_the_end_itself(db_url):
    _table(db_url)
    own = psycopg.connect(db_url, autocommit=True)
    tries: list[str] = []

    def write(target: psycopg.Connection) -> None:
        tries.append("own" if target is own else "fresh")
        target.execute("UPDATE ends SET status = 'completed' WHERE id = 1")

    assert write_until_recorded(own, db_url, write, what="the end", retry_s=0) is True
    assert tries == ["own"] and not own.closed
    own.close()


def test_a_write_that_keeps_failing_gives_up_at_the_deadline_and_says_so(db_url, caplog):
    _table(db_url)
    own = psycopg.connect(db_url, autocommit=True)

    def write(target: psycopg.Connection) -> None:
        target.execute("UPDATE ends SET status = 'failed' WHERE id = 1 / 0")

    # the logger's own level, whatever an in-process CLI test left on "tickstockpl" (cli._logging)
    with caplog.at_level(logging.ERROR, logger="tickstockpl.db.connect"):
        assert write_until_recorded(own, db_url, write, what="the end of job x", retry_s=0) is False
    assert "could not record the end of job x" in caplog.text
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT status FROM ends WHERE id = 1").fetchone()[0] == "running"
