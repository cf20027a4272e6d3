"""Everything a sync reads from and writes to PostgreSQL, with as few statements as possible: the
statements on cache_entries and pl_cache_ledger are here, those on the change log and the history in
sync/changelog.py and sync/history.py (this module sends them, inside its transaction).

Readers take a connection; `apply` writes a whole plan inside the caller's transaction and never
commits (the job runtime owns the transaction, so the job row and the events commit with it).
Statement count per sync is constant: it does not grow with sectors, industries, themes or
ETF categories. Arrays are sent in binary (`%b`): psycopg's text array format escapes every
element with a regular expression, which measured 0.59 s for the 2.8 MB of universe values of a
12,000-symbol market against 0.01 s in binary.

Universe values are (de)serialized by sync/encoding.py. A row that is still the one PL left (its
version is the one the ledger recorded) is not read back: the ledger's members and text digest stand
for its value (`Recorded`; at 12,000 symbols with the rule universes that read took 170-240 ms for the
6.7 MB of values, against 30-45 ms without them, measured). New TOAST values are compressed with lz4
for the sync's transaction (`default_toast_compression`, set transaction-locally: the shared table is not
altered): writing the values measured 35-39 ms instead of 68-91 ms with pglz, and reading costs the same.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping, NamedTuple

from psycopg.rows import class_row, namedtuple_row
from psycopg.types.json import set_json_loads

from tickstockpl.events.catalog import Event
from tickstockpl.events.outbox import enqueue
from tickstockpl.sync import changelog, encoding, fingerprint, history
from tickstockpl.sync.diff import Plan
from tickstockpl.universes.config import CONFIG_TYPE, ConfigRow
from tickstockpl.sync.ownership import FoundRow, Ownership
from tickstockpl.universes.model import OWNED_TYPES, Recorded, universe_id


class _StoredRead(NamedTuple):
    """A row of READ_SQL: a cache_entries row with the ledger's word on it, or (type NULL) the number
    of open history rows of one universe."""

    type: str | None
    name: str
    key: str | None
    value: Any  # None where `digest` is set: the row is the one PL left (RECORDED)
    members: str | None  # the ledger's members, joined (sync/encoding.py), where `digest` is set
    digest: str | None  # the ledger's text_digest, when the value is not read
    ledger_family: str | None
    edited: bool | None
    open_rows: int | None


# The ledger's digest of a value (pl_cache_ledger.value_digest): PostgreSQL's 64-bit hash of the jsonb itself,
# as text. It replaced md5 of the value's text, which had to print every written value as text first: over the
# 6.7 MB of a daily sync's values, 16-19 ms against 72-85 ms in psql. Values equal as jsonb hash alike (a rewrite
# that changes only a number's trailing zeros is not an edit), and two different values share a hash with a
# probability of 2^-64. A digest written by an earlier version (md5: 32 hex digits; the hash's text has at most
# 20 characters) is still compared as md5 (LEDGER_EDITED), until PL next writes that row.
DIGEST = "jsonb_hash_extended({value}, 0)::text"

# Whether a ledger row's universe was edited since PL wrote it (ledger `l`, cache row `c`): its version (xmin) is
# not the one PL left and its value's digest differs from the one PL wrote; the digest is only computed for rows
# whose version changed. NULL digest (rows of a PL from before the ledger): not known to be edited.
LEDGER_EDITED = (
    "coalesce(l.row_xmin IS DISTINCT FROM c.xmin AND l.value_digest <> CASE WHEN length(l.value_digest) = 32"
    f" THEN md5(c.value::text) ELSE {DIGEST.format(value='c.value')} END, false)")

# Whether a row is still the one PL left with what the ledger recorded of its value (migration 0013): then
# the value is not sent, the ledger's members and text digest stand for it (universes.model.Recorded). The
# record's own version (recorded_xmin), not row_xmin: a PL from before 0013 moves row_xmin when it writes
# the row and leaves an older record in place, which must not pass for the new value.
RECORDED = "(l.recorded_xmin = c.xmin AND l.members IS NOT NULL AND l.text_digest IS NOT NULL)"

# Every row of the environment with a universe type, with what the ledger says about it (see
# sync/ownership.py; the value itself only where it is not RECORDED), the cache_config rows, and the number
# of open history rows per universe.
READ_SQL = (
    f"SELECT c.type, c.name, c.key, CASE WHEN {RECORDED} THEN NULL ELSE c.value END AS value,"
    f" CASE WHEN {RECORDED} THEN array_to_string(l.members, E'\\n') END AS members,"
    f" CASE WHEN {RECORDED} THEN l.text_digest END AS digest, l.family AS ledger_family,"
    f" {LEDGER_EDITED} AS edited,"
    " NULL::bigint AS open_rows"
    " FROM cache_entries c LEFT JOIN pl_cache_ledger l ON l.environment = c.environment"
    "  AND l.type = c.type AND l.name = c.name AND l.key = c.key"
    " WHERE c.environment = %(env)s AND c.type = ANY(%(types)s)"
    f" UNION ALL {history.OPEN_COUNTS_SQL}"
    " ORDER BY 1, 2, 3")


@dataclass(frozen=True)
class Stored:
    """What the environment holds: universe rows (with the ledger's word), config rows, open history counts."""

    found: tuple[FoundRow, ...]
    config: tuple[ConfigRow, ...]
    open_counts: Mapping[str, int]


def read_stored(conn, environment: str, *, universes: bool = True) -> Stored:
    """One statement (READ_SQL). `universes` false: the config rows alone (no universe row, no history
    count: what the rule universes' explain needs)."""
    found: list[FoundRow] = []
    config: list[ConfigRow] = []
    counts: dict[str, int] = {}
    with conn.cursor(row_factory=class_row(_StoredRead)) as cur:
        set_json_loads(encoding.loads, cur)
        cur.execute(READ_SQL, {"env": environment, "types": [*OWNED_TYPES, CONFIG_TYPE] if universes else [CONFIG_TYPE],
                               "universes": universes})
        for row in cur:
            if row.type is None:
                counts[row.name] = row.open_rows
            elif row.type == CONFIG_TYPE:
                config.append(ConfigRow(row.name, row.key, row.value))
            else:
                value = row.value if row.digest is None else Recorded(encoding.split_members(row.members), row.digest)
                found.append(FoundRow(row.type, row.name, row.key, value, row.ledger_family, row.edited))
    return Stored(tuple(found), tuple(config), MappingProxyType(counts))


# work_mem of the write transaction, in kB (raised to it, never lowered below the server's setting). The upsert
# holds every written value twice: the text of `u`, and the jsonb of `e` in the hash that joins it to
# cache_entries, 6.7 MB of text at 12,000 symbols with the rule universes. With the default 4 MB both went to
# temporary files (temp read 3,017 / written 2,315 blocks, the hash in 2 batches): the statement took 220-242 ms
# against 112-148 ms with 64 MB (EXPLAIN ANALYZE of a daily sync, 3 runs each, alternating). 256 MB is headroom
# for larger markets (about 8 times the 12,000-symbol values; not measured at 100,000 symbols). The server takes
# the memory only as a statement uses it, and only one sync writes at a time (single-flight).
WRITE_WORK_MEM_KB = 256 * 1024

# Session settings of the write transaction, all transaction-local: TimeZone UTC, so that now()
# lands as UTC in a `timestamp` column and as the right instant in a `timestamptz` one whatever the
# database's TimeZone (AppV2 has both, contract §10.3); lz4 for new TOAST values (a no-op on a
# server built without lz4: the setting then does not list it); work_mem (WRITE_WORK_MEM_KB).
WRITE_SETTINGS = (
    "SELECT set_config('TimeZone', 'UTC', true) AS timezone, (SELECT set_config('default_toast_compression', 'lz4',"
    " true) FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)) AS compression,"
    f" (SELECT set_config('work_mem', greatest(setting::bigint, {WRITE_WORK_MEM_KB}) || 'kB', true)"
    "  FROM pg_settings WHERE name = 'work_mem') AS work_mem")

# Deletes only rows the ledger holds: a delete of a row PL did not write is impossible here,
# whatever the plan says. The ledger forgets them, and any entry whose row someone else deleted.
DELETE_SQL = (
    "WITH gone AS (DELETE FROM cache_entries c USING unnest(%(t)b::text[], %(n)b::text[], %(k)b::text[]) AS u(t, n, k),"
    "  pl_cache_ledger l WHERE c.environment = %(env)s AND c.type = u.t AND c.name = u.n AND c.key = u.k"
    "  AND l.environment = c.environment AND l.type = c.type AND l.name = c.name AND l.key = c.key"
    "  RETURNING c.type, c.name, c.key)"
    " , forgot AS (DELETE FROM pl_cache_ledger l WHERE l.environment = %(env)s AND (EXISTS (SELECT 1 FROM gone g"
    "  WHERE g.type = l.type AND g.name = l.name AND g.key = l.key) OR NOT EXISTS (SELECT 1 FROM cache_entries c"
    "  WHERE c.environment = l.environment AND c.type = l.type AND c.name = l.name AND c.key = l.key)))"
    " SELECT count(*) AS deleted FROM gone")

# Writes the built universes and records them in the ledger, in one statement that names no
# unique constraint (AppV2 has tables unique on (type, name, key, environment) and on
# (type, key, environment)): rows read as existing are updated by (environment, type, name, key),
# new ones inserted; one that appeared since it was read (another writer) is left alone and
# reported. `kept`: universes taken over (or restored) whose stored value is already PL's. The UPDATE
# parses each value once, in the MATERIALIZED CTE `e`: written `u.v::jsonb` in both its filter and its SET,
# the text was parsed twice for every existing row, 2.8 MB of universe values when every universe is rewritten
# (212 -> 156 ms for that statement under this machine's load, median of 9, alternating, in one process). A
# subquery kept from being flattened (OFFSET 0) was not enough: on tables never analysed (autovacuum off) the
# planner put it inside a nested loop over cache_entries and parsed it again for every row, 89 times (24.4 of a
# 100,000-symbol sync's 27.6 s, auto_explain, 2026-12-07); a CTE is computed once whatever the join order. It does not compare the stored value with the new one: the plan
# holds only universes whose value differs from the one read (diff.plan, same_json), and the comparison
# detoasted and walked every old value again (about 100 ms for the 3.9 MB of a daily run with the rule
# universes, measured). `u` itself stays text: as jsonb the materialized CTE
# outgrew work_mem and the insert path got slower. The ledger's digest of an updated row is taken of `e.v`, the
# value as parsed, which is the datum written: of `c.value` it read the new value back from TOAST (the
# statement 247 -> 240 ms, medians of 4, alternating, EXPLAIN ANALYZE of a daily sync at 12,000 symbols).
UPSERT_SQL = (
    "WITH u AS (SELECT * FROM unnest(%(t)b::text[], %(n)b::text[], %(k)b::text[], %(v)b::text[], %(f)b::text[],"
    "  %(x)b::bool[], %(m)b::text[], %(d)b::text[]) AS u(t, n, k, v, f, existing, m, d)),"
    " e AS MATERIALIZED (SELECT u.t, u.n, u.k, u.v::jsonb AS v, u.f, u.m, u.d FROM u WHERE u.existing),"
    " upd AS (UPDATE cache_entries c SET value = e.v, updated_at = now() FROM e"
    "  WHERE c.environment = %(env)s AND c.type = e.t AND c.name = e.n AND c.key = e.k"
    f"  RETURNING c.type, c.name, c.key, e.f AS family, c.xmin, {DIGEST.format(value='e.v')} AS digest,"
    "   e.m AS members, e.d AS text_digest),"
    " ins AS (INSERT INTO cache_entries (type, name, key, value, environment, created_at, updated_at)"
    "  SELECT u.t, u.n, u.k, u.v::jsonb, %(env)s, now(), now() FROM u WHERE NOT u.existing"
    f"  ON CONFLICT DO NOTHING RETURNING type, name, key, xmin, {DIGEST.format(value='value')} AS digest),"
    f" kept AS (SELECT c.type, c.name, c.key, l.f AS family, c.xmin, {DIGEST.format(value='c.value')} AS digest"
    " FROM cache_entries c"
    "  JOIN unnest(%(lt)b::text[], %(ln)b::text[], %(lk)b::text[], %(lf)b::text[]) AS l(t, n, k, f)"
    "  ON c.environment = %(env)s AND c.type = l.t AND c.name = l.n AND c.key = l.k"
    "  WHERE NOT EXISTS (SELECT 1 FROM upd WHERE upd.type = l.t AND upd.name = l.n AND upd.key = l.k)),"
    " written AS (SELECT type, name, key, family, xmin, digest, members, text_digest FROM upd"
    "  UNION ALL SELECT i.type, i.name, i.key, u.f, i.xmin, i.digest, u.m, u.d FROM ins i"
    "   JOIN u ON u.t = i.type AND u.n = i.name AND u.k = i.key"
    "  UNION ALL SELECT type, name, key, family, xmin, digest, NULL, NULL FROM kept),"
    " rec AS (INSERT INTO pl_cache_ledger AS l (environment, type, name, key, family, value_digest, row_xmin, job_id,"
    "  written_at, members, text_digest, recorded_xmin) SELECT %(env)s, type, name, key, family, digest, xmin,"
    "  %(job)s, now(), string_to_array(members, E'\\n'), text_digest,"
    "  CASE WHEN members IS NOT NULL AND text_digest IS NOT NULL THEN xmin END FROM written"
    "  ON CONFLICT (environment, type, name, key) DO UPDATE SET family = EXCLUDED.family,"
    "  value_digest = EXCLUDED.value_digest, row_xmin = EXCLUDED.row_xmin, job_id = EXCLUDED.job_id,"
    "  written_at = EXCLUDED.written_at, members = EXCLUDED.members, text_digest = EXCLUDED.text_digest,"
    "  recorded_xmin = EXCLUDED.recorded_xmin)"
    " SELECT (SELECT count(*) FROM upd) AS updated, (SELECT count(*) FROM ins) AS inserted,"
    " (SELECT count(*) FROM u WHERE NOT existing) AS to_insert")


class Sent(NamedTuple):
    """The rows `send_ahead` sent before the rest of a sync's plan, their results still to be read."""

    upserts: Mapping[str, Any]  # universe upserted -> its diff.Written
    deletes: frozenset[str]  # universes deleted
    kept: frozenset[str]  # universes recorded in the ledger only
    deleting: tuple[Any, ...] = ()  # cursors holding a DELETE_SQL result to read
    upserting: tuple[Any, ...] = ()  # cursors holding an UPSERT_SQL result to read
    history: frozenset[str] = frozenset()  # universes whose membership history was sent (all of it)
    opened: tuple[tuple[str, str], ...] = ()  # their history rows opened, closed: (universe, symbol)
    closed: tuple[tuple[str, str], ...] = ()
    diffs: Mapping[str, Any] = MappingProxyType({})  # universe -> its diff.UniverseDiff in the part (changed ones)

    @property
    def settings(self) -> bool:
        """Whether the write settings were sent (with the first rows)."""
        return bool(self.upserts or self.deletes or self.kept)


NOTHING_SENT = Sent(MappingProxyType({}), frozenset(), frozenset())


def send_ahead(conn, plan: Plan, *, environment: str, job_id: str, as_of: dt.date, history_of: frozenset[str],
               ownership: Ownership | None = None, existing: frozenset[str] = frozenset(),
               before: Sent = NOTHING_SENT) -> Sent:
    """Send the cache rows and the membership history of `plan` (a part of the sync's plan, the families of
    a part of its universes, with its history: sync/job.py) in the caller's transaction, in pipeline mode:
    the server writes them while the client goes on. `history_of`: the universes whose history `plan`
    holds (every universe of the part, changed or not). The write settings go with the first rows.
    `before`: what was sent ahead already; returns everything sent ahead, whose results
    `apply(..., sent=...)` reads after sending the rest."""
    keep = _ledger_only(ownership)
    if not before.settings and (plan.upserts or plan.deletes or keep):
        conn.cursor().execute(WRITE_SETTINGS)
    deleting = _send_deletes(conn.cursor(row_factory=namedtuple_row), plan.deletes, environment)
    upserting = _send_upserts(conn.cursor(row_factory=namedtuple_row), plan, keep, existing, environment, job_id)
    _send_history(conn.cursor(), plan, environment, as_of, job_id)
    # the texts are let go once sent (the statement's parameters hold their bytes until its result is read):
    # what stays is what the full plan compares and records, the digest and the members (at 100,000 symbols
    # the legacy texts are about 23 MB of the process's peak, which comes when the rule universes' rows go)
    return Sent({**before.upserts, **{e.universe: plan.written[e.universe]._replace(text=None) for e in plan.upserts}},
                before.deletes | {e.universe for e in plan.deletes}, before.kept | {universe_id(*k[:3]) for k in keep},
                before.deleting + ((deleting,) if deleting is not None else ()),
                before.upserting + ((upserting,) if upserting is not None else ()),
                before.history | history_of, before.opened + plan.membership_open,
                before.closed + plan.membership_close, MappingProxyType({**before.diffs, **{
                    u.universe: u for u in plan.universes}}))


def apply(conn, plan: Plan, *, environment: str, job_id: str, as_of: dt.date, events: list[Event],
          ownership: Ownership | None = None, existing: frozenset[str] = frozenset(),
          then: Callable[[], Any] | None = None, sent: Sent | None = None) -> WriteResult:
    """Write the plan, the ledger and the events inside the caller's transaction (it commits).

    `existing`: universes that have a row now (read by `read_stored`); `ownership` names the
    universes to record in the ledger although their value is unchanged (taken over, restored);
    `then`: more writes of the same transaction (the relational groups), run after the cache rows with
    the same session settings; its result is `WriteResult.groups`; `sent`: the part of the plan
    `send_ahead` sent already (the rest is sent here, and its results read)."""
    result = WriteResult()
    keep = _ledger_only(ownership)
    if sent is not None:
        plan, keep = _rest(plan, keep, sent)
        for cur in sent.deleting:
            _count_deleted(cur, result)
        for cur in sent.upserting:
            _count_upserted(cur, result)
        result.rows += len(sent.opened) + len(sent.closed)
    with conn.cursor(row_factory=namedtuple_row) as cur:
        if not (sent is not None and sent.settings) and (plan.upserts or plan.deletes or keep or then is not None):
            cur.execute(WRITE_SETTINGS)
        if _send_deletes(cur, plan.deletes, environment) is not None:
            _count_deleted(cur, result)
        if _send_upserts(cur, plan, keep, existing, environment, job_id) is not None:
            _count_upserted(cur, result)
        if plan.changes:
            result.rows += changelog.write(cur, job_id, environment, plan.changes)
        result.rows += _send_history(cur, plan, environment, as_of, job_id)
    if then is not None:
        result.groups = then()
    result.outputs_digest = fingerprint.outputs_digest(conn, environment)
    result.rows += enqueue(conn, events)
    return result


def _send_deletes(cur, deletes, environment: str):
    """DELETE_SQL for `deletes` on `cur` (its result read by `_count_deleted`); None when there is none."""
    if not deletes:
        return None
    cur.execute(DELETE_SQL, {"t": [d.type for d in deletes], "n": [d.name for d in deletes],
                             "k": [d.key for d in deletes], "env": environment})
    return cur


def _send_upserts(cur, plan: Plan, keep, existing: frozenset[str], environment: str, job_id: str):
    """UPSERT_SQL for the plan's upserts and the ledger-only rows `keep` on `cur` (its result read by
    `_count_upserted`); None when there is none."""
    if not (plan.upserts or keep):
        return None
    ups = plan.upserts
    sent = [plan.written[e.universe] for e in ups]
    cur.execute(UPSERT_SQL, {
        "t": [e.type for e in ups], "n": [e.name for e in ups], "k": [e.key for e in ups],
        "v": [w.text for w in sent], "f": [e.family for e in ups],
        "x": [e.universe in existing for e in ups],
        "m": [w.members for w in sent], "d": [w.digest for w in sent],
        "lt": [k[0] for k in keep], "ln": [k[1] for k in keep], "lk": [k[2] for k in keep],
        "lf": [k[3] for k in keep], "env": environment, "job": job_id})
    return cur


def _send_history(cur, plan: Plan, environment: str, as_of: dt.date, job_id: str) -> int:
    """The plan's membership history (sync/history.py), its closes and opens in one statement; returns the rows
    it changes."""
    opened, closed = plan.membership_open, plan.membership_close
    if opened or closed:
        history.change(cur, opened, closed, environment=environment, as_of=as_of, job_id=job_id)
    return len(opened) + len(closed)


def _count_deleted(cur, result: WriteResult) -> None:
    result.rows += cur.fetchone().deleted


def _count_upserted(cur, result: WriteResult) -> None:
    """The rows an UPSERT_SQL wrote, into `result`, with a warning for rows it could not insert."""
    counts = cur.fetchone()
    result.rows += counts.updated + counts.inserted
    if counts.inserted < counts.to_insert:
        result.warnings.append(
            f"{counts.to_insert - counts.inserted} new universe(s) not written: a row with the same unique key"
            " appeared after the sync read the table (written by someone else); left as is")


def _rest(plan: Plan, keep: list[tuple[str, str, str, str]], sent: Sent) -> tuple[Plan, list]:
    """The plan and ledger-only rows without what `send_ahead` sent. Every sent row must be one of the
    plan's, with the same Written (digest and members; the sent text itself is let go), every universe whose
    history was sent must have the same diff in the plan as in its part (its history is made of that diff and
    the sync's inputs alone: diff.with_history), and the plan must hold no history of those universes (made
    without them): else what went ahead was not a part of this plan (a bug: refused)."""
    deletes = {e.universe for e in plan.deletes}
    kept = {universe_id(*k[:3]) for k in keep}
    same = all(plan.written.get(u) == w for u, w in sent.upserts.items())
    sent_history = sent.history
    same_diffs = {u.universe: u for u in plan.universes if u.universe in sent_history} == sent.diffs
    none_twice = not any(p[0] in sent_history for p in plan.membership_open) and \
        not any(p[0] in sent_history for p in plan.membership_close)
    if not (same and same_diffs and none_twice and sent.deletes <= deletes and sent.kept <= kept):
        raise RuntimeError("the rows sent ahead are not a part of the sync's plan")
    rest = dataclasses.replace(plan, upserts=tuple(e for e in plan.upserts if e.universe not in sent.upserts),
                               deletes=tuple(e for e in plan.deletes if e.universe not in sent.deletes))
    return rest, [k for k in keep if universe_id(*k[:3]) not in sent.kept]


@dataclass
class WriteResult:
    rows: int = 0
    warnings: list[str] = field(default_factory=list)
    groups: Any = None  # what `then` returned
    outputs_digest: str | None = None  # the outputs fingerprint after the writes (sync/fingerprint.py)


def _ledger_only(ownership: Ownership | None) -> list[tuple[str, str, str, str]]:
    """(type, name, key, family) of the universes to record in the ledger although unchanged."""
    if ownership is None:
        return []
    wanted = set(ownership.ledger_ids)
    return [(e.type, e.name, e.key, e.family) for e in ownership.built if e.universe in wanted]
