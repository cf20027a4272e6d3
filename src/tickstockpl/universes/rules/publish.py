"""The rule universes of one session, as the entries a sync publishes (pure).

    publish(definitions, rows, securities, previous, session, calendar) -> Published

The one function that turns the market of a session into rule universes: the live sync calls it for
today's session, a replay of past sessions (the backfill) calls it for each past session in turn,
feeding each session's members back in as the next one's `previous`. Inputs:

    definitions   key -> RuleDefinition (definition.default_definitions() with apply_overrides applied);
                  the enabled ones are run, a disabled one is not published
    rows          the pl_symbol_liquidity rows, every one standing at `session` (any other: ValueError):
                  either LiquidityRow objects (market.liquidity.load, or rows a replay builds) or the
                  statistics of the whole table as one market.liquidity.StatsTable (pl_liquidity_stats:
                  the sync's read; or Matrix.stats), holding at least the definitions' windows; both give
                  the same statistics (stats.from_market / stats.from_table)
    securities    the symbols of the market (market.snapshot.Security; a symbol listed twice: the first wins)
    previous      key -> {symbol: entry date} of the members after the session before. A universe
                  without a member (its key absent: never published, a new definition; or empty) is
                  *constituted* by this run, as a reconstitution day would (otherwise a quarterly
                  universe installed in April would stay empty until June); a replay starts from {}.
    session       the session (a date of `calendar`)
    calendar      schedule.SessionCalendar holding `session`, the session before it and every entry date

Output, per enabled definition in key order: the `cache_entries` entry (type `stock_universe`, name
`rules`, key = the definition's key, family `rules`) whose value has the StockObj shape of the legacy
stock universes (universes/shapes.stock_obj: {"count", "stocks": [{name, rank, sector, ticker, exchange,
industry, market_cap, market}]}, members in the engine's order: by rank, unranked members last), the
engine's RunResult (members with entry dates, reasons, churn, explain), and the screens of the
definition as plain data (`screens`, for the relational group's `liquidity_filter`).

The statistics are computed once for the union of every definition's windows and shared by the runs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping

from tickstockpl.universes import model, shapes
from tickstockpl.universes.rules import engine
from tickstockpl.universes.rules.definition import Reconstitution, RuleDefinition, liquidity_filter
from tickstockpl.universes.rules.schedule import SessionCalendar
from tickstockpl.universes.rules.stats import from_market, from_table

TYPE = model.STOCK_UNIVERSE
NAME = model.RULES_NAME
FAMILY = model.RULES
_EVERY_SESSION = Reconstitution("every_session")


def universe_of(key: str) -> str:
    """The universe id ("stock_universe:rules:<key>") of a definition key."""
    return model.universe_id(TYPE, NAME, key)


def key_of(universe: str) -> str | None:
    """The definition key of a rule universe's id, None for any other universe."""
    prefix = f"{TYPE}:{NAME}:"
    return universe[len(prefix):] if universe.startswith(prefix) else None


@dataclass(frozen=True)
class Published:
    session: dt.date
    entries: tuple[model.Entry, ...]  # one per enabled definition, by key
    results: Mapping[str, engine.RunResult]  # key -> the engine's run
    constituted: frozenset[str]  # keys run as a constitution (no previous member)
    screens: Mapping[str, dict[str, Any]]  # key -> the definition's candidates, screens, rank and selection
    _by_change: Mapping[str, Mapping[tuple[str, str], engine.Reason]] = dataclasses.field(
        default_factory=dict, repr=False)  # key -> (symbol, action) -> the engine's reason

    def reasons(self, key: str) -> tuple[engine.Reason, ...]:
        """Every entry and exit of the universe this session (the engine's reasons, with numbers)."""
        return self.results[key].changes

    def churn(self) -> dict[str, dict[str, Any]]:
        """universe id -> its churn (before, after, entered, left, turnover) and the kind of day."""
        return {universe_of(key): {**r.churn.to_dict(), "session": self.session.isoformat(),
                                   "reconstitution": r.reconstitution, "constituted": key in self.constituted}
                for key, r in self.results.items()}

    def reason_text_of(self, key: str) -> Callable[[str, str], str]:
        """(symbol, action) -> `reason(key, symbol, action).text`, with the universe's lookups done once (a
        first sync asks for 19,000 reasons)."""
        made = self._by_change.get(key, {})
        entered, left = engine.ENTERED, engine.LEFT

        def text(symbol: str, action: str) -> str:
            found = made.get((symbol, entered if action == "added" else left))
            return found.text if found is not None else self.reason(key, symbol, action).text
        return text

    def reason(self, key: str, symbol: str, action: str) -> engine.Reason:
        """Why `symbol` was added to ("added") or removed from ("removed") universe `key` this session: the
        engine's reason; for a change the engine did not make (the stored row disagreed with the members
        the run started from: a second sync of one date, which starts again from the members before that
        date, or a row someone had edited) the summary of `explain` ("left: <why it is out>"), its rule
        the first failing check's (else "reconciled")."""
        wanted = engine.ENTERED if action == "added" else engine.LEFT
        found = self._by_change.get(key, {}).get((symbol, wanted))
        if found is not None:
            return found
        explained = self.results[key].explain(symbol)
        summary = explained.summary.removeprefix("out: ").removeprefix("in: ")
        failed = next((c.rule for c in explained.checks if not c.ok), None)
        rule = (failed or "reconciled") if wanted == engine.LEFT else "reconciled"
        return engine.Reason(symbol, wanted, rule, f"{'entered' if wanted == engine.ENTERED else 'left'}: {summary}")


def publish(definitions: Mapping[str, RuleDefinition], rows: Iterable, securities: Iterable,
            previous: Mapping[str, Mapping[str, dt.date]], session: dt.date,
            calendar: SessionCalendar, stock_rows: Mapping[str, tuple] | None = None) -> Published:
    """The rule universes of `session` (see the module docstring). Pure. `stock_rows`: symbol -> (security,
    StockObj row) the legacy build made already (universes.build.BuildResult.stock_rows); a row is reused
    only for the very security it was made of."""
    enabled = [definitions[key] for key in sorted(definitions) if definitions[key].enabled]
    unique, stats = _stats(enabled, rows, securities, session)
    entries: list[model.Entry] = []
    results: dict[str, engine.RunResult] = {}
    constituted: set[str] = set()
    screens: dict[str, dict[str, Any]] = {}
    fields: dict[str, tuple] = {}  # symbol -> its StockObj row (shapes.stock_fields), shared by the universes
    for symbol, (security, row) in (stock_rows or {}).items():
        if unique.get(symbol) is security:
            fields[symbol] = row
    runs = run_session({d.key: d for d in enabled}, previous, stats, session, calendar)
    constituted.update(key for key in runs if not previous.get(key))
    for definition in enabled:
        key = definition.key
        result = results[key] = runs[key]
        value = shapes.stock_obj([fields[symbol] if symbol in fields else fields.setdefault(
            symbol, shapes.stock_fields(unique[symbol])) for symbol in result.members])  # once per symbol
        entries.append(model.Entry(TYPE, NAME, key, value, FAMILY))
        screens[key] = liquidity_filter(definition)
    index = {key: {(r.symbol, r.action): r for r in result.changes} for key, result in results.items()}
    return Published(session, tuple(entries), MappingProxyType(results), frozenset(constituted),
                     MappingProxyType(screens), MappingProxyType(index))


def run_one(definition: RuleDefinition, rows: Iterable, securities: Iterable, previous: Mapping[str, Mapping[str, dt.date]],
            session: dt.date, calendar: SessionCalendar) -> tuple[engine.RunResult, bool]:
    """The engine's run of one enabled definition as `publish` runs it, without building its universe's value
    (sync/explain.py), and whether it was constituted (no previous member). Pure."""
    _, stats = _stats([definition], rows, securities, session)
    return run_session({definition.key: definition}, previous, stats, session, calendar)[definition.key], \
        not previous.get(definition.key)


def _stats(enabled: list[RuleDefinition], rows, securities: Iterable, session: dt.date) -> tuple[dict[str, Any], Any]:
    """(symbol -> its first security, the SymbolStats the engine runs `enabled` on): from the kept statistics
    (a market.liquidity.StatsTable) or from the windows themselves."""
    unique: dict[str, Any] = {}
    for security in securities:
        unique.setdefault(security.symbol, security)
    if not enabled:
        return unique, {}
    if hasattr(rows, "median_dollar_volume"):
        return unique, from_table(unique.values(), rows, session)
    return unique, from_market(unique.values(), rows, sorted({w for d in enabled for w in d.windows()}), session)


def run_session(definitions: Mapping[str, RuleDefinition], previous: Mapping[str, Mapping[str, dt.date]], stats,
                session: dt.date, calendar: SessionCalendar) -> dict[str, engine.RunResult]:
    """key -> the engine's run of each definition on `session` (engine.run_all: rankings and screens shared):
    the one place the rule universes are run (the sync's publish, the replay of past sessions). A universe
    without a member before the session is *constituted*: run as on a reconstitution day (otherwise a
    quarterly universe installed in April would stay empty until June); its result names the definition's
    own calendar (explain)."""
    run_as = {key: d if previous.get(key) else dataclasses.replace(d, reconstitution=_EVERY_SESSION)
              for key, d in definitions.items()}
    runs = engine.run_all(run_as, previous, stats, session, calendar)
    return {key: r if run_as[key] is definitions[key] else dataclasses.replace(r, definition=definitions[key])
            for key, r in runs.items()}
