"""The API's async readers (sync/history.members_on, sync/changelog.page, ...) called from a synchronous test:
on an AsyncConnection of its own to the same database, so they see what is committed."""

from __future__ import annotations

import asyncio

import psycopg


def run_async(conn, reader, *args, **kwargs):
    """`await reader(aconn, *args, **kwargs)` on a new AsyncConnection to conn's database."""
    async def go():
        async with await psycopg.AsyncConnection.connect(conn.info.dsn, autocommit=True) as aconn:
            return await reader(aconn, *args, **kwargs)
    return asyncio.run(go())
