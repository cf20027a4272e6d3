"""One router per resource; `api/app.py` includes them. Every route is `async def` and reads on `conn: ConnDep`,
with an async reader or `await blocking.run(conn, shared_fn, ...)` (api/deps.py shows how to add a route;
tests/api/test_concurrency_model.py checks every route and dependency)."""
