"""`tickstockpl cache prune`: the operator's explicit removal of rows PL did not write.

A sync never deletes a row PL did not write (contract §5.5), so the old synchronizer's leftovers
(e.g. `etf_universe / Complete / top_100`) stay until an operator removes them. `prune` lists the
candidates, and with `apply` deletes exactly those in one transaction, with a change-log row
(action `pruned`) and a `universe_updated ... deleted` event per row.

Candidates are *foreign* rows of the environment: rows of a universe type that PL neither builds
now nor wrote (a dry run of a full sync decides which, so a key PL builds is never pruned: the
next sync takes it over). Of those, `legacy` selects the rows that match the old job's documented
keys (`is_legacy_key`); `named` selects rows by universe id (`type:name:key`). AppV2's curated rows
(`etf_core`, `stock_etf_group`, ...) match no documented key: they go only when named.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from tickstockpl.errors import ConfigError
from tickstockpl.events import catalog
from tickstockpl.events.outbox import enqueue
from tickstockpl.sync import changelog
from tickstockpl.sync.diff import Change
from tickstockpl.universes.model import OWNED_TYPES, members

# The old job's documented keys (contract §5, §5.3): (type, lower-case name or None for any, key pattern).
_BANDS = "mega_cap|large_cap|mid_cap|small_cap|micro_cap"
_ETF_CATEGORIES = "etf_broad_market|etf_growth|etf_value|etf_technology|etf_bonds|etf_international|etf_factor|etf_all"
LEGACY_KEYS: tuple[tuple[str, str | None, re.Pattern[str]], ...] = tuple(
    (type_, name, re.compile(pattern)) for type_, name, pattern in (
        ("stock_universe", "market_cap", rf"(?:{_BANDS})"),
        ("stock_universe", "sector_leaders", r"top_10_.+"),
        ("stock_universe", "market_leaders", r"top_10_stocks|top_50|top_100|top_250|top_500"),
        ("stock_universe", "complete", r"top_\d+|all_stocks"),
        ("stock_universe", "industry", r".+"),
        ("stock_universe", "themes", r".+"),
        ("stock_universe", "ipos", r"recent_ipos"),
        ("themes", None, r"list"),
        ("etf_universe", None, rf"(?:{_ETF_CATEGORIES})(?:_detailed)?"),
        ("etf_universe", "complete", r"top_\d+|all_etfs"),
        ("stock_etf_combo", "stock_etf_test", r"combo_test(?:_detailed)?"),
        ("stock_stats", "universe", r"summary"),
    ))


def is_legacy_key(type_: str, name: str, key: str) -> bool:
    """Whether (type, name, key) is one of the old synchronizer's documented universes (names compared
    case-insensitively: it wrote `Complete` where PL writes `complete`)."""
    return any(type_ == t and (n is None or name.lower() == n) and p.fullmatch(key) for t, n, p in LEGACY_KEYS)


def parse_universe(text: str) -> tuple[str, str, str]:
    """`type:name:key` -> (type, name, key); ConfigError naming the value otherwise."""
    parts = text.split(":", 2)
    if len(parts) != 3 or not all(parts):
        raise ConfigError(f"--universe must be TYPE:NAME:KEY (e.g. 'etf_universe:Complete:top_100'); got {text!r}")
    if parts[0] not in OWNED_TYPES:
        raise ConfigError(f"--universe {text!r}: type {parts[0]!r} is not a universe type"
                          f" ({', '.join(OWNED_TYPES)}); prune removes universes only")
    return parts[0], parts[1], parts[2]


@dataclass
class PruneResult:
    prune_id: str
    environment: str
    applied: bool
    rows: list[dict] = field(default_factory=list)  # universe, members, why
    not_prunable: list[str] = field(default_factory=list)  # named universes that are not foreign rows

    def to_dict(self) -> dict:
        return {"prune_id": self.prune_id, "environment": self.environment, "applied": self.applied,
                "rows": self.rows, "not_prunable": self.not_prunable}


def prune(conn, environment: str, *, legacy: bool, named: list[str], apply: bool) -> PruneResult:
    """List (and with `apply`, delete) the foreign rows selected by `legacy` and `named` (autocommit conn)."""
    from tickstockpl.sync.job import SyncRequest, run_sync

    wanted = [parse_universe(text) for text in named]
    if not legacy and not wanted:
        raise ConfigError("nothing selected: pass --legacy and/or --universe TYPE:NAME:KEY")
    # What a full sync would build and what it would leave alone; force: a stale market does not matter here.
    foreign = set(run_sync(conn, SyncRequest(mode="full", dry_run=True, force=True, environment=environment)).foreign)
    result = PruneResult(str(uuid.uuid4()), environment, applied=False)
    chosen: dict[str, str] = {}
    for type_, name, key in wanted:
        universe = f"{type_}:{name}:{key}"
        if universe in foreign:
            chosen[universe] = "named by the operator"
        else:
            result.not_prunable.append(universe)
    if legacy:
        for universe in sorted(foreign):
            if universe not in chosen and is_legacy_key(*universe.split(":", 2)):
                chosen[universe] = "matches a documented key of the old synchronizer"
    if result.not_prunable:
        raise ConfigError("not a foreign row of environment " + environment + " (missing, or written or built by"
                          " TickStockPL, which manages its own rows): " + ", ".join(result.not_prunable))
    ids = sorted(chosen)
    values = _values(conn, environment, ids)
    result.rows = [{"universe": u, "members": len(members(values.get(u))), "why": chosen[u]} for u in ids if u in values]
    if apply and result.rows:
        _delete(conn, environment, result, {u: members(values[u]) for u in values})
        result.applied = True
    return result


def _values(conn, environment: str, ids: list[str]) -> dict[str, object]:
    parts = [u.split(":", 2) for u in ids]
    rows = conn.execute(
        "SELECT c.type || ':' || c.name || ':' || c.key, c.value FROM cache_entries c"
        " JOIN unnest(%s::text[], %s::text[], %s::text[]) AS u(t, n, k)"
        " ON c.environment = %s AND c.type = u.t AND c.name = u.n AND c.key = u.k",
        ([p[0] for p in parts], [p[1] for p in parts], [p[2] for p in parts], environment)).fetchall()
    return dict(rows)


def _delete(conn, environment: str, result: PruneResult, members_of: dict[str, list[str]]) -> None:
    """One transaction: the rows (never one in PL's ledger), their change-log rows and events."""
    ids = [row["universe"] for row in result.rows]
    parts = [u.split(":", 2) for u in ids]
    with conn.transaction():
        deleted = conn.execute(
            "DELETE FROM cache_entries c USING unnest(%s::text[], %s::text[], %s::text[]) AS u(t, n, k)"
            " WHERE c.environment = %s AND c.type = u.t AND c.name = u.n AND c.key = u.k"
            " AND NOT EXISTS (SELECT 1 FROM pl_cache_ledger l WHERE l.environment = c.environment"
            "  AND l.type = c.type AND l.name = c.name AND l.key = c.key)"
            " RETURNING c.type || ':' || c.name || ':' || c.key",
            ([p[0] for p in parts], [p[1] for p in parts], [p[2] for p in parts], environment)).fetchall()
        gone = sorted(u for (u,) in deleted)
        why = {row["universe"]: row["why"] for row in result.rows}
        changelog.write(conn.cursor(), result.prune_id, environment, [
            Change(universe, None, "pruned", f"removed by the operator (cache prune): {why[universe]}")
            for universe in gone])
        enqueue(conn, [catalog.universe_updated(result.prune_id, u, "deleted", [], members_of.get(u, [])) for u in gone])
    result.rows = [row for row in result.rows if row["universe"] in set(gone)]
