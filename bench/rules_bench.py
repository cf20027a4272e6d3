"""`python -m bench.rules_bench [--symbols 12000] [--sessions 250] [--warm 200]`: the rule universes replayed.

Builds the sample market (market.sample.generate, seed 11, ending 2026-11-27: --warm + --sessions sessions, a
sixth of the symbols ETFs, as bench/liquidity_bench.py) in a fresh database `tspl_rules_bench` (dropped at the
end) on the server of TICKSTOCKPL_BENCH_PG (default postgresql://postgres@127.0.0.1:5432/postgres), then:

1. reads every session's bars once (universes/backfill.session_bars) and replays the last --sessions
   sessions in memory (universes/rules/replay.py; the --warm sessions before only fill the windows) twice:
   the built-in definitions alone (timed), then with each banded one beside a copy without its band;
   prints per universe its mean size and its daily turnover (the mean of (entered + left) / (before +
   after) over the sessions after the first, which builds from nothing) banded and unbanded, side by side;
2. `tickstockpl universes backfill` of the same sessions into pl_universe_membership (the legacy universes and
   the rule universes, one transaction per session), a process of its own, timed, then a second run (nothing
   to write).

Prints wall times and the load average. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import time

import psycopg

from bench.harness import project_command
from bench.scratch import sample_market_db
from tickstockpl.market import snapshot
from tickstockpl.universes import backfill
from tickstockpl.universes.backfill import cyclic_gc_paused
from tickstockpl.universes.rules import definition as rd
from tickstockpl.universes.rules.replay import Windows, replay
from tickstockpl.universes.rules.schedule import SessionCalendar

END = dt.date(2026, 11, 27)
UNBANDED = "{}__unbanded"


def _replay(definitions, today, steps, calendar, first):
    """(seconds, CPU seconds, {key: [churn per session]}) of one replay over the bars read."""
    windows = Windows(sorted({n for d in definitions.values() for n in d.windows()}))
    churn: dict[str, list] = {key: [] for key in definitions}
    started, cpu = time.perf_counter(), time.process_time()
    with cyclic_gc_paused():  # as the backfill does
        for step in replay(definitions, today, iter(steps), calendar, first=first, windows=windows):
            for key, result in step.results.items():
                churn[key].append(result.churn)
    return time.perf_counter() - started, time.process_time() - cpu, churn


def _chart(path: str, defs, churn, days, symbols: int) -> None:
    """One panel per banded universe: cumulative entries + exits over the replayed sessions, banded (solid)
    and with the band removed (dashed); the first session, which builds from nothing, left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    banded = [k for k, d in defs.items() if UNBANDED.format(k) in churn]
    fig, axes = plt.subplots(1, len(banded), figsize=(3.2 * len(banded), 3.2), sharex=True)
    for ax, key in zip(list(getattr(axes, "flat", [axes])), banded):
        for runs, style, label in ((churn[key], "-", "banded"), (churn[UNBANDED.format(key)], "--", "band removed")):
            total, line = 0, []
            for c in runs[1:]:
                total += c.entered + c.left
                line.append(total)
            ax.plot(range(1, len(line) + 1), line, style, label=label)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("session", fontsize=8)
        ax.tick_params(labelsize=7)
    first = list(getattr(axes, "flat", [axes]))[0]
    first.set_ylabel("entries + exits, cumulative", fontsize=8)
    first.legend(fontsize=7)
    fig.suptitle(f"Churn of the banded rule universes, {len(churn[banded[0]])} sessions replayed, {symbols:,} symbols"
                 " (python -m bench.rules_bench --chart)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"chart written to {path}")


def _backfill_command(url: str, first) -> dict:
    """`tickstockpl universes backfill --from FIRST --json` in a process of its own, as an operator runs it
    (called in this process, whose heap holds the replays above, the backfill took 72.6 s against 50.0 s as
    a command on 2026-12-03; its worker is forked from the calling process): its JSON answer, plus the
    process's wall time ("wall")."""
    started = time.perf_counter()
    done = subprocess.run([*project_command(), "universes", "backfill", "--from", first.isoformat(), "--json",
                           "--database-url", url], capture_output=True, text=True, check=True)
    return {**json.loads(done.stdout), "wall": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=12_000)
    parser.add_argument("--sessions", type=int, default=250)
    parser.add_argument("--warm", type=int, default=200)
    parser.add_argument("--skip-backfill", action="store_true")
    parser.add_argument("--chart", default=None, metavar="PNG",
                        help="also draw each banded universe's entries + exits per session, banded and band removed")
    args = parser.parse_args()
    os.environ.setdefault("TICKSTOCKPL_NOW", "2026-11-28T15:00:00Z")
    with sample_market_db("tspl_rules_bench", symbols=args.symbols, sessions=args.warm + args.sessions,
                          end=END) as (url, market):
        first = market.sessions[args.warm]
        print(f"{market.bar_count:,} bars, {len(market.symbols):,} symbols, {len(market.sessions)} sessions;"
              f" replayed {first} .. {market.end} ({args.sessions} sessions)")

        defs = {k: d for k, d in rd.default_definitions().items() if d.enabled}
        both = dict(defs)
        for key, d in defs.items():
            if d.band.active:
                both[UNBANDED.format(key)] = rd.parse_definition(UNBANDED.format(key), {**rd.to_mapping(d), "band": {}})
        with psycopg.connect(url, autocommit=True) as conn:
            today = snapshot.load(conn, market.end)
            days = backfill._sessions(conn, first, market.end)
            prices = backfill._prior(conn, days[0], Windows((1,)))
            assert not prices  # the market begins inside the sessions read: no window to start
            started = time.perf_counter()
            steps = list(backfill.session_bars(conn, days, prices))
            read = time.perf_counter() - started
        calendar = SessionCalendar(days)
        alone, alone_cpu, _ = _replay(defs, today, steps, calendar, first)
        together, together_cpu, churn = _replay(both, today, steps, calendar, first)
        print(f"bars read: {read:.1f} s ({len(steps)} sessions); replay of the {len(defs)} built-ins:"
              f" {alone:.1f} s, CPU {alone_cpu:.1f} s ({alone_cpu / args.sessions * 1000:.0f} ms a session);"
              f" with the {len(both) - len(defs)} unbanded copies: {together:.1f} s, CPU {together_cpu:.1f} s")
        print()
        print("| universe | band | mean size | daily turnover, banded | daily turnover, band removed | entries + exits, banded | band removed |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for key, d in defs.items():
            runs = churn[key]
            other = churn.get(UNBANDED.format(key))
            size = statistics.fmean(c.after for c in runs)
            mean = statistics.fmean(c.turnover for c in runs[1:])
            moves = sum(c.entered + c.left for c in runs[1:])
            band = (f"±{d.band.percentile:g} pts" if d.band.percentile else f"+{d.band.ranks} ranks") if d.band.active else "none"
            if other is None:
                print(f"| `{key}` | {band} | {size:,.0f} | {mean:.4%} | (no band) | {moves:,} | (no band) |")
            else:
                print(f"| `{key}` | {band} | {size:,.0f} | {mean:.4%} | {statistics.fmean(c.turnover for c in other[1:]):.4%}"
                      f" | {moves:,} | {sum(c.entered + c.left for c in other[1:]):,} |")
        if args.chart:
            _chart(args.chart, defs, churn, calendar.days, args.symbols)
        if not args.skip_backfill:
            result, again = _backfill_command(url, first), _backfill_command(url, first)
            with psycopg.connect(url, autocommit=True) as conn:
                rows = conn.execute("SELECT count(*) FROM pl_universe_membership").fetchone()[0]
            print()
            print(f"backfill {result['from_session']} .. {result['through_session']}: {result['seconds']:.1f} s"
                  f" (the command's process: {result['wall']:.1f} s;"
                  f" CPU of its main process {result['cpu_seconds']:.1f} s),"
                  f" {result['written']} sessions, {result['opened']:,} rows opened, {result['closed']:,} closed,"
                  f" {result['universes']} universes, {rows:,} rows; parts: {result['timings']}")
            print(f"second run: {again['seconds']:.1f} s, {again['written']} sessions written, {again['skipped']} skipped")
        print(f"load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
