"""GET /api/universes/stock_universe/rules/{key}/explain?symbol= and `tickstockpl universes explain`: the
answer agrees with what the sync published, names the rule and its numbers, and refuses what it cannot
explain (another universe, an unknown key, statistics that do not stand at the session)."""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.cli.test_cache_sync_cli import run
from tests.support.asgi import InProcessServer
from tests.sync.test_rule_universes import market, rule_rows, sync  # noqa: F401 - `market` is a fixture
from tickstockpl.universes.model import members

EXPLAIN = "/api/universes/stock_universe/rules/{key}/explain"


@pytest.fixture
def client(market, redis_process):  # noqa: F811 - the fixture imported above
    sync(market)
    with InProcessServer(market, redis_url=redis_process.url) as server, server.client() as c:
        yield c


def test_the_explanation_agrees_with_the_published_members(client, market, small_market):  # noqa: F811
    with psycopg.connect(market) as conn:
        published = {key: members(value) for key, value in rule_rows(conn).items()}
    everyone = sorted(small_market.by_symbol)
    for key in ("crsp_mega", "crsp_small", "liquid_500"):
        inside = set(published[key])
        assert inside, key
        sample = sorted(inside)[:5] + [s for s in everyone if s not in inside][:5]
        for symbol in sample:
            body = client.get(EXPLAIN.format(key=key), params={"symbol": symbol}).json()
            assert body["member"] is (symbol in inside), (key, symbol, body["summary"])
            assert body["universe"] == f"stock_universe:rules:{key}" and body["session"] == "2026-11-27"
            assert body["constituted"] is True and body["was_member"] is False  # the first sync built it
            assert body["checks"] and all(set(c) == {"rule", "ok", "text"} for c in body["checks"])
            if body["member"]:
                assert body["change"]["action"] == "entered" and body["summary"].startswith("entered: ")
                assert body["member_since"] == "2026-11-27" and all(c["ok"] for c in body["checks"])
            else:
                assert body["member_since"] is None
                assert body["summary"].startswith("out: ") or body["change"] is not None
    mega = published["crsp_mega"][0]  # the largest: rank 1
    top = client.get(EXPLAIN.format(key="crsp_mega"), params={"symbol": mega.lower()}).json()
    assert top["symbol"] == mega and top["rank"] == 1 and 0 < top["percentile"] <= 70


def test_an_out_symbol_names_the_failing_rule_with_its_numbers(client, small_market):
    cheap = next(s for s in sorted(small_market.bar_symbols)
                 if 0 < (small_market.last_close(s) or 0) < 5 and small_market.by_symbol[s]["type"] == "CS")
    body = client.get(EXPLAIN.format(key="tradable_us"), params={"symbol": cheap}).json()
    assert body["member"] is False
    failing = [c for c in body["checks"] if not c["ok"]]
    assert any(c["rule"].endswith("min_price") and "< $5.00" in c["text"] for c in failing), failing
    unknown = client.get(EXPLAIN.format(key="tradable_us"), params={"symbol": "NOSUCH"}).json()
    assert unknown["member"] is False and unknown["checks"][0]["rule"] == "missing"


def test_what_it_cannot_explain(client, market):  # noqa: F811
    legacy = client.get("/api/universes/stock_universe/market_cap/mega_cap/explain", params={"symbol": "AAPL"})
    assert legacy.status_code == 404 and "is no rule universe" in legacy.json()["message"]
    nokey = client.get(EXPLAIN.format(key="nope"), params={"symbol": "AAPL"})
    assert nokey.status_code == 404 and "no rule universe stock_universe:rules:nope" in nokey.json()["message"]
    assert client.get(EXPLAIN.format(key="crsp_mega")).status_code == 422  # symbol is required
    assert client.get(EXPLAIN.format(key="crsp_mega"), params={"symbol": "X" * 21}).status_code == 422
    with psycopg.connect(market) as conn:
        conn.execute("INSERT INTO cache_entries (type, name, key, value, environment) VALUES"
                     " ('cache_config', 'rule_universes', 'crsp_micro', '{\"enabled\": false}', 'DEFAULT')")
    off = client.get(EXPLAIN.format(key="crsp_micro"), params={"symbol": "AAPL"})
    assert off.status_code == 404 and "disabled" in off.json()["message"]
    with psycopg.connect(market) as conn:
        conn.execute("DELETE FROM pl_symbol_liquidity")  # the statistics no longer stand at the session
    stale = client.get(EXPLAIN.format(key="crsp_mega"), params={"symbol": "AAPL"})
    assert stale.status_code == 409 and "pl_symbol_liquidity is empty" in stale.json()["message"]
    with psycopg.connect(market) as conn:
        assert conn.execute("SELECT count(*) FROM pl_symbol_liquidity").fetchone()[0] == 0  # a GET wrote nothing


def test_the_command_gives_the_same_answer(client, market):  # noqa: F811
    with psycopg.connect(market) as conn:
        symbol = members(rule_rows(conn)["crsp_mega"])[0]
    api = client.get(EXPLAIN.format(key="crsp_mega"), params={"symbol": symbol}).json()
    out = run(["universes", "explain", "crsp_mega", symbol, "--json"], market)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == api
    text = run(["universes", "explain", "crsp_mega", symbol], market)
    assert text.returncode == 0 and text.stdout.startswith(f"stock_universe:rules:crsp_mega on 2026-11-27: {symbol} entered: ")
    missing = run(["universes", "explain", "nope", symbol], market)
    assert missing.returncode == 1 and missing.stderr.startswith("error: no rule universe stock_universe:rules:nope")
