"""One family of test databases: a server, a template with every migration, a fresh copy per test.

    Cluster              a PostgreSQL server the tests create databases on: the machine's or an embedded one
                         (tests/servers.PostgresHandle), or the reliability tests' server they stop and start
                         (tests/reliability/support.ControlledPostgres); every name gets the run's prefix
    migrated_template    a database with every migration applied, to copy from (CREATE DATABASE ... TEMPLATE)
    fresh_database       a copy of a template for one test, dropped afterwards
    SymbolsLocked        hold `symbols` locked, so that a sync started meanwhile stays at its first step

The fixtures (`db_url`, `market_db_url` in tests/conftest.py, `rel_db` in tests/reliability/conftest.py) are
these three calls on their own server.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Iterator

import psycopg

ATTEMPTS = 30  # CREATE DATABASE ... TEMPLATE retries while the template still has a session closing


def with_database(url: str, dbname: str) -> str:
    """Same server, another database (works for host:port URLs and socket URLs)."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**info)


class Cluster:
    """A server's admin URL and the databases this run made on it (subclasses set `admin_url`, `prefix`)."""

    admin_url: str
    prefix: str

    def __init__(self) -> None:
        self._created: list[str] = []

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
        if name in self._created:
            self._created.remove(name)

    def drop_created(self) -> None:
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
def fresh_database(cluster: Cluster, template: str, kind: str = "d") -> Iterator[str]:
    """A new database copied from `template`, its URL for the block, dropped afterwards."""
    name = cluster.create_database(f"{kind}{uuid.uuid4().hex[:12]}", template=template)
    try:
        yield cluster.url(name)
    finally:
        cluster.drop_database(name)


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
