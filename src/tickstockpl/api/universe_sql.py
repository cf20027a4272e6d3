"""SQL shared by the routes that count universe members without loading the values."""

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
