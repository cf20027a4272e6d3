"""The API in this process, over ASGI: `create_app(settings)` with its lifespan, no socket, no subprocess.

    with InProcessServer(db_url, redis_url=..., api_keys=KEYS) as server:
        with server.client() as c:           # the first key sent as X-API-Key; key=False sends none
            c.get("/health")

For tests whose point is the answer (validation, auth, bodies, status codes, what a route reads and
writes): the same app, settings and services as `tickstockpl serve` (the settings are read by
`Settings.from_env` from the same variables tests/live_server.py gives a subprocess), the requests sent
with httpx through `httpx.ASGITransport`. What only a process shows (its log, a crash, a restart, a
signal, uvicorn's own HTTP handling, two servers) needs tests/live_server.py.

The app runs on an event loop in a thread of its own (an anyio blocking portal); its lifespan (the pools,
abandoned-job recovery, the relay, the warm-up) is entered and left in one task on that loop, as uvicorn
does. The client is `127.0.0.1`: a request comes from the local host, as it does to a live server.
"""

from __future__ import annotations

import contextlib
import functools

import anyio
import anyio.from_thread
import httpx

from tests.live_server import DEFAULT_KEY, server_environ
from tickstockpl.api.app import create_app
from tickstockpl.settings import Settings

BASE_URL = "http://tickstockpl.test"


class InProcessServer:
    def __init__(self, db_url: str | None, *, redis_url: str | None = None,
                 api_keys: tuple[str, ...] = (DEFAULT_KEY,), scheduler: bool = False,
                 env: dict[str, str] | None = None):
        environ = server_environ(db_url, redis_url=redis_url, api_keys=api_keys, scheduler=scheduler, env=env)
        self.settings = Settings.from_env(environ, dotenv=None)
        self.api_keys = api_keys
        self.app = create_app(self.settings)
        self._stack: contextlib.ExitStack | None = None
        self._portal = None
        self._http: httpx.AsyncClient | None = None
        self._stop: anyio.Event | None = None
        self._lifespan = None

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_keys[0]} if self.api_keys else {}

    def client(self, *, key: bool = True) -> "Client":
        return Client(self, self.headers if key else {})

    # --- the app's lifespan, on the portal's loop ---------------------------------------------
    async def _run(self, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        self._stop = anyio.Event()
        async with self.app.router.lifespan_context(self.app):
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False, client=("127.0.0.1", 50000))
            async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
                self._http = http
                task_status.started()
                await self._stop.wait()
            self._http = None

    def start(self) -> "InProcessServer":
        self._stack = contextlib.ExitStack()
        self._portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())
        try:
            self._lifespan, _ = self._portal.start_task(self._run)
        except BaseException:
            self._stack.close()
            self._stack = self._portal = None
            raise
        return self

    def send(self, method: str, url: str, **options) -> httpx.Response:
        if self._http is None:
            raise RuntimeError("the in-process server is not started")
        return self._portal.call(functools.partial(self._http.request, method, url, **options))

    def close(self) -> None:
        if self._stack is None:
            return
        try:
            if self._stop is not None:
                self._portal.call(self._stop.set)
            if self._lifespan is not None:
                self._lifespan.result(60)  # the shutdown half of the lifespan: services closed
        finally:
            self._stack.close()
            self._stack = self._portal = self._lifespan = None

    def __enter__(self) -> "InProcessServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


class Client:
    """What a test calls: httpx's request methods with default headers, sent to the in-process app.
    A `timeout` is accepted (the tests of a live server pass one) and has no effect in process."""

    def __init__(self, server: InProcessServer, headers: dict[str, str]):
        self.server = server
        self.headers = dict(headers)

    def request(self, method: str, url: str, *, headers=None, timeout=None, **options) -> httpx.Response:
        merged = httpx.Headers(self.headers)
        merged.update(httpx.Headers(headers or {}))  # case-insensitive: a test's own header wins
        return self.server.send(method, url, headers=merged, **options)

    def get(self, url: str, **options) -> httpx.Response:
        return self.request("GET", url, **options)

    def post(self, url: str, **options) -> httpx.Response:
        return self.request("POST", url, **options)

    def delete(self, url: str, **options) -> httpx.Response:
        return self.request("DELETE", url, **options)

    def options(self, url: str, **options) -> httpx.Response:
        return self.request("OPTIONS", url, **options)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        pass
