"""`python -m bench.ab`: an A/B run of the sync benchmark, two versions of the product in one run.

    python -m bench.ab --before /tmp/main/src [--sizes 12000] [--reps 5] [--output DIR]

A is the `tickstockpl` package in the folder of --before (for instance `git archive <commit> src` unpacked
somewhere), put first on the measured processes' PYTHONPATH; B is the package of --after the same way
(default: the package of this checkout). Both run on
the same database, built once per size as `python -m bench` builds it, with the same interpreter and
dependencies. Within every repetition each scenario is measured for A and for B back to back, their order
swapped from one repetition to the next, and the legacy baseline once: so the ratios B/A and X/baseline
compare runs that saw the same machine load. Each preparation runs the code of the version it prepares
for (the fingerprint includes the code). Reports, per scenario: the medians, B/A as the median of the
per-repetition ratios, each version's ratio to the baseline, and whether A and B wrote the same numbers of
rows and events (the behaviour check), as <output>/AB.md and <output>/ab_results.json.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench import harness
from bench.__main__ import DEFAULT_ADMIN

DEFAULT_KEYS = ("legacy", "full_cold", "full_legacy", "full_next", "rerun", "rerun_forced")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="src folder of version A (holds tickstockpl/)")
    parser.add_argument("--after", type=Path, default=None,
                        help="src folder of version B (default: this checkout's src, as installed)")
    parser.add_argument("--sizes", default="12000", help="comma-separated symbol counts (default 12000)")
    parser.add_argument("--sessions", type=int, default=250)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--keys", default=",".join(DEFAULT_KEYS),
                        help=f"scenarios (keys of bench.harness.SCENARIOS, and legacy); default {','.join(DEFAULT_KEYS)}")
    parser.add_argument("--admin-url", default=os.environ.get("TICKSTOCKPL_BENCH_PG", DEFAULT_ADMIN))
    parser.add_argument("--output", type=Path, default=Path("ab_results"))
    parser.add_argument("--keep", action="store_true")
    return parser.parse_args(argv)


OUTCOME = ("total_changes", "rows_written", "changes_by_family", "universes_updated", "universes_unchanged", "events")


def _outcome(run: harness.Run) -> dict:
    """What the sync reports it did (the CLI's --json), the fields that must not depend on the version."""
    return {k: run.outcome.get(k) for k in OUTCOME}


def _without_change_log(rows: dict) -> dict:
    log = rows.get("change log") or {}
    other = {k: v - log.get(k, 0) for k, v in (rows.get("other tables") or {}).items()}
    return {"cache_entries": rows.get("cache_entries"), "other tables": other}


def _same(a: harness.Run, b: harness.Run) -> bool:
    """The same rows in every table but the change log, the same events, and the same changes logged (the
    sync's own count: since migration 0011 a run of changes is one row of pl_sync_changes, so the table's
    row count is not comparable across that migration)."""
    return (_without_change_log(a.rows) == _without_change_log(b.rows) and a.events == b.events
            and _outcome(a) == _outcome(b))


def run_size(db: harness.BenchDb, args, project: list[str], keys: list[str]) -> dict:
    runners = {"A": harness.Runner(db, args.admin_url, project, source=str(args.before.resolve())),
               "B": harness.Runner(db, args.admin_url, project, source=str(args.after.resolve()) if args.after else None)}
    scenarios = [k for k in keys if k != harness.LEGACY]
    times = {k: {"A": [], "B": []} for k in scenarios}
    legacy: list[float] = []
    behaviour: dict[str, list[bool]] = {k: [] for k in scenarios}
    rows: dict[str, dict] = {k: {} for k in scenarios}
    for key in scenarios:  # warm-up
        for runner in runners.values():
            runner.run(key)
    for rep in range(args.reps):
        if harness.LEGACY in keys:
            run = runners["B"].run(harness.LEGACY)
            if run.returncode == 0:
                legacy.append(run.seconds)
        for key in scenarios:
            order = ("A", "B") if rep % 2 == 0 else ("B", "A")
            got = {}
            for variant in order:
                got[variant] = run = runners[variant].run(key)
                if run.returncode != 0:
                    raise SystemExit(f"{variant} {key} failed: {run.stderr[-500:]}")
                times[key][variant].append(run.seconds)
            behaviour[key].append(_same(got["A"], got["B"]))
            rows[key] = {v: {"rows": got[v].rows, "events": got[v].events} for v in got}
        harness.log(f"{db.name}: repetition {rep + 1}/{args.reps}: "
                    + (f"legacy {legacy[-1]:.3f}s, " if legacy else "")
                    + ", ".join(f"{k} A {times[k]['A'][-1]:.3f}s B {times[k]['B'][-1]:.3f}s" for k in scenarios))
    statements = {}
    with tempfile.TemporaryDirectory() as folder:
        for key in scenarios:
            for variant, runner in runners.items():
                path = os.path.join(folder, f"{key}_{variant}.json")
                if runner.run(key, path).returncode == 0 and os.path.exists(path):
                    with open(path, encoding="utf-8") as handle:
                        statements.setdefault(key, {})[variant] = json.load(handle)["statements"]
    return {"db": db.name, "size": db.size, "legacy": legacy, "times": times, "behaviour": behaviour,
            "rows": rows, "statements": statements,
            "labels": {s.key: s.label for s in harness.SCENARIOS if s.key in scenarios}}


def markdown(results: list[dict], meta: dict) -> str:
    out = ["# A/B run of the sync benchmark", "",
           f"`{meta['command']}` on {meta['date']}; A = `{meta['before']}`, B = `{meta['after']}`;"
           f" {meta['reps']} repetitions, A and B alternating (order swapped each repetition), load average"
           f" {meta['load_start']} at start, {meta['load_end']} at end.", ""]
    for result in results:
        base = statistics.median(result["legacy"]) if result["legacy"] else None
        out += [f"## {result['size']:,} symbols", "",
                "| scenario | A median s | B median s | B/A (median of per-repetition ratios) | A/baseline | B/baseline"
                " | statements A / B | change-log rows A / B | same rows, events, changes |",
                "|---|---|---|---|---|---|---|---|---|"]
        if base:
            out.append(f"| legacy AppV2 rebuild (baseline) | {base:.3f} | {base:.3f} | – | 1.00 | 1.00 | – | – | – |")
        for key, pair in result["times"].items():
            a, b = statistics.median(pair["A"]), statistics.median(pair["B"])
            ratio = statistics.median(y / x for x, y in zip(pair["A"], pair["B"]))
            counts = result["statements"].get(key, {})
            same = all(result["behaviour"][key])
            logged = {v: ((result["rows"].get(key, {}).get(v) or {}).get("rows") or {}).get("change log", {})
                      .get("inserted", "–") for v in ("A", "B")}
            out.append(f"| {result['labels'].get(key, key)} | {a:.3f} | {b:.3f} | {ratio:.2f} | "
                       f"{a / base:.2f} | {b / base:.2f} | {counts.get('A', '–')} / {counts.get('B', '–')} | "
                       f"{logged['A']} / {logged['B']} | {'yes' if same else '**no**'} |" if base else
                       f"| {key} | {a:.3f} | {b:.3f} | {ratio:.2f} | – | – | – | {'yes' if same else '**no**'} |")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    import datetime as dt

    args = parse(argv)
    keys = [k.strip() for k in args.keys.split(",") if k.strip()]
    unknown = [k for k in keys if k != harness.LEGACY and k not in {s.key for s in harness.SCENARIOS}]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {', '.join(unknown)}")
    harness.compile_sources()
    for folder in (args.before, args.after):
        if folder is not None:
            if not (folder / "tickstockpl").is_dir():
                raise SystemExit(f"{folder}: no tickstockpl package there")
            compileall.compile_dir(str(folder), quiet=1)
    project = harness.project_command()
    if project is None:
        raise SystemExit("`tickstockpl cache-sync` is not available beside this interpreter")
    load_start = round(os.getloadavg()[0], 2)
    results = []
    for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
        db = harness.build_database(args.admin_url, size, args.sessions)
        try:
            results.append(run_size(db, args, project, keys))
        finally:
            if not args.keep:
                harness.drop_database(args.admin_url, db.name)
    meta = {"command": "python -m bench.ab " + " ".join(sys.argv[1:] if argv is None else argv),
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "before": str(args.before), "after": str(args.after or "this checkout"),
            "reps": args.reps, "load_start": load_start, "load_end": round(os.getloadavg()[0], 2)}
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "ab_results.json").write_text(json.dumps({"meta": meta, "sizes": results}, indent=1),
                                                 encoding="utf-8")
    (args.output / "AB.md").write_text(markdown(results, meta), encoding="utf-8")
    harness.log(f"wrote {args.output / 'AB.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
