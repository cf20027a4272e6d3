"""Trigger rate limit: at most `settings.trigger_rate_per_min` triggers per identity per minute (429).

One budget per identity, shared by both trigger endpoints (cache-sync trigger and processing
trigger-manual); reads are never limited. The identity is the **authenticated** one: the configured
key the request's `X-API-Key` matched (the key check runs first), or, where no key is required
(`TICKSTOCKPL_REQUIRE_KEY_PROCESSING=false`) and none valid is sent, the client's address. A made-up
key value is never an identity of its own, so inventing values buys no extra triggers.

Memory is bounded: a sliding window per identity (the times of its triggers of the last 60 s,
never more than the limit), at most MAX_IDENTITIES identities (the least recently seen is forgotten
first: a forgotten one starts again with a full budget), identities held as SHA-256 digests, never as
given. So the memory is at most the triggers accepted in the last minute, across at most 4,096
identities. In-process: each serving process counts its own triggers.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict, deque

from fastapi import HTTPException, Request, Security

from tickstockpl.api.auth import api_key_header, matching_key

WINDOW_S = 60.0
MAX_IDENTITIES = 4096


class SlidingWindow:
    def __init__(self, limit: int, window_s: float = WINDOW_S, max_identities: int = MAX_IDENTITIES,
                 clock=time.monotonic):
        self.limit = limit
        self.window_s = window_s
        self.max_identities = max_identities
        self._clock = clock
        self._hits: OrderedDict[bytes, deque[float]] = OrderedDict()  # least recently seen first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._hits)

    def allow(self, identity: str) -> bool:
        return self.check(identity)[0]

    def check(self, identity: str) -> tuple[bool, int]:
        """(allowed, whole seconds until a refused identity may try again); an allowed call counts."""
        digest = hashlib.sha256(identity.encode("utf-8", "surrogateescape")).digest()
        now = self._clock()
        with self._lock:
            hits = self._hits.get(digest)
            if hits is None:
                hits = self._hits[digest] = deque()
                while len(self._hits) > self.max_identities:
                    self._hits.popitem(last=False)
            else:
                self._hits.move_to_end(digest)
            while hits and now - hits[0] >= self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                return False, max(1, math.ceil(self.window_s - (now - hits[0])))
            hits.append(now)
            return True, 0


def identity_of(request: Request, given: str | None) -> str:
    """The configured key `given` matched, else (no key required) the client's address."""
    matched = matching_key(given, request.app.state.settings.api_keys)
    if matched is not None:
        return "key:" + matched
    return "client:" + (request.client.host if request.client else "unknown")


async def limit_triggers(request: Request, given: str | None = Security(api_key_header)) -> None:
    state = request.app.state
    limiter = getattr(state, "trigger_limiter", None)
    if limiter is None:
        limiter = state.trigger_limiter = SlidingWindow(state.settings.trigger_rate_per_min)
    allowed, retry_after = limiter.check(identity_of(request, given))
    if not allowed:
        raise HTTPException(429, f"too many triggers: at most {limiter.limit} per minute",
                            headers={"Retry-After": str(retry_after)})
