"""`create_app(settings)`: the FastAPI application, its lifespan and its error handling.

Lifespan: `Services.start` (abandoned-job recovery, outbox relay, scheduler; in a worker thread), then
`Services.open_pool` (the routes' one AsyncConnectionPool, on the event loop) and `warm_up` (api/warmup.py:
every read-only route once, in process) on startup; `close_pool` and `Services.close` on shutdown.
Routers: one per resource in `api/routes/`; every route is `async def` on `deps.ConnDep` (api/deps.py says
how to add one).

Errors are mapped to status codes in one place (`_install_error_handlers`), from the table the classes
of errors.py carry (`http_status`; driver errors through their one translation); every answer is a
JSON object with `message`, and nothing a client sends can cause a 500. A 503 never carries what the
driver said (it names hosts, ports, socket paths): the body says which service is unavailable, the
log line has the detail.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

import anyio.to_thread
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from tickstockpl import __version__
from tickstockpl.api import blocking
from tickstockpl.api.auth import HEADER, failed_key_check
from tickstockpl.api.services import Services
from tickstockpl.api.warmup import warm_up
from tickstockpl.db.drivers import as_tickstock
from tickstockpl.errors import AuthError, ServiceUnavailable, TickStockError
from tickstockpl.settings import Settings

log = logging.getLogger(__name__)

# The largest body the API accepts: every request body it defines is far smaller (a schedule update
# of 100 universe names is about 10 KB), and nothing is parsed before this check.
MAX_BODY_BYTES = 64 * 1024


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        anyio.to_thread.current_default_thread_limiter().total_tokens = blocking.THREADS
        services = app.state.services = await blocking.call(Services.start, settings)
        await services.open_pool()
        await warm_up(app, settings.api_keys[0] if settings.api_keys else None)  # api/warmup.py
        try:
            yield
        finally:
            await services.close_pool()
            await blocking.call(services.close)

    app = FastAPI(
        title="TickStockPL", version=__version__, lifespan=lifespan,
        description="Cache (universe) sync jobs, universes, health and metrics for TickStockAppV2. "
                    f"Send `{HEADER}` on every /api call.",
    )
    app.state.settings = settings
    _install_error_handlers(app)

    from tickstockpl.api.routes import cache_sync, health, metrics, processing, universes

    app.include_router(cache_sync.router)
    app.include_router(universes.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(processing.router)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=[HEADER, "Content-Type"])
    return app


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes answers 413 (JSON) before anything reads it.

    A declared Content-Length is checked from the headers; a chunked body is read up to the limit
    (and then replayed to the app), so neither form can make the server hold a large body in memory.
    """

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = None, False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        if declared is not None or not chunked:
            if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        pending = iter(messages)

        async def replay():
            for message in pending:
                return message
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope, receive, send) -> None:
        await error(413, f"request body too large: at most {self.limit} bytes")(scope, receive, send)


def error(status: int, message: str, **fields) -> JSONResponse:
    body = {"success": False, "message": message}
    body.update({k: v for k, v in fields.items() if v is not None})
    return JSONResponse(body, status_code=status)


METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers on this request's path (a GET route also answers HEAD)."""
    found = []
    for method in METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            found.append(method)
    return found


def _field_name(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) if parts else str(loc[0] if loc else "body")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        refused = failed_key_check(request)
        if refused is not None:
            return await unauthorized(request, refused)
        errors = []
        for item in exc.errors():
            loc = tuple(item.get("loc", ()))
            kind = item.get("type", "")
            message = "malformed JSON body" if kind == "json_invalid" else str(item.get("msg", "invalid"))
            errors.append({"field": _field_name(loc) if kind != "json_invalid" else "body",
                           "location": str(loc[0]) if loc else "body", "message": message, "type": kind})
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
        return error(422, f"invalid request: {summary}", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        refused = failed_key_check(request) if exc.status_code == 400 else None
        if refused is not None:
            return await unauthorized(request, refused)
        if exc.status_code == 400 and "parsing the body" in message:  # undecodable bytes: as malformed JSON
            return error(422, "invalid request: body: malformed JSON body",
                         errors=[{"field": "body", "location": "body", "message": "malformed JSON body",
                                  "type": "json_invalid"}])
        response = error(exc.status_code, message)
        if exc.headers:
            response.headers.update(exc.headers)
        if exc.status_code == 405:  # Starlette names the methods of the first route of the path only
            response.headers["Allow"] = ", ".join(allowed_methods(request))
        return response

    @app.exception_handler(TickStockError)
    async def domain_error(request: Request, exc: TickStockError) -> JSONResponse:
        """Every TickStockError answers its class's `http_status` (errors.py) with its public message."""
        if isinstance(exc, ServiceUnavailable):
            if exc.logged:
                log.warning("service unavailable during %s %s: %s", request.method, request.url.path, exc)
        elif exc.http_status >= 500:  # StatementRefused: PL's or the database's fault, logged with its traceback
            return await unexpected(request, exc)
        response = error(exc.http_status, exc.public_message(), job_id=getattr(exc, "live_id", None))
        if isinstance(exc, AuthError):
            response.headers["WWW-Authenticate"] = HEADER
        return response

    unauthorized = domain_error

    @app.exception_handler(psycopg.Error)  # also psycopg_pool's PoolTimeout (an OperationalError)
    async def driver_error(request: Request, exc: psycopg.Error) -> JSONResponse:
        """A driver error no route turned into a TickStockError: its one translation (db.connect.translate)."""
        translated = as_tickstock(exc)
        if isinstance(translated, TickStockError):
            return await domain_error(request, translated)
        return await unexpected(request, exc)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error during %s %s", request.method, request.url.path)
        return error(500, "internal error")
