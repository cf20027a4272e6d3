"""Everything a sync reads from and writes to PostgreSQL, with as few statements as possible.

Readers take a connection; `apply` writes a whole plan inside the caller's transaction and never
commits (the job runtime owns the transaction, so the job row and the events commit with it).
Statement count per sync is constant: it does not grow with sectors, industries, themes or
ETF categories. Arrays are sent in binary (`%b`): psycopg's text array format escapes every
element with a regular expression, which measured 0.59 s for the 2.8 MB of universe values of a
12,000-symbol market against 0.01 s in binary.

Universe values are (de)serialized with orjson, the standard library only where orjson refuses
(integers beyond 64 bits, non-finite numbers): for those 2.6 MB, dumps 35 ms -> 5 ms and loads
23 ms -> 9 ms (measured). New TOAST values are compressed with lz4 for the sync's transaction
(`default_toast_compression`, set transaction-locally: the shared table is not altered): writing
the values measured 35-39 ms instead of 68-91 ms with pglz, and reading costs the same.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict

import orjson
from psycopg.types.json import set_json_loads

from tickstockpl.events.catalog import Event
from tickstockpl.events.outbox import enqueue
from tickstockpl.sync.diff import Plan, StoredRow
from tickstockpl.universes.config import CONFIG_TYPE, ConfigRow
from tickstockpl.universes.model import OWNED_TYPES, family_of


def read_cache_rows(conn, environment: str, families: frozenset[str]) -> tuple[list[StoredRow], list[ConfigRow]]:
    """One statement: the rows of our environment owned by `families`, and the cache_config rows."""
    owned: list[StoredRow] = []
    config: list[ConfigRow] = []
    with conn.cursor() as cur:
        set_json_loads(_loads, cur)
        cur.execute(
            "SELECT type, name, key, value FROM cache_entries WHERE environment = %s AND type = ANY(%s)"
            " ORDER BY type, name, key",
            (environment, [*OWNED_TYPES, CONFIG_TYPE]),
        )
        for type_, name, key, value in cur:
            if type_ == CONFIG_TYPE:
                config.append(ConfigRow(name, key, value))
                continue
            family = family_of(type_, name, key)
            if family is not None and family in families:
                owned.append(StoredRow(type_, name, key, value, family))
    return owned, config


def read_open_counts(conn, environment: str) -> dict[str, int]:
    """Universe -> number of open history rows (one small aggregate row per universe)."""
    return dict(conn.execute(
        "SELECT universe, count(*) FROM pl_universe_membership WHERE environment = %s AND valid_to IS NULL"
        " GROUP BY universe", (environment,)).fetchall())


def read_open_membership(conn, environment: str, universes: set[str]) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT universe, symbol FROM pl_universe_membership"
            " WHERE environment = %s AND valid_to IS NULL AND universe = ANY(%s)",
            (environment, sorted(universes)),
        )
        for universe, symbol in cur.fetchall():
            out[universe].add(symbol)
    return {u: frozenset(s) for u, s in out.items()}


# A no-op on a server built without lz4 (the setting then does not list it).
LZ4_FOR_THIS_TRANSACTION = (
    "SELECT set_config('default_toast_compression', 'lz4', true) FROM pg_settings"
    " WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)")


def _loads(data):
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:  # e.g. a number beyond a double's range: keep the stdlib's reading
        return json.loads(bytes(data))


def _json(value) -> str:
    """Compact JSON text; like json.dumps(allow_nan=False), a non-finite number is an error (orjson
    would write null), found by the builders' own checks before this point."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # e.g. an integer beyond 64 bits
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def apply(conn, plan: Plan, *, environment: str, job_id: str, as_of: dt.date, events: list[Event]) -> int:
    """Write the plan and its events; returns the number of rows written. Caller commits."""
    written = 0
    with conn.cursor() as cur:
        if plan.upserts:
            cur.execute(LZ4_FOR_THIS_TRANSACTION)
            cur.execute(
                "INSERT INTO cache_entries AS c (type, name, key, value, environment, created_at, updated_at)"
                " SELECT t, n, k, v::jsonb, %s, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC'"
                " FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[]) AS u(t, n, k, v)"
                " ON CONFLICT (type, name, key, environment)"
                " DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at"
                " WHERE c.value IS DISTINCT FROM EXCLUDED.value",
                (
                    environment,
                    [e.type for e in plan.upserts],
                    [e.name for e in plan.upserts],
                    [e.key for e in plan.upserts],
                    [_json(e.value) for e in plan.upserts],
                ),
            )
            written += cur.rowcount
        if plan.deletes:
            cur.execute(
                "DELETE FROM cache_entries c USING unnest(%b::text[], %b::text[], %b::text[]) AS u(t, n, k)"
                " WHERE c.environment = %s AND c.type = u.t AND c.name = u.n AND c.key = u.k",
                ([d.type for d in plan.deletes], [d.name for d in plan.deletes], [d.key for d in plan.deletes],
                 environment),
            )
            written += cur.rowcount
        if plan.changes:
            with cur.copy(
                "COPY pl_sync_changes (job_id, environment, universe, symbol, action, reason) FROM STDIN"
            ) as copy:
                for ch in plan.changes:
                    copy.write_row((job_id, environment, ch.universe, ch.symbol, ch.action, ch.reason))
            written += len(plan.changes)
        if plan.membership_close:
            # Each pair is looked up through the open-rows index (LATERAL ... LIMIT 1 keeps the
            # lookup per pair whatever the table's statistics say: with stale ones the planner
            # hashed every open row of the environment, 27 ms instead of 3 ms for 200 pairs),
            # then changed by ctid. An interval that would close on (or before) the day it opened
            # is dropped instead. Only one sync writes at a time (single-flight).
            cur.execute(
                "WITH open AS (SELECT o.ctid AS tid, o.valid_from"
                "  FROM unnest(%(u)b::text[], %(s)b::text[]) AS u(universe, symbol)"
                "  CROSS JOIN LATERAL (SELECT m.ctid, m.valid_from FROM pl_universe_membership m"
                "   WHERE m.environment = %(env)s AND m.universe = u.universe AND m.symbol = u.symbol"
                "   AND m.valid_to IS NULL LIMIT 1) o),"
                " gone AS (DELETE FROM pl_universe_membership m"
                "  WHERE m.ctid = ANY(ARRAY(SELECT tid FROM open WHERE valid_from >= %(d)s)))"
                " UPDATE pl_universe_membership m SET valid_to = %(d)s"
                " WHERE m.ctid = ANY(ARRAY(SELECT tid FROM open WHERE valid_from < %(d)s))",
                {"u": [u for u, _ in plan.membership_close], "s": [s for _, s in plan.membership_close],
                 "env": environment, "d": as_of},
            )
            written += len(plan.membership_close)
        if plan.membership_open:
            cur.execute(
                "INSERT INTO pl_universe_membership (environment, universe, symbol, valid_from, job_id)"
                " SELECT %s, u.universe, u.symbol, %s, %s FROM unnest(%b::text[], %b::text[]) AS u(universe, symbol)"
                " ON CONFLICT (environment, universe, symbol, valid_from) DO UPDATE SET valid_to = NULL, job_id = EXCLUDED.job_id",
                (environment, as_of, job_id, [u for u, _ in plan.membership_open], [s for _, s in plan.membership_open]),
            )
            written += len(plan.membership_open)
    written += enqueue(conn, events)
    return written
