"""The start-up warm-up (api/warmup.py): every read-only route once, in process, before the port opens.

How fast the first answers then are is a benchmark figure (bench/extra.py `first_answers`), not a test.
"""

from __future__ import annotations

import re

from tests.servers import free_port
from tickstockpl.api.app import create_app
from tickstockpl.api.warmup import READS, paths
from tickstockpl.settings import Settings

KEY = "warm-up-test-key-0123"


def _recording(settings: Settings):
    app = create_app(settings)
    seen: list[tuple[str, int]] = []

    @app.middleware("http")
    async def record(request, call_next):
        response = await call_next(request)
        seen.append((request.url.path + (f"?{request.url.query}" if request.url.query else ""), response.status_code))
        return response

    return app, seen


def test_every_read_only_route_is_warmed():
    app = create_app(Settings(database_url="postgresql://x@127.0.0.1:1/x", api_keys=(KEY,)))
    routes = {path for path, operations in app.openapi()["paths"].items() if "get" in operations}
    warmed = {re.sub(r"/0{8}-0{4}-4000-8000-0{12}$", "/{id}", p.split("?")[0]) for p in READS}
    templates = {re.sub(r"\{\w+\}$", "{id}", r) for r in routes if r.count("{") <= 1}
    assert templates - warmed == set()
    assert "/api/universes/{type}/{name}/{key}" in routes
    assert "/api/universes/stock_universe/market_cap/mega_cap" in READS
    assert "/api/universes/{type}/{name}/{key}/explain" in routes  # and one rule universe's explain is warmed:
    assert [p for p in paths() if "/explain?" in p] == ["/api/universes/stock_universe/rules/crsp_large/explain?symbol=A"]


async def test_start_up_sends_each_read_once_and_opens_nothing_else(db_url):
    app, seen = _recording(Settings(database_url=db_url, api_keys=(KEY,), scheduler_enabled=False))
    async with app.router.lifespan_context(app):
        warmed = list(seen)
    assert [path for path, _status in warmed] == list(paths())
    assert all(status < 500 for _path, status in warmed), warmed  # 404s for the unknown ids; no failure
    assert app.openapi_schema is not None  # built during the start-up, not by the first /openapi.json


async def test_a_database_that_is_down_stops_the_warm_up_after_health():
    app, seen = _recording(Settings(database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/none",
                                    api_keys=(KEY,), scheduler_enabled=False))
    async with app.router.lifespan_context(app):
        warmed = list(seen)
    assert warmed == [("/health", 503)]
