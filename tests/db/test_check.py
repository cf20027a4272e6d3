"""`db check` (db/check.py) on every AppV2 schema variant and on shapes PL cannot work with. Real PostgreSQL."""

from __future__ import annotations

import re

import psycopg
import pytest

from tests.appv2_schemas import (GROUP_TYPES, HISTORICAL, MAINTENANCE, MODEL, VARIANTS,  # noqa: F401
                                 appv2_database)
from tests.statements import counted
from tickstockpl.db import check as schema
from tickstockpl.db.migrate import upgrade
from tickstockpl.errors import SchemaError
from tickstockpl.market import snapshot


def report_of(url: str, **kwargs) -> schema.Report:
    with psycopg.connect(url, autocommit=True) as conn:
        return schema.check(conn, **kwargs)


def alter(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def only(report: schema.Report, table: str, subject: str) -> schema.Finding:
    found = [f for f in report.findings if f.table == table and f.subject == subject]
    assert len(found) == 1, report.lines()
    return found[0]


def test_model_variant_passes_without_warnings(appv2_database):
    report = report_of(appv2_database(MODEL))
    assert report.ok and report.warnings == [], report.lines()
    assert report.cache_key == schema.KEY4 and report.cache_key_name == "unique_cache_entry"
    assert report.cache_timestamp == "timestamp" and report.ohlcv_symbol_width == 20
    assert report.group_types == GROUP_TYPES
    assert only(report, "definition_groups", "type values").level == schema.OK
    assert report.summary() == "PL can work with this database (0 warning(s))"


def test_maintenance_variant_passes_with_the_three_column_key_as_a_warning(appv2_database):
    report = report_of(appv2_database(MAINTENANCE))
    assert report.ok, report.lines()
    assert report.cache_key == schema.KEY3 and report.cache_key_name == "cache_entries_type_key_environment_key"
    [warning] = report.warnings
    assert warning.table == "cache_entries" and warning.subject == "unique key"
    assert "themes/<Display>/list" in warning.found and "only one of them can be stored" in warning.found
    assert warning.fix == ("ALTER TABLE cache_entries DROP CONSTRAINT cache_entries_type_key_environment_key,"
                           " ADD CONSTRAINT cache_entries_type_name_key_environment_key UNIQUE (type, name, key, environment)")
    timestamps = only(report, "cache_entries", "timestamps")
    assert report.cache_timestamp == "timestamptz" and "timestamptz" in timestamps.found
    assert report.timezone == "America/New_York" and "America/New_York" in timestamps.found
    assert "description" in only(report, "cache_entries", "extra columns").found
    assert report.group_types is None and only(report, "definition_groups", "type values").found == "no CHECK on type"


def test_the_fix_it_names_is_valid_sql_and_clears_the_warning(appv2_database):
    url = appv2_database(MAINTENANCE)
    alter(url, only(report_of(url), "cache_entries", "unique key").fix)
    report = report_of(url)
    assert report.cache_key == schema.KEY4 and report.warnings == [], report.lines()


def test_historical_variant_passes_and_reports_the_narrow_symbol_column(appv2_database):
    report = report_of(appv2_database(HISTORICAL))
    assert report.ok, report.lines()
    [warning] = report.warnings
    assert (warning.table, warning.subject) == ("ohlcv_daily", "symbol width")
    assert warning.found.startswith("character varying(10): the import rejects a longer ticker row by row")
    assert report.ohlcv_symbol_width == 10 and report.symbols_symbol_width == 20
    assert "numeric(12,4)" in only(report, "ohlcv_daily", "price and volume types").found
    assert "id, transactions, created_at" in only(report, "ohlcv_daily", "extra columns").found
    assert only(report, "symbols", "columns").found == "all 14 present (40 columns in all)"
    extra = only(report, "cache_entries", "extra columns").found
    assert all(c in extra for c in ("universe_category", "liquidity_filter", "universe_metadata", "last_universe_update"))
    for table in ("definition_groups", "group_memberships"):
        assert only(report, table, "table").level == schema.OK and "no such table" in only(report, table, "table").found


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_is_one_statement_and_passes_for_sync_and_upgrade(appv2_database, variant):
    url = appv2_database(variant)
    with psycopg.connect(url, autocommit=True) as conn:
        with counted() as sent:
            report = schema.check_for_sync(conn, environment="DEFAULT")
        assert len(sent) == 1 and report.ok
        assert schema.check_for_upgrade(conn).ok
    facts = VARIANTS[variant]
    assert report.ohlcv_symbol_width == facts.ohlcv_symbol_width
    assert report.cache_key == facts.cache_unique and report.cache_key_name == facts.cache_unique_name
    assert all(line.split()[0] in ("ok", "warning") for line in report.lines())


def test_any_other_unique_key_fails_naming_the_constraint_and_the_fix(appv2_database):
    url = appv2_database(MODEL)
    alter(url, "ALTER TABLE cache_entries DROP CONSTRAINT unique_cache_entry",
          "ALTER TABLE cache_entries ADD CONSTRAINT cache_type_key UNIQUE (type, key)")
    report = report_of(url)
    assert not report.ok and report.cache_key is None
    [failure] = report.failures
    assert failure.subject == "unique key" and failure.found.startswith("cache_type_key (type, key)")
    assert failure.fix == ("ALTER TABLE cache_entries DROP CONSTRAINT cache_type_key; ALTER TABLE cache_entries ADD"
                           " CONSTRAINT cache_entries_type_name_key_environment_key UNIQUE (type, name, key, environment)")
    with psycopg.connect(url, autocommit=True) as conn:
        with pytest.raises(SchemaError) as raised:
            schema.check_for_sync(conn)
    message = str(raised.value)
    assert "\n" not in message and message.startswith("schema check failed: cache_entries unique key: found cache_type_key")
    assert "fix: ALTER TABLE cache_entries DROP CONSTRAINT cache_type_key" in message
    assert raised.value.report.failures == [failure]


def test_unique_indexes_that_are_not_constraints_and_keys_pl_cannot_violate(appv2_database):
    url = appv2_database(HISTORICAL)
    alter(url, "CREATE UNIQUE INDEX ce_cat ON cache_entries (type, key, universe_category)",  # PL leaves it NULL
          "CREATE UNIQUE INDEX ce_wide ON cache_entries (type, name, key, environment, id)",
          "ALTER TABLE cache_entries DROP CONSTRAINT cache_entries_type_name_key_environment_key",
          "CREATE UNIQUE INDEX ce_three ON cache_entries (environment, key, type)")
    report = report_of(url)
    assert report.ok and report.cache_key == schema.KEY3 and report.cache_key_name == "ce_three"
    warning = only(report, "cache_entries", "unique key")
    assert warning.level == schema.WARNING and warning.fix == (
        "DROP INDEX ce_three; ALTER TABLE cache_entries ADD CONSTRAINT cache_entries_type_name_key_environment_key"
        " UNIQUE (type, name, key, environment)")
    alter(url, "DROP INDEX ce_three")
    no_key = only(report_of(url), "cache_entries", "unique key")
    assert no_key.level == schema.WARNING and no_key.found.startswith("no unique key")


def test_both_keys_warn_that_the_three_column_one_should_go(appv2_database):
    url = appv2_database(MODEL)
    alter(url, "ALTER TABLE cache_entries ADD CONSTRAINT ce3 UNIQUE (type, key, environment)")
    report = report_of(url)
    assert report.ok and report.cache_key == schema.KEY4
    assert [w.fix for w in report.warnings] == ["ALTER TABLE cache_entries DROP CONSTRAINT ce3"]


def test_not_null_columns_without_defaults_that_pl_does_not_fill_fail(appv2_database):
    url = appv2_database(MAINTENANCE)
    alter(url, "ALTER TABLE cache_entries ADD COLUMN owner text NOT NULL",  # empty table: allowed
          "ALTER TABLE cache_entries ADD COLUMN flags int NOT NULL DEFAULT 0",
          "ALTER TABLE ohlcv_daily ADD COLUMN vwap numeric NOT NULL")
    report = report_of(url)
    assert {(f.table, f.subject) for f in report.failures} == {("cache_entries", "column owner"),
                                                               ("ohlcv_daily", "column vwap")}
    owner = only(report, "cache_entries", "column owner")
    assert "owner text NOT NULL without a default" in owner.found
    assert owner.fix.startswith("ALTER TABLE cache_entries ALTER COLUMN owner DROP NOT NULL")
    with psycopg.connect(url, autocommit=True) as conn:
        with pytest.raises(SchemaError, match=r"and 1 more failure"):
            schema.check_for_sync(conn)


def test_missing_or_unusable_columns_fail(appv2_database):
    url = appv2_database(MODEL)
    alter(url, "ALTER TABLE symbols DROP COLUMN sector", "ALTER TABLE symbols ALTER COLUMN active TYPE text",
          "ALTER TABLE cache_entries ALTER COLUMN value TYPE json", "ALTER TABLE cache_entries DROP COLUMN updated_at",
          "ALTER TABLE cache_entries ALTER COLUMN key TYPE varchar(60)",
          "ALTER TABLE ohlcv_daily DROP CONSTRAINT ohlcv_daily_symbol_date_key")
    report = report_of(url)
    symbols = only(report, "symbols", "columns")
    assert symbols.level == schema.FAILURE and "no column sector" in symbols.found
    assert "active is text, needs boolean" in symbols.found
    cache = only(report, "cache_entries", "columns")
    assert "no column updated_at" in cache.found and "value is json, needs jsonb" in cache.found
    widths = only(report, "cache_entries", "widths")
    assert widths.level == schema.FAILURE and widths.fix == "ALTER TABLE cache_entries ALTER COLUMN key TYPE varchar(100)"
    key = only(report, "ohlcv_daily", "unique key")
    assert key.level == schema.FAILURE and key.fix == (
        "ALTER TABLE ohlcv_daily ADD CONSTRAINT ohlcv_daily_symbol_date_key UNIQUE (symbol, date)")


def test_a_check_on_definition_groups_type_without_universe_is_a_warning(appv2_database):
    url = appv2_database(MAINTENANCE)
    alter(url, "ALTER TABLE definition_groups ADD CONSTRAINT dg_type CHECK (type IN ('ETF', 'THEME', 'O''Neil'))",
          "ALTER TABLE group_memberships DROP COLUMN weight")
    report = report_of(url)
    assert report.ok and report.group_types == ("ETF", "THEME", "O'Neil")
    values = only(report, "definition_groups", "type values")
    assert values.level == schema.WARNING and "allows ETF, THEME, O'Neil" in values.found
    assert only(report, "group_memberships", "columns").found == "no column weight"


def test_pl_tables_behind_fail_a_sync_but_not_an_upgrade(appv2_database):
    url = appv2_database(MODEL)
    alter(url, "DELETE FROM pl_schema_migrations WHERE version = (SELECT max(version) FROM pl_schema_migrations)")
    from tickstockpl.db.migrate import available

    before_latest = sorted(m.version for m in available())[-2]  # (numbers may have gaps while branches merge)
    failure = only(report_of(url), "PL's tables", "version")
    assert failure.level == schema.FAILURE and failure.found == f"migration {before_latest}"
    assert failure.fix == "tickstockpl db upgrade"
    assert report_of(url, creating=True).ok


def test_a_version_missing_below_the_newest_counts_as_behind(appv2_database):
    """0009 recorded without 0008 (branches that merged in another order): the tables are at 0007 for a sync."""
    url = appv2_database(MODEL)
    from tickstockpl.db.migrate import available

    versions = sorted(m.version for m in available())
    gap = versions[-2]
    alter(url, f"DELETE FROM pl_schema_migrations WHERE version = {gap}")
    failure = only(report_of(url), "PL's tables", "version")
    assert failure.level == schema.FAILURE and failure.found == f"migration {gap - 1}"
    assert report_of(url, creating=True).ok


def test_a_version_no_packaged_migration_has_is_not_a_gap(appv2_database, monkeypatch):
    """Numbers may be missing from db/migrations while branches merge (0011 before 0010 exists): the tables
    are at the newest version when every packaged migration up to it is recorded."""
    url = appv2_database(MODEL)
    versions = schema.packaged_versions()
    missing = versions[-2]
    alter(url, f"DELETE FROM pl_schema_migrations WHERE version = {missing}")
    assert only(report_of(url), "PL's tables", "version").level == schema.FAILURE  # packaged, not recorded
    monkeypatch.setattr(schema, "packaged_versions", lambda: tuple(v for v in versions if v != missing))
    found = only(report_of(url), "PL's tables", "version")
    assert found.level == schema.OK and found.found == f"migration {versions[-1]}"


def test_an_empty_database_passes_the_upgrade_check_only(pg):
    name = pg.create_database("check_empty")
    try:
        with psycopg.connect(pg.url(name), autocommit=True) as conn:
            assert schema.check_for_upgrade(conn).ok
            with pytest.raises(SchemaError, match=r"^schema check failed: symbols table: found no such table; fix:"
                                                  r" tickstockpl db upgrade"):
                schema.check_for_sync(conn)
        assert upgrade(pg.url(name), fill_calendar=False)
        with psycopg.connect(pg.url(name), autocommit=True) as conn:
            report = schema.check_for_sync(conn)  # PL's own 0001 shapes
        assert report.ok and report.warnings == [] and report.cache_key == schema.KEY4
    finally:
        pg.drop_database(name)


def test_inside_a_transaction_the_check_leaves_it_usable(pg):
    name = pg.create_database("check_tx")
    try:
        with psycopg.connect(pg.url(name)) as conn:  # not autocommit: the check runs in the caller's transaction
            conn.execute("CREATE TABLE kept (x int)")
            with counted() as sent:
                report = schema.check(conn, creating=True)  # no pl_schema_migrations: read again without it
            assert report.ok and len(sent) == 2
            conn.execute("INSERT INTO kept VALUES (1)")
            conn.commit()
            assert conn.execute("SELECT count(*) FROM kept").fetchone()[0] == 1
    finally:
        pg.drop_database(name)


def test_upgrade_refuses_before_touching_anything(appv2_database):
    url = appv2_database(MODEL, upgrade=False)
    alter(url, "ALTER TABLE cache_entries ADD COLUMN owner text NOT NULL")
    with pytest.raises(SchemaError, match="cache_entries column owner"):
        upgrade(url, fill_calendar=False)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('pl_schema_migrations')").fetchone()[0] is None


def test_an_environment_wider_than_the_column_fails(appv2_database):
    with psycopg.connect(appv2_database(MODEL), autocommit=True) as conn:
        report = schema.check(conn, environment="PRODUCTION_EU")
    assert "environment is character varying(10), needs 13 characters" in only(report, "cache_entries", "widths").found


def test_the_columns_it_checks_are_the_columns_the_snapshot_reads():
    """SYMBOLS_READ / OHLCV_WRITTEN must follow market/snapshot.py: every s.<column> and o.<column> there."""
    read_symbols = set(re.findall(r"\bs\.(\w+)", snapshot.CTES)) - {"xmin"}
    read_bars = set(re.findall(r"\bo\.(\w+)", snapshot.CTES)) - {"xmin"}
    assert read_symbols and read_symbols <= set(schema.SYMBOLS_READ)
    assert read_bars and read_bars <= set(schema.OHLCV_WRITTEN)
