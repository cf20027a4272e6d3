"""Stored universes: the list, one universe's members (now or on a past date), the change log."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import re

from fastapi import APIRouter, Path, Query
from pydantic import BeforeValidator

from tickstockpl.api import blocking
from tickstockpl.api.deps import ConnDep, KeyRequired, SettingsDep
from tickstockpl.api.models import (Churn, ErrorBody, Explanation, Universe, UniverseChange, UniverseChanges, UniverseMembers,
                                    Universes)
from tickstockpl.api.universe_sql import stored_universes, stored_value
from tickstockpl.errors import NotFound
from tickstockpl.events.catalog import iso_z
from tickstockpl.sync import changelog, explain as rule_explain, history
from tickstockpl.universes.model import KEY_MAX, OWNED_TYPES, RULES_NAME, STOCK_UNIVERSE, TICKER_MAX, members, universe_id

router = APIRouter(prefix="/api/universes", tags=["universes"], dependencies=[KeyRequired],
                   responses={401: {"model": ErrorBody}, 422: {"model": ErrorBody}})

PRINTABLE = r"^[^\x00-\x1f\x7f]*$"  # no control characters (PostgreSQL text cannot hold NUL)
Part = Annotated[str, Path(min_length=1, max_length=KEY_MAX, pattern=PRINTABLE)]
_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _not_a_number(value):
    """`since` is a date-time (format date-time), never a Unix time: '0.5' or '1700000000' are refused
    (pydantic would read them as seconds since 1970)."""
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        raise ValueError("must be an ISO-8601 date-time such as 2026-11-27T00:00:00Z, not a number")
    return value


Since = Annotated[dt.datetime | None, BeforeValidator(_not_a_number),
                  Query(description="ISO-8601 date-time; changes at or after it")]


@router.get("", response_model=Universes)
async def list_universes(conn: ConnDep, settings: SettingsDep) -> Universes:
    """Every universe the sync stores in this environment (type, name, key, member count, last update)."""
    found = [Universe(universe=universe_id(u.type, u.name, u.key), type=u.type, name=u.name, key=u.key, count=u.count,
                      updated_at=iso_z(u.updated_at)) for u in await stored_universes(conn, settings.environment)]
    return Universes(universes=found, total=len(found))


@router.get("/changes", response_model=UniverseChanges)
async def changes(conn: ConnDep, settings: SettingsDep,
                  since: Since = None,
                  universe: Annotated[str | None, Query(max_length=310, pattern=PRINTABLE,
                                                        description='"type:name:key"')] = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                  offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> UniverseChanges:
    """The change log (added / removed / updated / reordered per symbol and universe), oldest first."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=dt.timezone.utc)
    rows = await changelog.page(conn, settings.environment, since=since, universe=universe, limit=limit, offset=offset)
    return UniverseChanges(
        changes=[UniverseChange(id=r.id, job_id=r.job_id, universe=r.universe, symbol=r.symbol, action=r.action,
                                reason=r.reason, created_at=iso_z(r.created_at)) for r in rows],
        count=len(rows), limit=limit, offset=offset,
    )


@router.get("/churn", response_model=Churn, response_model_by_alias=True)
async def churn(conn: ConnDep, settings: SettingsDep,
          first: Annotated[dt.date | None, Query(alias="from", description="YYYY-MM-DD (default: 30 days before to)")] = None,
          last: Annotated[dt.date | None, Query(alias="to", description="YYYY-MM-DD (default: today, New York)")] = None,
          universe: Annotated[str | None, Query(max_length=310, pattern=PRINTABLE, description='"type:name:key"')] = None
          ) -> Churn:
    """Turnover per universe and per day it changed, from the membership history (live syncs and
    backfilled days alike): each day (entered + left) / (before + after), and the same over the range."""
    first, last = history.churn_range(first, last)
    found = await blocking.run(conn, history.churn, settings.environment, first, last, universe)
    return Churn.model_validate(history.churn_document(first, last, found))


@router.get("/{type}/{name}/{key}", response_model=UniverseMembers, responses={404: {"model": ErrorBody}})
async def universe_members(type: Part, name: Part, key: Part, conn: ConnDep, settings: SettingsDep,
                           as_of: Annotated[dt.date | None, Query(description="YYYY-MM-DD: members on that day")] = None
                           ) -> UniverseMembers:
    """Members in stored order, or (with as_of) the members on that date from the membership history."""
    uid = universe_id(type, name, key)
    if type not in OWNED_TYPES:
        raise NotFound(f"no universe {uid}")
    if as_of is None:
        row = await stored_value(conn, settings.environment, type, name, key)
        if row is None:
            raise NotFound(f"no universe {uid}")
        symbols = members(row[0])
        updated = iso_z(row[1])
    else:
        symbols = await history.members_on(conn, settings.environment, uid, as_of)
        known = symbols or await history.known(conn, settings.environment, type, name, key)
        if not known:
            raise NotFound(f"no universe {uid}")
        updated = None
    return UniverseMembers(universe=uid, type=type, name=name, key=key, as_of=as_of.isoformat() if as_of else None,
                           count=len(symbols), members=symbols, updated_at=updated)


@router.get("/{type}/{name}/{key}/explain", response_model=Explanation,
            responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}})
async def explain(type: Part, name: Part, key: Part, conn: ConnDep, settings: SettingsDep,
            symbol: Annotated[str, Query(min_length=1, max_length=TICKER_MAX, pattern=PRINTABLE,
                                         description="the ticker, e.g. AAPL")]) -> Explanation:
    """Why `symbol` is in or out of a rule universe (stock_universe/rules/<key>) on the newest session,
    with every rule's check and its numbers. 404 for any other universe or an unknown / disabled
    definition; 409 while the liquidity statistics do not stand at the newest session."""
    if (type, name) != (STOCK_UNIVERSE, RULES_NAME):
        raise NotFound(f"{universe_id(type, name, key)} is no rule universe: explanations are given for"
                       f" {STOCK_UNIVERSE}/{RULES_NAME}/<key> (docs/RULE_UNIVERSES.md)")
    # an explanation reads what a dry-run sync reads (sync/inputs.read), on the request's own connection
    answer = await blocking.run(conn, rule_explain.explain, settings.environment, key, symbol.upper())
    return Explanation.model_validate(answer)
