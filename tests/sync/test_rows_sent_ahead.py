"""A sync that builds the rule universes sends its rows ahead of its plan (sync/job.py `_send_ahead`): the
legacy universes' before the rule universes are built, the rule universes' once built; PostgreSQL writes
them, in the sync's one transaction, while the process goes on. Each part carries its universes' membership
history (opened by an upsert, since nothing sent in pipeline mode can fall back on a failure).

On the real PostgreSQL with the small sample market: the legacy part goes out before the rule universes are
built and holds only legacy universes, the rule part after them and only rule universes, each with its
history; a sync written that way leaves exactly what the same sync written at the end leaves (rows, ledger,
change log, history, events), with a row taken over, a row PL deletes and a row of someone else's in the
legacy part's families, with a history that disagrees with the rows (healed), and for a sync of an earlier
date again (rows reopened); a refusal after the rows were sent writes none of them; a part whose diff is not
the plan's, or a plan that makes a sent universe's history again, is refused.
"""

from __future__ import annotations

import datetime as dt
import json

import psycopg
import pytest

from tests.support.databases import fresh_database
from tickstockpl.errors import ValidationFailed
from tickstockpl.jobs.runtime import start_job
from tickstockpl.market import liquidity
from tickstockpl.sync import job, store, validate
from tickstockpl.universes.rules import publish as rule_publish

PREVIOUS, AS_OF = dt.date(2026, 11, 25), dt.date(2026, 11, 27)
RULES = "stock_universe:rules:"
TAKEN_OVER = ("stock_universe", "market_leaders", "top_10_stocks")  # AppV2's row of a key PL builds
GONE = ("stock_universe", "market_cap", "old_band")  # PL's row of a universe it no longer builds
FOREIGN = ("stock_universe", "curated", "my_picks")  # a user's row: never touched


def _seed(url: str) -> None:
    """Rows in the first part's families that are not PL's fresh writes."""
    with psycopg.connect(url) as conn:
        for type_, name, key in (TAKEN_OVER, GONE, FOREIGN):
            conn.execute("INSERT INTO cache_entries (type, name, key, value, environment) VALUES (%s, %s, %s, %s,"
                         " 'DEFAULT')", (type_, name, key, json.dumps({"stocks": [{"ticker": "S001"}], "count": 1})))
        conn.execute("INSERT INTO pl_cache_ledger (environment, type, name, key, family, value_digest, row_xmin,"
                     " written_at) SELECT environment, type, name, key, 'market_cap', NULL, xmin, now()"
                     " FROM cache_entries WHERE type = %s AND name = %s AND key = %s", GONE)


def _two_syncs(url: str) -> list:
    """A first sync as of PREVIOUS, then the daily sync as of AS_OF, the statistics kept as the importer
    keeps them (at each sync's session)."""
    results = []
    for day in (PREVIOUS, AS_OF):
        with psycopg.connect(url) as conn:
            liquidity.rebuild(conn, day)
        results.append(start_job(url, triggered_by="cli", background=False, as_of=day).result)
    return results


def _state(url: str) -> dict:
    """What the syncs left, without what differs from one run to another (ids, versions, times)."""
    def without_ids(message: str) -> dict:
        doc = json.loads(message)
        payload = {k: v for k, v in doc["payload"].items() if k not in ("job_id", "duration_seconds")}
        return {"event": doc["event"], "payload": payload}

    with psycopg.connect(url) as conn:
        return {
            "rows": conn.execute("SELECT type, name, key, value::text FROM cache_entries ORDER BY 1, 2, 3").fetchall(),
            "ledger": conn.execute("SELECT type, name, key, family, value_digest, members, text_digest,"
                                   " recorded_xmin IS NOT NULL FROM pl_cache_ledger ORDER BY 1, 2, 3").fetchall(),
            "changes": conn.execute("SELECT universe, symbols, symbol_count, action, reason, reasons FROM pl_sync_changes"
                                    " ORDER BY id").fetchall(),
            "history": conn.execute("SELECT universe, symbol, valid_from, valid_to, job_id IS NULL"
                                    " FROM pl_universe_membership ORDER BY 1, 2, 3").fetchall(),
            "events": [(c, without_ids(m)) for c, m in conn.execute(
                "SELECT channel, message FROM pl_event_outbox ORDER BY id")],
        }


@pytest.fixture
def two_markets(pg, market_template, market_clock):
    with fresh_database(pg, market_template, "m") as first, fresh_database(pg, market_template, "m") as second:
        for url in (first, second):
            _seed(url)
        yield first, second


def test_the_legacy_rows_go_out_before_the_rule_universes_are_built(two_markets, monkeypatch):
    url = two_markets[0]
    timeline: list[tuple[str, object]] = []
    opened: list[set[str]] = []  # the universes of each part's history
    send_ahead, publish = store.send_ahead, rule_publish.publish

    pairs: list[tuple[tuple[str, str], ...]] = []  # each part's history rows opened, in the order sent

    def spy_send(conn, plan, **kw):
        timeline.append(("sent", {e.universe for e in plan.upserts} | {e.universe for e in plan.deletes}))
        opened.append({u for u, _ in plan.membership_open} | {u for u, _ in plan.membership_close})
        pairs.append(plan.membership_open)
        return send_ahead(conn, plan, **kw)

    def spy_publish(*args, **kw):
        timeline.append(("rule universes built", None))
        return publish(*args, **kw)

    monkeypatch.setattr(store, "send_ahead", spy_send)
    monkeypatch.setattr(rule_publish, "publish", spy_publish)
    first, daily = _two_syncs(url)
    assert [what for what, _ in timeline] == ["sent", "rule universes built", "sent"] * 2
    for legacy, rules in ((timeline[0][1], timeline[2][1]), (timeline[3][1], timeline[5][1])):
        assert legacy and not any(u.startswith(RULES) for u in legacy)
        assert rules and all(u.startswith(RULES) for u in rules)
        assert "stock_universe:curated:my_picks" not in legacy | rules
    assert "stock_universe:market_cap:old_band" in timeline[0][1]  # the legacy part deletes too
    assert opened[0] and opened[1]  # the first sync's parts carry its history (everything is opened)
    # Into the empty history of the first sync, the rows go in the history's key order: the legacy part's
    # universes sorting after the rule universes (sector leaders, themes) go with the rule universes' part.
    rules_first = "stock_universe:rules:"
    assert opened[0] <= {u for u in timeline[0][1] if u < rules_first}
    assert opened[1] <= timeline[2][1] | {u for u in timeline[0][1] if u > rules_first}
    assert any(u.startswith(rules_first) for u in opened[1])
    assert any(u > rules_first and not u.startswith(rules_first) for u in opened[1])
    sent_order = [p for part in pairs[:2] for p in part]
    assert sent_order == sorted(sent_order)
    # The daily sync (a history with rows): each part's history is of its own universes.
    for part, history in ((timeline[3], opened[2]), (timeline[5], opened[3])):
        assert history <= part[1]
    assert "stock_universe:market_leaders:top_10_stocks" in first.adopted
    assert daily.churn and any(u.startswith(RULES) for u in (x["universe"] for x in daily.universes))


def _compare_with_the_end_path(two_markets, monkeypatch, scenario) -> None:
    """`scenario(url)` on both databases, sent ahead on the first, written at the end on the second: the same."""
    early, late = two_markets
    results_early = scenario(early)
    monkeypatch.setattr(job, "_sends_ahead", lambda *args: False)  # every statement at the end
    results_late = scenario(late)
    assert _state(early) == _state(late)
    for a, b in zip(results_early, results_late):
        a, b = a.to_dict(), b.to_dict()
        for volatile in ("job_id", "duration_seconds"):
            del a[volatile], b[volatile]
        assert a == b


def test_a_sync_written_in_two_parts_leaves_what_one_write_at_the_end_leaves(two_markets, monkeypatch):
    _compare_with_the_end_path(two_markets, monkeypatch, _two_syncs)
    early = two_markets[0]
    with psycopg.connect(early) as conn:  # the user's row is as it was
        (value,) = conn.execute("SELECT value FROM cache_entries WHERE type = %s AND name = %s AND key = %s",
                                FOREIGN).fetchone()
        assert value == {"stocks": [{"ticker": "S001"}], "count": 1}


def test_a_history_that_disagrees_with_the_rows_is_healed_alike_when_sent_ahead(two_markets, monkeypatch):
    def scenario(url):
        first = start_job(url, triggered_by="cli", background=False, as_of=PREVIOUS).result
        with psycopg.connect(url) as conn:  # open rows lost in a legacy and a rule universe, one row too many
            conn.execute("DELETE FROM pl_universe_membership WHERE universe IN (%s, %s) AND symbol IN"
                         " (SELECT symbol FROM pl_universe_membership WHERE universe = %s ORDER BY symbol LIMIT 3)",
                         ("stock_universe:complete:all_stocks", RULES + "tradable_us", RULES + "tradable_us"))
            conn.execute("INSERT INTO pl_universe_membership (environment, universe, symbol, valid_from)"
                         " VALUES ('DEFAULT', 'stock_universe:market_cap:mega_cap', 'NOT_A_MEMBER', %s)", (PREVIOUS,))
            liquidity.rebuild(conn, AS_OF)
        return [first, start_job(url, triggered_by="cli", background=False, as_of=AS_OF).result]

    _compare_with_the_end_path(two_markets, monkeypatch, scenario)
    with psycopg.connect(two_markets[0]) as conn:
        stray = conn.execute("SELECT valid_to FROM pl_universe_membership WHERE symbol = 'NOT_A_MEMBER'").fetchall()
    assert stray == [(AS_OF,)]  # closed by the healing


def test_a_sync_of_an_earlier_date_again_reopens_its_rows_alike_when_sent_ahead(two_markets, monkeypatch):
    closed: dict[str, set] = {}

    def scenario(url):
        results = _two_syncs(url)
        with psycopg.connect(url) as conn:
            closed[url] = set(conn.execute("SELECT universe, symbol FROM pl_universe_membership WHERE valid_from = %s"
                                           " AND valid_to IS NOT NULL", (PREVIOUS,)).fetchall())
            liquidity.rebuild(conn, PREVIOUS)
        results.append(start_job(url, triggered_by="cli", background=False, as_of=PREVIOUS, force=True).result)
        return results

    _compare_with_the_end_path(two_markets, monkeypatch, scenario)
    early = two_markets[0]
    with psycopg.connect(early) as conn:
        reopened = set(conn.execute("SELECT universe, symbol FROM pl_universe_membership WHERE valid_from = %s"
                                    " AND valid_to IS NULL", (PREVIOUS,)).fetchall()) & closed[early]
    assert reopened  # rows of the first sync, closed by the second, open again (the upsert's DO UPDATE)


def test_a_part_whose_history_is_not_the_plans_is_refused():
    from tickstockpl.sync.diff import Plan, UniverseDiff

    part = UniverseDiff("u", "themes", "updated", ("A", "B"), ())
    sent = store.NOTHING_SENT._replace(history=frozenset({"u"}), opened=(("u", "A"), ("u", "B")), diffs={"u": part})
    for plan in (Plan((), (), (), (UniverseDiff("u", "themes", "updated", ("A",), ()),)),  # another diff of u
                 Plan((), (), (), ()),  # u unchanged in the plan
                 Plan((), (), (), (part,), membership_open=(("u", "A"),)),  # u's history made again
                 Plan((), (), (), (part,), membership_close=(("u", "C"),))):
        with pytest.raises(RuntimeError, match="not a part of the sync's plan"):
            store._rest(plan, [], sent)
    rest, _ = store._rest(Plan((), (), (), (part,), membership_open=(("v", "C"),)), [], sent)
    assert rest.membership_open == (("v", "C"),)


def test_a_refusal_after_the_rows_were_sent_writes_none_of_them(two_markets, monkeypatch):
    url = two_markets[0]
    _two_syncs(url)
    before = _state(url)
    sent = []
    send_ahead = store.send_ahead

    def spy_send(conn, plan, **kw):
        sent.append(len(plan.upserts))
        return send_ahead(conn, plan, **kw)

    def refuse(*args, **kw):
        raise ValidationFailed(["refused for the test, after the rows were sent"])

    monkeypatch.setattr(store, "send_ahead", spy_send)
    monkeypatch.setattr(validate, "check", refuse)
    with psycopg.connect(url) as conn:  # a new session's closes: every market-cap universe changes
        conn.execute("UPDATE ohlcv_daily SET close = close * 1.01 WHERE date = %s", (AS_OF,))
    with pytest.raises(ValidationFailed):
        start_job(url, triggered_by="cli", background=False, as_of=AS_OF)
    assert len(sent) == 2 and sent[0] > 0 and sent[1] > 0  # both parts had gone out
    after = _state(url)
    assert {k: after[k] for k in ("rows", "ledger", "changes", "history")} == \
        {k: before[k] for k in ("rows", "ledger", "changes", "history")}
    with psycopg.connect(url) as conn:
        status, error = conn.execute("SELECT status, error_details FROM pl_sync_jobs ORDER BY created_at DESC"
                                     " LIMIT 1").fetchone()
    assert status == "failed" and "refused for the test" in error


def test_a_daily_sync_whose_two_parts_change_history_stays_within_the_statement_budget(two_markets):
    """Each part's history is one statement (history.CHANGE_SQL), so sending it ahead costs no statement."""
    from tests.statements import counted

    url = two_markets[0]
    with psycopg.connect(url) as conn:
        liquidity.rebuild(conn, PREVIOUS)
    start_job(url, triggered_by="cli", background=False, as_of=PREVIOUS)
    with psycopg.connect(url) as conn:
        liquidity.rebuild(conn, AS_OF)
        conn.execute("INSERT INTO cache_entries (type, name, key, value, environment) VALUES ('cache_config',"
                     " 'rule_universes', 'crsp_mega', %s, 'DEFAULT')",  # reselected today, narrower: members leave
                     (json.dumps({"reconstitution": {"schedule": "every_session"}, "band": {"percentile": 1},
                                  "selection": {"kind": "percentile_range", "from_pct": 0, "to_pct": 60}}),))
    with counted() as daily:
        result = start_job(url, triggered_by="cli", background=False, as_of=AS_OF).result
    moved = {u["universe"].startswith(RULES) for u in result.universes if u["added"] or u["removed"]}
    assert moved == {True, False}  # members moved in both parts: both send closes and opens
    assert len(daily) <= 25  # issue 13's budget
