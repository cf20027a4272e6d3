"""SQL shared by the routes that count universe members without loading the values."""

from __future__ import annotations

import datetime as dt

from tickstockpl.universes.model import OWNED_TYPES, family_of

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



def stored_universes(conn, environment: str) -> list[tuple[str, str, str, int, dt.datetime | None]]:
    """(type, name, key, member count, updated_at) of every universe the sync owns in `environment`."""
    rows = conn.execute(
        f"SELECT type, name, key, {MEMBER_COUNT_SQL}, updated_at FROM cache_entries"
        " WHERE environment = %s AND type = ANY(%s) ORDER BY type, name, key",
        (environment, list(OWNED_TYPES)),
    ).fetchall()
    return [row for row in rows if family_of(row[0], row[1], row[2]) is not None]
