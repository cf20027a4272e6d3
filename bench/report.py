"""docs/PERFORMANCE.md and docs/perf_sync_time.png from the figures of one benchmark run."""

from __future__ import annotations

from pathlib import Path

from bench.harness import LEGACY, SCENARIOS, Figure, SizeResult

CHART_LINES = (
    (LEGACY, "legacy AppV2 rebuild (baseline)", "tab:red", "o"),
    ("full_next", "TickStockPL full sync, one new session", "tab:blue", "s"),
    ("full_cold", "TickStockPL full sync, empty cache", "tab:cyan", "^"),
    ("rerun", "TickStockPL no-change rerun", "tab:green", "D"),
)


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _ratio(figure: Figure, baseline: Figure) -> str:
    if figure.median is None or not baseline.median:
        return "–"
    return f"{figure.median / baseline.median:.2f}"


def _cell(figure: Figure) -> str:
    if figure.median is None:
        return "n/a"
    return _s(figure.median)


def _label(result: SizeResult) -> str:
    db = result.db
    return f"{db.symbols:,} symbols × {db.sessions} sessions"


def summary_table(results: list[SizeResult]) -> list[str]:
    keys = [LEGACY] + [s.key for s in SCENARIOS if s.key in results[0].figures]
    head = ["data"] + [results[0].figures[k].label for k in keys] + ["full/baseline", "rerun/baseline"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for result in results:
        f = result.figures
        cells = [_label(result)] + [_cell(f[k]) if k in f else "–" for k in keys]
        cells += [_ratio(f["full_next"], f[LEGACY]), _ratio(f["rerun"], f[LEGACY])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _counts(rows: dict | None) -> str:
    if not rows:
        return "–"
    return f"{rows['inserted']} / {rows['updated']} / {rows['deleted']}"


def detail_table(result: SizeResult) -> list[str]:
    baseline = result.figures[LEGACY]
    lines = ["| run | median s | min–max s | ratio to baseline | peak RSS MB | SQL statements | transactions"
             " | cache_entries rows ins / upd / del | other rows ins / upd / del | events |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for figure in result.figures.values():
        if figure.median is None:
            lines.append(f"| {figure.label} | {figure.error or 'n/a'} | | | | | | | | |")
            continue
        span = f"{min(figure.times):.3f}–{max(figure.times):.3f}"
        statements = "–" if figure.statements is None else str(figure.statements)
        if figure.server_statements is not None:
            statements += f" (server {figure.server_statements})"
        lines.append(
            f"| {figure.label} | {figure.median:.3f} | {span} | {_ratio(figure, baseline)} | {figure.rss_mb:.0f} | "
            f"{statements} | {figure.transactions if figure.transactions is not None else '–'} | "
            f"{_counts(figure.rows.get('cache_entries'))} | {_counts(figure.rows.get('other tables'))} | "
            f"{figure.events if figure.events is not None else '–'} |")
        if figure.error:
            lines.append(f"| ↳ some repetitions failed: {figure.error} | | | | | | | | | |")
    return lines


def target_rows(results: list[SizeResult]) -> list[str]:
    """The targets of issue 6, checked against this run where it measured them."""
    by_key = {(r.db.size, r.db.sessions): r for r in results}
    rows: list[tuple[str, str, str]] = []

    def verdict(ok: bool | None) -> str:
        return "–" if ok is None else ("yes" if ok else "**no**")

    main = by_key.get((12000, 250))
    if main:
        f = main.figures
        full, base, rerun = f["full_next"].median, f[LEGACY].median, f["rerun"].median
        rows.append(("12k full sync ≤ 0.6 s", _s(full), verdict(None if full is None else full <= 0.6)))
        rows.append(("12k full sync not slower than the baseline", f"{_s(full)} vs {_s(base)}",
                     verdict(None if full is None or base is None else full <= base)))
        rows.append(("12k no-change rerun ≤ 0.4 s", _s(rerun), verdict(None if rerun is None else rerun <= 0.4)))
        speedup = "–" if rerun is None or not base else f"{base / rerun:.2f}× (baseline ÷ rerun)"
        rows.append(("12k no-change rerun ≥ 1.5× faster than the baseline", speedup,
                     verdict(None if rerun is None or base is None else base / rerun >= 1.5)))
        for key, what in (("full_cold", "12k first run (empty cache) not slower than the baseline (issue 16)"),
                          ("full_legacy", "12k first run into the legacy rows not slower than the baseline (issue 16)"),
                          ("full_cold_legacy_set", "12k first run of the legacy job's universes only (rule universes"
                                                   " off) not slower than the baseline (issue 16, like for like)")):
            if key in f:
                every = f[key].median
                rows.append((what, f"{_s(every)} vs {_s(base)}",
                             verdict(None if every is None or base is None else every <= base)))
        written = f["rerun"].rows.get("cache_entries")
        rows.append(("no-change rerun writes zero cache_entries rows (ins / upd / del)", _counts(written),
                     verdict(None if not written else not any(written.values()))))
    counts = {r.db.size: r.figures["full_next"].statements for r in results if r.db.sessions == 250}
    if any(v is not None for v in counts.values()):
        values = [v for v in counts.values() if v is not None]
        rows.append(("≤ 20 SQL statements per sync, constant across sizes", str(counts),
                     verdict(max(values) <= 20 and len(set(values)) == 1)))
    long = by_key.get((12000, 1250))
    if long and long.figures["full_next"].median:
        full_long = long.figures["full_next"].median
        rows.append(("12k full sync with 1,250 sessions ≤ 0.7 s", _s(full_long), verdict(full_long <= 0.7)))
    if main and long and main.figures["full_next"].median and long.figures["full_next"].median:
        extra = long.figures["full_next"].median - main.figures["full_next"].median
        rows.append(("1,250 sessions add ≤ 0.1 s", f"{extra:+.3f} s", verdict(extra <= 0.1)))
    for key, text in (("import_session", "12k import of one session (flat file) ≤ 1 s (issue 4)"),
                      ("backfill_250", "12k backfill of 250 sessions ≤ 60 s (issue 4)")):
        for fig in _extra_at(results, key, 12000):
            rows.append((text + ("" if fig["sessions"] == 250 else f", {fig['sessions']} sessions in the table"),
                         f"{fig['value']:.3f} s", verdict(fig["value"] <= fig["target"])))
    for fig in _extra_at(results, "first_answer_max", 12000):
        rows.append(("12k: every endpoint's first answer after start ≤ 100 ms (issue 12)"
                     + ("" if fig["sessions"] == 250 else f", {fig['sessions']} sessions in the table"),
                     f"{fig['value']:.1f} ms (slowest)", verdict(fig["value"] <= fig["target"])))
    big = by_key.get((100000, 250))
    if big and big.figures["full_next"].median:
        f = big.figures["full_next"]
        rows.append(("100k symbols ≤ 5 s and ≤ 500 MB peak RSS", f"{f.median:.2f} s, {f.rss_mb:.0f} MB",
                     verdict(f.median <= 5 and f.rss_mb <= 500)))
    sized = sorted((r.db.size, r.figures["full_next"].median) for r in results
                   if r.db.sessions == 250 and r.figures["full_next"].median)
    if len(sized) >= 2:
        (n0, t0), (n1, t1) = sized[0], sized[-1]
        rows.append(("time grows no worse than linearly with symbols",
                     f"×{t1 / t0:.1f} time for ×{n1 / n0:.1f} symbols", verdict(t1 / t0 <= n1 / n0)))
    lines = ["| target | measured | met |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows] or ["| (nothing measured) | | |"]
    return lines


def _extra_at(results: list[SizeResult], key: str, size: int) -> list[dict]:
    """The measured hook figures `key` of the databases of `size` symbols (with their sessions)."""
    return [{**fig, "sessions": r.db.sessions} for r in results if r.db.size == size
            for fig in r.extra if fig["key"] == key and fig["value"] is not None and fig.get("target") is not None]


def extra_table(results: list[SizeResult]) -> list[str]:
    """The hook figures (bench/extra.py) with their targets; a target is judged at its size only."""
    lines = ["| data | figure | value | target | met | note |", "|---|---|---|---|---|---|"]
    for result in results:
        for fig in result.extra:
            digits = {"s": 3, "ms": 2, "req/s": 0}.get(fig["unit"], 3)
            value = "–" if fig["value"] is None else f"{fig['value']:,.{digits}f} {fig['unit']}"
            target, met = fig.get("target_text") or "–", "–"
            if fig["value"] is not None and fig.get("target") is not None:
                if fig.get("target_size") in (None, result.db.size):
                    met = "yes" if fig["value"] <= fig["target"] else "**no**"
                else:
                    met = f"– (judged at {fig['target_size']:,})"
            lines.append(f"| {_label(result)} | {fig['label']} | {value} | {target} | {met} | {fig.get('note', '')} |")
    return lines


def _added(figure: Figure | None, slow: Figure | None) -> float | None:
    if figure is None or slow is None or figure.median is None or slow.median is None:
        return None
    return slow.median - figure.median


def latency_section(results: list[SizeResult], meta: dict) -> list[str]:
    """Every sync figure direct and through the latency proxy, per size, with the statements sent."""
    ms = meta.get("latency_ms") or 0
    if not ms or not any(r.latency for r in results):
        return ["## Simulated round-trip latency", "",
                "Not measured in this run: `python -m bench --latency-ms 2` measures every figure again with"
                " 2 ms of simulated round-trip latency between the service and the database.", ""]
    trips = meta.get("round_trip_ms") or {}
    direct, proxied = (trips.get("direct") or {}).get("median_ms"), (trips.get("proxy") or {}).get("median_ms")
    per_trip = (proxied - direct) if direct is not None and proxied is not None and proxied > direct else ms
    lines = [
        f"## With {ms:g} ms simulated round-trip latency",
        "",
        f"- How: `bench/latency_proxy.py`, a TCP proxy in a process of its own in front of the PostgreSQL server,"
        f" releases every chunk of bytes {ms / 2:g} ms after it arrived, in each direction (delay by arrival time:"
        " no compounding, byte order kept). Every measured run of the baseline and of each scenario was followed"
        " at once by the same run with the measured process's DATABASE_URL pointed at the proxy (same"
        " repetitions, same machine load); preparations and statistics went direct. SQL statements and transactions are those of the"
        " direct counting run (the same code sends the same statements)."
        + (f" A `SELECT 1` round trip took {direct} ms direct and {proxied} ms through the proxy (median of 50)."
           if direct is not None and proxied is not None else ""),
        f"- *added s* = median with latency − median direct; *≈ round trips* = added s ÷ {per_trip:.2f} ms (the"
        " measured extra cost of one round trip through the proxy): roughly the number of waits on the"
        " database, statements plus transaction control plus the connection handshake. It is the difference of"
        " two medians, so it carries their noise.",
        "",
        "| data | baseline direct s | baseline with latency s | full sync (daily) direct s | with latency s"
        " | no-change rerun direct s | with latency s | full/baseline direct | full/baseline with latency"
        " | rerun/baseline direct | rerun/baseline with latency |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        if not result.latency:
            continue
        f, g = result.figures, result.latency
        lines.append(f"| {_label(result)} | {_cell(f[LEGACY])} | {_cell(g[LEGACY])} | {_cell(f['full_next'])}"
                     f" | {_cell(g['full_next'])} | {_cell(f['rerun'])} | {_cell(g['rerun'])}"
                     f" | {_ratio(f['full_next'], f[LEGACY])} | {_ratio(g['full_next'], g[LEGACY])}"
                     f" | {_ratio(f['rerun'], f[LEGACY])} | {_ratio(g['rerun'], g[LEGACY])} |")
    lines.append("")
    for result in results:
        if not result.latency:
            continue
        lines += [f"### {_label(result)}, {ms:g} ms latency", "",
                  "| run | SQL statements | transactions | median s direct | median s with latency | min–max s with"
                  " latency | added s | ≈ round trips | ratio to baseline direct | ratio to baseline with latency |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        base, slow_base = result.figures[LEGACY], result.latency[LEGACY]
        for key, figure in result.figures.items():
            slow = result.latency.get(key)
            if slow is None or slow.median is None:
                error = slow.error if slow is not None else "not measured"
                lines.append(f"| {figure.label} | | | {_cell(figure)} | {error or 'n/a'} | | | | | |")
                continue
            added = _added(figure, slow)
            statements = "–" if figure.statements is None else str(figure.statements)
            transactions = "–" if figure.transactions is None else str(figure.transactions)
            trips = "–" if added is None else f"{added * 1000 / per_trip:.0f}"
            lines.append(
                f"| {figure.label} | {statements} | {transactions} | {_cell(figure)} | {slow.median:.3f}"
                f" | {min(slow.times):.3f}–{max(slow.times):.3f} | {'–' if added is None else f'{added:+.3f}'}"
                f" | {trips} | {_ratio(figure, base)} | {_ratio(slow, slow_base)} |")
        lines.append("")
    return lines


def _busy_warning(meta: dict) -> list[str]:
    busiest = max(float(meta.get("load_start", 0)), float(meta.get("load_end", 0)))
    if busiest <= float(meta.get("cpus") or 1):
        return []
    return [f"> **The machine was busy during this run** (load average up to {busiest} on {meta['cpus']} CPUs:"
            " other work was running). Absolute times are inflated and the spread between repetitions is wide;"
            " read the ratios and the min–max columns with that in mind, and rerun on a quiet machine for"
            " figures to quote.", ""]


def write_markdown(results: list[SizeResult], meta: dict, path: Path, chart_name: str) -> None:
    lines = [
        "# Performance",
        "",
        f"_Regenerated by `{meta['command']}` on {meta['date']}; do not edit by hand (change bench/ instead)._",
        "",
        *[f"_Figures of the hook(s) {', '.join(m['hooks'])} measured later by `{m['command']}` on {m['date']} (load"
          f" average {m['load_start']}–{m['load_end']}; databases {', '.join(m['databases']) or 'none'}) and merged"
          " in: every other figure is from the run above._\n" for m in meta.get("merged", [])],
        "## How it was measured",
        "",
        *_busy_warning(meta),
        f"- Machine: {meta['cpus']} CPUs, {meta['ram_gb']} GB RAM; {meta['postgres']}; Python {meta['python']}."
        f" Load average (1 min) at start {meta['load_start']}, at end {meta['load_end']}: other work on the machine"
        " shows up in these figures (compare ratios measured in the same run rather than absolute times).",
        f"- Data: the deterministic sample market (`tickstockpl.market.sample`, seed {meta['seed']}): a fifth ETFs,"
        f" NYSE sessions ending {meta['end']}; one fresh database per size (`tspl_bench_<size>`), migrated, loaded"
        " with COPY, `VACUUM ANALYZE`d.",
        f"- Every figure is the median of {meta['reps']} repetitions of a separate process, wall time from spawn to"
        " exit (interpreter start and imports included), after one warm-up run; the baseline and every scenario"
        " alternate within each repetition. Each scenario starts from a prepared state (not timed): *empty cache* ="
        " no owned rows; *one new session* = synced as of the previous session, then synced as of the last one;"
        " *no-change rerun* = synced as of the last session, then synced again; *first run into the legacy"
        " rebuild's rows* = the baseline's rows in cache_entries, no ledger and no history (PL's first run after"
        " the legacy job: every universe is taken over, rewritten, and its members opened in the history). The sources of the project and"
        " of the baseline are byte-compiled first, as pip does when it installs a wheel (this machine kind sets"
        " PYTHONDONTWRITEBYTECODE=1, under which each process would recompile the editable sources: about 23 ms).",
        "- Baseline: `bench/legacy.py`, a re-creation of the legacy AppV2 rebuild written from its description"
        " (delete every owned row, one SELECT per band / sector / leader size / theme / industry / ETF category,"
        " one INSERT per row, one transaction; `symbols.market_cap` read directly). It is never used by the product.",
        "- SQL statements: counted in one extra run per entry by a psycopg wrapper injected into the child"
        " (`bench/_instrument/sitecustomize.py`: every execute, executemany parameter set and COPY; transaction"
        " control not included). pg_stat_statements is used as well when the server preloads it"
        f" ({'it does' if meta['server_statements'] else 'this server does not'}).",
        "- Transactions: `pg_stat_database.xact_commit` delta (opening a connection counts one); rows: `pg_stat_user_tables` n_tup_ins/upd/del deltas"
        " over all tables (cache_entries, change log, membership history, outbox, jobs); events: rows inserted"
        " into `pl_event_outbox`; peak RSS: VmHWM of the process at exit, in the counting run.",
        "",
        "## Sync time (median seconds per process)",
        "",
        *summary_table(results),
        "",
        f"![sync time vs symbols]({chart_name})",
        "",
        "## Targets",
        "",
        *target_rows(results),
        "",
    ]
    speed_log = Path(__file__).with_name("speed_log.md")
    if speed_log.exists():  # the profiling log, kept by hand beside the code it describes
        lines += [speed_log.read_text(encoding="utf-8").rstrip(), ""]
    for result in results:
        db = result.db
        lines += [f"## {_label(result)} ({db.bars:,} bars)", "", *detail_table(result), ""]
    lines += ["## Data build", "", "| database | symbols | bars | generate s | load s (COPY + index rebuild) |",
              "|---|---|---|---|---|"]
    lines += [f"| {r.db.name} | {r.db.symbols:,} | {r.db.bars:,} | {r.db.generate_s:.2f} | {r.db.load_s:.1f} |"
              for r in results]
    lines += ["", *latency_section(results, meta)]
    lines += ["## Other components", "",
              "Measured by the hooks of `bench/extra.py` after the sync figures of each size, in the benchmark's"
              " process, each leaving the database as it found it. *Import of one session*: the session after the"
              " database's last one (`sample.next_session`) read from a gzip flat file, validated and written"
              " into the `ohlcv_daily` that holds all the bars (`import_bench.timed_session`: read + parse, then"
              " validate + COPY + insert + commit; the known symbols read once, untimed), median of the"
              " repetitions, its rows deleted after each. *Backfill*: `import_bench.timed_backfill` of 250 sessions"
              " into an empty `ohlcv_daily` of a separate fresh database; it takes about a minute at 12,000"
              " symbols, so it runs once and only for `--backfill-sizes` (default 12,000, the size of its"
              " target). *Status endpoint*: `tickstockpl serve` (one uvicorn worker, a redis-server of its own)"
              " against the bench database, `GET /api/processing/cache-sync/status/{id}` of the newest job in a"
              " closed loop after a 1 s warm-up (the load generator is in the benchmark's process, on the same"
              " machine); the outbox and job rows the server may touch are put back afterwards. *First answers*: every"
              " operation of the API as the first request of a freshly started `tickstockpl serve`, sent as soon as"
              " its port accepts a connection, one server per request, on a copy of the bench database (the"
              " triggers change rows). The targets of the import are defined at 12,000 tickers and judged there"
              " only.", "",
              *extra_table(results), ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def write_chart(results: list[SizeResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    plotted = False
    for key, label, colour, marker in CHART_LINES:
        points = sorted((r.db.symbols, r.figures[key].median) for r in results
                        if r.db.sessions == 250 and r.figures[key].median)
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker=marker, color=colour, label=label)
            plotted = True
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("symbols (250 sessions of daily bars)")
    ax.set_ylabel("seconds per process (median)")
    ax.set_title("Cache sync time: TickStockPL vs the legacy rebuild")
    ax.grid(True, which="both", alpha=0.3)
    if plotted:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
