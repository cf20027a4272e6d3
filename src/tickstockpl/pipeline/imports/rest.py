"""REST provider: Polygon.io / Massive grouped daily bars, one request per session for the whole market.

    GET {base}/v2/aggs/grouped/locale/us/market/stocks/{YYYY-MM-DD}?adjusted=true
    -> {"status": "OK", "resultsCount": n, "results": [{"T", "o", "h", "l", "c", "v", "vw", "t" (epoch ms), "n"}]}

The key travels in the `Authorization: Bearer` header (the service accepts it there as well as in
`apiKey=`), so it never appears in a URL, a log line or an exception message.

Retries: transport errors, HTTP 429 and 5xx are retried up to `max_attempts` times with exponential
backoff and full jitter; a 429's `Retry-After` (seconds or an HTTP date) is honoured, capped at
`retry_after_cap`. Every other failure is a `ProviderError` with a message a user can act on:
401/403 (key rejected), other 4xx, an HTML error page, malformed or truncated JSON, an error status.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import random
import time
from typing import Any, Callable

import httpx

from tickstockpl.errors import ProviderError
from tickstockpl.pipeline.imports.session import SessionData

log = logging.getLogger(__name__)

PATH = "/v2/aggs/grouped/locale/us/market/stocks/{day}"
OK_STATUSES = ("OK", "DELAYED")
SNIPPET = 120


class RestProvider:
    name = "rest"

    def __init__(self, api_key: str, base_url: str = "https://api.massive.com", *, timeout: float = 30.0,
                 connect_timeout: float = 5.0, max_attempts: int = 5, backoff_base: float = 0.5,
                 backoff_cap: float = 30.0, retry_after_cap: float = 120.0,
                 sleep: Callable[[float], None] = time.sleep, jitter: Callable[[], float] = random.random,
                 transport: httpx.BaseTransport | None = None):
        if not api_key:
            raise ProviderError("the REST provider needs an API key (MASSIVE_API_KEY)")
        self._key = api_key
        self.base_url = base_url.rstrip("/")
        self.max_attempts = max(1, max_attempts)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.retry_after_cap = retry_after_cap
        self._sleep = sleep
        self._jitter = jitter
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json",
                     "User-Agent": "tickstockpl-import"},
            transport=transport, follow_redirects=False,
        )
        self.requests = 0  # attempts made, for reports and tests

    def __repr__(self) -> str:  # never show the key
        return f"RestProvider(base_url={self.base_url!r})"

    def close(self) -> None:
        self._client.close()

    def fetch(self, session: dt.date) -> SessionData:
        body = self._get_json(self.base_url + PATH.format(day=session.isoformat()), session)
        return parse_grouped_daily(body, session)

    # --- HTTP with retries -------------------------------------------------------------
    def _get_json(self, url: str, session: dt.date) -> Any:
        last_problem = "no attempt made"
        for attempt in range(1, self.max_attempts + 1):
            self.requests += 1
            try:
                response = self._client.get(url, params={"adjusted": "true"})
            except httpx.TimeoutException:
                last_problem = "the request timed out"
            except httpx.TransportError as err:
                last_problem = f"network error ({err.__class__.__name__})"
            else:
                status = response.status_code
                if status == 200:
                    return _decode(response, session)
                if status == 429:
                    last_problem = "rate limited (HTTP 429)"
                    if attempt < self.max_attempts:
                        wait = self._retry_after(response.headers.get("Retry-After"), attempt)
                        log.warning("provider rate limit for %s; waiting %.1f s (attempt %d/%d)",
                                    session, wait, attempt, self.max_attempts)
                        self._sleep(wait)
                        continue
                    break
                if status >= 500:
                    last_problem = f"server error (HTTP {status})"
                elif status in (401, 403):
                    raise ProviderError(f"the provider rejected the API key (HTTP {status}); check MASSIVE_API_KEY")
                else:
                    raise ProviderError(f"the provider answered HTTP {status} for session {session}: "
                                        f"{_snippet(response.text)}")
            if attempt < self.max_attempts:
                wait = self._backoff(attempt)
                log.warning("provider request for %s failed: %s; retrying in %.1f s (attempt %d/%d)",
                            session, last_problem, wait, attempt, self.max_attempts)
                self._sleep(wait)
        raise ProviderError(f"the provider failed for session {session} after {self.max_attempts} attempt(s):"
                            f" {last_problem}")

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]."""
        return min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1))) * self._jitter()

    def _retry_after(self, header: str | None, attempt: int) -> float:
        seconds = parse_retry_after(header)
        if seconds is None:
            return self._backoff(attempt)
        return min(self.retry_after_cap, seconds)


def parse_retry_after(header: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent/invalid."""
    if not header:
        return None
    text = header.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - (now or dt.datetime.now(dt.timezone.utc))).total_seconds())


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat[:SNIPPET] + ("…" if len(flat) > SNIPPET else "")


def _decode(response: httpx.Response, session: dt.date) -> Any:
    text = response.text
    content_type = response.headers.get("content-type", "")
    head = text.lstrip()[:200].lower()
    if "html" in content_type or head.startswith(("<!doctype", "<html", "<")):
        title = ""
        lower = text.lower()
        if "<title>" in lower:
            start = lower.index("<title>") + 7
            title = f" ({_snippet(text[start:lower.find('</title>', start)])})"
        raise ProviderError(f"the provider answered an HTML page instead of JSON for session {session}{title};"
                            " is MASSIVE_BASE_URL right?")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ProviderError(f"the provider sent malformed or truncated JSON for session {session}"
                            f" ({len(text)} bytes, {err.msg} at position {err.pos})") from None


def parse_grouped_daily(body: Any, session: dt.date) -> SessionData:
    """Turn a grouped-daily JSON body into rows; structural problems raise ProviderError."""
    if not isinstance(body, dict):
        raise ProviderError(f"the provider's answer for session {session} is not a JSON object")
    status = body.get("status")
    if status not in OK_STATUSES:
        detail = body.get("error") or body.get("message") or ""
        raise ProviderError(f"the provider answered status {status!r} for session {session}"
                            + (f": {_snippet(str(detail))}" if detail else ""))
    results = body.get("results")
    if results is None:
        results = []
    if not isinstance(results, list):
        raise ProviderError(f"the provider's `results` for session {session} is not a list")
    count = body.get("resultsCount")
    if isinstance(count, int) and count != len(results):
        raise ProviderError(f"the provider's answer for session {session} is truncated: resultsCount={count}"
                            f" but {len(results)} results")
    rows, rejected = [], []
    for index, item in enumerate(results):
        if not isinstance(item, dict):
            rejected.append((f"result {index}", "not a JSON object"))
            continue
        ticker = item.get("T")
        if not isinstance(ticker, str):
            rejected.append((f"result {index}", "missing ticker (T)"))
            continue
        t = item.get("t")
        rows.append((ticker, _num(item.get("o")), _num(item.get("h")), _num(item.get("l")), _num(item.get("c")),
                     _num(item.get("v")), int(t) * 1_000_000 if isinstance(t, (int, float)) and not isinstance(t, bool)
                     and t == t and abs(t) < 1e16 else None))
    return SessionData(session, rows, rejected)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
