"""The AppV2 schema variants of tests/appv2_schemas.py are what they claim, and `db upgrade` leaves them as they are."""

from __future__ import annotations

import psycopg
import pytest

from tests.appv2_schemas import HISTORICAL, MAINTENANCE, MODEL, SYMBOLS_40_COLUMNS, VARIANTS, appv2_database  # noqa: F401
from tickstockpl.db.migrate import upgrade

SHARED = ("symbols", "ohlcv_daily", "cache_entries", "definition_groups", "group_memberships")

# Every column, constraint and index of the shared tables, as the catalog describes them.
SHAPE = """
SELECT 'column', c.relname, a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY(%(t)s)
UNION ALL
SELECT 'constraint', c.relname, k.conname || ' ' || pg_get_constraintdef(k.oid)
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY(%(t)s)
UNION ALL
SELECT 'index', tablename, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY(%(t)s)
ORDER BY 1, 2, 3
"""


def shape(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(SHAPE, {"t": list(SHARED)}).fetchall()


@pytest.mark.parametrize("variant", [MODEL, MAINTENANCE, HISTORICAL])
def test_upgrade_adds_pl_tables_and_alters_no_shared_table(appv2_database, variant):
    url = appv2_database(variant, upgrade=False)
    before = shape(url)
    assert upgrade(url, fill_calendar=False)
    after = shape(url)
    added = [row for row in after if row not in before]
    # contract §4.1 allows PL one index of its own on ohlcv_daily (date); nothing else changes
    assert [row[2] for row in added] == ["CREATE INDEX ohlcv_daily_date_idx ON public.ohlcv_daily USING btree (date)"]
    assert [row for row in before if row not in after] == []
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('pl_sync_jobs') IS NOT NULL").fetchone()[0]


def test_variants_have_the_documented_shapes(appv2_database):
    for variant, facts in VARIANTS.items():
        url = appv2_database(variant)
        with psycopg.connect(url) as conn:
            tables = {r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
            assert ("definition_groups" in tables) == (facts.groups is not None), variant
            width = conn.execute(
                "SELECT character_maximum_length FROM information_schema.columns"
                " WHERE table_name = 'ohlcv_daily' AND column_name = 'symbol'").fetchone()[0]
            assert width == facts.ohlcv_symbol_width
            unique = conn.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = 'cache_entries'::regclass AND contype = 'u'").fetchall()
            assert unique == [(facts.cache_unique_name, f"UNIQUE ({', '.join(facts.cache_unique)})")]
            if facts.timezone:
                assert conn.execute("SHOW timezone").fetchone()[0] == facts.timezone
            if variant == HISTORICAL:
                columns = [r[0] for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = 'symbols'"
                    " ORDER BY ordinal_position")]
                assert tuple(columns) == SYMBOLS_40_COLUMNS and len(columns) == 40


def test_a_sample_market_loads_into_every_variant(appv2_database, small_market):
    for variant in VARIANTS:
        with psycopg.connect(appv2_database(variant, market=small_market)) as conn:
            assert conn.execute("SELECT count(*) FROM symbols").fetchone()[0] == len(small_market.symbols)
