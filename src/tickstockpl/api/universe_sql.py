"""The API's readers of stored universes (PL's rows of cache_entries, through its ledger), async on the
request's AsyncConnection: the list with member counts (counted in SQL, without loading the values) and
one universe's value."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from psycopg.rows import class_row


# Number of members of a cache_entries.value, in SQL: the same rule as universes.model.members
# (ticker arrays count their strings; objects count stocks[] and etfs[] items carrying a
# ticker or symbol; anything else has no members).
MEMBER_COUNT_SQL = """(CASE jsonb_typeof(value)
  WHEN 'array' THEN (SELECT count(*) FROM jsonb_array_elements(value) e WHERE jsonb_typeof(e) = 'string')
  WHEN 'object' THEN (SELECT count(*) FROM jsonb_array_elements(
      CASE WHEN jsonb_typeof(value->'stocks') = 'array' THEN value->'stocks' ELSE '[]'::jsonb END
      || CASE WHEN jsonb_typeof(value->'etfs') = 'array' THEN value->'etfs' ELSE '[]'::jsonb END) i
    WHERE jsonb_typeof(i) = 'object'
      AND jsonb_typeof(coalesce(i->'ticker', i->'symbol')) = 'string')
  ELSE 0 END)::int"""

class StoredUniverse(NamedTuple):
    type: str
    name: str
    key: str
    count: int
    updated_at: dt.datetime | None


MEMBERS_SQL = (
    "SELECT c.value, c.updated_at FROM cache_entries c JOIN pl_cache_ledger l ON l.environment = c.environment"
    " AND l.type = c.type AND l.name = c.name AND l.key = c.key"
    " WHERE c.environment = %s AND c.type = %s AND c.name = %s AND c.key = %s")


async def stored_universes(aconn, environment: str) -> list[StoredUniverse]:
    """Every universe PL wrote in `environment` (its ledger, contract §5.5: AppV2's own rows of the
    same types are not PL's universes), with its member count and last update."""
    async with aconn.cursor(row_factory=class_row(StoredUniverse)) as cur:
        await cur.execute(
            f"SELECT c.type, c.name, c.key, {MEMBER_COUNT_SQL} AS count, c.updated_at FROM cache_entries c"
            " JOIN pl_cache_ledger l ON l.environment = c.environment AND l.type = c.type AND l.name = c.name"
            "  AND l.key = c.key"
            " WHERE c.environment = %s ORDER BY c.type, c.name, c.key",
            (environment,),
        )
        return await cur.fetchall()


async def stored_value(aconn, environment: str, type_: str, name: str, key: str):
    """(value, updated_at) of one universe PL wrote in `environment`, or None."""
    return await (await aconn.execute(MEMBERS_SQL, (environment, type_, name, key))).fetchone()
