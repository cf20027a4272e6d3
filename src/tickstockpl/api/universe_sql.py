"""SQL shared by the routes that count universe members without loading the values."""

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


def stored_universes(conn, environment: str) -> list[StoredUniverse]:
    """Every universe PL wrote in `environment` (its ledger, contract §5.5: AppV2's own rows of the
    same types are not PL's universes), with its member count and last update."""
    return conn.cursor(row_factory=class_row(StoredUniverse)).execute(
        f"SELECT c.type, c.name, c.key, {MEMBER_COUNT_SQL} AS count, c.updated_at FROM cache_entries c"
        " JOIN pl_cache_ledger l ON l.environment = c.environment AND l.type = c.type AND l.name = c.name"
        "  AND l.key = c.key"
        " WHERE c.environment = %s ORDER BY c.type, c.name, c.key",
        (environment,),
    ).fetchall()
