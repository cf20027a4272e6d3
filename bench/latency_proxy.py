"""A delaying TCP proxy: simulated network latency between the service and PostgreSQL.

    python -m bench.latency_proxy --target 127.0.0.1:5432 --delay-ms 1 [--port 0]

listens on 127.0.0.1:<port> (0 = a free port), prints one line `listening 127.0.0.1 <port>` once
it accepts connections, and forwards every connection to the target (host:port, or the folder of
a Unix socket as libpq names it: /var/run/postgresql:5432). Every chunk of bytes, in each
direction, is released `--delay-ms` after it arrived: with 1 ms each way a round trip (query sent,
answer received) costs at least 2 ms more than direct. The bench (`python -m bench --latency-ms 2`)
uses it through `LatencyProxy`, which starts this module as a child process and stops it.

How the delay is applied. Per connection and direction there are two threads: a reader that
receives a chunk, stamps its arrival time (time.monotonic) and queues it, and a writer that takes
the chunks in arrival order, sleeps until `arrival + delay` and sends. A chunk is thus never
released before its own deadline, and never later because of the chunks before it (their deadlines
are earlier: the delay does not compound, a stream keeps its throughput); the byte order of each
direction is the order of arrival. A closed side (FIN) is forwarded with the same delay; a reset
closes both sides. Sockets have TCP_NODELAY (Nagle would hold small writes back for an ACK).

Why a separate process with threads:
  - separate process: the harness measures in its own process (the import hook, the load generator
    of the status endpoint) and a proxy in it would take the GIL from them, and they from it; in a
    process of its own the proxy only competes for CPU like any other program on the machine;
  - threads rather than asyncio: asyncio's timers go through epoll_wait, whose timeout has a
    resolution of one millisecond (rounded up), so a 1 ms delay would become 1 to 2 ms; time.sleep
    uses clock_nanosleep and overshoots by tens of microseconds. The threads spend their time in
    recv, sleep and send, which release the GIL; the switch interval is lowered so that a woken
    writer gets the GIL quickly.
No tc/netem: the sch_netem qdisc is not available on the benchmark machine.
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

CHUNK = 65536
QUEUE_CHUNKS = 1024  # per direction: a reader waits when its writer is this far behind
ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------
# the proxy (runs in its own process)


def _connect(target: str) -> socket.socket:
    host, _, port = target.rpartition(":")
    if host.startswith("/"):  # a Unix-socket folder, as in libpq's host parameter
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(os.path.join(host, f".s.PGSQL.{port}"))
        return sock
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class _Link:
    """One proxied connection: two directions, four threads; both sockets closed when both are done."""

    def __init__(self, client: socket.socket, server: socket.socket, delay_s: float):
        self.client, self.server, self.delay_s = client, server, delay_s
        self.lock = threading.Lock()
        self.open_directions = 2
        for source, dest, name in ((client, server, "up"), (server, client, "down")):
            chunks: queue.Queue = queue.Queue(QUEUE_CHUNKS)
            threading.Thread(target=self._read, args=(source, chunks), name=f"read-{name}", daemon=True).start()
            threading.Thread(target=self._write, args=(dest, chunks), name=f"write-{name}", daemon=True).start()

    def _read(self, source: socket.socket, chunks: queue.Queue) -> None:
        while True:
            try:
                data = source.recv(CHUNK)
            except OSError:
                chunks.put((time.monotonic(), None))  # reset: the writer tears the link down
                return
            chunks.put((time.monotonic(), data))
            if not data:  # orderly close: forwarded as a FIN after the delay
                return

    def _write(self, dest: socket.socket, chunks: queue.Queue) -> None:
        failed = False
        while True:
            arrived, data = chunks.get()
            if failed:  # the link is torn down: drain until the reader's end marker
                if not data:
                    break
                continue
            deadline = arrived + self.delay_s
            while (left := deadline - time.monotonic()) > 0:
                time.sleep(left)
            try:
                if data:
                    dest.sendall(data)
                    continue
                if data is None:
                    self._abort()
                else:
                    dest.shutdown(socket.SHUT_WR)
            except OSError:
                self._abort()
                if data:  # the reader's end marker is still to come
                    failed = True
                    continue
            break
        with self.lock:
            self.open_directions -= 1
            last = self.open_directions == 0
        if last:
            self.client.close()
            self.server.close()

    def _abort(self) -> None:
        """Shut both sockets down in both directions: wakes the readers blocked in recv."""
        for sock in (self.client, self.server):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(target: str, delay_ms: float, port: int = 0, host: str = "127.0.0.1") -> None:
    sys.setswitchinterval(0.0002)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(128)
    print(f"listening {host} {listener.getsockname()[1]}", flush=True)
    while True:
        client, _ = listener.accept()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            server = _connect(target)
        except OSError as err:
            print(f"cannot reach {target}: {err}", file=sys.stderr, flush=True)
            client.close()
            continue
        _Link(client, server, delay_ms / 1000.0)


# --------------------------------------------------------------------------------------------
# using it from the harness and the tests


def target_of(url: str) -> str:
    """host:port of the server a libpq URL or conninfo points at."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    return f"{info.get('host') or '127.0.0.1'}:{info.get('port') or 5432}"


class LatencyProxy:
    """The proxy as a child process (`with LatencyProxy(url, delay_ms=1) as proxy: proxy.url(db_url)`)."""

    def __init__(self, server_url: str, delay_ms: float):
        self.target, self.delay_ms = target_of(server_url), delay_ms
        self.proc: subprocess.Popen | None = None
        self.host, self.port = "127.0.0.1", 0

    def start(self) -> "LatencyProxy":
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.latency_proxy", "--target", self.target, "--delay-ms", str(self.delay_ms)],
            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        line = self.proc.stdout.readline().split()
        if len(line) != 3 or line[0] != "listening":
            self.stop()
            raise RuntimeError(f"the latency proxy did not start (said {line!r})")
        self.host, self.port = line[1], int(line[2])
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc.stdout.close()
        self.proc = None

    def __enter__(self) -> "LatencyProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def url(self, url: str) -> str:
        """The same database and user as `url`, reached through the proxy (a postgresql:// URL)."""
        info = psycopg.conninfo.conninfo_to_dict(url)
        user = info.get("user", "postgres") + (f":{info['password']}" if info.get("password") else "")
        return f"postgresql://{user}@{self.host}:{self.port}/{info.get('dbname', 'postgres')}"


def round_trip_ms(url: str, queries: int = 50) -> dict:
    """Round trip of `SELECT 1` on one connection (autocommit): median and minimum in ms."""
    times = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT 1")
        for _ in range(queries):
            started = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            times.append(time.perf_counter() - started)
    return {"median_ms": round(1000 * statistics.median(times), 3), "min_ms": round(1000 * min(times), 3)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.latency_proxy", description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port of the PostgreSQL server")
    parser.add_argument("--delay-ms", type=float, required=True, help="delay of every chunk, in each direction")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve(args.target, args.delay_ms, args.port)


if __name__ == "__main__":
    main()
