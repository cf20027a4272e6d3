"""The API's one concurrency model (docs/ARCHITECTURE.md): every route `async def`, one pool (an
AsyncConnectionPool), one connection dependency (deps.get_conn), every dependency async (no thread hop),
synchronous shared code only through api/blocking.py on the request's own connection."""

from __future__ import annotations

import inspect

import anyio
import psycopg
import pytest
from fastapi.routing import APIRoute
from psycopg_pool import AsyncConnectionPool
from psycopg_pool.base import BasePool

from tickstockpl.api import blocking, deps


def _api_routes(routes):
    """Every APIRoute the app serves, included routers' too (FastAPI keeps an included router whole)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(getattr(route, "original_router", None), "routes", None)
        yield from _api_routes(included or getattr(route, "routes", None) or ())


def _dependencies(dependant):
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)


def _is_async(call) -> bool:
    return (inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)
            or inspect.iscoroutinefunction(getattr(call, "__call__", None)))


def test_every_route_is_async_on_the_one_connection_dependency(shared_api):
    routes = list(_api_routes(shared_api.app.routes))
    operations = sum(len(item) for item in shared_api.app.openapi()["paths"].values())
    assert sum(len(r.methods) for r in routes) == operations  # every operation the app serves is checked
    for route in routes:
        assert inspect.iscoroutinefunction(route.endpoint), f"{route.path}: a `def` route runs in the thread pool"
        calls = [d.call for d in _dependencies(route.dependant)]
        assert all(_is_async(call) for call in calls), f"{route.path}: a `def` dependency costs a thread hop"
        yielding = {call for call in calls if inspect.isasyncgenfunction(call) or inspect.isgeneratorfunction(call)}
        assert yielding <= {deps.get_conn}, f"{route.path}: a connection from somewhere else: {yielding}"
    with_conn = {r.path for r in routes if deps.get_conn in {d.call for d in _dependencies(r.dependant)}}
    assert "/api/processing/cache-sync/status/{job_id}" in with_conn and "/api/universes" in with_conn


def test_the_app_has_one_pool_and_no_semaphore_of_its_own(shared_api, keyed):
    assert keyed.get("/api/universes").status_code == 200
    services = shared_api.app.state.services
    pools = [name for name, value in vars(services).items() if isinstance(value, BasePool)]
    assert pools == ["pool"] and isinstance(services.pool, AsyncConnectionPool)
    state = vars(shared_api.app.state)["_state"]
    assert not [name for name, value in state.items() if isinstance(value, anyio.Semaphore)]
    aliases = [name for name, value in vars(deps).items()
               if getattr(value, "__metadata__", None) and getattr(value, "__origin__", None)
               in (psycopg.Connection, psycopg.AsyncConnection)]
    assert aliases == ["ConnDep"]


async def test_blocking_run_gives_synchronous_code_the_request_connection(db_url):
    def work(conn) -> list:
        conn.execute("CREATE TEMP TABLE t (x int)")
        with conn.transaction():
            conn.execute("INSERT INTO t VALUES (1), (2)")
        with pytest.raises(ZeroDivisionError):
            with conn.transaction():
                conn.execute("INSERT INTO t VALUES (3)")
                1 / 0  # rolled back: 3 is not kept
        with conn.cursor(row_factory=psycopg.rows.namedtuple_row) as cur:
            named = [row.x for row in cur.execute("SELECT x FROM t ORDER BY x")]
        result = conn.execute("UPDATE t SET x = x * 10")
        return [named, result.rowcount, conn.execute("SELECT x FROM t ORDER BY x").fetchall(),
                conn.execute("SELECT 1 WHERE false").fetchone()]

    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as aconn:
        assert await blocking.run(aconn, work) == [[1, 2], 2, [(10,), (20,)], None]
        with pytest.raises(psycopg.errors.UndefinedTable):  # the driver's own errors
            await blocking.run(aconn, lambda conn: conn.execute("SELECT * FROM no_such_table"))


async def test_the_blocking_view_offers_binary_cursors_descriptions_and_per_cursor_loaders(db_url):
    """What the dry-run read of the explain route uses (market/snapshot.read, store.read_stored,
    liquidity.load_stats): a binary cursor gives the same values, `description` names the columns, a loader
    set on one cursor's adapters applies to that cursor only."""
    from psycopg.types.json import set_json_loads

    query = "SELECT 7::int AS n, ARRAY[1.5, 'NaN']::float8[] AS xs, DATE '2026-12-01' AS d, '{\"a\": 1}'::jsonb AS j"

    def work(conn) -> list:
        with conn.cursor(binary=True) as cur:
            cur.execute(query)
            names = [c.name for c in cur.description]
            binary = cur.fetchall()
        with conn.cursor(row_factory=psycopg.rows.namedtuple_row) as cur:
            set_json_loads(lambda data: {"loaded": bytes(data).decode()}, cur)
            special = cur.execute(query).fetchone().j
        plain = conn.execute(query).fetchone()[3]  # another cursor: the connection's own loader
        return [names, binary, special, plain]

    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as aconn:
        names, rows, special, plain = await blocking.run(aconn, work)
    assert names == ["n", "xs", "d", "j"]
    (n, xs, d, j), = rows
    assert (n, xs[0], d, j) == (7, 1.5, __import__("datetime").date(2026, 12, 1), {"a": 1}) and xs[1] != xs[1]
    assert special == {"loaded": '{"a": 1}'} and plain == {"a": 1}


def test_no_route_runs_synchronous_database_code_off_the_request_connection():
    """Routes reach synchronous code only through blocking.run (the request's connection); blocking.call
    (a thread without a connection) only for the Redis probe of /health."""
    import ast
    from pathlib import Path

    import tickstockpl.api.routes as routes

    found = []
    for path in sorted(Path(routes.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "call" \
                    and getattr(node.func.value, "id", None) == "blocking":
                found.append((path.name, ast.unparse(node.args[0])))
    assert found == [("health.py", "_redis_up")]
