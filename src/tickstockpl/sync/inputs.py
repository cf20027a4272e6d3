"""The one read of a sync: everything it needs from PostgreSQL, as one immutable value.

    read(conn, request, schema) -> Inputs

    1. the snapshot statement with the fingerprint gate (sync/fingerprint.py over market/snapshot.py):
       symbols, latest closes, dates, the inputs digest and the verdict against the previous job's
       fingerprints; when nothing changed since that job, only its header row comes back and the read
       ends there (Inputs.unchanged_since)
    2. the stored rows (store.READ_SQL): the environment's universe rows with the ledger's word on each,
       the cache_config rows and the number of open history rows per universe, one statement
    3. only when some universe's open history rows do not number its stored members (history drifted,
       or a first run into rows PL did not write): the open members of those universes
    4. only where PL publishes relational groups (the schema check says so): its groups (relational.read)

Everything after this is pure (universes.build, ownership.split, validate, diff.plan and the history
plan) until store.apply writes the result in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from tickstockpl.market.snapshot import Snapshot
from tickstockpl.sync import fingerprint, history as sync_history, relational, store
from tickstockpl.sync.ownership import FoundRow
from tickstockpl.universes.config import ConfigRow
from tickstockpl.universes.model import member_count

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class History:
    """The open membership history as far as a plan needs it."""

    open_counts: Mapping[str, int] = field(default_factory=lambda: _EMPTY)  # universe -> open rows
    # universe -> members with an open row, for every universe whose count disagrees (`drift`)
    open_members: Mapping[str, frozenset[str]] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True)
class Inputs:
    inputs_digest: str | None
    snapshot: Snapshot | None = None  # None: unchanged since `unchanged_since`, nothing else was read
    found: tuple[FoundRow, ...] = ()
    config: tuple[ConfigRow, ...] = ()
    history: History = field(default_factory=History)
    groups: relational.Current | None = None  # None: PL writes no relational groups here
    unchanged_since: str | None = None
    previous_result: Mapping[str, Any] | None = None
    previous_outputs: str | None = None  # the outputs digest of `unchanged_since` (still the current one)


def drift(found: tuple[FoundRow, ...], open_counts: Mapping[str, int]) -> set[str]:
    """Universes whose number of open history rows differs from their stored member count (a stored
    universe without history counts 0 open rows, history without a stored universe 0 members). Pure.
    diff.history_changes reconciles such a universe against its open rows, when it builds or deletes it;
    this set is a superset of those, so the read fetches their rows before the plan."""
    stored = {row.universe: member_count(row.value) for row in found}
    return {u for u in stored.keys() | open_counts.keys() if open_counts.get(u, 0) != stored.get(u, 0)}


def read(conn, *, as_of, environment: str, mode: str, may_skip: bool, groups: bool,
         history: bool = True) -> Inputs:
    """The read described in the module docstring. `groups`: PL publishes relational groups here;
    `history`: the plan needs the history (not for a dry run: it writes none)."""
    loaded = fingerprint.load(conn, as_of=as_of, environment=environment, mode=mode, may_skip=may_skip)
    if loaded.snapshot is None:
        return Inputs(loaded.inputs_digest, unchanged_since=loaded.unchanged_since,
                      previous_result=MappingProxyType(dict(loaded.previous_result or {})),
                      previous_outputs=loaded.outputs_digest)
    stored = store.read_stored(conn, environment)
    open_members: Mapping[str, frozenset[str]] = _EMPTY
    if history:
        drifted = drift(stored.found, stored.open_counts)
        if drifted:
            open_members = MappingProxyType(sync_history.open_members(conn, environment, drifted))
    return Inputs(
        loaded.inputs_digest, snapshot=loaded.snapshot, found=stored.found, config=stored.config,
        history=History(stored.open_counts, open_members),
        groups=relational.read(conn, environment) if groups else None)
