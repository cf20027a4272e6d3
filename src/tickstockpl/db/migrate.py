"""Versioned, idempotent migrations: numbered `.sql` files in `db/migrations/`.

Each file runs once, in its own transaction, and is recorded in `pl_schema_migrations`.
A file whose first line is `-- no-transaction` runs statement by statement in autocommit
(needed for CREATE INDEX CONCURRENTLY). Concurrent upgrades wait on an advisory lock.
Before any file runs, the shared tables that already exist are checked (`db/check.py`, one catalog
statement): a shape PL cannot work with refuses the upgrade with SchemaError and nothing is touched.
After the files, the NYSE sessions table is (re)filled from the calendar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from tickstockpl.db import locks
from tickstockpl.db.connect import connect

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def transactional(self) -> bool:
        return not self.sql.lstrip().startswith("-- no-transaction")


def available() -> list[Migration]:
    folder = resources.files("tickstockpl.db") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version number: {versions}")
    return found


def _statements(sql: str) -> list[str]:
    body = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def upgrade(url: str, *, fill_calendar: bool = True, on_report=None) -> list[str]:
    """Check the shared tables (SchemaError, nothing touched, when PL cannot work with them), then apply
    every pending migration; returns the names applied (empty when up to date). `on_report(report)`
    receives the check's report (its warnings) before the migrations run."""
    from tickstockpl.db.check import check_for_upgrade

    applied_now: list[str] = []
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (locks.MIGRATIONS,))
        try:
            report = check_for_upgrade(conn)
            if on_report is not None:
                on_report(report)
            conn.execute(
                "CREATE TABLE IF NOT EXISTS pl_schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM pl_schema_migrations")}
            for migration in available():
                if migration.version in done:
                    continue
                _apply(conn, migration)
                applied_now.append(f"{migration.version:04d}_{migration.name}")
            if fill_calendar:
                from tickstockpl.market.calendar import fill_sessions_table, sessions_table_current

                if applied_now or not sessions_table_current(conn):  # else nothing to refresh (no slow import)
                    with conn.transaction():
                        fill_sessions_table(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (locks.MIGRATIONS,))
    return applied_now


def _apply(conn: psycopg.Connection, migration: Migration) -> None:
    record = "INSERT INTO pl_schema_migrations (version, name) VALUES (%s, %s)"
    if migration.transactional:
        with conn.transaction():
            conn.execute(migration.sql)
            conn.execute(record, (migration.version, migration.name))
    else:
        for statement in _statements(migration.sql):
            conn.execute(statement)
        conn.execute(record, (migration.version, migration.name))


def current_version(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "SELECT coalesce(max(version), 0) FROM pl_schema_migrations"
        " WHERE to_regclass('pl_schema_migrations') IS NOT NULL"
    ).fetchone()
    return int(row[0]) if row else 0
