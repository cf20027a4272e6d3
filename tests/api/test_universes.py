"""Universe endpoints: the list, members now and on a past date, the change log."""

from __future__ import annotations

import datetime as dt

import psycopg

from tests.support.markets import delist, stock_symbol
from tests.support.waiting import wait_status
from tickstockpl.jobs.runtime import start_job

TOP10 = "/api/universes/stock_universe/market_leaders/top_10_stocks"


def _two_syncs(client, db_url, market):
    """A sync on the older session, then S003 delisted and a sync (via the API) on the newer one."""
    start_job(db_url, as_of=market[1], background=False, triggered_by="cli")
    between = dt.datetime.now(dt.timezone.utc)
    delist(db_url, "S003")
    job_id = client.post("/api/processing/cache-sync/trigger", json={"mode": "full"}).json()["job_id"]
    assert wait_status(client, job_id, ("completed", "failed"))["status"] == "completed"
    return between, job_id


def test_members_now_and_as_of_each_session(client, db_url, market):
    _two_syncs(client, db_url, market)
    now = client.get(TOP10).json()
    assert now["universe"] == "stock_universe:market_leaders:top_10_stocks" and now["as_of"] is None
    assert now["members"] == [stock_symbol(i) for i in range(11) if i != 3]  # by market cap, stored order
    assert now["count"] == 10 and now["updated_at"].endswith("Z")

    before = client.get(TOP10, params={"as_of": market[1].isoformat()}).json()
    after = client.get(TOP10, params={"as_of": market[0].isoformat()}).json()
    assert "S003" in before["members"] and "S003" not in after["members"]
    assert before["as_of"] == market[1].isoformat() and before["members"] == sorted(before["members"])
    assert set(after["members"]) == set(now["members"])
    long_ago = client.get(TOP10, params={"as_of": "2001-01-02"}).json()
    assert long_ago["members"] == [] and long_ago["count"] == 0


def test_list_of_universes(client, db_url, market):
    assert client.get("/api/universes").json() == {"universes": [], "total": 0}
    start_job(db_url, background=False, triggered_by="cli")
    with psycopg.connect(db_url) as conn:  # rows the sync does not own are not universes
        conn.execute("INSERT INTO cache_entries (type, name, key, value, environment) VALUES"
                     " ('cache_config', 'theme_definitions', 'ai', '[\"S001\"]', 'DEFAULT'),"
                     " ('stock_universe', 'complete', 'all_stocks', '[\"X\"]', 'OTHER')")
    body = client.get("/api/universes").json()
    by_id = {u["universe"]: u for u in body["universes"]}
    assert body["total"] == len(body["universes"]) > 20
    combo = by_id["stock_etf_combo:stock_etf_test:combo_test"]
    assert set(combo) == {"universe", "type", "name", "key", "count", "updated_at"}
    members = client.get("/api/universes/stock_etf_combo/stock_etf_test/combo_test").json()
    assert combo["count"] == members["count"] == len(members["members"])
    assert not any(u["type"] == "cache_config" for u in body["universes"])
    assert by_id["stock_universe:complete:all_stocks"]["count"] == 61


def test_change_log_since_and_by_universe(client, db_url, market):
    between, job_id = _two_syncs(client, db_url, market)
    universe = "stock_universe:market_leaders:top_10_stocks"
    body = client.get("/api/universes/changes",
                      params={"since": between.isoformat(), "universe": universe}).json()
    assert {(c["symbol"], c["action"]) for c in body["changes"]} >= {("S003", "removed")}
    assert all(c["job_id"] == job_id and c["universe"] == universe for c in body["changes"])
    assert body["count"] == len(body["changes"])
    assert set(body["changes"][0]) == {"id", "job_id", "universe", "symbol", "action", "reason", "created_at"}
    everything = client.get("/api/universes/changes", params={"limit": 1000}).json()
    assert everything["count"] > body["count"]
    ids = [c["id"] for c in everything["changes"]]
    assert ids == sorted(ids)
    page = client.get("/api/universes/changes", params={"limit": 5, "offset": 5}).json()
    assert [c["id"] for c in page["changes"]] == ids[5:10]
    assert client.get("/api/universes/changes", params={"since": "2999-01-01T00:00:00Z"}).json()["changes"] == []


def test_unknown_universes_and_bad_parameters(client, market):
    assert client.get("/api/universes/stock_universe/market_leaders/top_7").status_code == 404
    assert client.get("/api/universes/cache_config/theme_definitions/ai").status_code == 404
    assert client.get("/api/universes/stock_universe/complete/all_stocks",
                      params={"as_of": "2024-01-01"}).status_code == 404  # nothing ever stored
    bad_date = client.get(TOP10, params={"as_of": "yesterday"})
    assert bad_date.status_code == 422 and "as_of" in bad_date.json()["message"]
    bad_since = client.get("/api/universes/changes", params={"since": "not-a-time"})
    assert bad_since.status_code == 422 and "since" in bad_since.json()["message"]
    nul = client.get("/api/universes/changes", params={"universe": "a\x00b"})
    assert nul.status_code == 422 and "universe" in nul.json()["message"]


def test_churn_of_two_syncs(client, db_url, market):
    _two_syncs(client, db_url, market)
    older, newer = market[1].isoformat(), market[0].isoformat()
    body = client.get("/api/universes/churn", params={"from": older, "to": newer,
                                                      "universe": "stock_universe:market_leaders:top_10_stocks"}).json()
    assert body["from"] == older and body["to"] == newer and body["count"] == 1
    [top10] = body["universes"]
    assert [(d["day"], d["before"], d["after"], d["entered"], d["left"]) for d in top10["days"]] == [
        (older, 0, 10, 10, 0), (newer, 10, 10, 1, 1)]  # built, then S003 delisted and the 11th in its place
    assert top10["days"][1]["turnover"] == 0.1 and top10["turnover"] == round(12 / 10, 6)
    everything = client.get("/api/universes/churn", params={"from": older, "to": newer}).json()
    assert everything["count"] == len(everything["universes"]) > 20
    only_newer = client.get("/api/universes/churn", params={"from": newer, "to": newer}).json()
    assert all(u["members_start"] == u["days"][0]["before"] for u in only_newer["universes"])
    assert {u["universe"] for u in only_newer["universes"]} < {u["universe"] for u in everything["universes"]}
    default = client.get("/api/universes/churn").json()  # to = today in New York, from = 30 days before
    assert (default["from"], default["to"]) == ("2026-10-29", "2026-11-28") and default["count"] == everything["count"]
    backwards = client.get("/api/universes/churn", params={"from": newer, "to": older})
    assert backwards.status_code == 422 and "after to" in backwards.json()["message"]
    assert client.get("/api/universes/churn", params={"from": "2026-02-30"}).status_code == 422
