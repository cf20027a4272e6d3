"""Why a symbol is in or out of a rule universe: the rule step of a sync, run again for one definition.

    explain(conn, environment, key, symbol) -> dict
        GET /api/universes/stock_universe/rules/{key}/explain?symbol=, `tickstockpl universes explain`

It reads what a dry-run sync reads for it (sync/inputs.read with the rule universes: the snapshot, the
config rows alone, pl_symbol_liquidity, the members of that universe just before the session with their
entry dates) and writes nothing; it runs the engine for that one definition on the newest session, from the members the
session started from, so it gives the decision the day's sync made (or would make, before it ran),
with every rule's numbers. The calendar reaches half a year past the session, so that a day that is no
reconstitution day names the next one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tickstockpl.errors import NotFound, NotReady
from tickstockpl.sync import inputs as sync_inputs
from tickstockpl.universes.rules import definition as rule_definition, publish as rule_publish
from tickstockpl.universes.rules.schedule import SessionCalendar

AHEAD_DAYS = 190  # the calendar past the session: the next quarterly or semi-annual day is inside it


def explain(conn, environment: str, key: str, symbol: str) -> dict[str, Any]:
    """The explanation as JSON-ready data (see the module docstring). NotFound: no such enabled
    definition; NotReady: the rule universes cannot be built now (the statistics do not stand at the
    newest session: the reason says why and what to do)."""
    loaded = sync_inputs.read(conn, as_of=None, environment=environment, mode="full", may_skip=False,
                              groups=False, history=False, rules=True, universes=False, rule=key)
    definitions = rule_definition.apply_overrides(rule_definition.default_definitions(), loaded.config)
    found = definitions.get(key)
    universe = rule_publish.universe_of(key)
    if found is None:
        raise NotFound(f"no rule universe {universe} (known: {', '.join(sorted(definitions))})")
    if not found.enabled:
        raise NotFound(f"rule universe {universe} is disabled (its definition has enabled = false)")
    rules = loaded.rules
    if rules.skipped is not None:
        raise NotReady(rules.skipped)
    calendar = SessionCalendar([*rules.calendar.days, *_ahead(conn, rules.session)])
    result, constituted = rule_publish.run_one(found, rules.rows, loaded.snapshot.securities, rules.previous,
                                               rules.session, calendar)  # rules.previous: that universe's alone
    why = result.explain(symbol)
    reason = result.reason(symbol)
    return {
        "universe": universe, "symbol": symbol, "session": rules.session.isoformat(),
        "reconstitution_day": result.reconstitution, "constituted": constituted,
        "member": why.member, "was_member": symbol in result.previous,
        "member_since": result.members[symbol].isoformat() if symbol in result.members else None,
        "rank": result.ranks.get(symbol), "percentile": _pct(result.percentiles.get(symbol)),
        "summary": why.summary,
        "change": None if reason is None else {"action": reason.action, "rule": reason.rule, "text": reason.text},
        "checks": [{"rule": c.rule, "ok": c.ok, "text": c.text} for c in why.checks],
    }


def _ahead(conn, session: dt.date) -> list[dt.date]:
    from tickstockpl.market.calendar import StoredCalendar

    return [s.day for s in StoredCalendar(conn).between(session + dt.timedelta(days=1),
                                                        session + dt.timedelta(days=AHEAD_DAYS))]


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
