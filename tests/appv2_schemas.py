"""AppV2's shared tables in each schema variant of contract §10.3, for tests on the shapes AppV2 really has.

The DDL below is written from the facts of contract §10.1/§10.3 and AppV2's public documents
(`src/infrastructure/database/models/base.py` `CacheEntry`, `docs/database/cache_entries_maintenance.md`,
`src/data/historical_loader.py`, `docs/data/data_table_definitions.md`, `scripts/sql/sprint59_create_tables.sql`);
it is not AppV2's code. Each function creates the tables in an EMPTY database *instead of* PL's own
`0001_shared_tables.sql` shapes; `tickstockpl.db.migrate.upgrade(url)` then adds PL's own tables and leaves
these exactly as they are (0001 is `CREATE TABLE IF NOT EXISTS`; 0003 only adds an index on
`ohlcv_daily (date)`, which contract §4.1 allows).

Variants (the constants are their names; `VARIANTS[name]` holds the facts a test can assert on):

    MODEL        cache_entries as AppV2's SQLAlchemy model creates it: unique (type, name, key, environment)
                 named `unique_cache_entry`, `timestamp` columns without server defaults; symbols and
                 ohlcv_daily as contract §4.1; definition_groups.type CHECK (ETF, THEME, SECTOR, SEGMENT,
                 CUSTOM, UNIVERSE) and environment CHECK (DEFAULT, TEST, UAT, PROD)
    MAINTENANCE  cache_entries of AppV2's maintenance document: UNIQUE (type, key, environment), wider
                 columns, nullable value/environment, a `description` column, `timestamptz` created_at /
                 updated_at, updated_at without a default; the database's TimeZone is America/New_York
                 (ALTER DATABASE ... SET timezone); definition_groups without a CHECK on type
    HISTORICAL   ohlcv_daily of AppV2's historical loader: `id bigserial` PK, `symbol varchar(10)`,
                 DECIMAL(12,4) prices, `transactions`, unique (symbol, date); symbols with AppV2's 40 columns
                 (`name varchar(100)`, `country varchar(5)`, `net_assets bigint`, ...); cache_entries with the
                 optional universe_category / liquidity_filter / universe_metadata / last_universe_update;
                 NO definition_groups / group_memberships

Functions:

    create_shared_tables(conn, variant)             the variant's shared tables on `conn` (caller commits)
    set_database_timezone(conn, variant)            ALTER DATABASE <current> SET timezone, when the variant has one
    build_database(url, variant, *, upgrade=True)   both, then PL's migrations (an empty database of any server)
    insert_cache_entry(conn, type, name, key, value, environment="DEFAULT")   one row, on any variant

Fixtures (import them into a test module: `from tests.appv2_schemas import appv2_database, appv2_url`):

    appv2_database(variant, *, upgrade=True, market=None) -> url
        factory: a fresh database of that variant (PL's migrations applied unless upgrade=False; `market`,
        e.g. the `small_market` fixture, loaded into symbols + ohlcv_daily), dropped after the test.
        Built from a template made once per variant per test run (CREATE DATABASE ... TEMPLATE).
    appv2_url  (parametrized over MODEL, MAINTENANCE, HISTORICAL; `request.param` is the variant)
        a fresh upgraded database of each variant in turn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import psycopg
import pytest
from psycopg import sql

MODEL = "model"
MAINTENANCE = "maintenance"
HISTORICAL = "historical"

GROUP_TYPES = ("ETF", "THEME", "SECTOR", "SEGMENT", "CUSTOM", "UNIVERSE")
SYMBOLS_40_COLUMNS = (
    "symbol", "name", "exchange", "last_updated", "market", "locale", "currency_name", "currency_symbol", "type",
    "active", "cik", "composite_figi", "share_class_figi", "last_updated_utc", "market_cap",
    "weighted_shares_outstanding", "etf_type", "aum_millions", "expense_ratio", "underlying_index",
    "correlation_reference", "fmv_supported", "creation_unit_size", "dividend_frequency", "inception_date",
    "net_assets", "primary_exchange", "issuer", "average_spread", "daily_volume_avg", "premium_discount_avg",
    "tracking_error", "sic_code", "sic_description", "sector", "industry", "country", "total_employees",
    "list_date", "sic_updated_at",
)


@dataclass(frozen=True)
class Variant:
    """What a variant looks like, for assertions: the cache_entries unique key (columns, constraint name),
    the timestamp type of cache_entries, the width of ohlcv_daily.symbol, the definition_groups tables
    (None: absent; else the allowed type values of a CHECK, () when there is no CHECK) and the database
    TimeZone (None: the server's)."""

    name: str
    cache_unique: tuple[str, ...]
    cache_unique_name: str
    cache_timestamp: str  # information_schema data_type
    ohlcv_symbol_width: int
    symbols_width: int
    groups: tuple[str, ...] | None
    timezone: str | None
    cache_extra_columns: tuple[str, ...] = ()


VARIANTS: dict[str, Variant] = {
    MODEL: Variant(MODEL, ("type", "name", "key", "environment"), "unique_cache_entry",
                   "timestamp without time zone", 20, 20, GROUP_TYPES, None),
    MAINTENANCE: Variant(MAINTENANCE, ("type", "key", "environment"), "cache_entries_type_key_environment_key",
                         "timestamp with time zone", 20, 20, (), "America/New_York", ("description",)),
    HISTORICAL: Variant(HISTORICAL, ("type", "name", "key", "environment"), "cache_entries_type_name_key_environment_key",
                        "timestamp without time zone", 10, 20, None, None,
                        ("universe_category", "liquidity_filter", "universe_metadata", "last_universe_update")),
}

# --- the tables, as contract §4.1 describes them (MODEL, MAINTENANCE) ---------------------------------
_SYMBOLS_CONTRACT = """
CREATE TABLE symbols (
    symbol varchar(20) PRIMARY KEY, name varchar(500), type varchar(20), active boolean, market_cap bigint,
    weighted_shares_outstanding bigint, market varchar(20), primary_exchange varchar(20), exchange varchar(20),
    sector varchar(50), industry varchar(100), sic_code varchar(10), sic_description varchar(200), list_date date,
    country varchar(50), etf_type varchar(50), issuer varchar(200), aum_millions numeric, expense_ratio numeric,
    inception_date date, net_assets numeric, last_updated timestamp, last_updated_utc timestamptz
)"""
_OHLCV_CONTRACT = """
CREATE TABLE ohlcv_daily (
    symbol varchar(20) NOT NULL, date date NOT NULL, open numeric, high numeric, low numeric, close numeric,
    volume bigint, created_at timestamptz DEFAULT now(), UNIQUE (symbol, date)
)"""

# --- MODEL: cache_entries as the SQLAlchemy model (client-side defaults only) --------------------------
_CACHE_MODEL = """
CREATE TABLE cache_entries (
    id serial PRIMARY KEY, type varchar(50) NOT NULL, name varchar(100) NOT NULL, key varchar(100) NOT NULL,
    value jsonb NOT NULL, environment varchar(10) NOT NULL, created_at timestamp, updated_at timestamp,
    CONSTRAINT unique_cache_entry UNIQUE (type, name, key, environment)
)"""

# --- MAINTENANCE: the maintenance document's table, with description and timestamptz ------------------
_CACHE_MAINTENANCE = """
CREATE TABLE cache_entries (
    id serial PRIMARY KEY, type varchar(100) NOT NULL, name varchar(255) NOT NULL, key varchar(255) NOT NULL,
    value jsonb, environment varchar(50), description text,
    created_at timestamptz DEFAULT now(), updated_at timestamptz,
    UNIQUE (type, key, environment)
)"""

# --- HISTORICAL: the historical loader's ohlcv_daily, the 40-column symbols, the optional cache columns --
_OHLCV_HISTORICAL = """
CREATE TABLE ohlcv_daily (
    id bigserial PRIMARY KEY, symbol varchar(10) NOT NULL, date date NOT NULL,
    open decimal(12,4), high decimal(12,4), low decimal(12,4), close decimal(12,4), volume bigint,
    transactions integer, created_at timestamp DEFAULT CURRENT_TIMESTAMP, UNIQUE (symbol, date)
)"""
_SYMBOLS_HISTORICAL = """
CREATE TABLE symbols (
    symbol varchar(20) PRIMARY KEY, name varchar(100), exchange varchar(20), last_updated timestamp,
    market varchar(20), locale varchar(10), currency_name varchar(10), currency_symbol varchar(5),
    type varchar(20), active boolean, cik varchar(20), composite_figi varchar(50), share_class_figi varchar(50),
    last_updated_utc timestamptz, market_cap bigint, weighted_shares_outstanding bigint, etf_type varchar(50),
    aum_millions numeric, expense_ratio numeric, underlying_index varchar(100), correlation_reference varchar(10),
    fmv_supported boolean, creation_unit_size integer, dividend_frequency varchar(20), inception_date date,
    net_assets bigint, primary_exchange varchar(20), issuer varchar(100), average_spread numeric,
    daily_volume_avg bigint, premium_discount_avg numeric, tracking_error numeric, sic_code varchar(10),
    sic_description text, sector varchar(50), industry varchar(100), country varchar(5), total_employees integer,
    list_date date, sic_updated_at timestamp
)"""
_CACHE_HISTORICAL = """
CREATE TABLE cache_entries (
    id serial PRIMARY KEY, type varchar(50) NOT NULL, name varchar(100) NOT NULL, key varchar(100) NOT NULL,
    value jsonb NOT NULL, environment varchar(10) NOT NULL,
    created_at timestamp DEFAULT CURRENT_TIMESTAMP, updated_at timestamp DEFAULT CURRENT_TIMESTAMP,
    universe_category varchar(50), liquidity_filter jsonb, universe_metadata jsonb, last_universe_update timestamp,
    UNIQUE (type, name, key, environment)
)"""


def _groups_ddl(type_check: tuple[str, ...]) -> list[sql.Composable]:
    """definition_groups / group_memberships of contract §10.1; a CHECK on type when `type_check`."""
    check = sql.SQL("")
    env_check = sql.SQL("")
    if type_check:
        check = sql.SQL(" CHECK (type IN ({}))").format(sql.SQL(", ").join(map(sql.Literal, type_check)))
        env_check = sql.SQL(" CHECK (environment IN ('DEFAULT', 'TEST', 'UAT', 'PROD'))")
    groups = sql.SQL(
        "CREATE TABLE definition_groups ("
        " id serial PRIMARY KEY, name varchar(100) NOT NULL, type varchar(50) NOT NULL{check},"
        " description text, metadata jsonb, liquidity_filter jsonb, environment varchar(10) NOT NULL{env_check},"
        " created_at timestamp DEFAULT CURRENT_TIMESTAMP, updated_at timestamp DEFAULT CURRENT_TIMESTAMP,"
        " last_update timestamp DEFAULT CURRENT_TIMESTAMP,"
        " CONSTRAINT unique_group UNIQUE (name, type, environment))"
    ).format(check=check, env_check=env_check)
    memberships = sql.SQL(
        "CREATE TABLE group_memberships ("
        " id serial PRIMARY KEY, group_id integer NOT NULL REFERENCES definition_groups (id) ON DELETE CASCADE,"
        " symbol varchar(50) NOT NULL, weight numeric(5,4), metadata jsonb,"
        " added_at timestamp DEFAULT CURRENT_TIMESTAMP, updated_at timestamp DEFAULT CURRENT_TIMESTAMP,"
        " CONSTRAINT unique_membership UNIQUE (group_id, symbol))"
    )
    return [groups, memberships, sql.SQL("CREATE INDEX ON group_memberships (symbol)")]


_TABLES = {
    MODEL: (_SYMBOLS_CONTRACT, _OHLCV_CONTRACT, _CACHE_MODEL),
    MAINTENANCE: (_SYMBOLS_CONTRACT, _OHLCV_CONTRACT, _CACHE_MAINTENANCE),
    HISTORICAL: (_SYMBOLS_HISTORICAL, _OHLCV_HISTORICAL, _CACHE_HISTORICAL),
}


def create_shared_tables(conn: psycopg.Connection, variant: str) -> None:
    """Create symbols, ohlcv_daily, cache_entries (and definition_groups / group_memberships where the
    variant has them) with the variant's shapes in an empty database. Runs in the caller's transaction."""
    facts = VARIANTS[variant]
    for ddl in _TABLES[variant]:
        conn.execute(ddl)
    if facts.groups is not None:
        for ddl in _groups_ddl(facts.groups):
            conn.execute(ddl)


def set_database_timezone(conn: psycopg.Connection, variant: str) -> None:
    """ALTER DATABASE <current database> SET timezone for a variant that has one (new sessions see it)."""
    zone = VARIANTS[variant].timezone
    if zone is None:
        return
    name = conn.execute("SELECT current_database()").fetchone()[0]
    conn.execute(sql.SQL("ALTER DATABASE {} SET timezone TO {}").format(sql.Identifier(name), sql.Literal(zone)))


def build_database(url: str, variant: str, *, upgrade: bool = True, fill_calendar: bool = True) -> None:
    """In the empty database at `url`: the variant's shared tables, its TimeZone, then (unless
    upgrade=False) PL's migrations."""
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction():
            create_shared_tables(conn, variant)
        set_database_timezone(conn, variant)
    if upgrade:
        from tickstockpl.db.migrate import upgrade as pl_upgrade

        pl_upgrade(url, fill_calendar=fill_calendar)


def insert_cache_entry(conn: psycopg.Connection, type_: str, name: str, key: str, value: Any,
                       environment: str = "DEFAULT") -> None:
    """One cache_entries row as AppV2 writes it (updated_at set explicitly: the maintenance variant has no
    default), on any variant."""
    conn.execute(
        "INSERT INTO cache_entries (type, name, key, value, environment, created_at, updated_at)"
        " VALUES (%s, %s, %s, %s::jsonb, %s, now(), now())",
        (type_, name, key, json.dumps(value), environment),
    )


# --- fixtures ---------------------------------------------------------------------------------------
# Templates are cached per server handle (its prefix), so importing these fixtures into several modules
# still builds each template once per test run; `pg.close()` drops them with the run's other databases.
_templates: dict[tuple[str, str, bool], str] = {}


def template_for(pg, variant: str, *, upgrade: bool = True) -> str:
    """Name of a template database of `variant` (PL's migrations applied when `upgrade`), made once per run."""
    cache_key = (pg.prefix, variant, upgrade)
    if cache_key not in _templates:
        name = pg.create_database(f"appv2_{variant}{'_pl' if upgrade else ''}")
        build_database(pg.url(name), variant, upgrade=upgrade)
        _templates[cache_key] = name
    return _templates[cache_key]


def new_database(pg, variant: str, suffix: str, *, upgrade: bool = True, market=None) -> str:
    """A fresh database (name) of `variant` copied from its template; the TimeZone is set again (database
    settings are not copied by CREATE DATABASE ... TEMPLATE); `market` loaded when given."""
    template = template_for(pg, variant, upgrade=upgrade)
    name = pg.create_database(f"{variant[:4]}_{suffix}"[:40], template=template)
    url = pg.url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        set_database_timezone(conn, variant)
    if market is not None:
        from tickstockpl.market.sample import write

        with psycopg.connect(url) as conn:
            write(conn, market)
    return name


@pytest.fixture
def appv2_database(pg, request, market_clock) -> Callable[..., str]:
    """Factory: `appv2_database(variant, *, upgrade=True, market=None)` -> URL of a fresh database of that
    variant, dropped after the test. The market clock stands at tests.conftest.MARKET_NOW (the fixed markets'
    "now")."""
    made: list[str] = []

    def make(variant: str, *, upgrade: bool = True, market=None) -> str:
        suffix = f"{abs(hash(request.node.nodeid)) % 10**8}_{len(made)}"
        name = new_database(pg, variant, suffix, upgrade=upgrade, market=market)
        made.append(name)
        return pg.url(name)

    yield make
    for name in made:
        pg.drop_database(name)


@pytest.fixture(params=[MODEL, MAINTENANCE, HISTORICAL])
def appv2_url(request, appv2_database) -> str:
    """A fresh database of each AppV2 variant in turn (PL's migrations applied); `request.param` names it."""
    return appv2_database(request.param)
