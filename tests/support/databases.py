"""One family of test databases: a server, a template with every migration, a fresh copy per test.

    Cluster              a PostgreSQL server the tests create databases on: the machine's or an embedded one
                         (tests/servers.PostgresHandle), or the reliability tests' server they stop and start
                         (tests/reliability/support.ControlledPostgres); every name gets the run's prefix
    migrated_template    a database with every migration applied, to copy from (CREATE DATABASE ... TEMPLATE)
    fresh_database       a copy of a template for one test, dropped afterwards (on the cluster's dropper thread:
                         DROP DATABASE makes the server checkpoint, 0.1-6 s the test need not wait for)
    migrated_before      a connection to a database with the migrations before one version applied (an older
                         PL's schema), for the tests of that migration
    SymbolsLocked        hold `symbols` locked, so that a sync started meanwhile stays at its first step

The fixtures (`db_url`, `market_db_url` in tests/conftest.py, `rel_db` in tests/reliability/conftest.py) are
these three calls on their own server.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import uuid
from typing import Iterator

import psycopg

DROPPER_THREAD = "test-database-dropper"  # its statements are not the code's under test (tests/statements.py)
ATTEMPTS = 30  # CREATE DATABASE ... TEMPLATE retries while the template still has a session closing
# Databases dropped DROP_BATCH at a time: each DROP DATABASE forces a checkpoint, which writes every dirty page
# of the server (the other workers' databases included) and makes the next change of each page log a full
# page image; a drop after every test meant more than one checkpoint a second.
DROP_BATCH = 20


def with_database(url: str, dbname: str) -> str:
    """Same server, another database (works for host:port URLs and socket URLs)."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**info)


class Dropper:
    """A thread that drops the databases handed to it, DROP_BATCH at a time, on one admin connection.

    DROP DATABASE makes PostgreSQL checkpoint (it waits for every dirty buffer of the server to be
    written), which costs a test 0.1 s on a quiet server and seconds on a busy one; the names are unique,
    so nothing waits for the drop but the end of the run (`Cluster.wait_for_drops`). A drop that fails
    (the controlled server is stopped) leaves the name in the cluster's list, for `drop_created`."""

    def __init__(self, cluster: "Cluster"):
        self.cluster = cluster
        self.names: queue.Queue[str | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name=DROPPER_THREAD, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        conn = None
        pending: list[str] = []
        while True:
            name = self.names.get()
            if name is not None:
                pending.append(name)
            if name is None or len(pending) >= DROP_BATCH:
                conn = self._drop(conn, pending)
                pending.clear()
            if name is None:
                break
        if conn is not None:
            conn.close()

    def _drop(self, conn: psycopg.Connection | None, names: list[str]) -> psycopg.Connection | None:
        """Drop `names` one after the other; returns the admin connection to go on with (None after a failure)."""
        for name in names:
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.cluster.admin_url, autocommit=True)
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                self.cluster.forget(name)
            except psycopg.Error:
                if conn is not None:
                    conn.close()
                conn = None
        return conn

    def close(self) -> None:
        self.names.put(None)
        self.thread.join()


class Cluster:
    """A server's admin URL and the databases this run made on it (subclasses set `admin_url`, `prefix`)."""

    admin_url: str
    prefix: str

    def __init__(self) -> None:
        self._created: list[str] = []
        self._dropper: Dropper | None = None

    def url(self, name: str) -> str:
        return with_database(self.admin_url, name)

    def create_database(self, suffix: str, template: str | None = None) -> str:
        name = f"{self.prefix}_{suffix}"[:63]
        sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for attempt in range(ATTEMPTS):
                try:
                    conn.execute(sql)
                    break
                except psycopg.errors.ObjectInUse:  # the template still has a session closing
                    time.sleep(0.1 * (attempt + 1))
            else:
                conn.execute(sql)
        self._created.append(name)
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.forget(name)

    def forget(self, name: str) -> None:
        with contextlib.suppress(ValueError):
            self._created.remove(name)

    def drop_later(self, name: str) -> None:
        """Drop `name` on the dropper thread; the caller does not wait (the name must not be created again)."""
        if self._dropper is None:
            self._dropper = Dropper(self)
        self._dropper.names.put(name)

    def wait_for_drops(self) -> None:
        """Every database handed to `drop_later` dropped (or, when that failed, still in the list)."""
        if self._dropper is not None:
            self._dropper.close()
            self._dropper = None

    def drop_created(self) -> None:
        self.wait_for_drops()
        for name in list(reversed(self._created)):
            try:
                self.drop_database(name)
            except psycopg.Error:
                pass


def migrated_template(cluster: Cluster, label: str = "schema") -> str:
    """Name of a database on `cluster` holding the full schema (and the NYSE sessions table), no data."""
    from tickstockpl.db.migrate import upgrade

    name = cluster.create_database(label)
    upgrade(cluster.url(name))
    return name


@contextlib.contextmanager
def migrated_before(url: str, version: int) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the empty database `url` with the migrations before `version` applied, as an
    older PL left it (`upgrade(url)` afterwards applies the rest)."""
    from tickstockpl.db.migrate import _apply, available

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE pl_schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                     " applied_at timestamptz NOT NULL DEFAULT now())")
        for migration in available():
            if migration.version < version:
                _apply(conn, migration)
        yield conn


@contextlib.contextmanager
def fresh_database(cluster: Cluster, template: str, kind: str = "d") -> Iterator[str]:
    """A new database copied from `template`, its URL for the block, dropped afterwards (`Cluster.drop_later`:
    its name is unique, so the next test need not wait for the drop)."""
    name = cluster.create_database(f"{kind}{uuid.uuid4().hex[:12]}", template=template)
    try:
        yield cluster.url(name)
    finally:
        cluster.drop_later(name)


class SymbolsLocked:
    """Hold an ACCESS EXCLUSIVE lock on `symbols`: a sync started meanwhile stays `running` at its
    first step (loading the snapshot) until `release()`. Makes "while running" deterministic."""

    def __init__(self, db_url: str):
        self.conn = psycopg.connect(db_url)
        self.conn.execute("LOCK TABLE symbols IN ACCESS EXCLUSIVE MODE")

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()

    def __enter__(self) -> "SymbolsLocked":
        return self

    def __exit__(self, *exc) -> None:
        self.release()
