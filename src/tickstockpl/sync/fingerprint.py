"""Fingerprints of a sync's inputs and outputs: a rerun on unchanged inputs skips the build.

A sync is a pure function of its inputs (builders and diff are pure), so when nothing it reads has
changed since a completed sync of the same mode, and nobody has touched what that sync left in
`cache_entries`, building again can only find that nothing changed. `load` reads the snapshot and,
in the same statement, compares:

    inputs   md5 of: the sum of the snapshot's row versions (a hash of each symbol with the xmin
             of its row and the date and xmin of the bar read for it: any insert, update or
             delete changes it), the row count, as-of date, expected session, latest session
             and its bar count, the cache_config rows of the environment, the state of
             pl_symbol_liquidity (the rule universes' statistics: newest session, newest write,
             rows), the code of the sync (`code_digest`: builders, rule engine, snapshot and
             liquidity code, sync) and the mode
    outputs  md5 of (type, name, key, xmin) of the rows of universe types of the environment (any
             insert, update or delete by anyone changes it) + the number of open membership-history
             rows + whether definition_groups exists + the number of PL's relational groups

with those recorded on the newest completed, non-forced job of the same mode and environment.
Versions rather than values: hashing the rows' text measured 45 ms for 12,000 rows, the
versions about 3 ms; a rewrite that keeps a value (a re-imported bar) only costs a full sync.
When both match, the statement returns only its header row, naming that job, and the sync ends
without building: it reports what that job built, writes no cache row, and records the same
fingerprints on its own job row (so a later rerun still matches). Otherwise the snapshot rows come
back as usual, the inputs digest in the header row; the store reads the outputs digest after its
writes (`outputs_digest`, in the sync's transaction: the xmin of rewritten rows is the job's own) and
the job runtime records both values on the job row in its final statement (plain parameters: no
statement of this module is spliced into the job table's SQL). The previous job's fingerprints come
from the job table's own statement (`jobs.table.LAST_FINGERPRINT_SQL`), used as a CTE here.

`force` and dry runs never skip. A forced job records its fingerprints but is never the job a
later rerun is matched against (it skipped validation); a dry run records nothing.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from psycopg.rows import namedtuple_row

from tickstockpl.jobs.table import LAST_FINGERPRINT_SQL
from tickstockpl.market import liquidity, snapshot as market_snapshot
from tickstockpl.universes.config import CONFIG_TYPE
from tickstockpl.universes.model import OWNED_TYPES

# The parts of the package whose code decides what a sync writes.
_CODE = {
    "universes": ("*.py", "*.toml"),
    "universes/rules": ("*.py", "*.toml"),
    "market": ("snapshot.py", "liquidity.py"),
    "sync": ("*.py",),
}


@cache
def code_digest() -> str:
    """sha256 of the source of the builders, their defaults, the snapshot loader and the sync."""
    return digest_of(resources.files("tickstockpl"))


def digest_of(root) -> str:
    """The code digest of the package folder `root` (a Path or an importlib Traversable)."""
    digest = hashlib.sha256()
    for folder, patterns in sorted(_CODE.items()):
        parts = folder.split("/")
        names = sorted({entry.name for entry in root.joinpath(*parts).iterdir()
                        if any(fnmatch.fnmatchcase(entry.name, p) for p in patterns)})
        for name in names:
            digest.update(f"{folder}/{name}\0".encode())
            digest.update(root.joinpath(*parts, name).read_bytes())
    return digest.hexdigest()


# The fingerprint of what the environment holds of PL's outputs (see the module docstring).
OUTPUTS_SQL = (
    "(SELECT md5(coalesce(string_agg(c.type || '/' || c.name || '/' || c.key || '@' || c.xmin::text, ','"
    " ORDER BY c.type, c.name, c.key), '')) || ':' || (SELECT count(*) FROM pl_universe_membership m"
    " WHERE m.environment = %(env)s AND m.valid_to IS NULL)"
    " || ':' || (to_regclass('definition_groups') IS NOT NULL)::text"
    " || ':' || (SELECT count(*) FROM pl_group_ledger gl WHERE gl.environment = %(env)s)"
    " FROM cache_entries c WHERE c.environment = %(env)s AND c.type = ANY(%(owned)s))"
)

# The state of pl_symbol_liquidity (market/liquidity.py), the rule universes' windows, from its state row
# (liquidity.STATE_ROW, kept by a trigger; liquidity.SOURCE_TEXT: sessions, newest stamp, row count). Its sessions also come back in the header
# (h_liquidity_low / _high), with the state row of the statistics kept from it (pl_liquidity_stats_state):
# a sync finds there whether the table stands at its session and whether the statistics are those of the
# table (sync/inputs.py), without another statement.
LIQUIDITY_CTE = (f",\nliquidity AS ({liquidity.STATE_ROW}),"
                 "\nliquidity_stats AS (SELECT through, windows, source FROM pl_liquidity_stats_state)")
LIQUIDITY_STATE = f"(SELECT {liquidity.SOURCE_TEXT} FROM liquidity)"

# The gate of the sync's snapshot statement: the inputs digest, and the verdict against the newest
# completed, non-forced job of the mode (jobs.table.LAST_FINGERPRINT_SQL, the job table's statement).
GATE = market_snapshot.Gate(
    ctes=f"""{LIQUIDITY_CTE},
inputs AS (
    SELECT md5(concat_ws('/', (SELECT sum(version) FROM snap), (SELECT count(*) FROM snap),
                         {", ".join(expression for expression, _ in market_snapshot.HEADER.values())},
                         (SELECT string_agg(name || '/' || key || '=' || value::text, ',' ORDER BY name, key)
                          FROM cache_entries WHERE environment = %(env)s AND type = '{CONFIG_TYPE}'),
                         {LIQUIDITY_STATE},
                         %(code)s::text, %(mode)s::text)) AS digest
),
previous AS ({LAST_FINGERPRINT_SQL}),
verdict AS (
    SELECT coalesce(%(may_skip)s AND p.inputs_digest = i.digest AND p.outputs_digest = {OUTPUTS_SQL}, false)
           AS unchanged, p.job_id, p.result, p.outputs_digest
    FROM inputs i LEFT JOIN previous p ON true
)""",
    where="NOT (SELECT unchanged FROM verdict)",
    header={"h_digest": ("(SELECT digest FROM inputs)", "text"),
            "h_unchanged_job": ("(SELECT job_id FROM verdict WHERE unchanged)", "uuid"),
            "h_previous_result": ("(SELECT result FROM verdict WHERE unchanged)", "jsonb"),
            "h_previous_outputs": ("(SELECT outputs_digest FROM verdict WHERE unchanged)", "text"),
            "h_liquidity_low": ("(SELECT low FROM liquidity)", "date"),
            "h_liquidity_high": ("(SELECT high FROM liquidity)", "date"),
            "h_liquidity_state": (LIQUIDITY_STATE, "text"),
            "h_stats_through": ("(SELECT through FROM liquidity_stats)", "date"),
            "h_stats_windows": ("(SELECT windows FROM liquidity_stats)", "integer[]"),
            "h_stats_source": ("(SELECT source FROM liquidity_stats)", "text")})
CHECK_SQL = market_snapshot.rows_sql(GATE)


@dataclass(frozen=True)
class Loaded:
    """What `load` found: the snapshot to build from, or the job whose result still holds."""

    inputs_digest: str | None
    snapshot: market_snapshot.Snapshot | None = None
    unchanged_since: str | None = None  # job id of the completed sync with the same fingerprints
    previous_result: dict[str, Any] | None = None
    outputs_digest: str | None = None  # when unchanged: the outputs digest that job recorded (still true)
    liquidity: tuple[dt.date | None, dt.date | None] = (None, None)  # pl_symbol_liquidity's (min, max) through
    stats: "liquidity.StatsState | None" = None  # where pl_liquidity_stats stands (None: never computed)


def load(conn, *, as_of: dt.date | None, environment: str, mode: str, may_skip: bool) -> Loaded:
    """One statement: the snapshot with the inputs digest, or (may_skip and nothing changed since
    the last completed sync of this mode) the marker naming that sync."""
    read = market_snapshot.read(conn, as_of, sql=CHECK_SQL, extra={
        "env": environment, "mode": mode, "code": code_digest(), "may_skip": may_skip, "owned": list(OWNED_TYPES)})
    header = read.header
    if read.snapshot is None:
        return Loaded(header["h_digest"], unchanged_since=str(header["h_unchanged_job"]),
                      previous_result=header["h_previous_result"] or {},
                      outputs_digest=header["h_previous_outputs"])
    stats = None if header["h_stats_source"] is None else liquidity.StatsState(
        header["h_stats_through"], tuple(header["h_stats_windows"]),
        header["h_stats_source"] == header["h_liquidity_state"])
    return Loaded(header["h_digest"], snapshot=read.snapshot,
                  liquidity=(header["h_liquidity_low"], header["h_liquidity_high"]), stats=stats)


def outputs_digest(conn, environment: str) -> str:
    """The outputs fingerprint now (called by the store after a sync's writes, in its transaction:
    the xmin of rewritten rows is then the job's own)."""
    with conn.cursor(row_factory=namedtuple_row) as cur:
        cur.execute(f"SELECT {OUTPUTS_SQL} AS digest", {"env": environment, "owned": list(OWNED_TYPES)})
        return cur.fetchone().digest
