"""The one single-flight runner: long work that runs once at a time per environment, across processes.

Two kinds use it, and supply only their table, their work and their events:
    sync jobs       jobs/runtime.py            table pl_sync_jobs        lock locks.CACHE_SYNC per environment
    pipeline runs   pipeline/coordinator.py    table pl_pipeline_runs    lock locks.PIPELINE per environment
                    + pipeline/runs.py

What this module owns, for both:
  * the lock key: `LiveTable.lock_key(environment)` (db/locks.for_environment: DEFAULT keeps the id of
    earlier versions, other environments never wait for one another);
  * the live-row table: which statuses are live, which columns hold the id and the error;
  * the owner id written on a claimed row (`OWNER`, host:pid);
  * the claim (`claim`): a session-level advisory lock taken by the connection that inserts the live
    row and held until the work ends (it dies with the process), plus the table's unique partial index
    on live rows per environment should two inserts ever race (unique violation -> JobConflict). A
    refused claim names the live row; the lock's holder may not have committed its row yet, so the
    claim looks again for up to CLAIM_WAIT_S, then names the session holding the lock;
  * abandoned recovery (`mark_abandoned`, `recover`): whoever holds the lock and still finds live rows
    knows their owner died, except for rows whose thread in this process is still running (`running`:
    after losing the database connection that thread is still there, waiting to record the real reason);
  * the handle (`Handle`): the row's id, its thread, `wait()`;
  * launching (`launch`): the work in a daemon thread or inline, then the lock released, the connection
    closed and the id dropped from the running set, whatever happened;
  * end recording (`record_end`, `end_row`): the end and its events in one transaction; once the work's
    own connection is gone (the database restarted), on fresh connections for up to RECORD_END_RETRY_S;
    a row that is no longer live (taken for abandoned meanwhile) is left alone;
  * the failure reason (`failure_reason`): the user-facing message, or what happened to the connection;
  * one progress policy (`StepProgress`): progress is recorded at named steps (a fixed number of
    statements and events per run, whatever its size or the machine's speed), never throttled by time.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import psycopg
from psycopg import sql

from tickstockpl.db import locks
from tickstockpl.db.connect import write_until_recorded
from tickstockpl.errors import JobConflict, TickStockError, first_line
from tickstockpl.events.outbox import enqueue

log = logging.getLogger(__name__)

OWNER = f"{socket.gethostname()}:{os.getpid()}"
CLAIM_WAIT_S = 2.0  # how long a refused claim waits for the live row of the lock's holder to become visible
CLAIM_POLL_S = 0.02
RECORD_END_RETRY_S = 300.0  # work that lost the database keeps trying this long to record how it ended
LOST_CONNECTION = "lost the connection to PostgreSQL during "


@dataclass(frozen=True)
class LiveTable:
    """One kind of single-flight work as stored: its table and the words its messages use."""

    kind: str  # "cache sync" | "pipeline run"
    table: str
    id_column: str
    error_column: str
    live_statuses: tuple[str, ...]
    lock_base: int
    abandoned: str  # the error recorded on an abandoned row
    _running: set[str] = field(default_factory=set, compare=False, repr=False)
    _running_lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def lock_key(self, environment: str) -> int:
        return locks.for_environment(self.lock_base, environment)

    def running(self) -> list[str]:
        """Ids whose thread in this process has not finished (never taken for abandoned here)."""
        with self._running_lock:
            return sorted(self._running)

    def _enter(self, row_id: str) -> None:
        with self._running_lock:
            self._running.add(row_id)

    def _leave(self, row_id: str) -> None:
        with self._running_lock:
            self._running.discard(row_id)


# --------------------------------------------------------------------------- locks

def try_lock(conn, key: int) -> bool:
    return bool(conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0])


def release(conn, key: int) -> None:
    """Let go of a session lock; a connection that is gone has let go already."""
    try:
        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
    except psycopg.Error:
        pass


def lock_held(conn, key: int) -> bool:
    """Whether any session holds the advisory lock `key` in this database (read-only, via pg_locks)."""
    return bool(conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND classid = %s AND objid = %s AND objsubid = 1)",
        ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF)).fetchone()[0])


def lock_holder(conn, key: int) -> str:
    """Who holds advisory lock `key`: 'backend <pid>, application <name>' (or 'unknown')."""
    row = conn.execute(
        "SELECT l.pid, a.application_name FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
        " AND ((l.classid::bigint << 32) | l.objid::bigint) = %s LIMIT 1", (key,)).fetchone()
    return f"backend {row[0]}, application {row[1] or '-'}" if row else "unknown"


# The settings of a job's session (`job_session`), in one statement:
#   client_connection_check_interval  the server notices within a second that this process died, even in
#                                     the middle of a statement, so the advisory lock (and the live row) are
#                                     released (PostgreSQL 14+, Linux);
#   jit                               off: a job's statements run once each and take well under a second, and
#                                     compiling them cost more than it saved (at 100,000 symbols the snapshot
#                                     statement's plan came above jit_optimize_above_cost: 546 ms of its 837 ms
#                                     were JIT compilation, EXPLAIN ANALYZE). The suite's connections already ran
#                                     without it (tests/conftest.py).
JOB_SESSION_SQL = "SELECT set_config('jit', 'off', false), set_config('client_connection_check_interval', '1s', false)"
NO_JIT_SQL = "SELECT set_config('jit', 'off', false)"


def job_session(conn) -> None:
    """Apply JOB_SESSION_SQL to a job's connection (autocommit); on a server that refuses it (before 14: no
    connection check), JIT alone; on one that refuses that too (before 11), nothing."""
    for statement in (JOB_SESSION_SQL, NO_JIT_SQL):
        try:
            conn.execute(statement)
            return
        except psycopg.Error:
            continue


# --------------------------------------------------------------------------- claim

def claim(conn, table: LiveTable, environment: str, *, insert: Callable[[Any], str],
          live: Callable[[Any], Any], conflict: Callable[[Any], JobConflict],
          abandon: Callable[[Any], list[str]],
          unique_conflict: Callable[[psycopg.errors.UniqueViolation], JobConflict | None] | None = None) -> str:
    """Take the environment's lock on `conn` (kept until the work ends) and insert the live row.

    `live(conn)` reads the environment's live row (None when there is none) and `conflict(row)` turns it
    into the refusal; `abandon(conn)` marks the rows of dead owners (called holding the lock);
    `insert(conn)` writes the row and its events in one transaction and returns the id;
    `unique_conflict(err)` may name a refusal of its own for a unique index other than the live one.
    """
    key = table.lock_key(environment)
    deadline = time.monotonic() + CLAIM_WAIT_S
    while not try_lock(conn, key):
        row = live(conn)
        if row is not None:
            raise conflict(row)
        if time.monotonic() >= deadline:
            raise JobConflict(
                f"the {table.kind} lock of environment {environment} is held by a session that runs no"
                f" {table.kind} ({lock_holder(conn, key)}); retry when it has let go", None)
        # The holder is between taking the lock and committing its row, or between committing its
        # end and letting go (or is recovering an abandoned row): milliseconds.
        time.sleep(CLAIM_POLL_S)
    try:
        abandon(conn)
        return insert(conn)
    except psycopg.errors.UniqueViolation as err:  # two locks for one environment: a process of an earlier version
        release(conn, key)
        special = unique_conflict(err) if unique_conflict is not None else None
        if special is not None:
            raise special from None
        row = live(conn)
        raise (conflict(row) if row is not None else JobConflict(f"a {table.kind} is already live", None)) from None
    except BaseException:
        release(conn, key)
        raise


# --------------------------------------------------------------------------- abandoned rows

def mark_abandoned(conn, table: LiveTable, environment: str, *, returning: str,
                   events: Callable[[Any, list[tuple]], list], also: dict[str, Any] | None = None) -> list[str]:
    """Mark the environment's live rows failed (`table.abandoned`), except those running in this process;
    call only while holding the environment's lock (their owner is gone). `returning` names the columns
    read back after the id (a constant of the caller); `events(conn, rows)` returns the events announcing
    them (and may write the kind's other rows), enqueued in the same transaction; `also` sets more columns."""
    extra = also or {}
    assignments = sql.SQL("").join(
        sql.SQL(", {} = %s").format(sql.Identifier(name)) for name in extra)
    statement = sql.SQL(
        "UPDATE {table} SET status = 'failed', end_time = now(), {error} = %s{extra}"
        " WHERE environment = %s AND status = ANY(%s) AND NOT {id} = ANY(%s::uuid[])"
        " RETURNING {id}, " + returning).format(
        table=sql.Identifier(table.table), error=sql.Identifier(table.error_column), extra=assignments,
        id=sql.Identifier(table.id_column))
    with conn.transaction():
        rows = conn.execute(statement, (table.abandoned, *extra.values(), environment, list(table.live_statuses),
                                        table.running())).fetchall()
        enqueue(conn, events(conn, rows))
    ids = [str(r[0]) for r in rows]
    if ids:
        log.warning("marked %d abandoned %s(s) failed: %s", len(ids), table.kind, ", ".join(ids))
    return ids


def has_live(conn, table: LiveTable, environment: str | None) -> bool:
    """Whether the table has a live row (in `environment`, or in any when None); read-only."""
    statement = sql.SQL("SELECT 1 FROM {} WHERE status = ANY(%s)").format(sql.Identifier(table.table))
    params: list[Any] = [list(table.live_statuses)]
    if environment is not None:
        statement += sql.SQL(" AND environment = %s")
        params.append(environment)
    return conn.execute(statement + sql.SQL(" LIMIT 1"), params).fetchone() is not None


def recover(conn, table: LiveTable, environment: str, abandon: Callable[[Any], list[str]]) -> list[str]:
    """If the environment has live rows and no process holds its lock, they are orphans: `abandon(conn)`
    marks them (holding the lock meanwhile). Returns the ids marked."""
    if not has_live(conn, table, environment):
        return []
    key = table.lock_key(environment)
    if not try_lock(conn, key):
        return []
    try:
        return abandon(conn)
    finally:
        release(conn, key)


# --------------------------------------------------------------------------- running

class Handle:
    """Claimed work: its row's id, and (when run in the background) the thread running it."""

    def __init__(self, row_id: str):
        self.id = row_id
        self.thread: threading.Thread | None = None

    def wait(self, timeout: float | None = None) -> bool:
        """True once the work has finished (at once for work run inline)."""
        if self.thread is not None:
            self.thread.join(timeout)
            return not self.thread.is_alive()
        return True


def launch(conn, table: LiveTable, environment: str, handle: Handle, body: Callable[[], None], *,
           background: bool, thread_name: str, after: Callable[[], None] | None = None) -> None:
    """Run `body` (which records its own end) on the claimed connection, in a daemon thread or inline;
    afterwards the lock is released, the connection closed, the id leaves the running set and `after()` runs."""
    table._enter(handle.id)

    def work() -> None:
        try:
            body()
        finally:
            release(conn, table.lock_key(environment))
            conn.close()
            table._leave(handle.id)
            if after is not None:
                after()

    if background:
        handle.thread = threading.Thread(target=work, name=f"{thread_name}-{handle.id[:8]}", daemon=True)
        handle.thread.start()
    else:
        work()


# --------------------------------------------------------------------------- ending

def is_lost_connection(err: BaseException, conn) -> bool:
    return isinstance(err, psycopg.OperationalError) or (isinstance(err, psycopg.Error) and conn.broken)


def failure_reason(err: BaseException, conn, during: str) -> str:
    """The recorded error: what happened to the database (`LOST_CONNECTION` + `during`), the
    user-facing message of a TickStockError, or the exception's class and text."""
    if is_lost_connection(err, conn):
        return f"{LOST_CONNECTION}{during}: " + first_line(err)
    if isinstance(err, TickStockError):
        return str(err)
    return f"{err.__class__.__name__}: {err}"


def end_row(conn, table: LiveTable, row_id: str, status: str, error: str | None, **columns: Any) -> bool:
    """Set the row's end (status, end_time, error, `columns`) if it is still live; False when it is not
    (another process took it for abandoned meanwhile, and announced that)."""
    assignments = sql.SQL("").join(sql.SQL(", {} = %s").format(sql.Identifier(name)) for name in columns)
    statement = sql.SQL("UPDATE {table} SET status = %s, end_time = now(), {error} = %s{extra}"
                        " WHERE {id} = %s AND status = ANY(%s)").format(
        table=sql.Identifier(table.table), error=sql.Identifier(table.error_column), extra=assignments,
        id=sql.Identifier(table.id_column))
    return conn.execute(statement, (status, error, *columns.values(), row_id,
                                    list(table.live_statuses))).rowcount > 0


def record_end(conn, db_url: str, what: str, write: Callable[[Any], None]) -> bool:
    """Run `write(conn)` in one transaction (the end and its events); once `conn` is gone, on fresh
    connections for up to RECORD_END_RETRY_S. Returns whether it was recorded."""

    def attempt(target) -> None:
        if target.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            target.rollback()
        with target.transaction():
            write(target)

    return write_until_recorded(conn, db_url, attempt, what=what, retry_s=RECORD_END_RETRY_S)


# --------------------------------------------------------------------------- progress

class StepProgress:
    """The one progress policy: the first step is recorded when the work starts and the last with its
    end; in between, only the steps named in `recorded` (those that start long work)."""

    def __init__(self, steps: Iterable[str], recorded: Iterable[str]):
        self.steps = tuple(steps)
        self._recorded = frozenset(self.steps.index(name) for name in recorded)

    def due(self, completed: int, total: int) -> bool:
        return completed < total and completed in self._recorded
