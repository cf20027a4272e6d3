"""One warning when a dependency goes down and one when it is back, naming it (password hidden).

    outages.down("Redis", where, err)   # logs the first time only, until up() is called
    outages.up("Redis", where)          # logs "back after N s" once, if it was down

Every part of a serving process that notices an outage (the event relay, the abandoned-job check)
reports it here; the state is per (what, where) and shared by the whole process, so a database outage
seen by two threads is still one warning. Retrying code stays quiet in between (psycopg_pool's own
per-attempt warnings are silenced in `api/server.configure_logging`).
"""

from __future__ import annotations

import logging
import re
import threading
import time

from tickstockpl.errors import first_line

log = logging.getLogger("tickstockpl.outages")
_lock = threading.Lock()
_down_since: dict[tuple[str, str], float] = {}

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/]*):(?P<password>[^@/]*)@", re.I)
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.I)


def redact(url: str | None) -> str:
    """`url` with any password replaced by ***: `redis://:***@host:6379/0`, `postgresql://u:***@h/db`,
    `... password=*** ...`."""
    if not url:
        return "(not set)"
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@" if m["password"] else m[0], url)
    if "://" in text:
        return re.sub(r"([?&]password=)[^&]*", r"\1***", text, flags=re.I)
    return _KV_PASSWORD.sub(r"\1***", text)


def redis_where(client) -> str:
    """Where a redis-py client connects, without its password."""
    try:
        kwargs = client.connection_pool.connection_kwargs
    except AttributeError:
        return "Redis"
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}"
    return f"redis://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def down(what: str, where: str, err: BaseException | str) -> bool:
    """Record an outage; logs one warning when it starts. Returns whether this call started it."""
    key = (what, redact(where))
    with _lock:
        if key in _down_since:
            return False
        _down_since[key] = time.monotonic()
    log.warning("%s at %s is unavailable (%s); retrying quietly, one more line when it is back",
                what, key[1], first_line(err))
    return True


def up(what: str, where: str) -> bool:
    """Record that it answers again; logs one warning (with the outage's length) if it was down."""
    key = (what, redact(where))
    with _lock:
        since = _down_since.pop(key, None)
    if since is None:
        return False
    log.warning("%s at %s is back after %.0f s", what, key[1], time.monotonic() - since)
    return True


def is_down(what: str, where: str) -> bool:
    with _lock:
        return (what, redact(where)) in _down_since
