"""Replaying past sessions (the backfill) gives the history that building each day live with the daily sync
gives, for the rule universes whose rules do not depend on market cap (the backfill scales past caps by the
price move, a live sync of a past date cannot: docs/RULE_UNIVERSES.md). Live: for each session, the liquidity
statistics stand at that session (as the importer leaves them) and a full sync of that date runs."""

from __future__ import annotations

import psycopg

from tests.support.databases import fresh_database
from tests.sync.test_rule_universes import short_screens, sync
from tickstockpl.market import liquidity
from tickstockpl.settings import DEFAULT_ENVIRONMENT as ENV
from tickstockpl.universes import backfill as bf

LIQUID = ("stock_universe:rules:tradable_us", "stock_universe:rules:liquid_500")


def _history(conn) -> list[tuple]:
    return conn.execute("SELECT universe, symbol, valid_from, valid_to FROM pl_universe_membership"
                        " WHERE universe = ANY(%s) ORDER BY 1, 2, 3", (list(LIQUID),)).fetchall()


def test_backfill_equals_daily_live_syncs(pg, market_template, market_clock, small_market):
    days = small_market.sessions[-6:]
    with fresh_database(pg, market_template, "live") as live, fresh_database(pg, market_template, "replay") as replay:
        short_screens(live)
        short_screens(replay)
        for day in days:
            with psycopg.connect(live) as conn:
                liquidity.rebuild(conn, day)
            assert sync(live, as_of=day).universes is not None
        with psycopg.connect(replay, autocommit=True) as conn:
            bf.backfill(conn, ENV, days[0], days[-1])
            replayed = _history(conn)
        with psycopg.connect(live) as conn:
            lived = _history(conn)
    assert lived and {r[0] for r in lived} == set(LIQUID)
    assert len({r[2] for r in lived}) > 1 and any(r[3] is not None for r in lived)  # members came and went
    assert replayed == lived
