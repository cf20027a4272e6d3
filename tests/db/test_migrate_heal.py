"""Migrations that heal: an interrupted CREATE INDEX CONCURRENTLY leaves its index invalid for real
(pg_index.indisvalid = false); `db upgrade` then rebuilds it instead of skipping it (IF NOT EXISTS), and
records a migration only once what it made is valid.

The invalid state is made the way it happens: the build of migration 0003 waits for a writer's lock
on ohlcv_daily (its catalog entry already committed, invalid), and is then interrupted — Ctrl-C
(SIGINT) to a real `tickstockpl db upgrade` process, or pg_cancel_backend.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import psycopg
import pytest

from tests.live_server import as_url
from tests.support.waiting import wait_until
from tickstockpl.db.migrate import index_state, upgrade
from tickstockpl.errors import TickStockError

INDEX = "ohlcv_daily_date_idx"
BUILD = f"CREATE INDEX CONCURRENTLY {INDEX} ON ohlcv_daily (date)"


def _state(url: str):
    with psycopg.connect(url, autocommit=True) as conn:
        return index_state(conn, INDEX)


def _recorded(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM pl_schema_migrations WHERE version = 3").fetchone()[0] == 1


def _before_0003(url: str) -> None:
    """The database as it was before migration 0003: no index, the migration not recorded."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP INDEX IF EXISTS {INDEX}")
        conn.execute("DELETE FROM pl_schema_migrations WHERE version = 3")


def _build_waiting(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            " AND query ILIKE 'CREATE INDEX CONCURRENTLY%%'").fetchone()[0] > 0


class Writer:
    """A writer's open transaction on ohlcv_daily: a concurrent index build waits for it to end."""

    def __init__(self, url: str):
        self.conn = psycopg.connect(url)
        self.conn.execute("LOCK TABLE ohlcv_daily IN ROW EXCLUSIVE MODE")

    def end(self) -> None:
        self.conn.rollback()
        self.conn.close()


def _cancelled_build(url: str) -> None:
    """Leave the index invalid: a build waiting for a writer, cancelled with pg_cancel_backend."""
    writer = Writer(url)
    failure: list[BaseException] = []

    def build() -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(BUILD)
        except psycopg.errors.QueryCanceled as err:
            failure.append(err)

    thread = threading.Thread(target=build)
    thread.start()
    try:
        wait_until(lambda: _build_waiting(url), 30, "the index build waiting for the writer")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                         " AND query ILIKE 'CREATE INDEX CONCURRENTLY%%'")
        thread.join(30)
    finally:
        writer.end()
    assert failure, "the build was not cancelled"


def test_ctrl_c_during_the_concurrent_build_leaves_an_invalid_index_that_the_next_upgrade_rebuilds(db_url):
    _before_0003(db_url)
    writer = Writer(db_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKSTOCKPL_", "DATABASE_"))}
    env["DATABASE_URL"] = as_url(db_url)
    # as from a terminal: SIGINT at its default (a test run started in the background, `cmd &` in a
    # non-interactive shell, hands its children SIGINT ignored, and Python then installs no Ctrl-C handler)
    proc = subprocess.Popen([sys.executable, "-m", "tickstockpl.cli", "db", "upgrade"], env=env, cwd="/",
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_until(lambda: _build_waiting(db_url), 60, "db upgrade's index build waiting for the writer")
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        writer.end()
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["error: interrupted"], err
    assert _state(db_url) == (False, None)  # the interrupted build left the index behind, invalid
    assert not _recorded(db_url)

    again = subprocess.run([sys.executable, "-m", "tickstockpl.cli", "db", "upgrade"], env=env, cwd="/",
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "0003_ohlcv_date_index" in again.stdout
    assert _state(db_url) == (True, None) and _recorded(db_url)
    with psycopg.connect(db_url) as conn:  # and the date lookups use it
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN SELECT max(date) FROM ohlcv_daily"))
    assert INDEX in plan, plan


def test_an_invalid_index_of_a_recorded_migration_is_rebuilt(db_url):
    """What an earlier version left: 0003 recorded although its index is invalid (IF NOT EXISTS skipped it)."""
    _before_0003(db_url)
    _cancelled_build(db_url)
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO pl_schema_migrations (version, name) VALUES (3, 'ohlcv_date_index')")
    assert _state(db_url) == (False, None) and _recorded(db_url)
    assert upgrade(db_url, fill_calendar=False) == [f"0003_ohlcv_date_index (index {INDEX} was invalid: rebuilt)"]
    assert _state(db_url) == (True, None)
    assert upgrade(db_url, fill_calendar=False) == []  # healthy now: nothing to do


def test_a_failed_build_is_not_recorded_and_an_index_being_built_is_left_alone(db_url):
    _before_0003(db_url)
    _cancelled_build(db_url)  # invalid, and 0003 not recorded
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"DROP INDEX {INDEX}")
    writer = Writer(db_url)  # another session's build of the same index, waiting: in progress
    other = threading.Thread(target=lambda: _quiet_build(db_url))
    other.start()
    try:
        wait_until(lambda: _build_waiting(db_url), 30, "the other session's build waiting")
        assert _state(db_url)[0] is False and _state(db_url)[1] is not None
        with pytest.raises(TickStockError, match="being built by another session"):
            upgrade(db_url, fill_calendar=False)
        assert not _recorded(db_url)
    finally:
        writer.end()
        other.join(60)
    assert _state(db_url) == (True, None)  # that build finished; nothing dropped it
    assert upgrade(db_url, fill_calendar=False) == ["0003_ohlcv_date_index"]
    assert _recorded(db_url)


def _quiet_build(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(BUILD)
