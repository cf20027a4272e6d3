"""Connection limits of `tickstockpl serve`: what uvicorn alone does not bound (docs/RELIABILITY.md,
"Idle connections").

uvicorn closes a keep-alive connection that stays silent after a response (`timeout_keep_alive`), but a
connection that never finishes its request headers is never closed, and its `limit_concurrency` counts
such connections too: a client opening idle connections first turns every request into a 503, then
exhausts the open-file limit (`socket.accept() out of system resource`, logged in a loop, and nothing
answers). `guarded_protocol(limits)` is uvicorn's h11 protocol with three additions:

  * **request read timeouts**: the request headers must be complete within `header_timeout_s` of the
    connection opening (or of the previous response, on a keep-alive connection), the body within
    BODY_TIMEOUT_FACTOR x `header_timeout_s` of the headers; otherwise the connection is closed (a
    slow sender is not reset by sending a byte at a time);
  * **a connection cap** (`max_connections`, kept below the open-file limit by `connection_cap`): past
    it, a new connection closes the **oldest idle** connection (waiting for request headers, or
    keep-alive between requests) and is served; only when every open connection has a request in
    progress is the new one refused at once with a 503 and closed. So idle connections can never
    keep a real request out, and the process never runs out of file descriptors;
  * a log line when the cap is reached, rate-limited like every other line (`RepeatFilter`).

The connection state is only touched on the event loop (asyncio protocols are single-threaded).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

BODY_TIMEOUT_FACTOR = 3  # the body is due within 3 x the header timeout of the headers (bodies: <= 64 KiB)
KEEP_ALIVE_S = 5  # uvicorn's timeout_keep_alive: a silent keep-alive connection is closed after it
# The listen queue, and so the most connections asyncio accepts in one go (uvicorn's default is 2048).
# asyncio accepts a whole batch before any of them reaches `connection_made` (where the cap acts), and
# the next batches can be accepted before the first one's evicted connections release their
# descriptors: measured with 5,000 connections opened at once under a 1,024 open-file limit,
# `socket.accept() out of system resource` still happened with 200 descriptors in reserve and a
# backlog of 128, and never with three batches (plus 100) in reserve.
BACKLOG = 128
RESERVED_FDS = 100 + 3 * BACKLOG  # for the pools, the relay, jobs, Redis, logs and three accept batches
MIN_CONNECTIONS = 8



def _answer(status: str, message: str) -> bytes:
    """A complete HTTP/1.1 answer written straight to the transport (no request cycle exists)."""
    body = ('{"success": false, "message": "%s"}' % message).encode()
    return (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\nconnection: close\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


_BUSY = _answer("503 Service Unavailable", "server busy: every connection has a request in progress")
_TIMEOUT = _answer("408 Request Timeout", "the request was not received in time")


def raise_open_file_limit() -> int:
    """Raise this process's soft open-file limit to its hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft if soft != resource.RLIM_INFINITY else wanted
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        return wanted
    except (ValueError, OSError):
        return soft


def connection_cap(configured: int, open_file_limit: int) -> int:
    """The connection cap in force: the configured one, lowered so that RESERVED_FDS descriptors stay
    free for everything else the process opens (at least MIN_CONNECTIONS)."""
    return max(MIN_CONNECTIONS, min(configured, open_file_limit - RESERVED_FDS))


@dataclass
class Limits:
    """State shared by every connection of one server (used on the event loop only)."""

    max_connections: int
    header_timeout_s: float
    open: set = field(default_factory=set)
    idle: OrderedDict = field(default_factory=OrderedDict)  # oldest first: the ones to close at the cap
    evicted: int = 0
    refused: int = 0
    timed_out: int = 0


def guarded_protocol(limits: Limits) -> type[H11Protocol]:
    """uvicorn's h11 protocol bound to `limits` (pass it as `uvicorn.Config(http=...)`)."""

    class GuardedH11Protocol(H11Protocol):
        _refused = False
        _timer: asyncio.TimerHandle | None = None
        _received = False  # bytes of the current request have arrived
        _reading_body = False  # headers complete, the body timeout armed

        def connection_made(self, transport) -> None:  # type: ignore[override]
            if len(limits.open) >= limits.max_connections and not self._make_room(transport):
                self._refused = True
                limits.refused += 1
                log.warning("connection cap reached (%d open, all busy): refused a connection",
                            limits.max_connections)
                transport.write(_BUSY)
                transport.close()
                return
            limits.open.add(self)
            super().connection_made(transport)
            self._wait_for_request()

        @staticmethod
        def _make_room(transport) -> bool:
            if not limits.idle:
                return False
            oldest, _ = limits.idle.popitem(last=False)
            limits.open.discard(oldest)  # its descriptor is released on the next loop iteration
            limits.evicted += 1
            log.warning("connection cap reached (%d open): closed the oldest idle connection",
                        limits.max_connections)
            oldest._close(None)
            return True

        def connection_lost(self, exc) -> None:
            if self._refused:
                return
            self._cancel_timer()
            limits.open.discard(self)
            limits.idle.pop(self, None)
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            self._received = True
            super().data_received(data)
            self._after_events()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._wait_for_request()  # keep-alive: the next request's headers are due in time too
            else:
                self._after_events()

        # --- the request read timeouts ------------------------------------------------------
        def _wait_for_request(self) -> None:
            self._received = self._reading_body = False
            limits.idle[self] = None
            self._arm(limits.header_timeout_s)

        def _after_events(self) -> None:
            state = self.conn.their_state
            if state is h11.IDLE or self.transport.is_closing():
                return
            limits.idle.pop(self, None)  # headers complete: a request is in progress
            if state is h11.SEND_BODY:
                if not self._reading_body:
                    self._reading_body = True
                    self._arm(limits.header_timeout_s * BODY_TIMEOUT_FACTOR)
            else:
                self._cancel_timer()

        def _arm(self, seconds: float) -> None:
            self._cancel_timer()
            self._timer = self.loop.call_later(seconds, self._expired)

        def _cancel_timer(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expired(self) -> None:
            self._timer = None
            state = self.conn.their_state
            if self.transport.is_closing() or state not in (h11.IDLE, h11.SEND_BODY):
                return
            if state is h11.IDLE and self.cycle is not None and not self.cycle.response_complete:
                return  # a response is still being produced; its completion re-arms
            limits.timed_out += 1
            self._close(_TIMEOUT if self._received else None)

        def _close(self, answer: bytes | None) -> None:
            limits.idle.pop(self, None)
            if self.cycle is not None and not self.cycle.response_complete:
                self.cycle.disconnected = True
                self.cycle.message_event.set()
            elif answer is not None:
                self.transport.write(answer)
            self.transport.close()

    return GuardedH11Protocol


class RepeatFilter(logging.Filter):
    """Let through at most `per_window` records with the same logger, level and message template per
    `window_s`; the first one after a suppressed stretch carries `suppressed=<count>`. Memory is
    bounded: at most `max_keys` templates are remembered (the oldest forgotten first)."""

    def __init__(self, per_window: int = 5, window_s: float = 60.0, max_keys: int = 1000):
        super().__init__()
        self.per_window, self.window_s, self.max_keys = per_window, window_s, max_keys
        self._seen: OrderedDict[tuple, list] = OrderedDict()  # key -> [window start, count, suppressed]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg)[:300])
        now = time.monotonic()
        with self._lock:
            entry = self._seen.get(key)
            if entry is None or now - entry[0] >= self.window_s:
                suppressed = entry[2] if entry is not None else 0
                self._seen[key] = [now, 1, 0]
                self._seen.move_to_end(key)
                while len(self._seen) > self.max_keys:
                    self._seen.popitem(last=False)
                if suppressed:
                    record.suppressed = suppressed
                return True
            entry[1] += 1
            if entry[1] <= self.per_window:
                return True
            entry[2] += 1
            return False
