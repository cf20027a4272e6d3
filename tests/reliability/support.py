"""What the reliability tests control and measure.

    ControlledPostgres   an embedded PostgreSQL of our own (tickstockpl.db.embedded), stopped and
                         started with pg_ctl while servers are connected to it
    checksum(url)        md5 over every cache_entries row (timestamps left out), to compare states
    outbox(url)          the event outbox as (id, channel, event, payload) rows
    backend_waiting(...) a server backend blocked on a lock, seen from pg_stat_activity
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

import psycopg

from tests.support.databases import Cluster

# Every cache_entries row, ordered, without the timestamps a rewrite would move.
CHECKSUM_SQL = (
    "SELECT md5(coalesce(string_agg(concat_ws(E'\\x1f', type, name, key, environment, value::text), E'\\x1e'"
    " ORDER BY type, name, key, environment), '')), count(*) FROM cache_entries"
)


class ControlledPostgres(Cluster):
    """A PostgreSQL server owned by the tests: `stop()` (fast or immediate) and `start()` again on the
    same socket, so every URL handed out stays valid across restarts. Databases: tests/support/databases.py."""

    def __init__(self) -> None:
        from tickstockpl.db.embedded import start_postgres

        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="tspl-rel-pg-", dir="/var/tmp" if os.geteuid() == 0 else None))
        from tests.processes import keep_running

        keep_running(self.folder)  # a session server the tests stop and restart (pg_ctl): not a leak
        self.handle, self.admin_url = start_postgres(self.folder, cleanup="delete")
        self.pgdata = Path(self.handle.pgdata)
        self.socket_dir = self.handle.socket_dir
        self.user = self.handle.system_user  # the embedded server's own system user when we are root
        self.prefix = f"rel{os.getpid()}_{uuid.uuid4().hex[:6]}"

    # --- the server process --------------------------------------------------------------
    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        from tickstockpl.db.embedded import _as_user

        return subprocess.run([str(self.handle.pg_ctl()), "-D", str(self.pgdata), *args], **_as_user(self.user),
                              capture_output=True, text=True, timeout=60, check=check)

    def running(self) -> bool:
        return self._pg_ctl("status", check=False).returncode == 0

    def stop(self, mode: str = "fast") -> None:
        """Shut the server down; `fast` ends every session, `immediate` is a crash (recovery on start)."""
        self._pg_ctl("-w", "-t", "60", "-m", mode, "stop")

    def start(self) -> None:
        self._pg_ctl("-w", "-t", "60", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l",
                     str(self.pgdata / "log"), "start")

    def close(self) -> None:
        if not self.running():  # a test left it stopped: the handle can only clean up a live server
            self.start()
        self.wait_for_drops()
        self.handle.cleanup()
        shutil.rmtree(self.folder, ignore_errors=True)


def checksum(db_url: str) -> tuple[str, int]:
    """(md5 over every cache_entries row, row count)."""
    with psycopg.connect(db_url) as conn:
        digest, count = conn.execute(CHECKSUM_SQL).fetchone()
    return digest, count


def outbox(db_url: str) -> list[tuple[int, str, str, dict[str, Any]]]:
    with psycopg.connect(db_url) as conn:
        return [(i, c, e, json.loads(m)) for i, c, e, m in conn.execute(
            "SELECT id, channel, event, message FROM pl_event_outbox ORDER BY id")]


def job_events(db_url: str, job_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(channel, event, payload) of every outbox row about one sync job, in id order."""
    return [(c, e, body.get("payload", {})) for _i, c, e, body in outbox(db_url)
            if body.get("payload", {}).get("job_id") == job_id]


def backend_waiting(db_url: str, query_prefix: str) -> bool:
    """A backend of this database is blocked on a lock while running a statement starting with `query_prefix`."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND wait_event_type = 'Lock' AND query LIKE %s", (query_prefix + "%",)).fetchone()
    return row[0] > 0


def server_backends(db_url: str, application_name: str = "tickstockpl") -> int:
    with psycopg.connect(db_url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                            " AND application_name = %s", (application_name,)).fetchone()[0]


def job_row(db_url: str, job_id: str) -> dict[str, Any]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT status, error_details, start_time, end_time FROM pl_sync_jobs WHERE job_id = %s",
                           (job_id,)).fetchone()
    return dict(zip(("status", "error_details", "start_time", "end_time"), row)) if row else {}


def move_newest_session_to_a_flat_file(db_url: str, folder: Path) -> "dt.date":
    """Take the newest session's bars out of ohlcv_daily and write them as that session's flat file, so
    that a pipeline run with the flat-file provider imports them again (then syncs). Returns the session."""
    from tests.pipeline.helpers import write_flat

    with psycopg.connect(db_url) as conn:
        day = conn.execute("SELECT max(date) FROM ohlcv_daily").fetchone()[0]
        bars = conn.execute("DELETE FROM ohlcv_daily WHERE date = %s RETURNING symbol, open, high, low, close, volume",
                            (day,)).fetchall()
    write_flat(folder, day, [(s, float(o), float(h), float(lo), float(c), int(v)) for s, o, h, lo, c, v in bars])
    return day


def sync_jobs(db_url: str) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT job_id::text, created_at, end_time, status, triggered_by FROM pl_sync_jobs"
                            " ORDER BY created_at").fetchall()


def assert_one_job_at_a_time(db_url: str) -> None:
    """Every sync job has ended, and each was created only after the one before it had ended."""
    jobs = sync_jobs(db_url)
    assert all(j[2] is not None for j in jobs), jobs
    for earlier, later in zip(jobs, jobs[1:]):
        assert later[1] >= earlier[2], f"job {later[0]} was created before {earlier[0]} ended"


class RawHttp:
    """One keep-alive HTTP/1.1 connection on asyncio streams: a load generator far cheaper per request
    than a full client library, so that a 2-core machine measures the server, not the client.

    `await conn.request("GET", "/path")` -> (status, body bytes). Bodies must carry Content-Length
    (every answer of the API does); a `Connection: close` answer reopens the connection next time.
    """

    def __init__(self, host: str, port: int, headers: dict[str, str], timeout: float = 30.0):
        self.host, self.port, self.timeout = host, port, timeout
        self._head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", **headers}.items())
        self._reader = self._writer = None

    async def _open(self) -> None:
        import asyncio

        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), self.timeout)

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        import asyncio

        return await asyncio.wait_for(self._exchange(method, path, body), self.timeout)

    async def _exchange(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        if self._writer is None:
            await self._open()
        extra = "" if body is None else f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self._writer.write(f"{method} {path} HTTP/1.1\r\n{self._head}{extra}\r\n".encode("latin-1") + (body or b""))
        status_line = await self._reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        length, close = 0, False
        while True:
            line = await self._reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                raise ConnectionError(f"unexpected transfer-encoding {value.strip()}")
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        payload = await self._reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return status, payload

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
        self._reader = self._writer = None
