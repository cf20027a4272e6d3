"""`tickstockpl universes backfill` (universes/backfill.py) on the small sample market in a real database:
history replayed from the bars, idempotent, resumable, survivorship-free, joined to live history, answered
by ?as_of=, and bad ranges refused."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import psycopg
import pytest

from tests.support.readers import run_async
from tickstockpl.market import snapshot
from tickstockpl.settings import DEFAULT_ENVIRONMENT as ENV
from tickstockpl.sync import history
from tickstockpl.universes import backfill as bf
from tickstockpl.universes.build import build
from tickstockpl.universes.config import default_config
from tickstockpl.universes.model import FAMILIES_BY_MODE, members
from tickstockpl.universes.rules.replay import Price, securities_on, snapshot_on

MEGA = "stock_universe:market_cap:mega_cap"
ALL_STOCKS = "stock_universe:complete:all_stocks"
MEGA_RULE = "stock_universe:rules:crsp_mega"
# crsp_mega reviewed every session (the small market holds no quarterly reconstitution day)
DAILY_MEGA = ("INSERT INTO cache_entries (type, name, key, value, environment) VALUES ('cache_config', 'rule_universes',"
              " 'crsp_mega', '{\"reconstitution\": {\"schedule\": \"every_session\"}}', 'DEFAULT')")


def _rows(conn) -> list[tuple]:
    return conn.execute("SELECT environment, universe, symbol, valid_from, valid_to, job_id FROM pl_universe_membership"
                        " ORDER BY 1, 2, 3, 4").fetchall()


def _cache(conn) -> list[tuple]:
    return conn.execute("SELECT type, name, key, value::text, environment, created_at, updated_at FROM cache_entries"
                        " ORDER BY type, name, key, environment").fetchall()


def _expected_members(conn, days, day) -> dict[str, set[str]]:
    """The legacy universes of `day` built straight from the bars: today's snapshot, each symbol's newest bar
    on or before `day` (read directly), today's configuration."""
    today = snapshot.load(conn, days[-1])
    prices = {s: Price(float(c), d) for s, c, d in conn.execute(
        "SELECT DISTINCT ON (symbol) symbol, close, date FROM ohlcv_daily WHERE date <= %s ORDER BY symbol, date DESC",
        (day,))}
    snap = snapshot_on(securities_on(today, prices, day), day)
    return {e.universe: set(members(e.value)) for e in build(snap, default_config(), FAMILIES_BY_MODE["full"]).entries}


@pytest.fixture
def market(market_db_url, small_market):
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        conn.execute(DAILY_MEGA)
    return market_db_url, small_market


def test_history_of_every_session_and_a_second_run_changes_nothing(market):
    url, sample = market
    days = sample.sessions
    with psycopg.connect(url, autocommit=True) as conn:
        cache = _cache(conn)
        first = bf.backfill(conn, ENV, days[0])
        assert (first.sessions, first.written, first.skipped) == (30, 30, 0) and first.open_end
        for day in (days[0], days[7], days[19], days[-1]):
            expected = _expected_members(conn, days, day)
            for universe in (MEGA, ALL_STOCKS, "stock_universe:market_leaders:top_100"):
                assert set(run_async(conn, history.members_on, ENV, universe, day)) == expected[universe], (universe, day)
        mega_rule = run_async(conn, history.members_on, ENV, MEGA_RULE, days[5])
        assert mega_rule and set(mega_rule) <= set(run_async(conn, history.members_on, ENV, ALL_STOCKS, days[5]))
        # every row is the backfill's; members of the last session stay open (no live history: the next sync
        # continues them)
        rows = _rows(conn)
        assert {r[5] for r in rows} == {bf.BACKFILL_JOB}
        assert {r[2] for r in rows if r[1] == MEGA and r[4] is None} == _expected_members(conn, days, days[-1])[MEGA]
        second = bf.backfill(conn, ENV, days[0])
        assert (second.written, second.skipped) == (0, 30)
        assert _rows(conn) == rows
        assert _cache(conn) == cache  # cache_entries is never written


def test_interrupted_then_resumed_equals_one_run(market):
    url, sample = market
    days = sample.sessions
    with psycopg.connect(url, autocommit=True) as conn:
        bf.backfill(conn, ENV, days[0])
        whole = _rows(conn)
        for table in ("pl_universe_membership", "pl_backfill_sessions", "pl_backfill_boundaries", "pl_backfill_runs"):
            conn.execute(f"DELETE FROM {table}")  # noqa: S608 - PL's own tables, names from this test

        def stop_after_twelve(completed, total, task):
            if completed == 12:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            bf.backfill(conn, ENV, days[0], progress=stop_after_twelve)
        assert conn.execute("SELECT count(*) FROM pl_backfill_sessions").fetchone()[0] == 12
        assert _rows(conn) != whole
        resumed = bf.backfill(conn, ENV, days[0])
        assert (resumed.written, resumed.skipped) == (18, 12)
        assert _rows(conn) == whole


def test_a_worker_process_builds_the_legacy_universes_to_the_same_rows(market):
    """workers=1 builds each session's legacy universes in a forked process while this one replays the next
    sessions: the rows equal those of the build in this process, and a run stopped half-way (the worker then
    shut down with sessions still queued) resumes to the same rows."""
    url, sample = market
    days = sample.sessions
    tables = ("pl_universe_membership", "pl_backfill_sessions", "pl_backfill_boundaries", "pl_backfill_runs")
    with psycopg.connect(url, autocommit=True) as conn:
        here = bf.backfill(conn, ENV, days[0], workers=0)
        assert "legacy build" in here.timings and not any("worker" in k for k in here.timings)
        whole = _rows(conn)
        for table in tables:
            conn.execute(f"DELETE FROM {table}")  # noqa: S608 - PL's own tables, names from this test
        forked = bf.backfill(conn, ENV, days[0], workers=1)
        assert "legacy build (waited for the worker)" in forked.timings and "legacy build" not in forked.timings
        assert (forked.written, forked.opened, forked.closed) == (here.written, here.opened, here.closed)
        assert _rows(conn) == whole
        for table in tables:
            conn.execute(f"DELETE FROM {table}")  # noqa: S608

        def stop_after_nine(completed, total, task):
            if completed == 9:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            bf.backfill(conn, ENV, days[0], progress=stop_after_nine, workers=1)
        assert conn.execute("SELECT count(*) FROM pl_backfill_sessions").fetchone()[0] == 9
        resumed = bf.backfill(conn, ENV, days[0], workers=1)
        assert (resumed.written, resumed.skipped) == (21, 9)
        assert _rows(conn) == whole


def test_a_delisted_symbol_is_a_member_in_the_sessions_it_had_bars_for(market):
    url, sample = market
    days = sample.sessions
    gone = [r["symbol"] for r in sample.symbols if r["type"] == "CS" and not r["active"]
            and sample.last_bar_date(r["symbol"]) is not None and sample.last_bar_date(r["symbol"]) < days[-1]]
    assert gone
    with psycopg.connect(url, autocommit=True) as conn:
        bf.backfill(conn, ENV, days[0])
        for symbol in gone:
            last = sample.last_bar_date(symbol)
            assert symbol in run_async(conn, history.members_on, ENV, ALL_STOCKS, last)
            assert symbol not in run_async(conn, history.members_on, ENV, ALL_STOCKS, days[days.index(last) + 1])
            # and today's universe (the live sync's) does not hold it
            assert symbol not in run_async(conn, history.members_on, ENV, ALL_STOCKS, days[-1])


def test_backfill_joins_the_live_history(market):
    """Live history from days[20] (a real sync): the backfill writes days[0] .. days[19]; a member of days[19]
    in the live universe continues the live row, which now starts at its true entry date."""
    from tickstockpl.sync.job import SyncRequest, run_sync

    url, sample = market
    days = sample.sessions
    with psycopg.connect(url, autocommit=True) as conn:
        run_sync(conn, SyncRequest(as_of=days[20]), job_id="00000000-0000-0000-0000-000000000020")
        live = {r for r in _rows(conn)}
        cache = _cache(conn)
        result = bf.backfill(conn, ENV, days[0])
        assert result.merged > 0
        rows = _rows(conn)
        assert _cache(conn) == cache
        live_mega = {r[2] for r in live if r[1] == MEGA}
        for _env, universe, symbol, start, end, job in rows:
            if universe == MEGA and symbol in live_mega and job != bf.BACKFILL_JOB:
                assert start <= days[20]  # the live row, moved to its entry date when it was a member on days[19]
        joined = [r for r in rows if r[1] == MEGA and r[5] != bf.BACKFILL_JOB and r[3] < days[20]]
        assert joined and all(r[4] is None for r in joined)
        # no backfilled row of a universe with live history reaches into it
        assert all(r[4] is not None and r[4] <= days[20] for r in rows if r[5] == bf.BACKFILL_JOB and r[1] == MEGA)
        expected = _expected_members(conn, days, days[19])[MEGA]
        assert set(run_async(conn, history.members_on, ENV, MEGA, days[19])) == expected
        assert set(run_async(conn, history.members_on, ENV, MEGA, days[20])) == live_mega
        # the rule universe has no live history here (the sync does not publish it yet): open through the end
        assert run_async(conn, history.members_on, ENV, MEGA_RULE, days[-1])
        again = bf.backfill(conn, ENV, days[0])
        assert again.written == 0 and _rows(conn) == rows


def test_as_of_answers_for_a_backfilled_date_through_the_api(market, redis_url):
    from tests.api.conftest import KEYS
    from tests.support.asgi import InProcessServer

    url, sample = market
    day = sample.sessions[4]
    with psycopg.connect(url, autocommit=True) as conn:
        bf.backfill(conn, ENV, sample.sessions[0])
        expected = sorted(_expected_members(conn, sample.sessions, day)[MEGA])
    with InProcessServer(url, redis_url=redis_url, api_keys=KEYS) as server, server.client() as client:
        body = client.get(f"/api/universes/stock_universe/market_cap/mega_cap?as_of={day.isoformat()}").json()
        rule = client.get(f"/api/universes/stock_universe/rules/crsp_mega?as_of={day.isoformat()}")
    assert body["members"] == expected and body["count"] == len(expected) > 0
    assert rule.status_code == 200 and rule.json()["count"] > 0


def _cli(url, *args):
    env = {**os.environ, "DATABASE_URL": url}
    env.pop("DATABASE_URI", None)
    return subprocess.run([sys.executable, "-m", "tickstockpl.cli", "universes", "backfill", *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_the_command_and_its_refusals(market):
    url, sample = market
    for args, words in ((["--from", "1999-12-31"], "before 2000-01-01"),
                        (["--from", "2026-11-30"], "after the newest session with bars (2026-11-27)"),
                        (["--from", "27/11/2026"], "must be a date YYYY-MM-DD"),
                        (["--from", "2026-11-02", "--through", "2026-10-30"], "--through 2026-10-30 must lie")):
        out = _cli(url, *args)
        assert out.returncode == 2, out
        assert out.stderr.startswith("error: ") and words in out.stderr and len(out.stderr.strip().splitlines()) == 1
    done = _cli(url, "--from", sample.sessions[20].isoformat(), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["written"] == 10 and result["from_session"] == sample.sessions[20].isoformat()
    other = _cli(url, "--from", sample.sessions[10].isoformat())
    assert other.returncode == 2 and "is recorded" in other.stderr
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM pl_backfill_sessions").fetchone()[0] == 10
