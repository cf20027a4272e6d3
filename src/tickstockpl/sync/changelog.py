"""The change log (`pl_sync_changes`): every statement on it, and its row type.

    write(cur, job_id, environment, rows)          reserve ids, then COPY, inside the caller's transaction
    page(aconn, environment, since, universe, ...) GET /api/universes/changes: oldest first (async)
    of_job(conn, job_id)                           the per-symbol rows of one job (the demo's story)

Shape (migrations 0011, 0015): a run of consecutive per-symbol changes with the same universe and action
is ONE row, its symbols in `symbols` (in the order they were logged, `symbol_count` of them) and, when
their reasons differ, the reason of each in `reasons` (aligned with `symbols`; `reason` is then the
first of them, NULL `reasons` means every change has the row's `reason`); a change of a universe as a
whole (symbol NULL) is a row of its own. The run's `id` is the id of its first change, its k-th symbol is
change id + k - 1: `write` reserves the ids of all its changes at once, so every change keeps an id of its
own, in the order it was logged, exactly as when each change was a row. Readers see one change per row
through the view `pl_sync_change_rows` (same ids and columns as before 0011; rows written before 0011
appear there unchanged); `page` has its own statement, which skips whole runs before its offset by
`symbol_count`.

Why: a first run at 12,000 symbols logs about 30,000 changes. As rows, that was 30,000 heap tuples and
120,000 index entries (four indexes), 0.1–0.4 s of server time and 50 ms of Python per run, more than
the legacy rebuild's whole run; as runs it is about 80 rows. The rule universes word a reason per symbol:
until 0015 a run broke wherever the reason changed (9,800 rows for the 19,800 changes of their first
run); with `reasons` they are about 20 rows.

Ids: the reservation is `setval(seq, nextval(seq) + n - 1)` under the transaction-level advisory lock
`locks.CHANGE_LOG_IDS` (held until the writer commits, like the outbox's). Every writer goes through
`write`, so two writers never reserve overlapping blocks.
"""

from __future__ import annotations

import datetime as dt
import uuid
from itertools import groupby
from operator import attrgetter
from typing import Iterable, NamedTuple

from psycopg.rows import class_row

from tickstockpl.db import locks

COPY_SQL = ("COPY pl_sync_changes (id, job_id, environment, universe, symbols, symbol_count, action, reason, reasons)"
            " FROM STDIN (FORMAT BINARY)")
COPY_TYPES = ("bigint", "uuid", "text", "text", "text[]", "integer", "text", "text", "text[]")

# The first id of a block of %(n)s ids (n >= 1), nobody else's.
RESERVE_SQL = (
    "SELECT setval(pg_get_serial_sequence('pl_sync_changes', 'id'),"
    " nextval(pg_get_serial_sequence('pl_sync_changes', 'id')) + %(n)s::bigint - 1) - %(n)s::bigint + 1 AS first"
    " FROM (SELECT pg_advisory_xact_lock(%(lock)s)) AS serialized(l)")

# A page of changes, one per row, oldest first. Each run's `upto` is the number of changes up to and
# including it (a running sum along the primary key, of the runs the filters keep), so runs wholly before
# the offset are skipped without being expanded and the scan stops at the page's end: the position of a
# change is upto - (its run's size) + its ordinal.
PAGE_SQL = (
    "SELECT c.id + s.ordinal - 1 AS id, c.job_id::text AS job_id, c.universe, s.symbol, c.action,"
    " coalesce(s.reason, c.reason) AS reason, c.created_at FROM (SELECT c.*, coalesce(c.symbol_count, 1) AS size,"
    "  sum(coalesce(c.symbol_count, 1)) OVER (ORDER BY c.id ROWS UNBOUNDED PRECEDING) AS upto"
    "  FROM pl_sync_changes c WHERE c.environment = %(env)s"
    "  AND (%(since)s::timestamptz IS NULL OR c.created_at >= %(since)s::timestamptz)"
    "  AND (%(universe)s::text IS NULL OR c.universe = %(universe)s::text)) c"
    " CROSS JOIN LATERAL unnest(coalesce(c.symbols, ARRAY[c.symbol]), c.reasons) WITH ORDINALITY AS s(symbol, reason, ordinal)"
    " WHERE c.upto > %(offset)s AND c.upto - c.size + s.ordinal > %(offset)s"
    " ORDER BY c.id, s.ordinal LIMIT %(limit)s")

OF_JOB_SQL = (
    "SELECT universe, symbol, action, reason FROM pl_sync_change_rows WHERE job_id = %(job)s"
    " AND symbol IS NOT NULL ORDER BY universe, action, symbol")


class ChangeRow(NamedTuple):
    id: int
    job_id: str
    universe: str
    symbol: str | None
    action: str
    reason: str
    created_at: dt.datetime


class SymbolChange(NamedTuple):
    universe: str
    symbol: str
    action: str
    reason: str


class Run(NamedTuple):
    """One row of the log: a run of per-symbol changes (`symbols`), or a change of a universe as a whole
    (`symbols` None); `reasons` None when every change of the run has `reason`, else one per symbol."""

    universe: str
    action: str
    reason: str
    symbols: list[str] | None
    reasons: list[str] | None = None


_RUN_KEY = attrgetter("universe", "action")


def _has_symbol(change) -> bool:
    return change.symbol is not None


def runs(rows: Iterable) -> list[Run]:
    """The rows of the log for the changes `rows`, in their order: consecutive changes of one universe with
    the same action and a symbol make one run (their reasons in `reasons` when they differ); a change with
    no symbol is a row alone."""
    out: list[Run] = []
    for (universe, action), group in groupby(rows, _RUN_KEY):
        for is_symbol, part in groupby(group, _has_symbol):
            if not is_symbol:
                out.extend(Run(universe, action, change.reason, None) for change in part)
                continue
            changes = list(part)
            symbols = [change.symbol for change in changes]
            reasons = [change.reason for change in changes]
            first = reasons[0]
            same = reasons.count(first) == len(reasons)
            out.append(Run(universe, action, first, symbols, None if same else reasons))
    return out


def write(cur, job_id: str | None, environment: str, rows: Iterable) -> int:
    """Log the changes (anything with universe, symbol, action, reason: sync.diff.Change), in their order;
    returns how many changes (not rows) were logged. Two statements: the id reservation and one COPY, in
    binary (the 19,800 per-symbol reasons of a first run, 2.3 MB as quoted array text, took the server
    25 ms to parse; binary arrays are not parsed: 57 -> 17 ms for that write, measured)."""
    found = runs(rows)
    count = sum(1 if run.symbols is None else len(run.symbols) for run in found)
    if not count:
        return 0
    cur.execute(RESERVE_SQL, {"n": count, "lock": locks.CHANGE_LOG_IDS})
    next_id = cur.fetchone()[0]
    job = None if job_id is None else uuid.UUID(str(job_id))  # None: refused by the table (NOT NULL)
    with cur.copy(COPY_SQL) as copy:
        copy.set_types(COPY_TYPES)
        for universe, action, reason, symbols, reasons in found:
            size = None if symbols is None else len(symbols)
            copy.write_row((next_id, job, environment, universe, symbols, size, action, reason, reasons))
            next_id += size or 1
    return count


async def page(aconn, environment: str, *, since: dt.datetime | None, universe: str | None, limit: int,
               offset: int) -> list[ChangeRow]:
    """On the API's AsyncConnection (its only caller)."""
    async with aconn.cursor(row_factory=class_row(ChangeRow)) as cur:
        await cur.execute(PAGE_SQL, {"env": environment, "since": since, "universe": universe, "limit": limit,
                                     "offset": offset})
        return await cur.fetchall()


def of_job(conn, job_id: str) -> list[SymbolChange]:
    with conn.cursor(row_factory=class_row(SymbolChange)) as cur:
        cur.execute(OF_JOB_SQL, {"job": job_id})
        return cur.fetchall()
