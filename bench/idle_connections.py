"""Idle connections against `tickstockpl serve` (docs/RELIABILITY.md, "Idle connections"): not a test.

Starts `tickstockpl serve` on a fresh database of the local PostgreSQL under an open-file limit
(`prlimit --nofile=N`), opens CONNECTIONS TCP connections that never send a byte, then for
SECONDS asks `GET /health` once a second on a fresh connection and reports how many answered
(and how), how many of the idle connections the server closed, and how large its log grew.

    .venv/bin/python -m bench.idle_connections [--connections 1050] [--nofile 1024] [--seconds 20]
        [--env TICKSTOCKPL_MAX_CONNECTIONS=...]

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and `prlimit` (util-linux).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import psycopg

ADMIN = os.environ.get("TICKSTOCKPL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health(port: int, timeout: float) -> str:
    """'200', '503', ... or what went wrong ('timeout', 'refused', 'reset')."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            first = s.recv(64)
            return first.split()[1].decode() if first.startswith(b"HTTP/") else ("closed" if not first else "garbage")
    except socket.timeout:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except OSError as err:
        return type(err).__name__


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=1050)
    parser.add_argument("--nofile", type=int, default=1024)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server")
    args = parser.parse_args()
    if shutil.which("prlimit") is None:
        sys.exit("prlimit (util-linux) is needed")

    name = f"tspl_idle_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(ADMIN)
    url = f"postgresql://{info.get('user', 'postgres')}@{info.get('host', '127.0.0.1')}:{info.get('port', 5432)}/{name}"
    log = tempfile.NamedTemporaryFile(prefix="tspl-idle-", suffix=".log", delete=False)
    server = None
    idle: list[socket.socket] = []
    try:
        from tickstockpl.db.migrate import upgrade

        upgrade(url)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKSTOCKPL_", "DATABASE_", "REDIS_"))}
        env.update({"DATABASE_URL": url, "TICKSTOCKPL_API_KEYS": "bench-key-0123456789", "TICKSTOCKPL_SCHEDULER": "false",
                    "TICKSTOCKPL_HOST": "127.0.0.1", "TICKSTOCKPL_PORT": str(port)})
        env.update(dict(item.split("=", 1) for item in args.env))
        server = subprocess.Popen(["prlimit", f"--nofile={args.nofile}:{args.nofile}", "--", sys.executable, "-m",
                                   "tickstockpl.cli", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(300):
            if health(port, 1.0) in ("200", "503"):
                break
            time.sleep(0.1)
        else:
            sys.exit("the server did not start")
        for _ in range(args.connections):
            try:
                idle.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            except OSError:
                break
        print(f"opened {len(idle)} idle connections (server open-file limit {args.nofile})")
        answers: dict[str, int] = {}
        start = time.monotonic()
        for _ in range(args.seconds):
            began = time.monotonic()
            got = health(port, 2.0)
            answers[got] = answers.get(got, 0) + 1
            time.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
        elapsed = time.monotonic() - start
        closed = 0
        for s in idle:
            s.setblocking(False)
            try:
                closed += s.recv(1) == b""
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        lines = open(log.name, "rb").read().count(b"\n")
        print(f"/health over {elapsed:.0f} s: {answers}")
        print(f"idle connections closed by the server: {closed} of {len(idle)}")
        print(f"server log: {os.path.getsize(log.name):,} bytes, {lines:,} lines")
    finally:
        for s in idle:
            s.close()
        if server is not None:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if os.environ.get("KEEP_LOG"):
            print("log kept:", log.name)
        else:
            os.unlink(log.name)


if __name__ == "__main__":
    main()
