"""PL's universes in AppV2's relational tables (`definition_groups` / `group_memberships`).

    read(conn, environment)            one statement: PL's groups (by `pl_group_ledger`) with their
                                       members, and the names of every other UNIVERSE group
    plan(current, groups, families)    pure: groups to create / update / delete, members to add / remove
    write(conn, the_plan, ...)         at most three statements, inside the sync's transaction, under a
                                       savepoint: a refusal by the table skips the groups, never the sync

Only a group in PL's ledger is ever changed or deleted; a name AppV2 already uses for a group of
its own is skipped with a warning. Diff-based: an unchanged rerun writes no group or membership row.
The groups' names, descriptions and metadata come from universes/groups.py.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import orjson
import psycopg
from psycopg.rows import class_row

from tickstockpl.errors import first_line
from tickstockpl.sync.diff import Change
from tickstockpl.universes.groups import GROUP_TYPE, Group
from tickstockpl.universes.model import family_of

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredGroup:
    group_id: int
    name: str
    universe: str
    family: str
    description: str | None
    metadata: object
    members: frozenset[str]


@dataclass(frozen=True)
class Current:
    ours: dict[str, StoredGroup]  # by name
    foreign: frozenset[str]  # names of UNIVERSE groups of the environment PL did not write


@dataclass(frozen=True)
class GroupPlan:
    create: tuple[Group, ...] = ()
    update: tuple[tuple[int, Group], ...] = ()  # (group id, new description/metadata)
    delete: tuple[StoredGroup, ...] = ()
    add: tuple[tuple[int, str], ...] = ()  # (group id, symbol) of existing groups
    remove: tuple[tuple[int, str], ...] = ()
    skipped: tuple[str, ...] = ()  # warnings: names held by AppV2's groups, names too long
    changes: tuple[Change, ...] = ()  # change-log rows of groups created and deleted
    groups: tuple[tuple[str, str], ...] = ()  # (universe, group name) of every group PL has after the plan

    @property
    def is_empty(self) -> bool:
        return not (self.create or self.update or self.delete or self.add or self.remove)


@dataclass
class GroupResult:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    members_added: int = 0
    members_removed: int = 0
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


READ_SQL = (
    "SELECT g.id, g.name, l.universe, l.family, g.description, g.metadata,"
    " CASE WHEN l.group_id IS NULL THEN NULL ELSE"
    "  ARRAY(SELECT m.symbol FROM group_memberships m WHERE m.group_id = g.id) END AS symbols"
    " FROM definition_groups g LEFT JOIN pl_group_ledger l ON l.environment = %(env)s AND l.group_id = g.id"
    " WHERE g.environment = %(env)s AND (g.type = %(type)s OR l.group_id IS NOT NULL)")


class _GroupRead(NamedTuple):
    """A row of READ_SQL: a group of the environment; universe NULL when PL's ledger does not hold it."""

    id: int
    name: str
    universe: str | None
    family: str | None
    description: str | None
    metadata: object
    symbols: list[str] | None


def read(conn, environment: str) -> Current:
    ours: dict[str, StoredGroup] = {}
    foreign: set[str] = set()
    with conn.cursor(row_factory=class_row(_GroupRead)) as cur:
        cur.execute(READ_SQL, {"env": environment, "type": GROUP_TYPE})
        for row in cur:
            if row.universe is None:
                foreign.add(row.name)
            else:
                ours[row.name] = StoredGroup(row.id, row.name, row.universe, row.family, row.description,
                                             row.metadata, frozenset(row.symbols or ()))
    return Current(ours, frozenset(foreign))


def plan(current: Current, groups: list[Group], families: frozenset[str], *, name_width: int | None) -> GroupPlan:
    """The writes that turn PL's stored groups into `groups` (the groups of the families in scope)."""
    create: list[Group] = []
    update: list[tuple[int, Group]] = []
    add: list[tuple[int, str]] = []
    remove: list[tuple[int, str]] = []
    skipped: list[str] = []
    changes: list[Change] = []
    wanted: set[str] = set()
    for group in groups:
        if name_width is not None and len(group.name) > name_width:
            skipped.append(f"relational group {group.name} not written: longer than definition_groups.name"
                           f" ({name_width} characters)")
            continue
        stored = current.ours.get(group.name)
        if stored is None and group.name in current.foreign:
            skipped.append(f"relational group {group.name} not written: AppV2 already has a {GROUP_TYPE} group"
                           " of that name (left as is)")
            continue
        wanted.add(group.name)
        if stored is None:
            create.append(group)
            changes.append(Change(group.universe, None, "created", f"relational group {group.name} created"))
            continue
        if stored.description != group.description or stored.metadata != group.metadata \
                or stored.universe != group.universe:
            update.append((stored.group_id, group))
        members = set(group.members)
        add.extend((stored.group_id, s) for s in sorted(members - stored.members))
        remove.extend((stored.group_id, s) for s in sorted(stored.members - members))
    delete = []
    for name, stored in sorted(current.ours.items()):
        family = stored.family if stored.family != "legacy" else family_of(*stored.universe.split(":", 2))
        if name not in wanted and family in families:
            delete.append(stored)
            changes.append(Change(stored.universe, None, "deleted", f"relational group {name} deleted"))
    kept = tuple((g.universe, g.name) for g in groups if g.name in wanted)
    return GroupPlan(tuple(create), tuple(update), tuple(delete), tuple(add), tuple(remove), tuple(skipped),
                     tuple(changes), kept)


_DELETE_SQL = (
    "WITH doomed AS (SELECT l.group_id FROM pl_group_ledger l WHERE l.environment = %(env)s"
    "  AND l.group_id = ANY(%(ids)s)),"
    " members AS (DELETE FROM group_memberships m USING doomed d WHERE m.group_id = d.group_id),"
    " groups AS (DELETE FROM definition_groups g USING doomed d WHERE g.id = d.group_id RETURNING g.id)"
    " DELETE FROM pl_group_ledger l WHERE l.environment = %(env)s AND l.group_id IN (SELECT group_id FROM doomed)")

_CREATE_SQL = (
    "WITH u AS (SELECT * FROM unnest(%(n)s::text[], %(d)s::text[], %(m)s::text[], %(uv)s::text[], %(f)s::text[],"
    "  %(lf)s::text[]) AS u(name, description, metadata, universe, family, lf)),"
    " made AS (INSERT INTO definition_groups (name, type, description, metadata, environment, created_at,"
    "  updated_at, last_update{lf_column}) SELECT name, %(type)s, description, metadata::jsonb, %(env)s, now(), now(),"
    "  now(){lf_value} FROM u RETURNING id, name),"
    " led AS (INSERT INTO pl_group_ledger (environment, group_id, name, universe, family, job_id)"
    "  SELECT %(env)s, made.id, made.name, u.universe, u.family, %(job)s FROM made JOIN u USING (name)),"
    " mem AS (INSERT INTO group_memberships (group_id, symbol, added_at, updated_at)"
    "  SELECT made.id, s.symbol, now(), now() FROM made"
    "  JOIN unnest(%(sn)s::text[], %(ss)s::text[]) AS s(name, symbol) USING (name) RETURNING 1)"
    " SELECT (SELECT count(*) FROM made), (SELECT count(*) FROM mem)")

_CHANGE_SQL = (
    "WITH upd AS (UPDATE definition_groups g SET description = u.d, metadata = u.m::jsonb, updated_at = now(),"
    "  last_update = now(){lf_set} FROM unnest(%(ui)s::int[], %(ud)s::text[], %(um)s::text[], %(ulf)s::text[])"
    "  AS u(id, d, m, lf) WHERE g.id = u.id RETURNING g.id),"
    " led AS (UPDATE pl_group_ledger l SET universe = u.uv, job_id = %(job)s, written_at = now()"
    "  FROM unnest(%(ui)s::int[], %(uu)s::text[]) AS u(id, uv) WHERE l.environment = %(env)s AND l.group_id = u.id),"
    " rem AS (DELETE FROM group_memberships m USING unnest(%(ri)s::int[], %(rs)s::text[]) AS r(id, symbol)"
    "  WHERE m.group_id = r.id AND m.symbol = r.symbol RETURNING 1),"
    " ins AS (INSERT INTO group_memberships (group_id, symbol, added_at, updated_at)"
    "  SELECT id, symbol, now(), now() FROM unnest(%(ai)s::int[], %(as)s::text[]) AS a(id, symbol) RETURNING 1)"
    " SELECT (SELECT count(*) FROM upd), (SELECT count(*) FROM rem), (SELECT count(*) FROM ins)")


# `liquidity_filter` (the rule universes' screens, universes/groups.py) where definition_groups has the
# column; a group without one (every legacy universe) leaves the column as it is.
_LF = {True: {"lf_column": ", liquidity_filter", "lf_value": ", lf::jsonb",
              "lf_set": ", liquidity_filter = coalesce(u.lf::jsonb, g.liquidity_filter)"},
       False: {"lf_column": "", "lf_value": "", "lf_set": ""}}


def _json(value) -> str:
    return orjson.dumps(value).decode()


def _filter(group: Group) -> str | None:
    return None if group.liquidity_filter is None else _json(group.liquidity_filter)


def write(conn, the_plan: GroupPlan, *, environment: str, job_id: str | None,
          liquidity_filter: bool = False) -> GroupResult:
    """Apply the plan inside the caller's transaction, under a savepoint: if the tables refuse (a
    constraint PL could not see in the catalog), the groups are rolled back and reported as skipped,
    and the cache sync goes on. `liquidity_filter`: definition_groups has that column (db/check.py)."""
    lf = _LF[bool(liquidity_filter)]
    result = GroupResult(skipped=list(the_plan.skipped))
    if the_plan.is_empty:
        return result
    try:
        with conn.transaction():  # a savepoint: the caller's transaction survives a refusal
            with conn.cursor() as cur:
                if the_plan.delete:
                    cur.execute(_DELETE_SQL, {"env": environment, "ids": [g.group_id for g in the_plan.delete]})
                    result.deleted = len(the_plan.delete)
                if the_plan.create:
                    c = the_plan.create
                    cur.execute(_CREATE_SQL.format(**lf), {
                        "n": [g.name for g in c], "d": [g.description for g in c], "m": [_json(g.metadata) for g in c],
                        "lf": [_filter(g) for g in c],
                        "uv": [g.universe for g in c], "f": [g.metadata.get("family", "") for g in c],
                        "sn": [g.name for g in c for _ in g.members], "ss": [s for g in c for s in g.members],
                        "type": GROUP_TYPE, "env": environment, "job": job_id})
                    result.created, result.members_added = cur.fetchone()
                if the_plan.update or the_plan.add or the_plan.remove:
                    u = the_plan.update
                    cur.execute(_CHANGE_SQL.format(**lf), {
                        "ui": [gid for gid, _ in u], "ud": [g.description for _, g in u],
                        "ulf": [_filter(g) for _, g in u],
                        "um": [_json(g.metadata) for _, g in u], "uu": [g.universe for _, g in u],
                        "ri": [gid for gid, _ in the_plan.remove], "rs": [s for _, s in the_plan.remove],
                        "ai": [gid for gid, _ in the_plan.add], "as": [s for _, s in the_plan.add],
                        "env": environment, "job": job_id})
                    updated, removed, added = cur.fetchone()
                    result.updated += updated
                    result.members_removed += removed
                    result.members_added += added
    except psycopg.Error as err:
        reason = first_line(err)
        log.warning("relational groups skipped: %s", reason)
        return GroupResult(skipped=[*the_plan.skipped, f"relational groups not written: the tables refused"
                                    f" ({err.__class__.__name__}: {reason}); cache_entries was written"])
    return result
