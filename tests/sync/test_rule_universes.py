"""The rule universes through the whole sync, on the real PostgreSQL with the small sample market (30
sessions ending 2026-11-27): published as stock_universe/rules/<key> in the StockObj shape, their
members satisfying their rules, the engine's reasons in the change log and the events, churn in the job
result, the fingerprint skip aware of the statistics, a bad `rule_universes` row refused with the
universes intact, the relational group's liquidity_filter filled, and what a sync does when
pl_symbol_liquidity does not stand at its session.

The built-in tradable/liquid screens need 200 sessions of history, which the 30-session market does not
have: they publish empty universes, and the tests give `tradable_us` and `liquid_500` 20-session screens
through `rule_universes` rows (the way an operator would). The CRSP-style bands have no screens and fill.
"""

from __future__ import annotations

import datetime as dt
import json
import math

import psycopg
import pytest

from tests.appv2_schemas import MODEL, appv2_database  # noqa: F401
from tickstockpl.errors import ConfigError
from tickstockpl.jobs.runtime import get_job, start_job
from tickstockpl.market import liquidity
from tickstockpl.market.snapshot import load as load_snapshot
from tickstockpl.sync.job import SyncRequest, run_sync
from tickstockpl.universes.model import members
from tickstockpl.universes.rules import definition as rd

AS_OF = dt.date(2026, 11, 27)
RULES = "stock_universe:rules:"
EXCHANGES = ("XNYS", "XNAS", "XASE", "ARCX", "BATS")
SHORT_SCREENS = {"median_dollar_volume": {"sessions": 20, "min": 1_000_000}, "min_price": 5.0,
                 "coverage": {"sessions": 20, "min_sessions": 18}, "recent_sessions": 5}
OVERRIDES = {
    "tradable_us": {"entry": SHORT_SCREENS, "rank": {"metric": "median_dollar_volume", "sessions": 20}},
    "liquid_500": {"entry": SHORT_SCREENS, "rank": {"metric": "mean_dollar_volume", "sessions": 20},
                   "selection": {"count": 40}},
}


def sync(url, **kw):
    kw.setdefault("as_of", AS_OF)
    return start_job(url, triggered_by="cli", background=False, **kw).result


def short_screens(url: str) -> None:
    with psycopg.connect(url) as conn:
        for key, value in OVERRIDES.items():
            conn.execute("INSERT INTO cache_entries (type, name, key, value, environment)"
                         " VALUES ('cache_config', 'rule_universes', %s, %s, 'DEFAULT')", (key, json.dumps(value)))


def rule_rows(conn) -> dict[str, object]:
    return {key: value for key, value in conn.execute(
        "SELECT key, value FROM cache_entries WHERE environment = 'DEFAULT' AND type = 'stock_universe'"
        " AND name = 'rules' ORDER BY key")}


def rule_rows_text(conn) -> list[tuple]:
    return conn.execute("SELECT key, value::text, updated_at FROM cache_entries WHERE type = 'stock_universe'"
                        " AND name = 'rules' ORDER BY key").fetchall()


def definitions() -> dict[str, rd.RuleDefinition]:
    rows = [type("Row", (), {"name": "rule_universes", "key": k, "value": v}) for k, v in OVERRIDES.items()]
    return rd.apply_overrides(rd.default_definitions(), rows)


@pytest.fixture
def market(market_db_url, small_market):
    """The small market with the statistics kept at the newest session (as PL's importer leaves them)."""
    with psycopg.connect(market_db_url) as conn:
        liquidity.rebuild(conn, small_market.sessions[-1])
    short_screens(market_db_url)
    return market_db_url


def test_a_full_sync_publishes_every_rule_universe_with_members_that_satisfy_its_rules(market, small_market):
    result = sync(market)
    defs = definitions()
    with psycopg.connect(market) as conn:
        rows = rule_rows(conn)
        snap = load_snapshot(conn, AS_OF)
        stats = {r.symbol: r for r in liquidity.load(conn)}
    assert sorted(rows) == sorted(k for k, d in defs.items() if d.enabled)
    for key, value in rows.items():  # the StockObj shape of the legacy stock universes
        assert set(value) == {"count", "stocks"} and value["count"] == len(value["stocks"])
        assert [s["rank"] for s in value["stocks"]] == list(range(1, value["count"] + 1))
        for item in value["stocks"]:
            assert set(item) == {"name", "rank", "sector", "ticker", "exchange", "industry", "market_cap", "market"}
    by_symbol = {s.symbol: s for s in snap.securities}

    def candidate(s) -> bool:
        return s.type == "CS" and s.active and s.primary_exchange in EXCHANGES

    # tradable_us (every session, selection all): exactly the candidates passing the 20-session screens
    def passes(symbol: str) -> bool:
        row = stats.get(symbol)
        if row is None:
            return False
        w = liquidity.window_stats(row.dollar_volumes, (20,))
        return (w.median_dollar_volume[20] is not None and w.median_dollar_volume[20] >= 1_000_000
                and row.last_close is not None and row.last_close >= 5.0 and w.coverage[20] >= 18 and w.streak >= 5)

    tradable = set(members(rows["tradable_us"]))
    expected = {s.symbol for s in snap.securities if candidate(s) and passes(s.symbol)}
    assert tradable == expected and 20 < len(tradable) < len([s for s in snap.securities if candidate(s)])
    # liquid_500 (top 40 by 20-session mean dollar volume, at most 12 per sector), constituted on its first run
    liquid = members(rows["liquid_500"])
    assert 0 < len(liquid) <= 40 and set(liquid) <= tradable
    sectors = [by_symbol[s].sector for s in liquid]
    assert max(sectors.count(x) for x in set(sectors)) <= 12
    # CRSP-style bands by cumulative market cap share: mega = (0, 70], mid = (70, 85], micro = (98, 100]
    ranked = sorted((s for s in snap.securities if candidate(s) and s.market_cap and s.market_cap > 0),
                    key=lambda s: (-s.market_cap, s.symbol))
    total = math.fsum(s.market_cap for s in ranked)
    running, pct = 0.0, {}
    for s in ranked:
        running += s.market_cap
        pct[s.symbol] = running / total * 100
    for key, low, high in (("crsp_mega", 0, 70), ("crsp_mid", 70, 85), ("crsp_small", 85, 98), ("crsp_micro", 98, 100)):
        got = members(rows[key])
        assert got == [s.symbol for s in ranked if low < pct[s.symbol] <= high + 1e-9], key  # in rank order
        assert got
    assert set(members(rows["crsp_large"])) == set(members(rows["crsp_mega"])) | set(members(rows["crsp_mid"]))
    assert result.churn[RULES + "crsp_mega"]["constituted"] is True


def test_reasons_go_to_the_change_log_and_the_events_and_churn_to_the_job_result(market, small_market):
    days = small_market.sessions
    with psycopg.connect(market) as conn:  # a daily run: synced as of the session before, then one session on
        liquidity.rebuild(conn, days[-2])
    first = sync(market, as_of=days[-2])
    assert first.churn[RULES + "tradable_us"]["constituted"] is True
    with psycopg.connect(market) as conn:
        liquidity.update_session(conn, days[-1])  # what the import of days[-1] does
    result = sync(market)
    with psycopg.connect(market) as conn:
        changes = conn.execute("SELECT universe, symbol, action, reason FROM pl_sync_change_rows WHERE job_id = %s"
                               " AND universe LIKE 'stock\\_universe:rules:%%' AND symbol IS NOT NULL",
                               (result.job_id,)).fetchall()
        legacy = conn.execute("SELECT DISTINCT reason FROM pl_sync_change_rows WHERE universe NOT LIKE"
                              " 'stock\\_universe:rules:%%'").fetchall()
        events = [json.loads(m) for (m,) in conn.execute(
            "SELECT message FROM pl_event_outbox WHERE event = 'universe_updated' ORDER BY id")]
    assert changes, "the daily run changed no rule universe"
    for universe, symbol, action, reason in changes:
        assert reason.startswith("entered: " if action == "added" else "left: "), reason
    assert any("on 2026-11-27" in r or "reconstitution day 2026-11-27" in r for *_, r in changes)
    assert all(not r.startswith(("entered:", "left:")) for (r,) in legacy)  # legacy reasons unchanged
    # churn per rule universe: the counts of the change log of this job
    for key in definitions():
        churn = result.churn[RULES + key]
        entered = sum(1 for u, _, a, _ in changes if u == RULES + key and a == "added")
        left = sum(1 for u, _, a, _ in changes if u == RULES + key and a == "removed")
        assert (churn["entered"], churn["left"]) == (entered, left), key
        assert churn["after"] - churn["before"] == entered - left
        # an empty universe (liquid_1500: its 200-session screens pass nobody here) is constituted again
        assert churn["session"] == "2026-11-27" and churn["constituted"] is (churn["before"] == 0)
        total = churn["before"] + churn["after"]
        assert churn["turnover"] == (round((entered + left) / total, 6) if total else 0.0)
    # the events: a rule universe's carries one reason per listed symbol; a legacy one has no such field
    mine = [e["payload"] for e in events if e["payload"]["job_id"] == result.job_id]
    rule_events = [p for p in mine if p["name"] == "rules"]
    assert rule_events and all("reasons" not in p for p in mine if p["name"] != "rules")
    logged = {(u, s, a): r for u, s, a, r in changes}
    for payload in rule_events:
        listed = [(s, "added") for s in payload["added_symbols"]] + [(s, "removed") for s in payload["removed_symbols"]]
        assert [(r["symbol"], r["action"]) for r in payload["reasons"]] == listed
        for r in payload["reasons"]:
            assert r["text"] == logged[(payload["universe"], r["symbol"], r["action"])] and r["rule"]
    # and the job API's result holds the churn
    with psycopg.connect(market) as conn:
        stored = get_job(conn, result.job_id).result
    assert stored["churn"] == result.churn


def test_an_unchanged_rerun_skips_but_a_change_of_the_statistics_is_not_hidden(market, small_market):
    days = small_market.sessions
    first = sync(market)
    again = sync(market)
    assert again.unchanged_since == first.job_id
    assert all(c["turnover"] == 0 and c["before"] == c["after"] for c in again.churn.values())
    with psycopg.connect(market) as conn:
        victim = members(rule_rows(conn)["tradable_us"])[0]
        # bars of older sessions go missing (the snapshot reads only the newest bar, so its digest stays);
        # a re-import / revision of those sessions rebuilds the statistics
        conn.execute("DELETE FROM ohlcv_daily WHERE symbol = %s AND date = ANY(%s)", (victim, list(days[-9:-4])))
        liquidity.rebuild(conn, days[-1])
    third = sync(market)
    assert third.unchanged_since is None
    with psycopg.connect(market) as conn:
        assert victim not in members(rule_rows(conn)["tradable_us"])
        reason = conn.execute("SELECT reason FROM pl_sync_change_rows WHERE job_id = %s AND symbol = %s AND universe = %s",
                              (third.job_id, victim, RULES + "tradable_us")).fetchone()[0]
    assert reason.startswith("left: valid closes on 15 of the last 20 sessions < 18"), reason


def test_a_bad_rule_universes_row_is_refused_and_the_universes_stay(market):
    sync(market)
    with psycopg.connect(market) as conn:
        before = rule_rows_text(conn)
        changes = conn.execute("SELECT count(*) FROM pl_sync_changes").fetchone()[0]
        conn.execute("INSERT INTO cache_entries (type, name, key, value, environment) VALUES"
                     " ('cache_config', 'rule_universes', 'crsp_mid', '{\"selection\": {\"to_pct\": 50}}', 'DEFAULT')")
    with pytest.raises(ConfigError) as refused:
        sync(market)
    assert "cache_config row rule_universes/crsp_mid" in str(refused.value)
    assert "selection.to_pct" in str(refused.value)
    with psycopg.connect(market) as conn:
        assert rule_rows_text(conn) == before
        assert conn.execute("SELECT count(*) FROM pl_sync_changes").fetchone()[0] == changes


def test_a_definition_switched_off_is_deleted_with_its_history_closed(market):
    sync(market)
    with psycopg.connect(market) as conn:
        conn.execute("INSERT INTO cache_entries (type, name, key, value, environment) VALUES"
                     " ('cache_config', 'rule_universes', 'crsp_micro', '{\"enabled\": false}', 'DEFAULT')")
    result = sync(market)
    with psycopg.connect(market) as conn:
        assert "crsp_micro" not in rule_rows(conn)
        assert conn.execute("SELECT count(*) FROM pl_universe_membership WHERE universe = %s AND valid_to IS NULL",
                            (RULES + "crsp_micro",)).fetchone()[0] == 0
        reasons = {r for (r,) in conn.execute("SELECT DISTINCT reason FROM pl_sync_change_rows WHERE job_id = %s"
                                              " AND universe = %s", (result.job_id, RULES + "crsp_micro"))}
    assert reasons == {"universe no longer produced: its definition is disabled or gone"}
    assert RULES + "crsp_micro" not in result.churn


def test_a_sync_moves_statistics_left_behind_but_not_back_and_a_dry_run_not_at_all(market_db_url, small_market):
    days = small_market.sessions
    short_screens(market_db_url)
    with psycopg.connect(market_db_url) as conn:
        liquidity.rebuild(conn, days[-3])  # bars of two sessions loaded by someone else since
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        dry = run_sync(conn, SyncRequest(dry_run=True, as_of=AS_OF))
    assert any("a dry run does not move it" in w for w in dry.warnings) and not dry.churn
    with psycopg.connect(market_db_url) as conn:
        assert {r.through for r in liquidity.load(conn)} == {days[-3]}
    done = sync(market_db_url)
    assert any("the sync moved it to 2026-11-27" in w for w in done.warnings)
    assert done.churn and all(c["session"] == "2026-11-27" for c in done.churn.values())
    with psycopg.connect(market_db_url) as conn:
        assert {r.through for r in liquidity.load(conn)} == {days[-1]}
        stamp = conn.execute("SELECT max(updated_at) FROM pl_symbol_liquidity").fetchone()[0]
        before = rule_rows_text(conn)
    past = sync(market_db_url, as_of=days[-4])  # a past as_of: legacy universes of then, rule universes left
    assert any("a past as_of" in w for w in past.warnings) and not past.churn
    with psycopg.connect(market_db_url) as conn:
        assert rule_rows_text(conn) == before
        assert conn.execute("SELECT max(updated_at) FROM pl_symbol_liquidity").fetchone()[0] == stamp


def test_the_relational_group_of_a_rule_universe_has_its_liquidity_filter(appv2_database, small_market):
    url = appv2_database(MODEL, market=small_market)
    short_screens(url)
    sync(url)
    with psycopg.connect(url) as conn:
        found = dict(conn.execute("SELECT name, liquidity_filter FROM definition_groups WHERE liquidity_filter IS NOT NULL"
                                  ).fetchall())
        count = conn.execute("SELECT count(*) FROM group_memberships m JOIN definition_groups g ON g.id = m.group_id"
                             " WHERE g.name = 'rules_tradable_us'").fetchone()[0]
        description = conn.execute("SELECT description FROM definition_groups WHERE name = 'rules_crsp_mega'"
                                   ).fetchone()[0]
    assert set(found) == {f"rules_{k}" for k, d in definitions().items() if d.enabled}
    tradable = found["rules_tradable_us"]
    assert tradable["entry"]["median_dollar_volume"] == {"sessions": 20, "min": 1_000_000}
    assert tradable["entry"]["coverage"] == {"sessions": 20, "min_sessions": 18}
    assert found["rules_crsp_mega"]["band"] == {"percentile": 2.5}
    assert count > 0 and description.startswith("Mega cap (CRSP-style): ")
    # a changed definition updates the group's filter
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE cache_entries SET value = %s WHERE type = 'cache_config' AND name = 'rule_universes'"
                     " AND key = 'tradable_us'", (json.dumps({**OVERRIDES["tradable_us"], "entry": {
                         **SHORT_SCREENS, "min_price": 7.5}}),))
    sync(url)
    with psycopg.connect(url) as conn:
        lf = conn.execute("SELECT liquidity_filter FROM definition_groups WHERE name = 'rules_tradable_us'").fetchone()[0]
    assert lf["entry"]["min_price"] == 7.5


# --- the statistics kept at import time (pl_liquidity_stats, migration 0012) -----------------------------

def _kept(conn) -> tuple:
    """(session, windows, refreshed_at, fresh) of the state row of the kept statistics."""
    through, windows, _source, refreshed = conn.execute(
        "SELECT through, windows, source, refreshed_at FROM pl_liquidity_stats_state").fetchone()
    return through, tuple(windows), refreshed, liquidity.stats_current(conn)


def _plain(table: liquidity.StatsTable) -> tuple:
    """The table as lists with NaN as None (NaN != NaN), for exact comparisons (its columns are lists or numpy
    arrays, liquidity.StatsTable)."""
    def clean(values):
        return [None if isinstance(v, float) and math.isnan(v) else v for v in values]
    return (table.through, table.windows, table.symbols, clean(table.sessions_seen), clean(table.last_close),
            clean(table.streak), {n: clean(v) for n, v in table.median_dollar_volume.items()},
            {n: clean(v) for n, v in table.mean_dollar_volume.items()},
            {n: clean(v) for n, v in table.coverage.items()})


def test_the_sync_reads_the_kept_statistics_and_keeps_the_windows_its_definitions_read(market, small_market):
    """The `market` fixture's rebuild keeps the built-in windows (200); its rule_universes rows read 20-session
    windows. A dry run computes those without keeping them; the first sync that writes keeps them; the
    next sync reads them as kept (nothing computed again); what is kept equals the windows' statistics."""
    session = small_market.sessions[-1]
    with psycopg.connect(market) as conn:
        assert _kept(conn)[0:2] == (session, liquidity.default_windows()) and _kept(conn)[3]
    with psycopg.connect(market, autocommit=True) as conn:
        dry = run_sync(conn, SyncRequest(dry_run=True, as_of=AS_OF))
    with psycopg.connect(market) as conn:
        assert _kept(conn)[1] == liquidity.default_windows()  # the dry run kept nothing
    assert not [w for w in dry.warnings if "rule universes not built" in w]
    assert dry.universes_updated > 0
    first = sync(market)
    with psycopg.connect(market) as conn:
        through, windows, refreshed, fresh = _kept(conn)
        assert (through, fresh) == (session, True) and set(windows) == {20, 200}
        kept = liquidity.load_stats(conn, through, windows)
        assert _plain(kept) == _plain(liquidity.load_matrix(conn).stats(windows))
        rows = rule_rows(conn)
    again = sync(market, force=True)
    with psycopg.connect(market) as conn:
        assert _kept(conn)[2] == refreshed  # read as kept: not computed again
        assert rule_rows(conn) == rows and again.total_changes == 0
    assert first.churn[RULES + "tradable_us"]["after"] > 0


def test_statistics_the_table_moved_away_from_are_computed_again(market, small_market):
    """A writer that moves pl_symbol_liquidity without refreshing the statistics (here: an UPDATE by hand)
    leaves a state row whose source is not the table's: the next sync computes them again first, from the
    table as it is, and the rule universes follow."""
    sync(market)
    with psycopg.connect(market) as conn:
        symbol = next(iter(members(rule_rows(conn)["tradable_us"])))
        conn.execute("UPDATE pl_symbol_liquidity SET dollar_volumes = array_fill(10::real, ARRAY[cardinality("
                     "dollar_volumes)]), updated_at = now() WHERE symbol = %s", (symbol,))
        conn.commit()
        assert not liquidity.stats_current(conn)
    result = sync(market)
    with psycopg.connect(market) as conn:
        through, windows, _refreshed, fresh = _kept(conn)
        assert fresh
        kept = liquidity.load_stats(conn, through, windows)
        assert kept.median_dollar_volume[20][kept.symbols.index(symbol)] == 10.0
        assert symbol not in members(rule_rows(conn)["tradable_us"]) or not result.churn[RULES + "tradable_us"][
            "reconstitution"]


def test_the_rule_universes_reuse_the_legacy_builds_stock_rows_to_the_same_values(market):
    """publish with the rows the legacy build made (BuildResult.stock_rows) gives the values it gives alone."""
    from tickstockpl.sync import inputs as sync_inputs
    from tickstockpl.universes.build import build
    from tickstockpl.universes.config import default_config
    from tickstockpl.universes.model import FAMILIES_BY_MODE
    from tickstockpl.universes.rules import publish

    with psycopg.connect(market, autocommit=True) as conn:
        read = sync_inputs.read(conn, as_of=AS_OF, environment="DEFAULT", mode="full", may_skip=False, groups=False,
                                rules=True)
    built = build(read.snapshot, default_config(), FAMILIES_BY_MODE["full"])
    rules = read.rules
    args = (read.definitions, rules.rows, read.snapshot.securities, rules.previous, rules.session, rules.calendar)
    alone, shared = publish.publish(*args), publish.publish(*args, built.stock_rows)
    assert len(built.stock_rows) > 100
    assert [(e.universe, e.value) for e in shared.entries] == [(e.universe, e.value) for e in alone.entries]
    reused = {s for e in shared.entries for s in members(e.value)} & built.stock_rows.keys()
    assert reused  # the members the legacy build had rows for
