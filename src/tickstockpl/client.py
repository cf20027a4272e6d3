"""A small client for TickStockAppV2: the TickStockPL HTTP API and its cache-sync events.

It depends on nothing else in the `tickstockpl` package (only httpx and the standard library;
`redis` is imported by `CacheEventListener` when one is created), so AppV2 can copy this one
file or install the package and import it.

    from tickstockpl.client import TickStockPLClient, Conflict

    with TickStockPLClient("http://tickstockpl:8080", api_key="...") as pl:
        try:
            job = pl.trigger_cache_sync()             # 202 -> {"success", "job_id", "mode", "message"}
        except Conflict as err:
            job = {"job_id": err.job_id}              # one is already live: follow that one
        final = pl.wait_until_done(job["job_id"], timeout=600)
        print(final["status"], final["result"])

Errors (every one carries `status_code` (None when no answer came) and the decoded `body`):

    TickStockPLError            base class
    ├── Unauthorized            401: missing or wrong X-API-Key
    ├── NotFound                404: unknown job id / path
    ├── Conflict                409: a sync or run is already live; `job_id` / `run_id` name it
    ├── InvalidRequest          400 / 422: `message` names the bad field, `errors` lists them
    ├── RateLimited             429: too many triggers; `retry_after` seconds
    ├── ServiceDown             connection refused, timeout, 502/503/504
    └── WaitTimeout             wait_until_done ran out of time; `last` is the last status seen

Events: `CacheEventListener(redis_url)` subscribes (plain SUBSCRIBE) to the cache-sync channels
and calls the handlers registered for each envelope's `event` name (falling back to `event_type`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any, Callable, Iterable

import httpx

__all__ = [
    "CACHE_PHASE_CHANNELS",
    "CACHE_SYNC_CHANNELS",
    "CacheEventListener",
    "Conflict",
    "InvalidRequest",
    "NotFound",
    "RateLimited",
    "ServiceDown",
    "TickStockPLClient",
    "TickStockPLError",
    "Unauthorized",
    "WaitTimeout",
]

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
CACHE_SYNC_PREFIX = "/api/processing/cache-sync"
PROCESSING_PREFIX = "/api/processing"
FINISHED = frozenset({"completed", "failed", "error"})

# Channels of contract §3.2 (AppV2's processing_subscriber) and of the pipeline's cache phase (§3.3).
# Written out here because this module may not import the server's events/catalog.py; a test checks
# that both lists agree.
CACHE_SYNC_CHANNELS = (
    "tickstock:cache:sync_triggered",
    "tickstock:cache:sync_complete",
    "tickstock:universe:updated",
    "tickstock:cache:ipo_assignment",
    "tickstock:cache:delisting_cleanup",
)
CACHE_PHASE_CHANNELS = (
    "tickstock:cache:started",
    "tickstock:cache:progress",
    "tickstock:cache:completed",
)


# --- errors ------------------------------------------------------------------------------------
class TickStockPLError(Exception):
    """Base class. `message` is the server's message (or ours); `body` the decoded JSON, if any."""

    def __init__(self, message: str, *, status_code: int | None = None, body: Any = None):
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.body = body


class Unauthorized(TickStockPLError):
    pass


class NotFound(TickStockPLError):
    pass


class Conflict(TickStockPLError):
    """A sync job (`job_id`) or pipeline run (`run_id`) is already pending or running."""

    def __init__(self, message: str, *, status_code: int | None = 409, body: Any = None):
        super().__init__(message, status_code=status_code, body=body)
        fields = body if isinstance(body, dict) else {}
        self.job_id: str | None = fields.get("job_id")
        self.run_id: str | None = fields.get("run_id")


class InvalidRequest(TickStockPLError):
    """400 or 422; `errors` is the server's list of {field, location, message, type} when given."""

    def __init__(self, message: str, *, status_code: int | None = 422, body: Any = None):
        super().__init__(message, status_code=status_code, body=body)
        fields = body if isinstance(body, dict) else {}
        self.errors: list[dict[str, Any]] = list(fields.get("errors") or [])


class RateLimited(TickStockPLError):
    def __init__(self, message: str, *, status_code: int | None = 429, body: Any = None,
                 retry_after: float | None = None):
        super().__init__(message, status_code=status_code, body=body)
        self.retry_after = retry_after


class ServiceDown(TickStockPLError):
    """Nothing answered (refused, timed out, DNS) or the service said it is unavailable (502/503/504)."""


class WaitTimeout(TickStockPLError):
    def __init__(self, message: str, *, job_id: str, last: dict[str, Any] | None):
        super().__init__(message, status_code=None, body=last)
        self.job_id = job_id
        self.last = last


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_for(response: httpx.Response) -> TickStockPLError:
    """Turn a non-success answer into the matching typed error (the one place that maps them)."""
    body = _decode(response)
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message:
        message = (response.text or response.reason_phrase or "request failed").strip()[:500]
    code = response.status_code
    label = f"{response.request.method} {response.request.url.path} -> {code}: {message}"
    if code == 401 or code == 403:
        return Unauthorized(label, status_code=code, body=body)
    if code == 404:
        return NotFound(label, status_code=code, body=body)
    if code == 409:
        return Conflict(label, status_code=code, body=body)
    if code in (400, 422):
        return InvalidRequest(label, status_code=code, body=body)
    if code == 429:
        retry = response.headers.get("Retry-After")
        try:
            retry_after = float(retry) if retry is not None else None
        except ValueError:
            retry_after = None
        return RateLimited(label, status_code=code, body=body, retry_after=retry_after)
    if code in (502, 503, 504):
        return ServiceDown(label, status_code=code, body=body)
    return TickStockPLError(label, status_code=code, body=body)


# --- HTTP client -------------------------------------------------------------------------------
class TickStockPLClient:
    """Synchronous client for the TickStockPL API (thread-safe; reuse one per process).

    `timeout` is the default per-request limit in seconds; AppV2 uses 10 s for triggers and 5 s
    for status reads, which `trigger_timeout` and `timeout` reproduce by default.
    """

    def __init__(self, base_url: str, api_key: str | None, *, timeout: float = 5.0,
                 trigger_timeout: float = 10.0, transport: httpx.BaseTransport | None = None):
        if not base_url:
            raise ValueError("base_url is required, e.g. http://localhost:8080")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.trigger_timeout = trigger_timeout
        headers = {"Accept": "application/json"}
        if api_key:
            headers[API_KEY_HEADER] = api_key
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **kwargs: Any) -> "TickStockPLClient":
        """Build from AppV2's settings: TICKSTOCKPL_API_URL, else http://TICKSTOCKPL_HOST:TICKSTOCKPL_PORT
        (localhost:8080), and TICKSTOCKPL_API_KEY."""
        env = os.environ if environ is None else environ
        url = (env.get("TICKSTOCKPL_API_URL") or "").strip()
        if not url:
            host = (env.get("TICKSTOCKPL_HOST") or "localhost").strip()
            port = (env.get("TICKSTOCKPL_PORT") or "8080").strip()
            url = f"http://{host}:{port}"
        return cls(url, (env.get("TICKSTOCKPL_API_KEY") or "").strip() or None, **kwargs)

    # -- plumbing --
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "TickStockPLClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _request(self, method: str, path: str, *, expect: tuple[int, ...] = (200,), json_body: Any = None,
                 params: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
        try:
            response = self._http.request(method, path, json=json_body, params=params,
                                          timeout=timeout if timeout is not None else self.timeout)
        except httpx.TimeoutException as err:
            raise ServiceDown(f"{method} {path}: TickStockPL did not answer in time ({err.__class__.__name__})") from err
        except httpx.TransportError as err:
            raise ServiceDown(f"{method} {path}: cannot reach TickStockPL at {self.base_url} ({err})") from err
        if response.status_code not in expect:
            raise _error_for(response)
        body = _decode(response)
        if body is None and response.content:
            raise TickStockPLError(f"{method} {path}: answer is not JSON", status_code=response.status_code)
        return body

    # -- cache sync (contract §2.1) --
    def trigger_cache_sync(self, mode: str = "full", force: bool = False) -> dict[str, Any]:
        """Start a sync; returns the 202 body {success, job_id, mode, message}. Raises Conflict (409)
        carrying the live job's id when one is already pending or running."""
        return self._request("POST", f"{CACHE_SYNC_PREFIX}/trigger", expect=(202,),
                             json_body={"mode": mode, "force": bool(force)}, timeout=self.trigger_timeout)

    def cache_sync_status(self, job_id: str) -> dict[str, Any]:
        """{job_id, mode, status, created_at, start_time, end_time, duration_seconds, triggered_by,
        error_details, progress, force, as_of, result}."""
        return self._request("GET", f"{CACHE_SYNC_PREFIX}/status/{job_id}")

    def cache_sync_history(self, limit: int = 10, offset: int = 0) -> dict[str, Any]:
        """{jobs: [...], total, limit, offset}, newest first."""
        return self._request("GET", f"{CACHE_SYNC_PREFIX}/history", params={"limit": limit, "offset": offset})

    def cache_sync_stats(self) -> dict[str, Any]:
        """{universes: [{universe, type, symbol_count, last_updated}], job_statistics: {...}}."""
        return self._request("GET", f"{CACHE_SYNC_PREFIX}/stats")

    def wait_until_done(self, job_id: str, timeout: float = 600.0, poll_interval: float = 1.0) -> dict[str, Any]:
        """Poll the status until the job is completed, failed or error; returns that final body.

        A failed job is returned, not raised: look at `status` and `error_details`. Raises
        WaitTimeout when `timeout` seconds pass first (the job keeps running on the server).
        Transient ServiceDown answers while polling are retried until the deadline.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        last: dict[str, Any] | None = None
        while True:
            try:
                last = self.cache_sync_status(job_id)
            except ServiceDown:
                if time.monotonic() >= deadline:
                    raise
            else:
                if last.get("status") in FINISHED:
                    return last
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                status = last.get("status") if last else "unknown"
                raise WaitTimeout(f"cache sync {job_id} still {status} after {timeout:g} s", job_id=job_id, last=last)
            time.sleep(min(max(poll_interval, 0.01), remaining))

    # -- processing / pipeline (contract §2.2) --
    def processing_trigger(self, phases: Iterable[str] = ("all",), skip_market_check: bool = False,
                           universe: str | None = None) -> dict[str, Any]:
        """Start a pipeline run: {run_id, status, message, ...}. Conflict when a run is live;
        InvalidRequest for an unknown phase or one this installation does not provide."""
        body: dict[str, Any] = {"phases": list(phases), "skip_market_check": bool(skip_market_check)}
        if universe is not None:
            body["universe"] = universe
        try:
            return self._request("POST", f"{PROCESSING_PREFIX}/trigger-manual", expect=(200, 201, 202),
                                 json_body=body, timeout=self.trigger_timeout)
        except Conflict as err:
            err.run_id = err.run_id or err.job_id  # the live run's id, whichever field names it
            raise

    def processing_status(self) -> dict[str, Any]:
        """{is_running, run_id, current_phase, progress, symbols_processed, symbols_total, start_time,
        estimated_completion, ...}."""
        return self._request("GET", f"{PROCESSING_PREFIX}/status")

    def processing_history(self, days: int = 7) -> dict[str, Any]:
        return self._request("GET", f"{PROCESSING_PREFIX}/history", params={"days": days})

    def processing_run(self, run_id: str) -> dict[str, Any]:
        """One run with its phases (timings, counts, errors); NotFound for an unknown id."""
        return self._request("GET", f"{PROCESSING_PREFIX}/runs/{run_id}")

    def processing_cancel(self) -> dict[str, Any]:
        return self._request("DELETE", f"{PROCESSING_PREFIX}/cancel")

    def processing_schedule(self) -> dict[str, Any]:
        return self._request("GET", f"{PROCESSING_PREFIX}/schedule")

    def update_processing_schedule(self, **changes: Any) -> dict[str, Any]:
        """Send only the keys being changed (enabled, trigger_time, timezone, market_check, universes)."""
        return self._request("POST", f"{PROCESSING_PREFIX}/schedule", json_body=changes)

    def health(self) -> dict[str, Any]:
        """GET /health (no key needed). A 503 'unhealthy' answer raises ServiceDown with the body."""
        return self._request("GET", "/health")


# --- events ------------------------------------------------------------------------------------
Handler = Callable[[dict[str, Any], str], None]


class CacheEventListener:
    """Subscribe (plain SUBSCRIBE) to the cache-sync channels and dispatch by event name.

        listener = CacheEventListener("redis://localhost:6379/0")
        listener.on("cache_sync_completed", lambda event, channel: print(event["payload"]["status"]))
        listener.start()          # a daemon thread; returns once every SUBSCRIBE is acknowledged
        ...
        listener.stop()

    Handlers receive the decoded envelope (`event`, `timestamp`, `source`, `version`, `payload`)
    and the channel name. The name is the envelope's `event`, falling back to `event_type`;
    handlers registered with `on_any` see every message. A handler that raises is logged and
    the listener carries on. If the connection to Redis drops, the listener reconnects and
    subscribes again (messages published meanwhile are in the Redis Stream `tickstock:stream:cache`).
    Delivery is at least once: a message whose `event_id` was among the last RECENT_IDS seen is a
    duplicate and is dropped before any handler sees it.
    """

    RECONNECT_MAX_S = 5.0
    RECENT_IDS = 10_000

    def __init__(self, redis_url: str, channels: Iterable[str] = CACHE_SYNC_CHANNELS, *,
                 poll_timeout: float = 0.2):
        self.redis_url = redis_url
        self.channels = tuple(channels)
        if not self.channels:
            raise ValueError("at least one channel is required")
        self.poll_timeout = poll_timeout
        self._handlers: dict[str, list[Handler]] = {}
        self._any: list[Handler] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = None
        self._pubsub = None
        self._recent_ids: dict[int, None] = {}  # insertion-ordered: the oldest is dropped first

    def on(self, event: str, handler: Handler | None = None):
        """Register `handler(envelope, channel)` for one event name; usable as a decorator."""
        def register(fn: Handler) -> Handler:
            self._handlers.setdefault(event, []).append(fn)
            return fn
        return register(handler) if handler is not None else register

    def on_any(self, handler: Handler) -> Handler:
        self._any.append(handler)
        return handler

    def dispatch(self, channel: str, data: bytes | str) -> str | None:
        """Decode one message and call its handlers; returns the event name (None if undecodable or a
        duplicate of an event already dispatched)."""
        try:
            envelope = json.loads(data)
        except (TypeError, ValueError):
            log.warning("ignoring a message on %s that is not JSON", channel)
            return None
        if not isinstance(envelope, dict):
            log.warning("ignoring a message on %s that is not a JSON object", channel)
            return None
        event_id = envelope.get("event_id")
        if isinstance(event_id, int):
            if event_id in self._recent_ids:
                log.debug("dropping event %d on %s: delivered before", event_id, channel)
                return None
            self._recent_ids[event_id] = None
            if len(self._recent_ids) > self.RECENT_IDS:
                del self._recent_ids[next(iter(self._recent_ids))]
        name = envelope.get("event") or envelope.get("event_type")
        handlers = [*self._handlers.get(name, ()), *self._any] if isinstance(name, str) else list(self._any)
        if not handlers:
            log.debug("no handler for %r on %s", name, channel)
        for handler in handlers:
            try:
                handler(envelope, channel)
            except Exception:  # noqa: BLE001 - one bad handler must not stop the listener
                log.exception("handler for %r on %s failed", name, channel)
        return name if isinstance(name, str) else None

    def _subscribe(self) -> None:
        import redis

        self._client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=5, health_check_interval=30)
        self._pubsub = self._client.pubsub()
        self._pubsub.subscribe(*self.channels)
        confirmed, deadline = 0, time.monotonic() + 10
        while confirmed < len(self.channels):
            message = self._pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
            if message is None:
                raise redis.ConnectionError("Redis did not acknowledge SUBSCRIBE")
            if message["type"] == "subscribe":
                confirmed += 1

    def _close_connection(self) -> None:
        for thing in (self._pubsub, self._client):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # noqa: BLE001 - closing a dead connection
                    pass
        self._pubsub = self._client = None

    def start(self) -> "CacheEventListener":
        """Subscribe now (raises redis.ConnectionError if Redis cannot be reached), then listen in a thread."""
        if self._thread is not None:
            raise RuntimeError("listener already started")
        self._stop.clear()
        self._subscribe()
        self._thread = threading.Thread(target=self._loop, name="tickstockpl-cache-events", daemon=True)
        self._thread.start()
        return self

    def run(self) -> None:
        """Listen in the calling thread until `stop()` is called from another thread."""
        self._stop.clear()
        self._subscribe()
        self._loop()

    def _loop(self) -> None:
        import redis

        backoff = 0.2
        while not self._stop.is_set():
            try:
                if self._pubsub is None:
                    self._subscribe()
                    backoff = 0.2
                message = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=self.poll_timeout)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as err:
                if self._stop.is_set():
                    break
                log.warning("Redis connection lost (%s); resubscribing in %.1f s", err, backoff)
                self._close_connection()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.RECONNECT_MAX_S)
                continue
            if message and message.get("type") == "message":
                channel = message["channel"]
                if isinstance(channel, bytes):
                    channel = channel.decode("utf-8", "replace")
                self.dispatch(channel, message["data"])
        self._close_connection()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and close the connection (waits for the thread up to `timeout` s)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> "CacheEventListener":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
