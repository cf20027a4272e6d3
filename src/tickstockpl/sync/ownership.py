"""Which stored rows a sync may change: the ownership rule of contract §5.5. Pure.

A sync writes the universes it builds. Any other row of `cache_entries` it changes or deletes
only when the ledger (`pl_cache_ledger`) shows that TickStockPL wrote it. So every stored row of
the environment falls in one of these classes:

    built    a universe this sync builds              -> written (taken over as `adopted` when
                                                         PL had not written it before)
    PL's     in the ledger, family in scope, not built -> deleted (the universe is no longer produced)
    edited   in the ledger, but its value changed since PL wrote it:
               built     -> PL's value is put back, and the edit is reported
               not built -> left as is, reported
    foreign  neither built nor in the ledger           -> left byte-identical (AppV2's curated rows,
                                                         the old synchronizer's leftovers, dev_ rows)

Under a unique key of `(type, key, environment)` (an AppV2 variant, contract §10.3) two universes
that differ only in name cannot both be stored: a built universe whose (type, key) is held by a
row that stays, or by another built universe, is *blocked* (reported, not written).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from tickstockpl.sync.diff import Change
from tickstockpl.universes.model import Entry, family_of, universe_id

FULL_KEY = ("type", "name", "key")
TYPE_KEY = ("type", "key")


@dataclass(frozen=True, slots=True)
class FoundRow:
    """A row of cache_entries as read, with what the ledger says about it."""

    type: str
    name: str
    key: str
    value: object
    ledger_family: str | None  # None: PL never wrote this row
    edited: bool = False  # PL wrote it, and its value has changed since

    @property
    def universe(self) -> str:
        return universe_id(self.type, self.name, self.key)


@dataclass(frozen=True)
class Ownership:
    touchable: tuple[Entry, ...]  # what the diff may change: rows of built keys + PL's rows in scope
    built: tuple[Entry, ...]  # the universes to write (blocked ones left out)
    adopted: tuple[str, ...]  # built universes whose existing row PL had not written: taken over
    restored: tuple[str, ...]  # PL's rows edited by someone else, put back because PL builds them
    edited: tuple[str, ...]  # PL's rows edited by someone else and no longer built: left as is
    foreign: tuple[str, ...]  # rows PL neither builds nor wrote: left as is
    blocked: tuple[tuple[str, str], ...]  # (universe, why) not writable under the table's unique key

    @property
    def ledger_ids(self) -> tuple[str, ...]:
        """Universes to (re)record in the ledger even when the diff writes no new value."""
        return tuple(sorted({*self.adopted, *self.restored}))

    def changes(self) -> list[Change]:
        """Change-log rows of the takeovers and of the edits found."""
        out = [Change(u, None, "adopted", "existing row taken over: PL builds this universe") for u in self.adopted]
        out += [Change(u, None, "edited", "edited outside TickStockPL; PL's value put back") for u in self.restored]
        return out  # (an edited row left as is is reported in the result, not logged on every run)

    def warnings(self) -> list[str]:
        return [f"{universe} not written: {why}" for universe, why in self.blocked] + [
            f"{universe} was edited outside TickStockPL since PL wrote it and is no longer built: left as is"
            for universe in self.edited]


def split(found: Iterable[FoundRow], built: Sequence[Entry], families: frozenset[str], *,
          unique_key: tuple[str, ...] = FULL_KEY) -> Ownership:
    """Classify the stored rows of one environment against the universes built (see module doc)."""
    rows = {row.universe: row for row in found}
    built_ids = {entry.universe: entry for entry in built}
    touchable: list[Entry] = []
    adopted: list[str] = []
    restored: list[str] = []
    edited: list[str] = []
    foreign: list[str] = []
    staying: list[FoundRow] = []  # rows this sync leaves in place (for the unique-key check)

    for universe, row in sorted(rows.items()):
        entry = built_ids.get(universe)
        if entry is not None:
            touchable.append(Entry(row.type, row.name, row.key, row.value, entry.family))
            if row.ledger_family is None:
                adopted.append(universe)
            elif row.edited:
                restored.append(universe)
            continue
        family = _family(row)
        if row.ledger_family is None:
            foreign.append(universe)
            staying.append(row)
        elif family not in families:
            staying.append(row)
        elif row.edited:
            edited.append(universe)
            staying.append(row)
        else:
            touchable.append(Entry(row.type, row.name, row.key, row.value, family))

    writable, blocked = _fit_unique_key(built, rows, staying, unique_key)
    return Ownership(tuple(touchable), tuple(writable), tuple(adopted), tuple(restored), tuple(edited),
                     tuple(foreign), tuple(blocked))


def _family(row: FoundRow) -> str | None:
    if row.ledger_family == "legacy":  # recorded by migration 0006 from an earlier PL's change log
        return family_of(row.type, row.name, row.key)
    return row.ledger_family


def _fit_unique_key(built: Sequence[Entry], rows: dict[str, FoundRow], staying: list[FoundRow],
                    unique_key: tuple[str, ...]) -> tuple[list[Entry], list[tuple[str, str]]]:
    if unique_key == FULL_KEY:
        return list(built), []
    held = {(row.type, row.key): row.universe for row in staying}
    # A universe already stored keeps its place; among new ones the first in order wins.
    ordered = sorted(built, key=lambda e: (e.universe not in rows, e.universe))
    keep: set[str] = set()
    blocked: list[tuple[str, str]] = []
    for entry in ordered:
        slot = (entry.type, entry.key)
        holder = held.get(slot)
        if holder is not None and holder != entry.universe:
            blocked.append((entry.universe, f"cache_entries is unique on ({', '.join(unique_key)}, environment)"
                                            f" and {holder} holds ({entry.type}, {entry.key})"))
            continue
        held[slot] = entry.universe
        keep.add(entry.universe)
    return [e for e in built if e.universe in keep], sorted(blocked)
