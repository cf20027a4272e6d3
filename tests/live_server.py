"""A real `tickstockpl serve` in a subprocess, for tests that talk HTTP to a running server.

    with LiveServer(db_url, redis_url=..., api_keys=("key-aaaa-1",)) as server:
        httpx.get(server.url + "/health")

The server inherits the test's market clock: TICKSTOCKPL_NOW when set (tickstockpl.clock); pass
`env={"TICKSTOCKPL_NOW": ...}` to give it another. `start()` waits until /health answers (any status: 503 is an answer); `stop()` sends SIGTERM and
waits, `kill()` sends SIGKILL (a crash). `start()` may be called again after either, on the same
port. The server's stderr is kept in a file; `logs()` returns it (useful in assertion messages).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

from tests.servers import free_port

DEFAULT_KEY = "test-key-0123456789"
START_TIMEOUT_S = 30.0


def as_url(dsn: str) -> str:
    """Settings want a postgresql:// URL; the test fixtures hand out key=value connection strings."""
    if dsn.startswith(("postgresql://", "postgres://")):
        return dsn
    from urllib.parse import quote, urlencode

    info = psycopg.conninfo.conninfo_to_dict(dsn)
    user = quote(str(info.pop("user", "postgres")))
    password = info.pop("password", None)
    auth = f"{user}:{quote(str(password))}@" if password else f"{user}@"
    host = str(info.pop("host", "127.0.0.1"))
    port = info.pop("port", None)
    dbname = quote(str(info.pop("dbname", "postgres")))
    if host.startswith("/"):  # a socket directory goes in the query string
        info["host"] = host
        host = ""
    query = ("?" + urlencode({k: str(v) for k, v in info.items()})) if info else ""
    return f"postgresql://{auth}{host}{':' + str(port) if port and host else ''}/{dbname}{query}"


def server_environ(db_url: str | None, *, redis_url: str | None = None, api_keys: tuple[str, ...] = (DEFAULT_KEY,),
                   scheduler: bool = False, env: dict[str, str] | None = None, port: int | None = None) -> dict[str, str]:
    """The environment of a test's server (live or in process, tests/support/asgi.py): this process's,
    without its TICKSTOCKPL_/DATABASE_/REDIS_ variables but the market clock (TICKSTOCKPL_NOW), plus these."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("TICKSTOCKPL_", "DATABASE_", "REDIS_")) or k == "TICKSTOCKPL_NOW"}
    base.update({
        "TICKSTOCKPL_API_KEYS": ",".join(api_keys),
        "TICKSTOCKPL_SCHEDULER": "true" if scheduler else "false",
        "TICKSTOCKPL_HOST": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
    })
    if db_url:
        base["DATABASE_URL"] = as_url(db_url)
    if port:
        base["TICKSTOCKPL_PORT"] = str(port)
    if redis_url:
        base["REDIS_URL"] = redis_url
    base.update(env or {})
    return base


class LiveServer:
    def __init__(self, db_url: str, *, redis_url: str | None = None, api_keys: tuple[str, ...] = (DEFAULT_KEY,),
                 scheduler: bool = False, env: dict[str, str] | None = None, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_keys = api_keys
        self.proc: subprocess.Popen | None = None
        self._log = Path(tempfile.mkstemp(prefix="tspl-serve-", suffix=".log")[1])
        self.env = server_environ(db_url, redis_url=redis_url, api_keys=api_keys, scheduler=scheduler, env=env,
                                  port=self.port)

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_keys[0]} if self.api_keys else {}

    def client(self, *, key: bool = True, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers if key else {}, timeout=timeout)

    def start(self) -> "LiveServer":
        with self._log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tickstockpl.cli", "serve"], env=self.env, cwd=tempfile.gettempdir(),
                stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                httpx.get(self.url + "/health", timeout=2.0)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"server did not answer /health within {START_TIMEOUT_S}s:\n{self.logs()}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def logs(self) -> str:
        return self._log.read_text(errors="replace")[-20_000:]

    def close(self) -> None:
        self.stop()
        self._log.unlink(missing_ok=True)

    def __enter__(self) -> "LiveServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
