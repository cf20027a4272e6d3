"""The change log (`pl_sync_changes`): every statement on it, and its row type.

    write(cur, job_id, environment, rows)          COPY, inside the caller's transaction (a sync, a prune)
    page(aconn, environment, since, universe, ...) GET /api/universes/changes: oldest first (async)
    of_job(conn, job_id)                           the per-symbol rows of one job (the demo's story)
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable, NamedTuple

from psycopg.rows import class_row

COPY_SQL = "COPY pl_sync_changes (job_id, environment, universe, symbol, action, reason) FROM STDIN"

PAGE_SQL = (
    "SELECT id, job_id::text AS job_id, universe, symbol, action, reason, created_at FROM pl_sync_changes"
    " WHERE environment = %(env)s AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s::timestamptz)"
    " AND (%(universe)s::text IS NULL OR universe = %(universe)s::text)"
    " ORDER BY id LIMIT %(limit)s OFFSET %(offset)s")

OF_JOB_SQL = (
    "SELECT universe, symbol, action, reason FROM pl_sync_changes WHERE job_id = %(job)s"
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


def write(cur, job_id: str | None, environment: str, rows: Iterable) -> int:
    """COPY the rows (anything with universe, symbol, action, reason: sync.diff.Change); returns how many."""
    count = 0
    with cur.copy(COPY_SQL) as copy:
        for ch in rows:
            copy.write_row((job_id, environment, ch.universe, ch.symbol, ch.action, ch.reason))
            count += 1
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
