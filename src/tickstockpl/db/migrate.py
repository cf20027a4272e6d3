"""Versioned, idempotent migrations: numbered `.sql` files in `db/migrations/`.

Each file runs once, in its own transaction, and is recorded in `pl_schema_migrations`.
A file whose first line is `-- no-transaction` runs statement by statement in autocommit
(needed for CREATE INDEX CONCURRENTLY). Concurrent upgrades wait on an advisory lock.

An interrupted `CREATE INDEX CONCURRENTLY` (Ctrl-C, a cancelled or failed build) leaves the index
behind marked invalid (`pg_index.indisvalid = false`): never used by a query, but `IF NOT EXISTS`
skips it. So before such a statement runs, an invalid index of its name is dropped
(`DROP INDEX CONCURRENTLY`) and built again; after it, the index must exist and be valid, or the
migration is not recorded. Every upgrade also checks the indexes of migrations already recorded and
rebuilds an invalid one (an earlier version recorded 0003 with its index invalid); an index another
session is building right now is left alone and the upgrade stops, saying so.
Before any file runs, the shared tables that already exist are checked (`db/check.py`, one catalog
statement): a shape PL cannot work with refuses the upgrade with SchemaError and nothing is touched.
After the files, the NYSE sessions table is (re)filled from the calendar.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from tickstockpl.db import locks
from tickstockpl.db.connect import connect
from tickstockpl.db.versions import _CONCURRENT_INDEX, Migration, _statements, available  # noqa: F401 - names of this module too
from tickstockpl.errors import TickStockError

# (valid, the backend building it now or NULL) of the index `name` found on the search path; no row
# when there is none.
INDEX_STATE_SQL = (
    "SELECT i.indisvalid, (SELECT p.pid FROM pg_stat_progress_create_index p WHERE p.index_relid = i.indexrelid"
    " AND p.pid <> pg_backend_pid() LIMIT 1) FROM pg_index i WHERE i.indexrelid = to_regclass(%s)"
)


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
                    applied_now += heal(conn, migration)
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
            match = _CONCURRENT_INDEX.match(statement)
            if match:
                _drop_if_invalid(conn, match.group(1).lower(), migration)
            conn.execute(statement)
            if match:
                _require_valid(conn, match.group(1).lower(), migration)
        conn.execute(record, (migration.version, migration.name))


def index_state(conn: psycopg.Connection, name: str) -> tuple[bool, int | None] | None:
    """(valid, pid of a session building it now) of index `name`; None when it does not exist."""
    row = conn.execute(INDEX_STATE_SQL, (name,)).fetchone()
    return None if row is None else (bool(row[0]), row[1])


def _drop_if_invalid(conn: psycopg.Connection, name: str, migration: Migration) -> bool:
    state = index_state(conn, name)
    if state is None or state[0]:
        return False
    if state[1] is not None:
        raise TickStockError(
            f"index {name} (migration {migration.label}) is being built by another session (backend {state[1]}):"
            " wait until it has finished, then run `tickstockpl db upgrade` again")
    conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))
    return True


def _require_valid(conn: psycopg.Connection, name: str, migration: Migration) -> None:
    state = index_state(conn, name)
    if state is None or not state[0]:
        raise TickStockError(
            f"migration {migration.label}: index {name} is {'missing' if state is None else 'invalid'} after"
            " CREATE INDEX CONCURRENTLY; the migration is not recorded (run `tickstockpl db upgrade` again)")


def heal(conn: psycopg.Connection, migration: Migration) -> list[str]:
    """Rebuild every index of a recorded migration that an interrupted build left invalid; returns what
    was rebuilt (one line each)."""
    rebuilt = []
    for name, statement in migration.concurrent_indexes():
        if _drop_if_invalid(conn, name, migration):
            conn.execute(statement)
            _require_valid(conn, name, migration)
            rebuilt.append(f"{migration.label} (index {name} was invalid: rebuilt)")
    return rebuilt


def current_version(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "SELECT coalesce(max(version), 0) FROM pl_schema_migrations"
        " WHERE to_regclass('pl_schema_migrations') IS NOT NULL"
    ).fetchone()
    return int(row[0]) if row else 0
