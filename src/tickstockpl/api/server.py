"""`serve(settings)`: run the API in this process with one uvicorn worker (`tickstockpl serve`).

Refuses to start without API keys outside the demo. In the demo, missing pieces are filled in:
an embedded PostgreSQL when DATABASE_URL is unset, an embedded Redis when REDIS_URL is unset
(started by `api/services.py`), and a generated key printed once on stderr.
Logging: structlog renders every record (ours, uvicorn's) as one JSON line on stderr; request
headers are never logged, so neither are keys. A line repeated with the same template is let
through at most 5 times a minute (`limits.RepeatFilter`).
Connections: `api/limits.py` (request read timeouts, a connection cap below the open-file limit,
the oldest idle connection closed for a new one); uvicorn's keep-alive timeout is 5 s.

Bind address: 0.0.0.0 by default, because AppV2 reaches PL over the network (contract §1:
production host name `tickstockpl`); a single-host installation sets TICKSTOCKPL_HOST=127.0.0.1.
"""

from __future__ import annotations

import logging
import sys

from tickstockpl.errors import ConfigError
from tickstockpl.settings import Settings


def configure_logging(level: int = logging.INFO) -> None:
    import structlog

    def drop_color(logger, method, event):
        event.pop("color_message", None)
        return event

    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), drop_color],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, structlog.processors.JSONRenderer()],
    )
    from tickstockpl.api.limits import RepeatFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Quiet while a dependency is down: APScheduler's INFO line on every wake-up and psycopg_pool's warning
    # on every reconnection attempt are dropped; tickstockpl.outages says "down" once and "back" once.
    logging.getLogger("apscheduler").setLevel(max(level, logging.WARNING))
    logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)


def prepare(settings: Settings) -> tuple[Settings, object | None]:
    """Check the settings and fill in the demo's embedded database and key; returns (settings, handle)."""
    handle = None
    if settings.demo and not (settings.api_keys and settings.database_url and settings.redis_url):
        from tickstockpl import demo_data  # the demo's data folder: named, the newest kept demo, or <root>/serve

        folder, why = demo_data.serve_folder(settings)
        print(f"demo mode: data folder {folder} ({why})", file=sys.stderr, flush=True)
        settings = settings.with_(data_dir=folder)
    if not settings.api_keys:
        if not settings.demo:
            raise ConfigError("no API key configured: set TICKSTOCKPL_API_KEYS (comma-separated) before `serve`")
        key = demo_data.api_key(settings.data_dir)  # kept in the folder: the same key on every start
        print(f"demo API key (send it as X-API-Key): {key}", file=sys.stderr, flush=True)
        settings = settings.with_(api_keys=(key,))
    if not settings.database_url:
        if not settings.demo:
            raise ConfigError("DATABASE_URL is not set (use `tickstockpl demo` to run on embedded servers)")
        from tickstockpl.db.embedded import start_postgres
        from tickstockpl.db.migrate import upgrade

        handle, url = start_postgres(settings.data_dir / "postgres", data_root=settings.data_dir)
        try:
            upgrade(url)
        except BaseException:
            handle.stop()
            raise
        settings = settings.with_(database_url=url)
    return settings, handle


def serve(settings: Settings) -> None:
    import uvicorn

    from tickstockpl.api import limits
    from tickstockpl.api.app import create_app

    from tickstockpl import lifecycle

    lifecycle.exit_on_signals(0)  # a stop signal outside uvicorn's own handling: exit 0, cleanup runs
    settings, embedded_pg = prepare(settings)
    listener = lifecycle.listen_socket(settings.host, settings.port)  # a busy port: one line, exit 5
    configure_logging()
    open_files = limits.raise_open_file_limit()
    guard = limits.Limits(max_connections=limits.connection_cap(settings.max_connections, open_files),
                          header_timeout_s=settings.header_timeout_s)
    logging.getLogger(__name__).info(
        "starting TickStockPL API on %s:%s (%s); at most %d connections (open-file limit %d), request headers"
        " within %d s", settings.host, settings.port, settings, guard.max_connections, open_files,
        settings.header_timeout_s)
    config = uvicorn.Config(create_app(settings), host=settings.host, port=settings.port, workers=1,
                            http=limits.guarded_protocol(guard), timeout_keep_alive=limits.KEEP_ALIVE_S,
                            backlog=limits.BACKLOG,
                            log_config=None, access_log=False, proxy_headers=False, server_header=False,
                            timeout_graceful_shutdown=5)
    try:
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        if embedded_pg is not None:  # demo mode: stop the embedded PostgreSQL, waiting until it has exited
            with lifecycle.signals_blocked():
                embedded_pg.stop()
