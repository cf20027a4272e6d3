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
    5. only for the rule universes (a full sync): the statistics kept from pl_symbol_liquidity
       (liquidity.load_stats: a few numbers per symbol, not the windows), the members of each rule
       universe just before the sync's date with their entry dates (history.members_before) and the NYSE
       sessions from the oldest entry date to the session (StoredCalendar.between): three statements. The
       snapshot statement's header says where the table and its statistics stand: a sync that writes
       moves a table left behind to its session first and reads the snapshot again (`read_rules` for
       the cases).

Everything after this is pure (universes.build, rules.publish, ownership.split, validate, diff.plan and
the history plan) until store.apply writes the result in one transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from tickstockpl.errors import LiquidityError
from tickstockpl.market import liquidity
from tickstockpl.market.snapshot import Snapshot
from tickstockpl.sync import fingerprint, history as sync_history, relational, store
from tickstockpl.sync.ownership import FoundRow
from tickstockpl.universes.config import ConfigRow
from tickstockpl.universes.model import member_count
from tickstockpl.universes.rules import publish as rule_publish
from tickstockpl.universes.rules import definition as rule_definition, stats as rule_stats
from tickstockpl.universes.rules.definition import RuleDefinition, default_definitions
from tickstockpl.universes.rules.schedule import SessionCalendar

log = logging.getLogger(__name__)

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class History:
    """The open membership history as far as a plan needs it."""

    open_counts: Mapping[str, int] = field(default_factory=lambda: _EMPTY)  # universe -> open rows
    # universe -> members with an open row, for every universe whose count disagrees (`drift`)
    open_members: Mapping[str, frozenset[str]] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True)
class RuleInputs:
    """What the rule universes of one sync are built from, or why they are not built (`skipped`)."""

    session: dt.date | None = None  # the session they are built for (the snapshot's latest session)
    rows: liquidity.StatsTable | None = None  # the statistics of pl_symbol_liquidity at `session`
    previous: Mapping[str, Mapping[str, dt.date]] = field(default_factory=lambda: _EMPTY)  # key -> members
    calendar: SessionCalendar | None = None
    skipped: str | None = None  # set: the rule universes are left as they are this run (a warning)
    caught_up: str | None = None  # set: the sync moved pl_symbol_liquidity to the session first (a note)


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
    definitions: Mapping[str, RuleDefinition] | None = None  # the rule definitions (None: no rules this mode)
    rules: RuleInputs | None = None  # None: this sync does not build rule universes (its mode)


def drift(found: tuple[FoundRow, ...], open_counts: Mapping[str, int]) -> set[str]:
    """Universes whose number of open history rows differs from their stored member count (a stored
    universe without history counts 0 open rows, history without a stored universe 0 members). Pure.
    diff.history_changes reconciles such a universe against its open rows, when it builds or deletes it;
    this set is a superset of those, so the read fetches their rows before the plan."""
    stored = {row.universe: member_count(row.value) for row in found}
    return {u for u in stored.keys() | open_counts.keys() if open_counts.get(u, 0) != stored.get(u, 0)}


def read(conn, *, as_of, environment: str, mode: str, may_skip: bool, groups: bool,
         history: bool = True, rules: bool = False, universes: bool = True, rule: str | None = None) -> Inputs:
    """The read described in the module docstring. `groups`: PL publishes relational groups here;
    `history`: the plan needs the history (not for a dry run: it writes none, and it may not move
    pl_symbol_liquidity either); `rules`: build the rule universes (a full sync). For the explain of one
    rule universe (sync/explain.py): `universes` false reads no stored universe row (the config rows
    alone), `rule` the previous members of that definition alone."""
    loaded = fingerprint.load(conn, as_of=as_of, environment=environment, mode=mode, may_skip=may_skip)
    caught_up = None
    if rules and history and loaded.snapshot is not None and _behind(loaded):
        # the statistics lag the session (bars loaded by someone else): move them first, then read again,
        # so that the inputs digest this sync records is that of the statistics it builds from
        caught_up = _catch_up(conn, loaded)
        if caught_up is not None:
            loaded = fingerprint.load(conn, as_of=as_of, environment=environment, mode=mode, may_skip=may_skip)
    if loaded.snapshot is None:
        return Inputs(loaded.inputs_digest, unchanged_since=loaded.unchanged_since,
                      previous_result=MappingProxyType(dict(loaded.previous_result or {})),
                      previous_outputs=loaded.outputs_digest)
    if rules:
        rule_stats.start_numpy_import()  # while the next statements wait on PostgreSQL
    stored = store.read_stored(conn, environment, universes=universes)
    # the rule definitions: rules/defaults.toml with the rule_universes rows applied (ConfigError names a bad row)
    definitions = rule_definition.apply_overrides(default_definitions(), stored.config) if rules else None
    open_members: Mapping[str, frozenset[str]] = _EMPTY
    if history:
        drifted = drift(stored.found, stored.open_counts)
        if drifted:
            open_members = MappingProxyType(sync_history.open_members(conn, environment, drifted))
    return Inputs(
        loaded.inputs_digest, snapshot=loaded.snapshot, found=stored.found, config=stored.config,
        history=History(stored.open_counts, open_members),
        groups=relational.read(conn, environment) if groups else None,
        definitions=MappingProxyType(definitions) if definitions is not None else None,
        rules=read_rules(conn, loaded, definitions, environment, caught_up=caught_up, may_write=history,
                         previous_of=None if rule is None else [rule])
        if rules else None)


def _behind(loaded: fingerprint.Loaded) -> bool:
    """Whether pl_symbol_liquidity is empty, split, or behind the snapshot's session (never: ahead)."""
    session = loaded.snapshot.latest_session
    low, high = loaded.liquidity
    return session is not None and (high is None or low != high or high < session) and not (
        high is not None and high > session)


def _catch_up(conn, loaded: fingerprint.Loaded) -> str | None:
    """Move pl_symbol_liquidity to the snapshot's session (its own short transaction); the note to
    report, or None when it cannot be moved (read_rules then says why the rule universes wait)."""
    session = loaded.snapshot.latest_session
    low, high = loaded.liquidity
    shown = "empty" if high is None else f"at {high.isoformat()}" if low == high else \
        f"split over {low.isoformat()} .. {high.isoformat()}"
    try:
        with conn.transaction():
            liquidity.catch_up(conn, session)
    except LiquidityError as err:
        log.warning("cache sync: pl_symbol_liquidity not moved: %s", err)
        return None
    note = (f"pl_symbol_liquidity was {shown}: the sync moved it to {session.isoformat()} first (bars not"
            " imported by TickStockPL's importer)")
    log.info("cache sync: %s", note)
    return note


def read_rules(conn, loaded: fingerprint.Loaded, definitions: Mapping[str, RuleDefinition], environment: str, *,
               caught_up: str | None = None, may_write: bool = True, previous_of: list[str] | None = None
               ) -> RuleInputs:
    """The rule universes' inputs (step 5 of the module docstring) for the snapshot's latest session S.

    pl_symbol_liquidity is kept by PL's importer, in the transaction of the bars. When it does not
    stand at S:
      - behind S (bars loaded by someone else, e.g. AppV2's loader; or empty): a sync that writes has
        already moved it to S (`read`: liquidity.catch_up in its own short transaction, one session
        folded in per missing session, a rebuild when empty; `caught_up` says so); a dry run writes
        nothing, so it leaves the rule universes as they are, with a warning;
      - ahead of S (a sync with a past `as_of`, or bars of the newest session deleted): the table only
        holds the newest windows, and moving it back would cost the next import a rebuild, so the rule
        universes are left as they are, with a warning naming the replay of past sessions (backfill).
    Left as they are = not built this run: their stored rows, groups and history stay untouched.

    The statistics come from pl_liquidity_stats (one statement) when its state row, read by the
    snapshot statement, says they are those of the table at S for every window the definitions read.
    Otherwise (a definition reading a new window, the table moved without them) a sync that writes
    computes and keeps them in a short transaction of its own (liquidity.refresh_stats), a dry run
    (`may_write` false) computes them from the windows without keeping them: the same numbers."""
    snap = loaded.snapshot
    session = snap.latest_session
    if session is None:
        return RuleInputs(skipped="rule universes not built: no bars on or before the as-of date")
    low, high = loaded.liquidity
    if low != session or high != session:
        if high is not None and high > session:
            return RuleInputs(session, caught_up=caught_up, skipped=(
                f"rule universes not built: pl_symbol_liquidity stands at {high.isoformat()}, after the"
                f" session {session.isoformat()} this sync builds (a past as_of): left as they are; past sessions"
                " are replayed by `tickstockpl universes backfill`"))
        shown = "empty" if high is None else f"at {high.isoformat()}" if low == high else \
            f"split over {low.isoformat()} .. {high.isoformat()}"
        return RuleInputs(session, caught_up=caught_up, skipped=(
            f"rule universes not built: pl_symbol_liquidity is {shown}, not at the session {session.isoformat()},"
            " and was not moved (a dry run does not move it; else see the log): left as they are"))
    windows = sorted({w for d in definitions.values() if d.enabled for w in d.windows()})
    kept = loaded.stats
    if kept is not None and kept.serves(session, windows):
        table = liquidity.load_stats(conn, kept.through, kept.windows)
    elif may_write:
        with conn.transaction():
            table = liquidity.refresh_stats(conn, windows)
    else:
        table = liquidity.load_matrix(conn).stats(windows)
    # every definition, disabled ones too (a universe switched off is reconciled against its members), or
    # those of `previous_of`
    by_universe = sync_history.members_before(
        conn, environment, [rule_publish.universe_of(k) for k in (definitions if previous_of is None else previous_of)],
        snap.as_of)
    previous = {rule_publish.key_of(u): MappingProxyType(m) for u, m in by_universe.items()}
    oldest = min((d for m in previous.values() for d in m.values()), default=session)
    from tickstockpl.market.calendar import StoredCalendar

    days = [s.day for s in StoredCalendar(conn).between(min(oldest, session - dt.timedelta(days=40)), session)]
    if session not in days:
        return RuleInputs(session, caught_up=caught_up,
                          skipped=f"rule universes not built: {session.isoformat()} is no NYSE session")
    return RuleInputs(session, table, MappingProxyType(previous), SessionCalendar(days), caught_up=caught_up)
