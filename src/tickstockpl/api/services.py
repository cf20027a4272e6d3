"""What a serving process runs besides the routes, started and stopped by the app's lifespan.

    1. the one connection pool of the routes (psycopg_pool.AsyncConnectionPool, autocommit connections;
       opened by `open_pool` on the server's event loop, closed by `close_pool`; api/deps.ConnDep)
    2. recovery of jobs abandoned by a process that died (jobs.runtime.recover_abandoned),
       at start and then every ABANDONED_CHECK_S, since the lock may be freed at any time
    3. the outbox relay thread (events/relay.py); an embedded Redis when the demo has none
    4. the daily scheduler, when settings.scheduler_enabled

A database that cannot be reached at start does not stop the server: /health answers 503 and
the pool keeps trying; recovery runs on the next check.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from tickstockpl.errors import TickStockError, first_line
from tickstockpl.settings import Settings

log = logging.getLogger(__name__)

POOL_MIN, POOL_MAX = 2, 12
CONNECT_TIMEOUT_S = 3
ABANDONED_CHECK_S = 10.0
SHUTDOWN_JOB_WAIT_S = 20.0  # a stopping server lets a running sync finish this long (else: abandoned)
REDIS_PROBE_TIMEOUT_S = 0.5
# A pool retries a failed connection with doubling delays until this many seconds have passed, then
# gives up and the next request starts a fresh series: after an outage of any length the database is
# found again within a few seconds (psycopg_pool's default, 300 s, let the delay grow past a minute).
RECONNECT_TIMEOUT_S = 10.0


def _server_spoke(conn) -> bool:
    """Whether the server sent something to (or closed) this idle pooled connection: a zero-timeout
    select, no round trip. A pool connection never LISTENs, so that only happens when its backend is
    going away (a restart, a shutdown, a crash), which then leaves a FATAL message or EOF to read."""
    if conn.closed or conn.broken:
        return True
    try:
        readable, _writable, _failed = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


async def check_idle(conn: psycopg.AsyncConnection) -> None:
    """Pool `check`: a connection whose server went away (restarted database) is replaced before a
    request gets it; the round trip is only paid when the select saw something."""
    if _server_spoke(conn):
        await AsyncConnectionPool.check_connection(conn)


@dataclass
class Services:
    settings: Settings
    db_url: str
    redis_url: str | None
    pool: AsyncConnectionPool | None = None  # open_pool / close_pool, on the event loop
    relay: Any = None
    redis_probe: Any = None  # a client with short timeouts, for /health
    scheduler: Any = None
    embedded_redis: Any = None
    jobs: set = field(default_factory=set)  # JobHandles of syncs this process runs
    _stop: threading.Event = field(default_factory=threading.Event)
    _watcher: threading.Thread | None = None

    @classmethod
    def start(cls, settings: Settings) -> "Services":
        """Everything but the pool (blocking: run it in a worker thread); then `await open_pool()`."""
        if not settings.database_url:
            raise TickStockError("DATABASE_URL is not set")
        redis_url, embedded = settings.redis_url, None
        if redis_url is None and settings.demo:
            from tickstockpl.db.embedded import start_redis

            embedded, redis_url = start_redis(settings.data_dir / "redis")
        services = cls(settings=settings, db_url=settings.database_url, redis_url=redis_url,
                       embedded_redis=embedded)
        services._recover()
        services._watcher = threading.Thread(target=services._watch_abandoned, name="abandoned-jobs", daemon=True)
        services._watcher.start()
        if redis_url is not None:
            from tickstockpl.events.relay import redis_client

            services.redis_probe = redis_client(redis_url, timeout_s=REDIS_PROBE_TIMEOUT_S)
        if redis_url is None:
            log.warning("REDIS_URL is not set: events stay in the outbox and /health reports degraded")
        else:
            from tickstockpl.events.relay import Relay

            services.relay = Relay(settings.database_url, redis_url, stream_maxlen=settings.stream_maxlen,
                                   retention_hours=settings.outbox_retention_hours)
            services.relay.start()
        if settings.scheduler_enabled:
            from tickstockpl.pipeline.scheduler import start_scheduler

            services.scheduler = start_scheduler(settings, settings.database_url)
        return services

    async def open_pool(self) -> None:
        """Open the routes' pool; must run on the server's event loop (an async pool belongs to the loop
        that opened it). It does not wait for a connection: a database down at start is found by /health."""
        self.pool = AsyncConnectionPool(
            self.db_url, min_size=POOL_MIN, max_size=POOL_MAX, open=False, name="tickstockpl-api",
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S, "application_name": "tickstockpl-api"},
            check=check_idle, reconnect_timeout=RECONNECT_TIMEOUT_S,
        )
        await self.pool.open(wait=False)

    async def close_pool(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    def _recover(self) -> None:
        from tickstockpl.jobs.runtime import recover_abandoned

        from tickstockpl import outages
        from tickstockpl.errors import ServiceUnavailable

        try:
            recover_abandoned(self.db_url, self.settings.environment)
        except (ServiceUnavailable, psycopg.OperationalError) as err:  # one line down, one when back
            outages.down("PostgreSQL", self.db_url, err)
        except (TickStockError, psycopg.Error) as err:
            log.warning("abandoned-job check skipped: %s", first_line(err))
        else:
            outages.up("PostgreSQL", self.db_url)

    def _watch_abandoned(self) -> None:
        while not self._stop.wait(ABANDONED_CHECK_S):
            self._recover()

    async def start_job(self, **options):
        """Start a sync in a background thread of this process (jobs.runtime.start_job), tracked so that
        shutdown can wait for it. The claim (advisory lock and job row, a few ms, on the job's own
        connection) runs in a worker thread; the answer comes once the row is committed."""
        from tickstockpl.api import blocking

        return await blocking.call(self._start_job, options)

    def _start_job(self, options: dict):
        from tickstockpl.jobs.runtime import start_job

        handle = start_job(self.db_url, environment=self.settings.environment, background=True,
                           on_done=self.jobs.discard, **options)
        if handle.thread is not None and handle.thread.is_alive():
            self.jobs.add(handle)
        return handle

    async def trigger_run(self, **options):
        """Start a pipeline run in a background thread of this process (pipeline.coordinator.trigger_run);
        its claim runs in a worker thread, the answer comes once the run row is committed."""
        from tickstockpl.api import blocking
        from tickstockpl.pipeline import coordinator

        return await blocking.call(lambda: coordinator.trigger_run(self.settings, self.db_url, **options))

    def close(self) -> None:
        self._stop.set()
        deadline = time.monotonic() + SHUTDOWN_JOB_WAIT_S
        for handle in list(self.jobs):
            if not handle.wait(max(0.0, deadline - time.monotonic())):
                log.warning("stopping with sync %s still running: it will be marked abandoned", handle.job_id)
        if self.scheduler is not None:
            try:
                self.scheduler.shutdown()
            except Exception:  # noqa: BLE001 - shutting down: report, carry on
                log.exception("scheduler shutdown failed")
        if self.relay is not None:
            self.relay.stop()
        if self.redis_probe is not None:
            self.redis_probe.close()
        if self._watcher is not None:
            self._watcher.join(2)
        if self.embedded_redis is not None:
            from tickstockpl.db.embedded import stop_redis

            stop_redis(self.embedded_redis)
            self.embedded_redis = None
