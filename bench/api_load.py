"""Status-endpoint load, A/B between code versions: `python -m bench.api_load` (a benchmark, not a test).

    python -m bench.api_load --version before=/tmp/old/src --version after=src --rounds 3 --seconds 5
    python -m bench.api_load --url http://127.0.0.1:8080 --key K --job-id ID     (a server already running)

With --version NAME=SRC (repeatable): one database (`tspl_bench_api`, the sample market, one real full
sync, see bench/api_bench.prepare_database), then --rounds rounds; in each round every version in turn
gets a fresh `tickstockpl serve` subprocess run with PYTHONPATH=SRC (so an old checkout of `src/` is
what answers), one warm-up, then a closed loop of C keep-alive connections on
`GET /api/processing/cache-sync/status/{id}` for each C of --concurrency. Versions alternate within a
round, so a change of the machine's load hits both. Reported per version and level: the median over
rounds of req/s, p50, p99 and the server's CPU milliseconds per request (from /proc: the figure that
does not depend on what else the machine runs), and every round's figures.

With --paths NAME,NAME (names of PATHS, default `status`): the same loads on each of those endpoints in
turn (the other hot reads: cache-sync history and stats, the universe list, one universe, the change log,
the processing status); figures are reported per endpoint, level and version.

With --url: the same closed loops against that server (no CPU figure unless --pid is given).
With --sequential N: instead of the loads, N status requests one after the other on one keep-alive
connection (http.client, after 300 warm-up requests), per version and round: only the server's CPU
milliseconds per request, the figure least moved by other load on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import urllib.parse

from bench import api_bench

# The read endpoints the load is run on ({job_id}: the database's one completed sync).
PATHS = {
    "status": "/api/processing/cache-sync/status/{job_id}",
    "history": "/api/processing/cache-sync/history?limit=10&offset=0",
    "stats": "/api/processing/cache-sync/stats",
    "universes": "/api/universes",
    "members": "/api/universes/stock_universe/market_cap/mega_cap",
    "changes": "/api/universes/changes?limit=50",
    "processing_status": "/api/processing/status",
}


def _server_env(src: str) -> dict[str, str]:
    path = os.path.abspath(src)
    return {"PYTHONPATH": path + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")}


class VersionServer(api_bench.Services):
    """`tickstockpl serve` importing the package from `src` (and its own redis-server)."""

    def __init__(self, db_url: str, src: str):
        saved = os.environ.get("PYTHONPATH")
        os.environ.update(_server_env(src))
        try:
            super().__init__(db_url)
        finally:
            if saved is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved


async def _levels(port: int, paths: dict[str, str], levels: list[int], seconds: float,
                  pid: int | None) -> list[dict]:
    found = []
    for name, path in paths.items():
        await api_bench.closed_loop(port, path, 8, 1.0)  # warm-up
        for c in levels:
            before = api_bench.cpu_seconds(pid) if pid else None
            result = await api_bench.closed_loop(port, path, c, seconds)
            if pid:
                used = api_bench.cpu_seconds(pid) - before
                result["server_cpu_ms_per_request"] = round(1000 * used / max(result["requests"], 1), 3)
            result["endpoint"] = name
            found.append(result)
    return found


def sequential(port: int, path: str, pid: int, count: int) -> dict:
    import http.client
    import socket

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    headers = {"X-API-Key": api_bench.KEY}

    def one() -> None:
        conn.request("GET", path, headers=headers)
        answer = conn.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"status {answer.status}")

    for _ in range(300):
        one()
    before = api_bench.cpu_seconds(pid)
    for _ in range(count):
        one()
    used = api_bench.cpu_seconds(pid) - before
    conn.close()
    return {"connections": 1, "requests": count, "errors": 0,
            "server_cpu_ms_per_request": round(1000 * used / count, 3)}


def _median(rows: list[dict], key: str):
    values = [r[key] for r in rows if r.get(key) is not None]
    return round(statistics.median(values), 3) if values else None


def ab(versions: list[tuple[str, str]], admin_url: str, stocks: int, etfs: int, rounds: int, seconds: float,
       levels: list[int], sequential_count: int = 0, endpoints: tuple[str, ...] = ("status",)) -> dict:
    db_url, job_id = api_bench.prepare_database(admin_url, stocks, etfs)
    paths = {name: PATHS[name].format(job_id=job_id) for name in endpoints}
    path = paths["status"] if "status" in paths else next(iter(paths.values()))
    runs: dict[str, list[list[dict]]] = {name: [] for name, _ in versions}
    try:
        for round_no in range(rounds):
            order = versions if round_no % 2 == 0 else list(reversed(versions))
            for name, src in order:
                server = VersionServer(db_url, src)
                try:
                    if sequential_count:
                        runs[name].append([sequential(server.api_port, path, server.api.pid, sequential_count)])
                    else:
                        runs[name].append(asyncio.run(_levels(server.api_port, paths, levels, seconds,
                                                              server.api.pid)))
                finally:
                    server.close()
                print(f"round {round_no + 1} {name}: "
                      + ", ".join(f"{r.get('endpoint', 'status')} c={r['connections']} {r.get('req_per_s')} req/s p99 {r.get('p99_ms')} ms"
                                  f" cpu {r['server_cpu_ms_per_request']} ms/req" for r in runs[name][-1]),
                      file=sys.stderr)
    finally:
        import psycopg

        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{api_bench.DBNAME}" WITH (FORCE)')
    summary = {}
    for name, _src in versions:
        summary[name] = []
        cells = [("status", 1)] if sequential_count else [(e, c) for e in endpoints for c in levels]
        for i, (endpoint, c) in enumerate(cells):
            rows = [r[i] for r in runs[name]]
            summary[name].append({"endpoint": endpoint, "connections": c, "req_per_s": _median(rows, "req_per_s"),
                                  "p50_ms": _median(rows, "p50_ms"), "p99_ms": _median(rows, "p99_ms"),
                                  "server_cpu_ms_per_request": _median(rows, "server_cpu_ms_per_request"),
                                  "errors": sum(r["errors"] for r in rows)})
    return {"cpus": os.cpu_count(), "market": {"stocks": stocks, "etfs": etfs}, "rounds": rounds,
            "seconds": seconds, "median": summary, "runs": runs, "load_average": os.getloadavg()}


def table(figures: dict) -> str:
    lines = ["| endpoint | version | connections | req/s | p50 ms | p99 ms | server CPU ms/request |",
             "|---|---|---|---|---|---|---|"]
    cells = sorted({(r["endpoint"], r["connections"]) for rows in figures["median"].values() for r in rows},
                   key=lambda cell: (list(PATHS).index(cell[0]), cell[1]))
    for endpoint, c in cells:
        for name, rows in figures["median"].items():
            for r in rows:
                if (r["endpoint"], r["connections"]) != (endpoint, c):
                    continue
                lines.append(f"| {endpoint} | {name} | {r['connections']} | {r['req_per_s']} | {r['p50_ms']} | {r['p99_ms']} |"
                         f" {r['server_cpu_ms_per_request']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="append", default=[], metavar="NAME=SRC",
                        help="a code version: its name and the src/ folder its server imports (repeatable)")
    parser.add_argument("--url", help="measure this running server instead")
    parser.add_argument("--key", default=api_bench.KEY)
    parser.add_argument("--job-id")
    parser.add_argument("--pid", type=int)
    parser.add_argument("--admin-url", default=os.environ.get("TICKSTOCKPL_BENCH_PG", api_bench.DEFAULT_ADMIN))
    parser.add_argument("--db-name", default=api_bench.DBNAME,
                        help="the benchmark database (dropped and made again): a name of its own per concurrent run")
    parser.add_argument("--stocks", type=int, default=3000)
    parser.add_argument("--etfs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--paths", default="status",
                        help=f"comma-separated endpoints to load, of: {', '.join(PATHS)} (or `all`)")
    parser.add_argument("--sequential", type=int, default=0, metavar="N",
                        help="N requests in sequence on one connection per version and round; CPU per request only")
    args = parser.parse_args(argv)
    api_bench.DBNAME = args.db_name
    levels = [int(x) for x in args.concurrency.split(",")]
    endpoints = tuple(PATHS) if args.paths == "all" else tuple(args.paths.split(","))
    unknown = [e for e in endpoints if e not in PATHS]
    if unknown:
        parser.error(f"unknown endpoint(s) {', '.join(unknown)}: choose from {', '.join(PATHS)}")
    if args.url:
        if not args.job_id:
            parser.error("--url needs --job-id")
        api_bench.KEY = args.key
        port = urllib.parse.urlsplit(args.url).port or 80
        paths = {name: PATHS[name].format(job_id=args.job_id) for name in endpoints}
        found = asyncio.run(_levels(port, paths, levels, args.seconds, args.pid))
        print(json.dumps(found, indent=2))
        return
    if not args.version:
        parser.error("give --version NAME=SRC (one or more) or --url")
    versions = [tuple(v.split("=", 1)) for v in args.version]
    figures = ab(versions, args.admin_url, args.stocks, args.etfs, args.rounds, args.seconds, levels,
                 sequential_count=args.sequential, endpoints=endpoints)
    print(json.dumps(figures, indent=2))
    print(table(figures), file=sys.stderr)


if __name__ == "__main__":
    main()
