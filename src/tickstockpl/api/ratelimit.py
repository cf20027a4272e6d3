"""Trigger rate limit: at most `settings.trigger_rate_per_min` triggers per key per minute (429).

One budget per key, shared by both trigger endpoints (cache-sync trigger and processing
trigger-manual); reads are never limited.

In-process sliding window; keys are held as SHA-256 digests, never as given.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import defaultdict, deque

from fastapi import HTTPException, Request, Security

from tickstockpl.api.auth import api_key_header

WINDOW_S = 60.0


class SlidingWindow:
    def __init__(self, limit: int, window_s: float = WINDOW_S):
        self.limit = limit
        self.window_s = window_s
        self._hits: dict[bytes, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, identity: str) -> bool:
        digest = hashlib.sha256(identity.encode("utf-8", "surrogateescape")).digest()
        now = time.monotonic()
        with self._lock:
            hits = self._hits[digest]
            while hits and now - hits[0] >= self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True


async def limit_triggers(request: Request, given: str | None = Security(api_key_header)) -> None:
    state = request.app.state
    limiter = getattr(state, "trigger_limiter", None)
    if limiter is None:
        limiter = state.trigger_limiter = SlidingWindow(state.settings.trigger_rate_per_min)
    identity = given or (request.client.host if request.client else "anonymous")
    if not limiter.allow(identity):
        raise HTTPException(429, f"too many triggers: at most {limiter.limit} per minute",
                            headers={"Retry-After": str(int(WINDOW_S))})
