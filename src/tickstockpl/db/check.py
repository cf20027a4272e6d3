"""`tickstockpl db check`: does the shared database have shapes PL can work with?

AppV2 owns `symbols`, `ohlcv_daily`, `cache_entries`, `definition_groups` and `group_memberships`, and
its installations differ (contract §10.3). PL never alters them; instead it reads the catalog and says,
for each table, what PL needs and what it found:

    symbols            every column PL reads exists with a usable type (market/snapshot.py); symbol width
    ohlcv_daily        the columns PL reads and writes; the real width of `symbol` (longer tickers are
                       rejected row by row by the import, pipeline/imports/writer.py) and the price
                       precision; a unique key on (symbol, date) for the import's upsert
    cache_entries      the columns PL writes; its unique key: (type, name, key, environment) or
                       (type, key, environment) work (the latter with a warning: universes that share
                       (type, key), e.g. every `themes / <Display> / list`, collide and only one is
                       stored); any other key fails; timestamp or timestamptz created_at / updated_at
                       (both get UTC times: the sync sets TimeZone=UTC for its transaction); widths
    every table PL writes   extra columns (reported) and NOT NULL columns without a default that PL
                       does not fill (a failure naming table and column)
    definition_groups, group_memberships   present or not, their columns (contract §10.1), the values a
                       CHECK on definition_groups.type allows
    PL's own tables    the migration version recorded (a sync needs the latest: `tickstockpl db upgrade`)

Everything is read with ONE statement (`CATALOG_SQL`, parameterized; a second one only on a database PL
never upgraded, see `read_catalog`); `evaluate` is pure. Callers:

    check(conn, creating=False, environment=None) -> Report      the findings, never raises for a mismatch
    check_for_sync(conn, environment=None) -> Report              raises SchemaError (one line) on a failure
    check_for_upgrade(conn) -> Report                             same, before migrations run; tables that do
                                                                  not exist yet pass (the upgrade creates them)
    ohlcv_limits(conn) -> OhlcvLimits                             the import's row limits (one small statement)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from tickstockpl.db.versions import latest_version, packaged_versions
from tickstockpl.errors import SchemaError
from tickstockpl.universes.groups import GROUP_TYPE

OK, WARNING, FAILURE = "ok", "warning", "failure"

SHARED_TABLES = ("symbols", "ohlcv_daily", "cache_entries", "definition_groups", "group_memberships")
REQUIRED_TABLES = ("symbols", "ohlcv_daily", "cache_entries")  # a sync reads or writes each of them

# Type categories (pg_type.typcategory): S string, B boolean, N numeric, D date/time.
SYMBOLS_READ = {  # market/snapshot.py CTES (+ pipeline coordinator/importer: symbol, active)
    "symbol": "S", "name": "S", "type": "S", "active": "B", "market_cap": "N", "weighted_shares_outstanding": "N",
    "primary_exchange": "S", "market": "S", "sector": "S", "industry": "S", "list_date": "D", "etf_type": "S",
    "issuer": "S", "aum_millions": "N",
}
OHLCV_WRITTEN = {"symbol": "S", "date": "D", "open": "N", "high": "N", "low": "N", "close": "N", "volume": "N"}
CACHE_WRITTEN = {"type": "S", "name": "S", "key": "S", "value": "jsonb", "environment": "S",
                 "created_at": "timestamp", "updated_at": "timestamp"}
GROUP_COLUMNS = {  # contract §10.1 (AppV2's readers use them; PL writes nothing there today)
    "definition_groups": ("id", "name", "type", "description", "metadata", "liquidity_filter", "environment",
                          "created_at", "updated_at", "last_update"),
    "group_memberships": ("id", "group_id", "symbol", "weight", "metadata", "added_at", "updated_at"),
}
CATEGORY_NAMES = {"S": "a string", "B": "boolean", "N": "a number", "D": "a date"}

KEY4 = ("type", "name", "key", "environment")
KEY3 = ("type", "key", "environment")
KEY4_NAME = "cache_entries_type_name_key_environment_key"
TIMESTAMP_TYPES = {"timestamp": "timestamp", "timestamptz": "timestamptz"}

# ONE statement: every shared table's columns, unique indexes and CHECK constraints, the TimeZone and
# PL's migration version. On a database PL has never upgraded, pl_schema_migrations does not exist and
# the statement fails at once (UndefinedTable); `read_catalog` then sends it again without the version
# (query_to_xml could read it conditionally, but needs a server built with libxml: the embedded one is not).
# The newest version with every earlier packaged one recorded (%(packaged)s: the versions of
# db/migrations/, which may have gaps while branches merge, e.g. 0011 before 0010 exists): a database
# holding 0009 but not 0008 (branches merged in another order) is at 7, so a sync asks for an upgrade.
VERSION_FROM_TABLE = (
    "(SELECT max(m.version) FROM pl_schema_migrations m WHERE NOT EXISTS (SELECT 1 FROM unnest(%(packaged)s::int[])"
    " g(v) WHERE g.v <= m.version AND g.v NOT IN (SELECT version FROM pl_schema_migrations)))")
CATALOG_SQL = """
WITH t AS (SELECT n AS name, to_regclass(n) AS oid FROM unnest(%(tables)s::text[]) AS n)
SELECT json_build_object(
  'timezone', current_setting('TimeZone'),
  'pl_version', {version},
  'tables', (SELECT coalesce(json_object_agg(t.name, json_build_object(
      'relkind', (SELECT c.relkind FROM pg_class c WHERE c.oid = t.oid),
      'columns', (SELECT coalesce(json_agg(json_build_object(
            'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod), 'base', ty.typname,
            'category', ty.typcategory,
            'width', CASE WHEN ty.typname IN ('varchar', 'bpchar') AND a.atttypmod > 4 THEN a.atttypmod - 4 END,
            'precision', CASE WHEN ty.typname = 'numeric' AND a.atttypmod > 4
                              THEN ((a.atttypmod - 4) >> 16) & 65535 END,
            'scale', CASE WHEN ty.typname = 'numeric' AND a.atttypmod > 4 THEN (a.atttypmod - 4) & 65535 END,
            'not_null', a.attnotnull,
            'has_default', a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '')
          ORDER BY a.attnum), '[]'::json)
        FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
        WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped),
      'unique', (SELECT coalesce(json_agg(json_build_object(
            'name', coalesce(k.conname, ic.relname), 'is_constraint', k.conname IS NOT NULL,
            'primary', i.indisprimary,
            'columns', (SELECT coalesce(json_agg(a.attname ORDER BY x.ord), '[]'::json)
                        FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS x(attnum, ord)
                        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.attnum),
            'expressions', i.indexprs IS NOT NULL, 'partial', i.indpred IS NOT NULL,
            'nulls_not_distinct', coalesce((to_jsonb(i) ->> 'indnullsnotdistinct')::boolean, false))
          ORDER BY ic.relname), '[]'::json)
        FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
        LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = t.oid AND k.contype IN ('u', 'p')
        WHERE i.indrelid = t.oid AND i.indisunique),
      'checks', (SELECT coalesce(json_agg(json_build_object(
            'name', k.conname, 'definition', pg_get_constraintdef(k.oid),
            'columns', (SELECT coalesce(json_agg(a.attname), '[]'::json) FROM pg_attribute a
                        WHERE a.attrelid = t.oid AND a.attnum = ANY(k.conkey)))
          ORDER BY k.conname), '[]'::json)
        FROM pg_constraint k WHERE k.conrelid = t.oid AND k.contype = 'c')
    )), '{{}}'::json) FROM t WHERE t.oid IS NOT NULL)
)
"""

_WITH_VERSION = CATALOG_SQL.format(version=VERSION_FROM_TABLE)
_WITHOUT_VERSION = CATALOG_SQL.format(version="NULL::int")

OHLCV_LIMITS_SQL = """
SELECT a.attname, ty.typname, a.atttypmod FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
WHERE a.attrelid = to_regclass('ohlcv_daily') AND a.attname = ANY(%(columns)s) AND NOT a.attisdropped
"""


@dataclass(frozen=True)
class Finding:
    """One line of `db check`: a table (or "database"), what was looked at, what PL needs, what it found."""

    level: str  # ok | warning | failure
    table: str
    subject: str
    needs: str
    found: str
    fix: str | None = None

    def line(self) -> str:
        text = f"{self.level:<8}{self.table} {self.subject}: needs {self.needs}; found {self.found}"
        return text + (f"; fix: {self.fix}" if self.fix else "")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # as format_type() prints it, e.g. "character varying(10)"
    base: str  # pg_type.typname, e.g. "varchar", "timestamptz"
    category: str
    width: int | None
    precision: int | None
    scale: int | None
    not_null: bool
    has_default: bool


@dataclass(frozen=True)
class UniqueKey:
    name: str
    is_constraint: bool
    primary: bool
    columns: tuple[str, ...]
    expressions: bool = False
    partial: bool = False
    nulls_not_distinct: bool = False

    def text(self) -> str:
        return f"{self.name} ({', '.join(self.columns)})" + (" WHERE ..." if self.partial else "")


@dataclass(frozen=True)
class Table:
    name: str
    relkind: str
    columns: dict[str, Column]
    unique: tuple[UniqueKey, ...]
    checks: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Catalog:
    tables: dict[str, Table]
    timezone: str
    pl_version: int | None  # None: PL's migrations never ran here


@dataclass
class Report:
    """The findings, and the facts a caller may act on (None where the table does not exist)."""

    findings: list[Finding] = field(default_factory=list)
    cache_key: tuple[str, ...] | None = None  # KEY4, KEY3, or None (no unique key that PL's rows can meet)
    cache_key_name: str | None = None
    cache_timestamp: str | None = None  # "timestamp" | "timestamptz"
    ohlcv_symbol_width: int | None = None  # None: unbounded (text) or table absent
    symbols_symbol_width: int | None = None
    group_types: tuple[str, ...] | None = None  # values a CHECK on definition_groups.type allows
    group_name_width: int | None = None  # definition_groups.name (None: unbounded or absent)
    group_liquidity_filter: bool = False  # definition_groups has liquidity_filter (the rule universes fill it)
    groups_skipped: str | None = None  # why PL cannot publish relational groups here (None: it can)
    timezone: str | None = None

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.level == FAILURE]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == WARNING]

    @property
    def ok(self) -> bool:
        return not self.failures

    def lines(self) -> list[str]:
        return [f.line() for f in self.findings]

    def summary(self) -> str:
        """One line: the reason PL cannot work here (the first failure), or that it can."""
        if self.failures:
            first = self.failures[0]
            more = f" (and {len(self.failures) - 1} more failure(s): tickstockpl db check)" if len(self.failures) > 1 else ""
            return (f"schema check failed: {first.table} {first.subject}: found {first.found}"
                    + (f"; fix: {first.fix}" if first.fix else "") + more)
        return f"PL can work with this database ({len(self.warnings)} warning(s))"


@dataclass(frozen=True)
class OhlcvLimits:
    """What a row must fit to be written into ohlcv_daily (None: no limit tighter than the import's own)."""

    ticker_width: int | None = None
    price_max: dict[str, float] = field(default_factory=dict)  # column -> exclusive bound of abs(value)
    price_types: dict[str, str] = field(default_factory=dict)  # column -> "numeric(12,4)"
    volume_max: int | None = None
    volume_type: str | None = None

    @property
    def unbounded(self) -> bool:
        return self.ticker_width is None and not self.price_max and self.volume_max is None


# --- reading ----------------------------------------------------------------------------------------

def read_catalog(conn) -> Catalog:
    """The catalog facts of the shared tables: ONE statement (two on a database PL never upgraded)."""
    import psycopg

    params = {"tables": list(SHARED_TABLES), "packaged": list(packaged_versions())}
    try:
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            row = conn.execute(_WITH_VERSION, params).fetchone()
        else:  # inside the caller's transaction: a savepoint keeps it usable should the first try fail
            with conn.transaction():
                row = conn.execute(_WITH_VERSION, params).fetchone()
    except psycopg.errors.UndefinedTable:
        row = conn.execute(_WITHOUT_VERSION, params).fetchone()
    data = row[0]
    tables = {}
    for name, info in (data.get("tables") or {}).items():
        columns = {c["name"]: Column(c["name"], c["type"], c["base"], c["category"], c["width"], c["precision"],
                                     c["scale"], c["not_null"], c["has_default"]) for c in info["columns"]}
        unique = tuple(UniqueKey(u["name"], u["is_constraint"], u["primary"], tuple(u["columns"]), u["expressions"],
                                 u["partial"], u["nulls_not_distinct"]) for u in info["unique"])
        tables[name] = Table(name, info["relkind"], columns, unique, tuple(info["checks"]))
    return Catalog(tables, data["timezone"], data.get("pl_version"))


def ohlcv_limits(conn) -> OhlcvLimits:
    """The limits of ohlcv_daily's symbol, price and volume columns, from the catalog (one statement)."""
    rows = conn.execute(OHLCV_LIMITS_SQL, {"columns": list(OHLCV_WRITTEN)}).fetchall()
    return limits_of({name: (base, typmod) for name, base, typmod in rows})


def limits_of(columns: dict[str, tuple[str, int]]) -> OhlcvLimits:
    """OhlcvLimits from {column: (typname, atttypmod)}."""
    width = None
    prices: dict[str, float] = {}
    price_types: dict[str, str] = {}
    volume_max = volume_type = None
    if "symbol" in columns:
        base, typmod = columns["symbol"]
        if base in ("varchar", "bpchar") and typmod > 4:
            width = typmod - 4
    for column in ("open", "high", "low", "close"):
        if column in columns:
            base, typmod = columns[column]
            if base == "numeric" and typmod > 4:
                precision, scale = ((typmod - 4) >> 16) & 65535, (typmod - 4) & 65535
                prices[column] = 10.0 ** (precision - scale)
                price_types[column] = f"numeric({precision},{scale})"
    if "volume" in columns:
        base = columns["volume"][0]
        if base in ("int4", "int2"):
            volume_max = 2**31 - 1 if base == "int4" else 2**15 - 1
            volume_type = "integer" if base == "int4" else "smallint"
    return OhlcvLimits(width, prices, price_types, volume_max, volume_type)


# --- evaluating -------------------------------------------------------------------------------------

def check(conn, *, creating: bool = False, environment: str | None = None) -> Report:
    """Read the catalog (one statement) and evaluate it. `creating`: for `db upgrade`, where a shared
    table that does not exist yet is fine (the upgrade creates it) and PL's own tables may be behind."""
    return evaluate(read_catalog(conn), creating=creating, environment=environment)


def check_for_sync(conn, environment: str | None = None) -> Report:
    """The check a sync runs first: raises SchemaError (one line: the first failure and its fix) when PL
    cannot work with this database; otherwise returns the report (its warnings are for the sync to show)."""
    report = check(conn, environment=environment)
    if not report.ok:
        raise SchemaError(report.summary(), report)
    return report


def check_for_upgrade(conn) -> Report:
    """The check `db upgrade` runs before any migration: raises SchemaError (one line) on a failure."""
    report = check(conn, creating=True)
    if not report.ok:
        raise SchemaError(report.summary(), report)
    return report


def evaluate(catalog: Catalog, *, creating: bool = False, environment: str | None = None,
             latest: int | None = None) -> Report:
    """The findings for `catalog` (pure apart from listing the packaged migrations when `latest` is None)."""
    report = Report(timezone=catalog.timezone)
    add = report.findings.append
    tables = catalog.tables
    for name in REQUIRED_TABLES:
        if name not in tables:
            if creating:
                add(Finding(OK, name, "table", "the table", "none yet (db upgrade creates it with contract §4 shapes)"))
            else:
                add(Finding(FAILURE, name, "table", "the table", "no such table", "tickstockpl db upgrade"))
    if "symbols" in tables:
        _symbols(tables["symbols"], report)
    if "ohlcv_daily" in tables:
        _ohlcv(tables["ohlcv_daily"], report, tables.get("symbols"))
    if "cache_entries" in tables:
        _cache(tables["cache_entries"], report, catalog.timezone, environment)
    _groups(tables, report)
    _pl_version(catalog.pl_version, report, creating, latest if latest is not None else latest_version())
    return report


def _relkind(table: Table, report: Report, writes: bool) -> bool:
    allowed = ("r", "p") if writes else ("r", "p", "v", "m", "f")
    if table.relkind not in allowed:
        kind = {"v": "a view", "m": "a materialized view", "f": "a foreign table"}.get(table.relkind, table.relkind)
        report.findings.append(Finding(FAILURE, table.name, "table", "a table PL can write", kind))
        return False
    return True


def _columns_exist(table: Table, needed: dict[str, str], what: str, report: Report) -> bool:
    """One finding: every needed column exists with a usable type (failure naming the others)."""
    missing = [c for c in needed if c not in table.columns]
    wrong = [f"{c} is {table.columns[c].type}, needs {_needs_text(t)}" for c, t in needed.items()
             if c in table.columns and not _type_fits(table.columns[c], t)]
    needs = f"the columns PL {what} ({', '.join(needed)})"
    if missing or wrong:
        found = "; ".join(([f"no column {', '.join(missing)}"] if missing else []) + wrong)
        report.findings.append(Finding(FAILURE, table.name, "columns", needs, found,
                                       "give the table these columns (PL never alters a shared table)"))
        return False
    report.findings.append(Finding(OK, table.name, "columns", needs, f"all {len(needed)} present"
                                   f" ({len(table.columns)} columns in all)"))
    return True


def _needs_text(kind: str) -> str:
    return CATEGORY_NAMES.get(kind, "timestamp or timestamptz" if kind == "timestamp" else kind)


def _type_fits(column: Column, kind: str) -> bool:
    if kind == "jsonb":
        return column.base == "jsonb"
    if kind == "timestamp":
        return column.base in TIMESTAMP_TYPES
    if kind == "D" and column.name == "date":
        return column.base == "date"
    return column.category == kind


def _extras(table: Table, known: Iterable[str], written: Iterable[str] | None, report: Report) -> None:
    """Extra columns (reported), and for a table PL writes, NOT NULL columns without a default that
    PL does not fill (a failure each)."""
    known = set(known)
    extra = [c for c in table.columns.values() if c.name not in known]
    if written is not None:
        filled = set(written)
        for column in table.columns.values():
            if column.not_null and not column.has_default and column.name not in filled:
                report.findings.append(Finding(
                    FAILURE, table.name, f"column {column.name}",
                    "every NOT NULL column without a default to be one PL fills", f"{column.name} {column.type} NOT NULL"
                    " without a default: PL's inserts would fail",
                    f"ALTER TABLE {table.name} ALTER COLUMN {column.name} DROP NOT NULL (or SET DEFAULT ...)"))
    if extra:
        names = ", ".join(c.name for c in extra)
        report.findings.append(Finding(OK, table.name, "extra columns", "nothing (PL leaves them as they are)",
                                       f"{len(extra)}: {names}" if len(extra) <= 12 else
                                       f"{len(extra)}: {', '.join(c.name for c in extra[:12])}, ..."))


def _symbols(table: Table, report: Report) -> None:
    if not _relkind(table, report, writes=False):
        return
    _columns_exist(table, SYMBOLS_READ, "reads", report)
    column = table.columns.get("symbol")
    if column is not None:
        report.symbols_symbol_width = column.width
        report.findings.append(Finding(OK, "symbols", "symbol width", "a string", column.type))
    _extras(table, SYMBOLS_READ, None, report)


def _ohlcv(table: Table, report: Report, symbols: Table | None) -> None:
    if not _relkind(table, report, writes=True):
        return
    _columns_exist(table, OHLCV_WRITTEN, "reads and writes", report)
    column = table.columns.get("symbol")
    if column is not None:
        report.ohlcv_symbol_width = column.width
        symbols_width = symbols.columns["symbol"].width if symbols and "symbol" in symbols.columns else None
        if column.width is not None and (symbols_width is None or column.width < symbols_width):
            report.findings.append(Finding(
                WARNING, "ohlcv_daily", "symbol width", "room for every ticker of symbols"
                + (f" (symbols.symbol is varchar({symbols_width}))" if symbols_width else ""),
                f"{column.type}: the import rejects a longer ticker row by row (with its reason) and imports"
                " the session's other rows"))
        else:
            report.findings.append(Finding(OK, "ohlcv_daily", "symbol width", "room for every ticker of symbols",
                                           column.type))
    limits = limits_of({c.name: _typmod_of(c) for c in table.columns.values() if c.name in OHLCV_WRITTEN})
    if limits.price_max or limits.volume_max:
        parts = [f"{c} {t}" for c, t in limits.price_types.items()]
        if limits.volume_type:
            parts.append(f"volume {limits.volume_type}")
        report.findings.append(Finding(OK, "ohlcv_daily", "price and volume types", "numbers",
                                       ", ".join(parts) + ": a bar that does not fit is rejected row by row"))
    keys = [u for u in table.unique if not u.expressions and not u.partial and set(u.columns) == {"symbol", "date"}]
    if keys:
        report.findings.append(Finding(OK, "ohlcv_daily", "unique key", "a unique key on (symbol, date)",
                                       keys[0].text()))
    else:
        report.findings.append(Finding(
            FAILURE, "ohlcv_daily", "unique key", "a unique key on (symbol, date) (the import's upsert)",
            "none" if not table.unique else "only " + ", ".join(u.text() for u in table.unique),
            "ALTER TABLE ohlcv_daily ADD CONSTRAINT ohlcv_daily_symbol_date_key UNIQUE (symbol, date)"))
    _extras(table, OHLCV_WRITTEN, OHLCV_WRITTEN, report)


def _typmod_of(column: Column) -> tuple[str, int]:
    """(typname, atttypmod) back from a Column (for limits_of)."""
    if column.width is not None:
        return column.base, column.width + 4
    if column.precision is not None:
        return column.base, ((column.precision << 16) | (column.scale or 0)) + 4
    return column.base, -1


def _cache(table: Table, report: Report, timezone: str, environment: str | None) -> None:
    if not _relkind(table, report, writes=True):
        return
    _columns_exist(table, CACHE_WRITTEN, "writes", report)
    _cache_key(table, report)
    _cache_timestamps(table, report, timezone)
    _cache_widths(table, report, environment)
    _extras(table, CACHE_WRITTEN, CACHE_WRITTEN, report)


def _cache_key(table: Table, report: Report) -> None:
    """Classify every unique index of cache_entries against the rows PL writes (which differ in
    (type, name, key) within one environment)."""
    add = report.findings.append
    needs = "a unique key (type, name, key, environment), or (type, key, environment) with a warning"
    four = three = None
    for key in table.unique:
        columns = set(key.columns)
        if not key.expressions and set(KEY4) <= columns:
            if not key.partial and columns == set(KEY4):
                four = four or key
            continue  # no two rows PL writes can collide on it
        if key.primary and not key.expressions and len(key.columns) == 1 and key.columns[0] not in KEY4:
            continue  # the surrogate primary key (id)
        if not key.expressions and not key.nulls_not_distinct and any(
                c not in KEY4 and _left_null(table, c) for c in key.columns):
            continue  # includes a column PL leaves NULL: NULLs never collide
        if not key.expressions and not key.partial and columns == set(KEY3):
            three = three or key
            continue
        drop = f"DROP CONSTRAINT {key.name}" if key.is_constraint else f"DROP INDEX {key.name}"
        fix = (f"ALTER TABLE cache_entries {drop}" if key.is_constraint else drop) + (
            "" if four else f"; ALTER TABLE cache_entries ADD CONSTRAINT {KEY4_NAME} UNIQUE (type, name, key, environment)")
        add(Finding(FAILURE, "cache_entries", "unique key", needs,
                    f"{key.text()}: universes PL builds would violate it", fix))
        return
    if four is not None:
        report.cache_key, report.cache_key_name = KEY4, four.name
        add(Finding(OK, "cache_entries", "unique key", needs, four.text()))
        if three is not None:
            add(_three_warning(three, needs, drop_only=True))
        return
    if three is not None:
        report.cache_key, report.cache_key_name = KEY3, three.name
        add(_three_warning(three, needs, drop_only=False))
        return
    add(Finding(WARNING, "cache_entries", "unique key", needs,
                "no unique key: PL works, but nothing stops another writer from adding duplicate rows",
                f"ALTER TABLE cache_entries ADD CONSTRAINT {KEY4_NAME} UNIQUE (type, name, key, environment)"))


def _three_warning(key: UniqueKey, needs: str, *, drop_only: bool) -> Finding:
    if key.is_constraint:
        fix = f"ALTER TABLE cache_entries DROP CONSTRAINT {key.name}" + (
            "" if drop_only else f", ADD CONSTRAINT {KEY4_NAME} UNIQUE (type, name, key, environment)")
    else:
        fix = f"DROP INDEX {key.name}" + (
            "" if drop_only else f"; ALTER TABLE cache_entries ADD CONSTRAINT {KEY4_NAME} UNIQUE (type, name, key, environment)")
    return Finding(
        WARNING, "cache_entries", "unique key", needs,
        f"{key.text()}: universes that share (type, key), e.g. every theme row themes/<Display>/list, collide"
        " and only one of them can be stored (AppV2's own insert_etf_groups.sql needs the 4-column key too)", fix)


def _left_null(table: Table, column: str) -> bool:
    """A column PL does not write that stays NULL in PL's rows (nullable, no default)."""
    found = table.columns.get(column)
    return found is not None and not found.not_null and not found.has_default


def _cache_timestamps(table: Table, report: Report, timezone: str) -> None:
    kinds = {table.columns[c].base for c in ("created_at", "updated_at") if c in table.columns}
    if not kinds or not kinds <= set(TIMESTAMP_TYPES):
        return  # missing or wrong: already a failure of "columns"
    report.cache_timestamp = "timestamptz" if kinds == {"timestamptz"} else (
        "timestamp" if kinds == {"timestamp"} else "mixed")
    found = ("created_at/updated_at are " + (" and ".join(sorted(kinds)) if len(kinds) > 1 else kinds.pop())
             + f", database TimeZone {timezone}: both get correct UTC times (the sync sets TimeZone=UTC for its"
             " transaction)")
    report.findings.append(Finding(OK, "cache_entries", "timestamps", "timestamp or timestamptz", found))


def _cache_widths(table: Table, report: Report, environment: str | None) -> None:
    from tickstockpl.universes.model import KEY_MAX, OWNED_TYPES

    need = {"type": max(len(t) for t in OWNED_TYPES), "name": KEY_MAX, "key": KEY_MAX}
    if environment:
        need["environment"] = len(environment)
    narrow = [f"{c} is {table.columns[c].type}, needs {n} characters" for c, n in need.items()
              if c in table.columns and table.columns[c].width is not None and table.columns[c].width < n]
    if narrow:
        report.findings.append(Finding(
            FAILURE, "cache_entries", "widths", "room for the names and keys PL writes", "; ".join(narrow),
            "; ".join(f"ALTER TABLE cache_entries ALTER COLUMN {c} TYPE varchar({n})" for c, n in need.items()
                      if c in table.columns and (table.columns[c].width or n) < n)))
    else:
        shown = ", ".join(f"{c} {table.columns[c].type}" for c in need if c in table.columns)
        report.findings.append(Finding(OK, "cache_entries", "widths", "room for the names and keys PL writes", shown))


_QUOTED = re.compile(r"'((?:[^']|'')*)'")


# The columns PL fills when it publishes a universe as a relational group (universes/groups.py).
GROUP_WRITES = {
    "definition_groups": ("name", "type", "description", "metadata", "environment", "created_at", "updated_at",
                          "last_update"),
    "group_memberships": ("group_id", "symbol", "added_at", "updated_at"),
}


def _groups(tables: dict[str, Table], report: Report) -> None:
    """Whether PL can publish its universes as groups; `report.groups_skipped` says why not. Never a
    failure: without them the sync still writes cache_entries and reports the groups as skipped."""
    reasons: list[str] = []
    for name, expected in GROUP_COLUMNS.items():
        table = tables.get(name)
        if table is None:
            report.findings.append(Finding(OK, name, "table", "the table, to publish PL's universes as groups",
                                           "no such table: PL writes no relational groups"))
            reasons.append(f"no table {name}")
            continue
        missing = [c for c in expected if c not in table.columns]
        needed = [c for c in ("id", *GROUP_WRITES[name]) if c not in table.columns]
        unfilled = [c.name for c in table.columns.values()
                    if c.not_null and not c.has_default and c.name not in GROUP_WRITES[name]]
        if needed or unfilled or table.relkind not in ("r", "p"):
            found = "; ".join([f"no column {', '.join(needed)}"] * bool(needed)
                              + [f"NOT NULL without a default: {', '.join(unfilled)}"] * bool(unfilled)
                              + ["not a plain table"] * (table.relkind not in ("r", "p")))
            report.findings.append(Finding(WARNING, name, "columns", f"contract §10.1's columns ({', '.join(expected)})",
                                           found + ": PL's relational groups are skipped"))
            reasons.append(f"{name}: {found}")
        elif missing:  # columns PL neither writes nor needs (AppV2's readers may)
            report.findings.append(Finding(WARNING, name, "columns", f"contract §10.1's columns ({', '.join(expected)})",
                                           f"no column {', '.join(missing)}"))
        else:
            report.findings.append(Finding(OK, name, "columns", "contract §10.1's columns",
                                           f"all {len(expected)} present ({len(table.columns)} columns in all)"))
        if name == "definition_groups":
            width = table.columns["name"].width if "name" in table.columns else None
            report.group_name_width = width
            report.group_liquidity_filter = "liquidity_filter" in table.columns
            if not _group_type_check(table, report):
                reasons.append(f"the CHECK on definition_groups.type does not allow {GROUP_TYPE!r}")
    report.groups_skipped = "; ".join(reasons) or None


def _group_type_check(table: Table, report: Report) -> bool:
    """A finding on the type CHECK; whether it allows PL's group type."""
    checks = [c for c in table.checks if list(c.get("columns") or ()) == ["type"]]
    if not checks:
        report.findings.append(Finding(OK, "definition_groups", "type values", "any type", "no CHECK on type"))
        return True
    allowed: list[str] = []
    for check_ in checks:
        values = [v.replace("''", "'") for v in _QUOTED.findall(check_["definition"])]
        allowed = values if not allowed else [v for v in allowed if v in values]
    report.group_types = tuple(allowed)
    names = ", ".join(c["name"] for c in checks)
    found = f"CHECK {names} allows {', '.join(allowed) or 'nothing PL can read'}"
    if GROUP_TYPE not in allowed:
        report.findings.append(Finding(
            WARNING, "definition_groups", "type values", f"type {GROUP_TYPE} allowed (AppV2's readers list it)",
            found + ": PL's relational groups are skipped",
            f"ALTER TABLE definition_groups DROP CONSTRAINT {checks[0]['name']}, ADD CONSTRAINT {checks[0]['name']}"
            f" CHECK (type IN ({', '.join(repr(v) for v in (*allowed, GROUP_TYPE))}))"))
        return False
    report.findings.append(Finding(OK, "definition_groups", "type values", f"type {GROUP_TYPE} allowed", found))
    return True


def _pl_version(version: int | None, report: Report, creating: bool, latest: int) -> None:
    if creating:
        found = "no migration yet" if version is None else f"migration {version} of {latest}"
        report.findings.append(Finding(OK, "PL's tables", "version", f"migration {latest}",
                                       found + (" (db upgrade applies the rest)" if (version or 0) < latest else "")))
    elif version is None or version < latest:
        report.findings.append(Finding(FAILURE, "PL's tables", "version", f"migration {latest}",
                                       "no migration" if version is None else f"migration {version}",
                                       "tickstockpl db upgrade"))
    else:
        report.findings.append(Finding(OK, "PL's tables", "version", f"migration {latest}", f"migration {version}"))
