"""Compare what is stored with what was built: the plan of a sync. Pure: plain data in, plain data out.

For every universe of the families in scope:
  new key              -> upsert; each member `added` (or one `created` row when it has none)
  key no longer built  -> delete; each member `removed` (or one `deleted` row)
  members differ       -> upsert; `added` / `removed` per symbol
  same members, other order           -> upsert; one `reordered` row
  same members and order, other value -> upsert; one `updated` row (metadata changed)
  identical value      -> nothing (a rerun on unchanged data writes no row)

A stored value PL wrote and that nobody changed since comes as `Recorded` (its members and the digest of
the text PL sent, from the ledger: sync/encoding.py): it is identical when the built value's text has
that digest. Every upsert carries its text, digest and members (`Plan.written`), which the store sends.

Membership history is planned by `with_history` (`history_changes`): from the plan for universes whose
count of open rows in `pl_universe_membership` agrees with what was stored, and, for any other
(drifted) universe, against its open rows (`membership_changes`), so the history heals itself if it
and `cache_entries` ever disagree, without reading history rows on a run where they agree (the counts,
and the open rows of universes whose counts disagree, come with the sync's one read: sync/inputs.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from collections import Counter
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping, NamedTuple

from tickstockpl.sync import encoding
from tickstockpl.universes.model import (IPOS, IPOS_NAME, RECENT_IPOS_KEY, STOCK_UNIVERSE, Entry, Recorded, member_count,
                                        members, universe_id)

IPO_UNIVERSE = universe_id(STOCK_UNIVERSE, IPOS_NAME, RECENT_IPOS_KEY)


def same_json(stored: Any, built: Any) -> bool:
    """Whether a value read back from jsonb equals a built one, numbers compared as jsonb keeps them.

    jsonb keeps the decimal text a float was written as, and returns "9.223372036854776e+18" as the
    integer 9223372036854776000, which is not the float's exact value (2**63): `==` alone calls a
    universe holding such a figure (a huge market cap, a total) changed on every run. Called only
    when `==` said no, so a run where nothing changed pays nothing for it.
    """
    if isinstance(built, float) and isinstance(stored, (int, float)) and not isinstance(stored, bool):
        return float(stored) == built
    if isinstance(built, dict):
        return (isinstance(stored, dict) and stored.keys() == built.keys()
                and all(same_json(stored[k], v) for k, v in built.items()))
    if isinstance(built, list):
        return isinstance(stored, list) and len(stored) == len(built) and all(map(same_json, stored, built))
    return stored == built


class Written(NamedTuple):
    """An upsert as the store sends it and the ledger records it (sync/encoding.py)."""

    text: str | None  # the value's JSON text (None: sent already, store.send_ahead, which keeps the rest)
    digest: str  # encoding.digest(text)
    members: str | None  # encoding.joined_members of its members (None: not recordable)


def written(value: Any, symbols: list[str] | None = None) -> Written:
    """The Written of a built value (`symbols`: its members, when the caller has them)."""
    text, digest = encoding.text_and_digest(value)
    return Written(text, digest, encoding.joined_members(members(value) if symbols is None else symbols))


class Change(NamedTuple):
    """One line of the change log. A NamedTuple, not a frozen dataclass: a first run makes about 30,000
    of them at 12,000 symbols, and a frozen dataclass costs about three times as much to build."""

    universe: str
    symbol: str | None
    action: str  # added | removed | updated | reordered | created | deleted
    reason: str


@dataclass(frozen=True, slots=True)
class UniverseDiff:
    universe: str
    family: str
    action: str  # created | updated | deleted | reordered
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    upserts: tuple[Entry, ...]
    deletes: tuple[Entry, ...]
    changes: tuple[Change, ...]
    universes: tuple[UniverseDiff, ...]
    membership_open: tuple[tuple[str, str], ...] = ()  # (universe, symbol) to open as of the sync date
    membership_close: tuple[tuple[str, str], ...] = ()  # (universe, symbol) to close as of the sync date
    new_ipos: tuple[str, ...] = ()
    delisted: tuple[str, ...] = ()  # symbols dropped from some universe because inactive or gone
    unchanged: int = 0
    families: Mapping[str, str] = dataclasses.field(default_factory=dict)  # of universes not in `universes`
    written: Mapping[str, Written] = dataclasses.field(default_factory=dict)  # universe -> of each upsert

    def with_changes(self, extra: Iterable[Change], families: Mapping[str, str]) -> "Plan":
        """The plan with more change-log rows (takeovers and edits found by sync/ownership.py);
        `families`: universe -> family, for the universes of those rows."""
        extra = tuple(extra)
        if not extra:
            return self
        return dataclasses.replace(self, changes=self.changes + extra, families={**self.families, **families})

    def with_reasons(self, reasons_of: Callable[[str], Callable[[str, str], str] | None]) -> "Plan":
        """The plan with the reason of each `added` / `removed` change of the universes `reasons_of(universe)`
        answers for replaced by that answer's `(symbol, action)` text (the rule universes' reasons with
        numbers); the universes it answers None for keep theirs. Asked once per universe."""
        changes = []
        replaced = False
        asked: dict[str, Callable[[str, str], str] | None] = {}
        for change in self.changes:
            if change.symbol is not None and change.action in ("added", "removed"):
                universe = change.universe
                text_of = asked[universe] if universe in asked else asked.setdefault(universe, reasons_of(universe))
                if text_of is not None:
                    change = Change(universe, change.symbol, change.action, text_of(change.symbol, change.action))
                    replaced = True
            changes.append(change)
        return dataclasses.replace(self, changes=tuple(changes)) if replaced else self

    def with_membership(self, opened, closed) -> "Plan":
        return dataclasses.replace(self, membership_open=tuple(opened), membership_close=tuple(closed))

    @property
    def is_empty(self) -> bool:
        return not (self.upserts or self.deletes or self.membership_open or self.membership_close)

    def summary(self) -> list[dict[str, Any]]:
        """Per changed universe: action and +added/-removed counts (the dry-run output)."""
        return [
            {"universe": u.universe, "family": u.family, "action": u.action,
             "added": len(u.added), "removed": len(u.removed)}
            for u in self.universes
        ]

    def changes_by_family(self) -> dict[str, int]:
        family = {e.universe: e.family for e in self.upserts}
        family.update(self.families)
        family.update((u.universe, u.family) for u in self.universes)
        counts: dict[str, int] = {}
        for universe, n in Counter(change.universe for change in self.changes).items():
            name = family.get(universe, "unknown")
            counts[name] = counts.get(name, 0) + n
        return dict(sorted(counts.items()))


def plan(stored: Iterable[Entry], built: Iterable[Entry], *, active_symbols: frozenset[str],
         known: Mapping[str, Written] = MappingProxyType({})) -> Plan:
    """The plan that turns `stored` (owned rows of the families in scope) into `built`.

    `active_symbols` are the symbols active in the snapshot: a symbol removed from a universe
    that is not among them was delisted (reason `delisted`, and it feeds `delisting_cleanup`).
    `known`: the Written of some of these very entries, made by an earlier plan of them (the sync's
    first part, sync/job.py), so their text and digest are not made twice.
    The membership fields stay empty: see `history_changes` and `membership_changes`.
    """
    stored_by_id = {row.universe: row for row in stored}
    built_list = list(built)
    built_ids = {entry.universe for entry in built_list}
    upserts: list[Entry] = []
    deletes: list[Entry] = []
    changes: list[Change] = []
    diffs: list[UniverseDiff] = []
    delisted: set[str] = set()
    new_ipos: tuple[str, ...] = ()
    unchanged = 0
    writes: dict[str, Written] = {}

    def removal_reason(symbol: str) -> str:
        if symbol not in active_symbols:
            delisted.add(symbol)
            return "delisted"
        return "no longer qualifies"

    for entry in built_list:
        universe = entry.universe
        old = stored_by_id.get(universe)
        new_members: list[str] | None = None
        new_written: Written | None = None
        if old is not None:
            if isinstance(old.value, Recorded):  # the same value iff the same text as PL sent
                new_members = members(entry.value)
                new_written = known.get(universe) or written(entry.value, new_members)
                same = new_written.digest == old.value.digest
            else:
                same = old.value == entry.value or same_json(old.value, entry.value)
            if same:
                unchanged += 1
                continue
        if new_members is None:
            new_members = members(entry.value)
        writes[universe] = new_written or known.get(universe) or written(entry.value, new_members)
        if old is None:
            upserts.append(entry)
            if new_members:
                changes.extend(Change(universe, s, "added", "universe created") for s in new_members)
            else:
                changes.append(Change(universe, None, "created", "universe created (no members)"))
            diffs.append(UniverseDiff(universe, entry.family, "created", tuple(new_members), ()))
            if entry.family == IPOS:
                new_ipos = tuple(new_members)
            continue
        upserts.append(entry)
        old_members = members(old.value)
        if old_members == new_members:  # the usual daily change: the same members, other data
            changes.append(Change(universe, None, "updated", "member data changed"))
            diffs.append(UniverseDiff(universe, entry.family, "updated", (), ()))
            continue
        old_set, new_set = set(old_members), set(new_members)
        added = tuple(s for s in new_members if s not in old_set)
        removed = tuple(s for s in old_members if s not in new_set)
        if added or removed:
            reason_added = "new listing" if entry.family == IPOS else "qualifies"
            changes.extend(Change(universe, s, "added", reason_added) for s in added)
            changes.extend(Change(universe, s, "removed", removal_reason(s)) for s in removed)
            diffs.append(UniverseDiff(universe, entry.family, "updated", added, removed))
            if entry.family == IPOS:
                new_ipos = added
        else:  # the same members in another order
            changes.append(Change(universe, None, "reordered", "member order changed"))
            diffs.append(UniverseDiff(universe, entry.family, "reordered", (), ()))

    for universe, old in sorted(stored_by_id.items()):
        if universe in built_ids:
            continue
        deletes.append(old)
        old_members = members(old.value)
        if old_members:
            changes.extend(Change(universe, s, "removed", removal_reason(s)) for s in old_members)
        else:
            changes.append(Change(universe, None, "deleted", "universe no longer produced"))
        diffs.append(UniverseDiff(universe, old.family, "deleted", (), tuple(old_members)))

    return Plan(
        upserts=tuple(upserts),
        deletes=tuple(deletes),
        changes=tuple(changes),
        universes=tuple(diffs),
        new_ipos=new_ipos,
        delisted=tuple(sorted(delisted)),
        unchanged=unchanged,
        written=writes,
    )


def history_changes(
    the_plan: Plan, built: Iterable[Entry], stored: Iterable[Entry], open_counts: Mapping[str, int]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], dict[str, list[str]]]:
    """(to open, to close, drifted) for the membership history.

    A universe whose count of open history rows equals its stored member count is taken to have
    its stored members open: its history follows the plan (added opened, removed closed), with no
    need to read its rows. Any other universe built or deleted is *drifted*: universe -> the
    members it should have open, for `membership_changes` against its open rows (read then). So
    the history heals itself if it ever disagrees with `cache_entries` in its counts, and a run
    where it agrees reads no history row.
    """
    stored_counts = {row.universe: member_count(row.value) for row in stored}
    by_id = {u.universe: u for u in the_plan.universes}
    opened: list[tuple[str, str]] = []
    closed: list[tuple[str, str]] = []
    drifted: dict[str, list[str]] = {}

    def follow(universe: str, target: list[str] | None) -> None:
        if open_counts.get(universe, 0) != stored_counts.get(universe, 0):
            drifted[universe] = members(target) if target is not None else []
        elif universe in by_id:
            change = by_id[universe]
            opened.extend((universe, s) for s in change.added)
            closed.extend((universe, s) for s in change.removed)

    for entry in built:
        follow(entry.universe, entry.value)
    for row in the_plan.deletes:
        follow(row.universe, None)
    return sorted(opened), sorted(closed), drifted


def membership_changes(
    targets: Mapping[str, list[str]], open_rows: Mapping[str, frozenset[str]]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(to open, to close): (universe, symbol) pairs that make the open history rows of each
    target universe equal to its members."""
    opened: list[tuple[str, str]] = []
    closed: list[tuple[str, str]] = []
    for universe, symbols in sorted(targets.items()):
        current = open_rows.get(universe, frozenset())
        target = set(symbols)
        opened.extend((universe, s) for s in sorted(target - current))
        closed.extend((universe, s) for s in sorted(current - target))
    return opened, closed


def with_history(the_plan: Plan, built: Iterable[Entry], stored: Iterable[Entry],
                 open_counts: Mapping[str, int], open_members: Mapping[str, frozenset[str]],
                 without: frozenset[str] = frozenset()) -> Plan:
    """The plan with its membership history: `history_changes`, and `membership_changes` for the
    drifted universes against their open rows (`open_members`, read with the sync's inputs for every
    universe whose counts disagree: sync/inputs.py). `without`: universes whose history is not made here
    (a part's, sent ahead with it: sync/store.py `_rest` checks that it was this plan's). Pure."""
    built = [e for e in built if e.universe not in without] if without else list(built)
    view = the_plan
    if without:
        stored = [e for e in stored if e.universe not in without]
        view = dataclasses.replace(the_plan, universes=tuple(u for u in the_plan.universes if u.universe not in without),
                                   deletes=tuple(e for e in the_plan.deletes if e.universe not in without))
    opened, closed, drifted = history_changes(view, built, stored, open_counts)
    if drifted:
        healed = membership_changes(drifted, open_members)
        opened, closed = sorted(opened + healed[0]), sorted(closed + healed[1])
    return the_plan.with_membership(opened, closed)
