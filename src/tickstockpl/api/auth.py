"""`X-API-Key` checks: several keys may be valid at once (rotation), compared in constant time.

A request is accepted when its key equals any configured key. Every configured key is compared
(no early exit), so the time taken does not reveal which key, or how much of one, matched.
Keys are never logged, echoed or put in an error message.
"""

from __future__ import annotations

import hmac

from fastapi import Request, Security
from fastapi.security import APIKeyHeader

from tickstockpl.errors import AuthError  # noqa: F401 - raised here; errors.py holds it (401)

HEADER = "X-API-Key"

# Declares the scheme in /openapi.json (so clients and schemathesis know the header);
# auto_error=False: the 401 body is ours (AuthError, errors.py; answered by api/app.py).
api_key_header = APIKeyHeader(name=HEADER, auto_error=False, description="One of TICKSTOCKPL_API_KEYS.")


def key_matches(given: str | None, keys: tuple[str, ...]) -> bool:
    return matching_key(given, keys) is not None


def matching_key(given: str | None, keys: tuple[str, ...]) -> str | None:
    """The configured key `given` equals (None if none): every key is compared, no early exit."""
    if not given or not keys:
        return None
    given_bytes = given.encode("utf-8", "surrogateescape")
    found = None
    for key in keys:
        if hmac.compare_digest(given_bytes, key.encode("utf-8")):
            found = key
    return found


def _check(request: Request, given: str | None) -> None:
    keys = request.app.state.settings.api_keys
    if given is None or given == "":
        raise AuthError(f"missing {HEADER} header")
    if not key_matches(given, keys):
        raise AuthError(f"invalid {HEADER}")


# The checks are `async def` on purpose: they never block, and FastAPI runs a plain `def`
# dependency in the worker thread pool (a thread hop per request).
async def require_key(request: Request, given: str | None = Security(api_key_header)) -> None:
    """Dependency for the cache-sync and universe endpoints: a valid key is always required."""
    _check(request, given)


async def require_key_processing(request: Request, given: str | None = Security(api_key_header)) -> None:
    """Dependency for /api/processing/* (pipeline): enforced only when settings.require_key_processing."""
    if request.app.state.settings.require_key_processing:
        _check(request, given)


# dependency -> does it require a key for this request?
_POLICY = {
    require_key: lambda request: True,
    require_key_processing: lambda request: request.app.state.settings.require_key_processing,
}


def failed_key_check(request: Request) -> AuthError | None:
    """The route's own key check, run by hand.

    FastAPI parses a JSON body before it solves dependencies, so a malformed body would answer
    422 before the key is looked at; the 422 handler calls this first, so that a caller without
    a valid key learns nothing but 401.
    """
    route = request.scope.get("route")
    pending = list(getattr(getattr(route, "dependant", None), "dependencies", []))
    while pending:
        dependency = pending.pop()
        required = _POLICY.get(dependency.call)
        if required is not None and required(request):
            try:
                _check(request, request.headers.get(HEADER))
            except AuthError as err:
                return err
        pending.extend(dependency.dependencies)
    return None
