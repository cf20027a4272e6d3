"""`run_sync`: one cache sync from start to commit.

    1. inputs.read(conn, ...)                      THE read, one immutable value: snapshot + fingerprint
                                                  verdict (or "unchanged since job X": the sync ends
                                                  there), stored rows with the ledger's word, config
                                                  rows, open history counts (and the open rows of
                                                  drifted universes), PL's relational groups, and
                                                  the rule definitions: rules/defaults.toml ⊕ the
                                                  `rule_universes` rows (a full sync; a bad row refuses
                                                  the sync, naming the row and field)
    2. apply_overrides                             defaults.toml ⊕ cache_config rows (validated)
    3. universes.build(snapshot, config, families) pure
       rules.publish.publish(...)                 pure: the rule universes of the session (a full sync
                                                  whose liquidity statistics stand at its session:
                                                  sync/inputs.read_rules), appended to the built entries
                                                  under the family `rules`, with their reasons and churn
       ownership.split(found, built, families)    pure: which rows this sync may change (contract §5.5)
    4. validate.check(...)                         unless force
    5. diff.plan(...) + diff.with_history(...)     pure: rows, change log, membership history; the rule
                                                  universes' changes carry the engine's reasons
       relational.plan(...)                        pure: the groups
    6. store.apply(conn, plan, events)             ONE transaction (the store sends every statement of
                                                  it, the outputs fingerprint last), with the caller's
                                                  `before_commit` (the job row). A sync that writes and
                                                  builds rule universes opens it after step 3's legacy
                                                  build and sends the legacy rows then, the rule
                                                  universes' once built (`_send_ahead`): the server
                                                  writes them while this process goes on
                                                  (docs/ARCHITECTURE.md, The rows go ahead of the plan)
The caller (jobs/runtime.py) owns the job row; the relay publishes the outbox after commit.
Progress is reported through the `Progress` hook between steps (a no-op by default).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import logging
import time
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, NamedTuple, Protocol

from tickstockpl.db.check import KEY3, check_for_sync
from tickstockpl.errors import ConfigError
from tickstockpl.events import catalog
from tickstockpl.settings import DEFAULT_ENVIRONMENT
from tickstockpl.sync import diff, inputs as sync_inputs, ownership, relational, store, validate
from tickstockpl.universes.build import build
from tickstockpl.universes.groups import build_groups
from tickstockpl.universes.config import apply_overrides, default_config
from tickstockpl.universes.model import FAMILIES_BY_MODE, MODES, RULES
from tickstockpl.universes.rules import publish as rule_publish

RULE_MODES = ("full",)  # the modes that build the rule universes (docs/RULE_UNIVERSES.md)

log = logging.getLogger(__name__)

STEPS = ("load market data", "load configuration", "build universes", "validate", "diff", "write")


class Progress(Protocol):
    def __call__(self, completed: int, total: int, task: str) -> None: ...


def no_progress(completed: int, total: int, task: str) -> None:
    return None


@dataclass(frozen=True)
class SyncRequest:
    mode: str = "full"
    force: bool = False
    dry_run: bool = False
    as_of: dt.date | None = None
    environment: str = DEFAULT_ENVIRONMENT
    allow_empty: bool = False  # accept data with no eligible stock (validate.empty_data), even without force

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}; got {self.mode!r}")


@dataclass
class SyncResult:
    job_id: str | None
    mode: str
    as_of: str
    dry_run: bool
    total_changes: int = 0
    universes_updated: int = 0
    universes_unchanged: int = 0
    rows_written: int = 0
    events: int = 0
    changes_by_family: dict[str, int] = field(default_factory=dict)
    universes: list[dict[str, Any]] = field(default_factory=list)
    new_ipos: list[str] = field(default_factory=list)
    delisted: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    eligible_stocks: int = 0
    duration_seconds: float = 0.0
    adopted: list[str] = field(default_factory=list)  # rows PL had not written, taken over (keys it builds)
    restored: list[str] = field(default_factory=list)  # PL's rows edited by someone else: PL's value put back
    edited: list[str] = field(default_factory=list)  # PL's rows edited by someone else, no longer built: left
    foreign: list[str] = field(default_factory=list)  # rows PL neither builds nor wrote: left as is
    groups: dict[str, Any] | None = None  # relational groups written (None: no definition_groups here)
    # rule universe -> its churn this run: before, after, entered, left, turnover, session, reconstitution,
    # constituted (docs/RULE_UNIVERSES.md); empty when this sync built none
    churn: dict[str, dict[str, Any]] = field(default_factory=dict)
    unchanged_since: str | None = None  # set when the inputs matched this completed job: nothing was built
    inputs_digest: str | None = field(default=None, repr=False)  # recorded on the job row, not reported
    outputs_digest: str | None = field(default=None, repr=False)  # the same (sync/fingerprint.py)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["inputs_digest"], out["outputs_digest"]
        return out

    def fingerprints(self) -> tuple[str | None, str | None]:
        """(inputs digest, outputs digest) for the job row (None, None: a dry run records nothing)."""
        return self.inputs_digest, self.outputs_digest


BeforeCommit = Callable[[Any, SyncResult], None]


def run_sync(conn, request: SyncRequest, *, job_id: str | None = None, progress: Progress = no_progress,
             before_commit: BeforeCommit | None = None) -> SyncResult:
    """Run one sync on `conn` (autocommit connection); raises TickStockError subclasses on refusal."""
    with _cyclic_gc_paused():
        return _run_sync(conn, request, job_id, progress, before_commit)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """A sync allocates a few hundred thousand objects that all live until it ends and hold no
    reference cycles worth collecting; the cyclic collector walked them again and again
    (30 ms of a 470 ms sync at 12,000 symbols, measured). Reference counting still frees memory."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _run_sync(conn, request: SyncRequest, job_id: str | None, progress: Progress,
              before_commit: BeforeCommit | None) -> SyncResult:
    started = time.perf_counter()
    total = len(STEPS)
    families = FAMILIES_BY_MODE[request.mode]

    progress(0, total, STEPS[0])
    schema = check_for_sync(conn, request.environment)  # one catalog statement; SchemaError when PL cannot work
    with_rules = request.mode in RULE_MODES
    inputs = sync_inputs.read(conn, as_of=request.as_of, environment=request.environment, mode=request.mode,
                              may_skip=not (request.force or request.dry_run),
                              groups=schema.groups_skipped is None, history=not request.dry_run, rules=with_rules)
    if inputs.snapshot is None:
        return _unchanged(conn, request, inputs, job_id, started, progress, before_commit)
    snap = inputs.snapshot
    as_of = snap.as_of

    progress(1, total, STEPS[1])
    config = apply_overrides(default_config(), list(inputs.config))
    definitions = inputs.definitions  # parsed with the inputs (None: this mode builds no rule universes)

    progress(2, total, STEPS[2])
    built = build(snap, config, families)
    active = frozenset(s.symbol for s in snap.securities if s.active)
    with ExitStack() as transaction:
        ahead = None
        if _sends_ahead(request, inputs, schema):  # the legacy rows, written while the rule universes are built
            ahead = _send_ahead(conn, request, inputs, built.entries, families, active, job_id, transaction)
        published, rule_warnings = _publish_rules(inputs.rules, definitions, snap, built.stock_rows)
        if ahead is not None and published is not None:  # the rule universes' rows, written while this plans
            ahead = _send_ahead(conn, request, inputs, published.entries, frozenset({RULES}), active, job_id,
                                transaction, ahead)
        entries = built.entries if published is None else built.entries + published.entries
        scope = families if published is None else families | {RULES}
        owned = ownership.split(inputs.found, entries, scope, unique_key=_unique_key(schema))
        stored = owned.touchable

        progress(3, total, STEPS[3])
        eligible = len(snap.eligible_stocks)
        validate.check(snap, stored, owned.built, eligible_now=eligible, force=request.force,
                       allow_empty=request.allow_empty)

        progress(4, total, STEPS[4])
        group_plan, group_warnings = _plan_groups(inputs.groups, schema, owned.built, config, as_of, scope,
                                                  definitions if published is not None else None)
        the_plan = diff.plan(stored, owned.built, active_symbols=active,
                             known=ahead.sent.upserts if ahead is not None else {}).with_changes(
            [*owned.changes(), *(group_plan.changes if group_plan else ())], {e.universe: e.family for e in owned.built})
        if published is not None:
            the_plan = the_plan.with_reasons(lambda universe: _rule_reasons(published, universe))
        if not request.dry_run:
            the_plan = diff.with_history(the_plan, owned.built, stored, inputs.history.open_counts,
                                         inputs.history.open_members,
                                         without=ahead.sent.history if ahead is not None else frozenset())

        result = SyncResult(
            job_id=job_id, mode=request.mode, as_of=as_of.isoformat(), dry_run=request.dry_run,
            total_changes=len(the_plan.changes), universes_updated=len(the_plan.universes),
            universes_unchanged=the_plan.unchanged, changes_by_family=the_plan.changes_by_family(),
            universes=the_plan.summary(), new_ipos=list(the_plan.new_ipos), delisted=list(the_plan.delisted),
            warnings=[*(f.line() for f in schema.warnings), *built.warnings, *rule_warnings, *owned.warnings(),
                      *group_warnings],
            eligible_stocks=eligible, churn=published.churn() if published is not None else {},
            adopted=list(owned.adopted), restored=list(owned.restored), edited=list(owned.edited),
            foreign=list(owned.foreign), inputs_digest=inputs.inputs_digest,
        )
        for warning in result.warnings:
            log.warning("cache sync: %s", warning)

        if ahead is None:
            progress(5, total, STEPS[5])
        if not request.dry_run:
            events = plan_events(the_plan, job_id or "", snap, groups=_group_names(group_plan),
                                 reasons=_event_reasons(the_plan, published))
            if ahead is None:
                transaction.enter_context(conn.transaction())
            else:
                ahead.pipeline.close()  # the results of the rows sent ahead (written meanwhile)
                progress(5, total, STEPS[5])
            written = store.apply(conn, the_plan, environment=request.environment, job_id=job_id, as_of=as_of,
                                  events=events, ownership=owned, existing=frozenset(r.universe for r in inputs.found),
                                  then=None if group_plan is None else lambda: relational.write(
                                      conn, group_plan, environment=request.environment, job_id=job_id,
                                      liquidity_filter=schema.group_liquidity_filter),
                                  sent=ahead.sent if ahead is not None else None)
            result.rows_written = written.rows
            result.outputs_digest = written.outputs_digest
            result.warnings.extend(written.warnings)
            if written.groups is not None:
                result.groups = written.groups.to_dict()
                result.warnings.extend(w for w in written.groups.skipped if w not in result.warnings)
            result.events = len(events)
            result.duration_seconds = round(time.perf_counter() - started, 3)
            if before_commit is not None:
                before_commit(conn, result)
    result.duration_seconds = round(time.perf_counter() - started, 3)
    progress(total, total, "done")
    return result


@dataclass(frozen=True)
class _Ahead:
    """Rows sent ahead of the sync's plan, in pipeline mode inside its transaction (`_send_ahead`)."""

    sent: store.Sent  # what went, with the Written of each upsert (the full plan reuses them)
    pipeline: ExitStack  # closing it ends the pipeline: the results of what was sent are then read
    held: "_Held | None" = None  # the first part's history sent with the second's


class _Held(NamedTuple):
    """The history of some of a part's universes, held back to go with the next part."""

    universes: frozenset[str]  # every universe whose history this is (changed or not)
    diffs: tuple[diff.UniverseDiff, ...]  # the diffs of those that changed
    opened: tuple[tuple[str, str], ...]
    closed: tuple[tuple[str, str], ...]


def _sends_ahead(request: SyncRequest, inputs: sync_inputs.Inputs, schema) -> bool:
    """Whether this sync sends its rows in two parts ahead of its plan: it writes and builds rule universes
    (the legacy rows go while the rule universes are built, the rule universes' while the plan is made:
    PostgreSQL parses their JSON meanwhile, docs/ARCHITECTURE.md, The rows go ahead of the plan), under the
    (type, name, key) unique key, where a row's fate depends on that row and its own built universe alone,
    so that each part is exactly that family's part of the full plan (store.apply refuses otherwise).
    Otherwise one write at the end."""
    rules = inputs.rules
    return not request.dry_run and rules is not None and rules.skipped is None and \
        _unique_key(schema) == ownership.FULL_KEY


def _send_ahead(conn, request: SyncRequest, inputs: sync_inputs.Inputs, entries, families: frozenset[str], active,
                job_id: str | None, transaction: ExitStack, before: _Ahead | None = None) -> _Ahead:
    """Plan the universes `entries` of `families` alone and send their rows now (the first call opens the
    sync's transaction, on `transaction`, and the pipeline).

    Into an empty history (no open row: a first sync) the history goes in the order of its primary key
    (environment, universe, symbol): the first part sends that of its universes sorting before the rule
    universes' ids, and holds the others' (the sector leaders, themes and the like: `_Ahead.held`) for the
    second part, which sends them after the rule universes'. The server then appends to the table's two
    btrees instead of splitting pages in their middle: in process, the wait for the server at the end of a
    first sync into the legacy rows went 126-134 -> 94 ms (12,000 symbols, medians of 7; the rule universes'
    19,164 rows had gone in before 120 rows of those universes). A history with rows is written in its
    middle anyway: there each part sends its own, and a daily sync the statements it sent before."""
    owned = ownership.split(inputs.found, entries, families)
    part = diff.with_history(diff.plan(owned.touchable, owned.built, active_symbols=active), owned.built,
                             owned.touchable, inputs.history.open_counts, inputs.history.open_members)
    history_of = frozenset(e.universe for e in owned.built) | {e.universe for e in owned.touchable}
    held = None
    if before is None:
        transaction.enter_context(conn.transaction())
        pipeline = ExitStack()
        transaction.enter_context(pipeline)  # ended before the transaction, whatever happens
        pipeline.enter_context(conn.pipeline())
        if not inputs.history.open_counts:  # an empty history: see above
            later = frozenset(u for u in history_of if u >= _RULES_FIRST)
            part, held = _without_history_of(part, later), _history_of(part, later)
            history_of -= later
    else:
        pipeline = before.pipeline
        if before.held is not None:
            held_back = before.held
            part = dataclasses.replace(part, universes=part.universes + held_back.diffs,
                                       membership_open=tuple(sorted(part.membership_open + held_back.opened)),
                                       membership_close=tuple(sorted(part.membership_close + held_back.closed)))
            history_of |= held_back.universes
    sent = store.send_ahead(conn, part, environment=request.environment, job_id=job_id, as_of=inputs.snapshot.as_of,
                            history_of=history_of, ownership=owned, existing=frozenset(r.universe for r in inputs.found),
                            before=before.sent if before is not None else store.NOTHING_SENT)
    return _Ahead(sent, pipeline, held)


_RULES_FIRST = rule_publish.universe_of("")  # every rule universe's id sorts at or after this prefix


def _history_of(part: diff.Plan, universes: frozenset[str]) -> _Held:
    """The history of `universes` in a part."""
    return _Held(universes, tuple(u for u in part.universes if u.universe in universes),
                 tuple(p for p in part.membership_open if p[0] in universes),
                 tuple(p for p in part.membership_close if p[0] in universes))


def _without_history_of(part: diff.Plan, universes: frozenset[str]) -> diff.Plan:
    """A part whose history of `universes` is left out (their rows and diffs of rows stay)."""
    return dataclasses.replace(part, universes=tuple(u for u in part.universes if u.universe not in universes),
                               membership_open=tuple(p for p in part.membership_open if p[0] not in universes),
                               membership_close=tuple(p for p in part.membership_close if p[0] not in universes))


def _publish_rules(rules: sync_inputs.RuleInputs | None, definitions, snap, stock_rows=None
                   ) -> tuple[rule_publish.Published | None, list[str]]:
    """The rule universes of the sync's session (None when this sync builds none: its mode, or the
    statistics do not stand at its session, `rules.skipped`) and the warnings to report. Pure."""
    if rules is None:
        return None, []
    notes = [rules.caught_up] if rules.caught_up else []
    if rules.skipped is not None:
        return None, [*notes, rules.skipped]
    published = rule_publish.publish(definitions, rules.rows, snap.securities, rules.previous, rules.session,
                                     rules.calendar, stock_rows)
    return published, notes


def _rule_reasons(published: rule_publish.Published, universe: str) -> Callable[[str, str], str] | None:
    """The change-log reason of each change (symbol, action) of `universe` if it is a rule universe (None: not
    one, keep diff's)."""
    key = rule_publish.key_of(universe)
    if key is None:
        return None
    if key not in published.results:
        return lambda symbol, action: "universe no longer produced: its definition is disabled or gone"
    return published.reason_text_of(key)


def _event_reasons(the_plan: diff.Plan, published: rule_publish.Published | None) -> dict[str, list[dict]]:
    """Rule universe -> the reasons its universe_updated event carries: one per symbol it lists in
    added_symbols / removed_symbols (capped alike), from the change log's reasons."""
    if published is None:
        return {}
    by_change = {(c.universe, c.symbol, c.action): c.reason for c in the_plan.changes if c.symbol is not None}
    out: dict[str, list[dict]] = {}
    for u in the_plan.universes:
        key = rule_publish.key_of(u.universe)
        if key is None:
            continue
        listed = []
        for action, symbols in (("added", u.added), ("removed", u.removed)):
            for symbol in symbols[:catalog.SYMBOLS_IN_EVENT_MAX]:
                rule = published.reason(key, symbol, action).rule if key in published.results else "definition"
                listed.append({"symbol": symbol, "action": action, "rule": rule,
                               "text": by_change.get((u.universe, symbol, action), "")})
        out[u.universe] = listed
    return out


def _plan_groups(current: relational.Current | None, schema, built, config, as_of: dt.date, families,
                 rule_definitions=None) -> tuple[relational.GroupPlan | None, list[str]]:
    """The relational groups' plan (None where PL cannot write them: the schema report says why; a
    warning unless the tables simply do not exist) and the warnings of building them. Pure: `current`
    are PL's stored groups, read with the sync's inputs; `rule_definitions`: the rule universes' (their
    groups' descriptions and liquidity_filter)."""
    if schema.groups_skipped is not None or current is None:
        missing = schema.groups_skipped is None or schema.groups_skipped.startswith("no table")
        return None, [] if missing else [f"relational groups skipped: {schema.groups_skipped}"]
    wanted, warnings = build_groups(built, config, as_of.isoformat(), rule_definitions)
    the_plan = relational.plan(current, wanted, families, name_width=schema.group_name_width)
    return the_plan, [*warnings, *the_plan.skipped]


def _group_names(group_plan) -> dict[str, str]:
    """universe -> the relational group that mirrors it (none when PL writes no groups here)."""
    return {} if group_plan is None else dict(group_plan.groups)


def _unique_key(schema) -> tuple[str, ...]:
    """The columns (besides environment) a cache_entries row is unique on, as sync/ownership.py names them."""
    return ownership.TYPE_KEY if schema.cache_key == KEY3 else ownership.FULL_KEY


def _unchanged(conn, request: SyncRequest, loaded: sync_inputs.Inputs, job_id: str | None, started: float,
               progress: Progress, before_commit: BeforeCommit | None) -> SyncResult:
    """The result of a sync whose inputs and outputs match those of a completed one: what that
    sync built is still what would be built, so no universe changed (and nothing is written)."""
    previous = loaded.previous_result or {}
    built = previous.get("universes_unchanged", 0) + sum(
        1 for u in previous.get("universes", ()) if u.get("action") != "deleted")
    result = SyncResult(
        job_id=job_id, mode=request.mode, as_of=previous.get("as_of", ""), dry_run=False,
        universes_unchanged=built, warnings=list(previous.get("warnings", ())),
        eligible_stocks=previous.get("eligible_stocks", 0), unchanged_since=loaded.unchanged_since,
        edited=list(previous.get("edited", ())), foreign=list(previous.get("foreign", ())),
        inputs_digest=loaded.inputs_digest, outputs_digest=loaded.previous_outputs,
        churn={u: {**c, "before": c.get("after", 0), "entered": 0, "left": 0, "turnover": 0.0, "constituted": False}
               for u, c in (previous.get("churn") or {}).items()},  # the same members again: no turnover
    )
    log.info("cache sync: inputs unchanged since job %s, nothing to build", loaded.unchanged_since)
    result.duration_seconds = round(time.perf_counter() - started, 3)
    if before_commit is not None:
        with conn.transaction():
            before_commit(conn, result)
    progress(len(STEPS), len(STEPS), "done")
    return result


def plan_events(the_plan: diff.Plan, job_id: str, snap, groups: dict[str, str] | None = None,
                reasons: dict[str, list[dict]] | None = None) -> list[catalog.Event]:
    """The data events of a plan: universe_updated per changed universe (naming its relational group,
    `groups`: universe -> group; with its `reasons` for a rule universe), IPOs, delisting cleanup."""
    groups = groups or {}
    reasons = reasons or {}
    events = [
        catalog.universe_updated(job_id, u.universe, u.action, list(u.added), list(u.removed), groups.get(u.universe),
                                 reasons.get(u.universe))
        for u in the_plan.universes
    ]
    if the_plan.new_ipos:
        listed = {s.symbol: s.list_date for s in snap.securities}
        for symbol in the_plan.new_ipos:
            day = listed.get(symbol)
            events.append(catalog.ipo_assignment(job_id, symbol, diff.IPO_UNIVERSE, day.isoformat() if day else None))
    if the_plan.delisted:
        gone = set(the_plan.delisted)
        affected = len({c.universe for c in the_plan.changes if c.symbol in gone and c.action == "removed"})
        events.append(catalog.delisting_cleanup(job_id, list(the_plan.delisted), affected))
    return events
