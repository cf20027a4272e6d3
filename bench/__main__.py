"""`python -m bench`: build the sample databases, measure, regenerate docs/PERFORMANCE.md and the chart.

    python -m bench                 sizes 4,000 and 12,000, 250 sessions, 5 repetitions
    python -m bench --quick         4,000 only, 3 repetitions (a fast check)
    python -m bench --large         also 50,000 and 100,000
    python -m bench --long-history  also 12,000 with 1,250 sessions (five years)
    python -m bench --sizes 2000,8000 --reps 7 --keep
    python -m bench --latency-ms 2     every figure also with 2 ms of simulated round-trip latency
    python -m bench --render-only      re-render the report and chart from <output>/perf_results.json
    python -m bench --only-hooks first_answers   measure only those hooks (fresh databases of the plan) and
                                                 merge their figures into <output>/perf_results.json

    python -m bench.ab --before DIR    an A/B run: another version's src (DIR) against this one, alternating
                                       (bench/ab.py)

TICKSTOCKPL_BENCH_DB_PREFIX (default tspl_bench) names the databases: two benchmarks on one server need
their own prefix.

The PostgreSQL server is the one of --admin-url (default TICKSTOCKPL_BENCH_PG, else
postgresql://postgres@127.0.0.1:5432/postgres); each size gets a database `tspl_bench_<size>`
that is created fresh and dropped at the end unless --keep.

--latency-ms MS (default 0 = off): a delaying TCP proxy (bench/latency_proxy.py, a child process)
in front of that server adds MS/2 to every chunk in each direction, so every round trip costs at
least MS more. Every measured run of the baseline and of each scenario is then followed at once by
the same run with the measured process's DATABASE_URL pointed at the proxy (so both see the same
machine load); the preparations, the statistics reads and the statement counts stay direct. The import of one session
and the status endpoint (bench/extra.py) are also measured through it. The report gets a section
"with MS ms simulated round-trip latency"; the figures are kept in perf_results.json.

After the sync figures of each size come the hooks of bench/extra.py (import of one session,
status endpoint; --no-hooks skips them). The 250-session backfill takes about a minute at 12,000
symbols: it runs only for the sizes of --backfill-sizes (default 12000; `none` for no size).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

from bench import extra, handback, harness, report
from bench.latency_proxy import LatencyProxy, round_trip_ms

DEFAULT_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4000,12000", help="comma-separated symbol counts (default 4000,12000)")
    parser.add_argument("--large", action="store_true", help="add 50,000 and 100,000 symbols")
    parser.add_argument("--sessions", type=int, default=250, help="sessions of bars per database (default 250)")
    parser.add_argument("--long-history", action="store_true", help="add 12,000 symbols with 1,250 sessions")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per figure (median; default 5, 3 with --quick)")
    parser.add_argument("--quick", action="store_true", help="4,000 symbols only, 3 repetitions")
    parser.add_argument("--admin-url", default=os.environ.get("TICKSTOCKPL_BENCH_PG", DEFAULT_ADMIN))
    parser.add_argument("--keep", action="store_true", help="keep the tspl_bench_* databases")
    parser.add_argument("--output", type=Path, default=harness.ROOT / "docs", help="folder of the report and chart")
    parser.add_argument("--no-hooks", action="store_true", help="skip the import/API hooks of bench/extra.py")
    parser.add_argument("--market", choices=("generated", "real"), default="generated",
                        help="generated: the sample market (default, the figures of docs/PERFORMANCE.md); real: the"
                             " realistic market (real names of large US companies and ETFs + the generated tail)")
    parser.add_argument("--backfill-sizes", default="12000",
                        help="sizes whose hooks include the 250-session backfill (default 12000; 'none')")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="also measure with this simulated round-trip latency to PostgreSQL (default 0 = off)")
    parser.add_argument("--only-hooks", default="",
                        help="measure only these hooks of bench/extra.py (comma-separated) on fresh databases of the"
                             " plan and merge their figures into <output>/perf_results.json; the sync figures stay"
                             " those of the run that wrote it, and the report names the merge")
    parser.add_argument("--render-only", action="store_true",
                        help="measure nothing: re-render the report and chart from <output>/perf_results.json")
    return parser.parse_args(argv)


def plan(args: argparse.Namespace) -> list[tuple[int, int]]:
    if args.quick:
        return [(4000, args.sessions)]
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.large:
        sizes += [50000, 100000]
    todo = [(size, args.sessions) for size in sorted(set(sizes))]
    if args.long_history:
        todo.append((12000, 1250))
    return todo


def backfill_plan(args: argparse.Namespace, todo: list[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """Per database of the plan: '' when its hooks run the backfill, else the reason they do not."""
    wanted = set() if args.backfill_sizes.strip().lower() == "none" else {
        int(s) for s in args.backfill_sizes.split(",") if s.strip()}
    done: set[int] = set()
    plan_notes = {}
    for size, sessions in todo:
        if size not in wanted:
            plan_notes[(size, sessions)] = (f"not measured at this size: it takes about a minute at 12,000 symbols,"
                                            f" so only for --backfill-sizes ({args.backfill_sizes})")
        elif size in done or sessions < extra.BACKFILL_SESSIONS:
            plan_notes[(size, sessions)] = "measured once per size (on the first database with 250 sessions)"
        else:
            plan_notes[(size, sessions)] = ""
            done.add(size)
    return plan_notes


def machine(admin_url: str) -> dict:
    import psycopg

    with psycopg.connect(admin_url) as conn:
        version = conn.execute("SELECT version()").fetchone()[0].split(" on ")[0]
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {"cpus": os.cpu_count(), "ram_gb": round(pages / 2**30), "postgres": version,
            "python": platform.python_version()}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    harness.MARKET = args.market
    if args.render_only:
        results, meta = harness.results_from_json(
            json.loads((args.output / "perf_results.json").read_text(encoding="utf-8")))
        write_outputs(results, meta, args.output)
        _update_handback(args.output)
        return 0
    reps = args.reps or (3 if args.quick else 5)
    if args.only_hooks:
        return merge_hooks(args, reps, argv)
    harness.compile_sources()
    project = harness.project_command()
    if project is None:
        harness.log("`tickstockpl cache-sync` is not available: only the baseline is measured")
    results: list[harness.SizeResult] = []
    server_statements = False
    load_start = round(os.getloadavg()[0], 2)
    started = time.perf_counter()
    todo = plan(args)
    backfill = backfill_plan(args, todo)
    proxy, round_trips = None, {}
    if args.latency_ms > 0:
        proxy = LatencyProxy(args.admin_url, args.latency_ms / 2).start()
        round_trips = {"direct": round_trip_ms(args.admin_url), "proxy": round_trip_ms(proxy.url(args.admin_url))}
        harness.log(f"latency proxy on port {proxy.port}: SELECT 1 round trip {round_trips}")
    try:
        for size, sessions in todo:
            db = harness.build_database(args.admin_url, size, sessions)
            try:
                figures, latency = harness.run_size(db, args.admin_url, reps, project,
                                                    proxy.url(db.url) if proxy else None)
                server_statements = server_statements or any(
                    f.server_statements is not None for f in figures.values())
                context = extra.BenchContext(db, args.admin_url, reps, proxy=proxy, latency_ms=args.latency_ms,
                                             backfill=not backfill[(size, sessions)],
                                             backfill_note=backfill[(size, sessions)])
                hooks = [] if args.no_hooks else extra.run_hooks(context)
                results.append(harness.SizeResult(db, figures, hooks, latency))
            finally:
                if not args.keep:
                    harness.drop_database(args.admin_url, db.name)
    finally:
        if proxy is not None:
            proxy.stop()
    meta = {
        **machine(args.admin_url), "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "seed": harness.BENCH_SEED, "reps": reps, "end": results[0].db.end if results else "–",
        "server_statements": server_statements, "total_seconds": round(time.perf_counter() - started, 1),
        "load_start": load_start, "load_end": round(os.getloadavg()[0], 2),
        "latency_ms": args.latency_ms, "round_trip_ms": round_trips,
    }
    write_outputs(results, meta, args.output)
    (args.output / "perf_results.json").write_text(
        json.dumps(harness.result_json(results, meta), indent=1, default=str), encoding="utf-8")
    _update_handback(args.output)
    harness.log(f"measured in {meta['total_seconds']} s")
    return 0


def merge_hooks(args: argparse.Namespace, reps: int, argv: list[str] | None) -> int:
    """--only-hooks: the named hooks on fresh databases of the plan, merged into the committed results."""
    by_name = {hook.__name__: hook for hook in extra.HOOKS}
    names = [n.strip() for n in args.only_hooks.split(",") if n.strip()]
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SystemExit(f"unknown hook(s) {', '.join(unknown)}; hooks are {', '.join(by_name)}")
    path = args.output / "perf_results.json"
    results, meta = harness.results_from_json(json.loads(path.read_text(encoding="utf-8")))
    load_start, measured = round(os.getloadavg()[0], 2), []
    for size, sessions in plan(args):
        result = next((r for r in results if r.db.size == size and r.db.sessions == sessions), None)
        if result is None:
            harness.log(f"{size} symbols x {sessions} sessions is not in {path}: skipped")
            continue
        db = harness.build_database(args.admin_url, size, sessions)
        try:
            context = extra.BenchContext(db, args.admin_url, reps, backfill=False,
                                         backfill_note="not measured by --only-hooks")
            figures = extra.run_hooks(context, [by_name[n] for n in names])
        finally:
            if not args.keep:
                harness.drop_database(args.admin_url, db.name)
        keys = {f["key"] for f in figures} | set(names)  # a hook's earlier failure is recorded under its name
        result.extra = [f for f in result.extra if f["key"] not in keys] + figures
        measured.append(f"{size}x{sessions}")
    meta.setdefault("merged", []).append({
        "command": "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "hooks": names,
        "databases": measured, "load_start": load_start, "load_end": round(os.getloadavg()[0], 2)})
    write_outputs(results, meta, args.output)
    path.write_text(json.dumps(harness.result_json(results, meta), indent=1, default=str), encoding="utf-8")
    _update_handback(args.output)
    return 0


def _update_handback(folder: Path) -> None:
    """The hand-back form quotes the committed report: refresh its table when the report is docs/'s."""
    if folder.resolve() == handback.RESULTS.parent:
        handback.update()
        harness.log(f"updated the performance table of {handback.FORM.name}")


def write_outputs(results: list[harness.SizeResult], meta: dict, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    chart = folder / "perf_sync_time.png"
    report.write_chart(results, chart)
    report.write_markdown(results, meta, folder / "PERFORMANCE.md", chart.name)
    harness.log(f"wrote {folder / 'PERFORMANCE.md'} and {chart.name}")


if __name__ == "__main__":
    sys.exit(main())
