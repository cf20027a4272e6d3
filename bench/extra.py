"""The figures of other components (import, backfill, API), measured after the sync figures of each size.

Each hook takes a `BenchContext` and returns a list of figure dicts:
    {"key": str, "label": str, "value": float | None, "unit": str, "baseline": float | None, "note": str,
     "target": float | None, "target_text": str, "target_size": int | None}
`value=None` means "not measured"; the report shows the note. A target is an upper bound on `value`
that applies at `target_size` symbols (the report judges it there only). Hooks run after the sync
figures of each size, on the same database, and leave it as they found it. Helpers on the context:
`market()` regenerates (once) the exact sample market of the database, `urls()` gives the URLs to
measure on (the database, and the same through the latency proxy with --latency-ms), `command_env()`
gives the environment of a measured child, and `measure(command)` runs and measures one child process
(wall time, peak RSS, rows written, transactions) exactly like the sync figures.

What the hooks measure (in this process, not as child processes: these are library calls and a server):
- import_one_session: `import_bench.timed_session` of the session after the database's last one
  (`sample.next_session`: every symbol still trading, one IPO that `symbols` does not know yet) from a
  flat file into `ohlcv_daily` holding all the bars; --reps repetitions, median; the rows and the
  pl_import_sessions record are deleted after each. Also through the proxy with --latency-ms.
- backfill_sessions: `import_bench.timed_backfill` of 250 sessions from flat files into a separate fresh
  database `<db>_backfill` (migrations + symbols, empty ohlcv_daily), dropped afterwards. It takes about
  a minute at 12,000 symbols, so it runs once (not a median), and only for the sizes of
  --backfill-sizes (default 12,000: the size of its target), on the first database of that size with
  at least 250 sessions. Direct only.
- status_endpoint: `tickstockpl serve` (bench.api_bench.Services: its own redis-server) against the
  bench database, GET /api/processing/cache-sync/status/{id} of the newest job, closed loop for
  STATUS_SECONDS on each number of keep-alive connections of STATUS_CONNECTIONS after a 1 s warm-up:
  1 (AppV2 polls one job at a time: the latency a caller sees) and 8 (throughput: the server's CPU is
  the limit, and concurrency hides the database's latency). The server relays
  the outbox (marks rows delivered): pl_event_outbox and pl_sync_jobs are copied before and put back
  after. Also with the server's DATABASE_URL through the proxy with --latency-ms.
- first_answers: every operation of the API (bench.api_bench.FIRST_REQUESTS) as the first request of a freshly
  started `tickstockpl serve`, sent as soon as its port accepts a connection (AppV2's processing client gives up
  after 2 s; the first GET /api/processing/schedule once took 1.5-2 s): one server per request, on a copy of the
  bench database (CREATE DATABASE ... TEMPLATE: the triggers it sends change rows), which gets one sync job and one
  pipeline run first when it has none (their ids fill the paths). The slowest answer is judged against 100 ms at
  every size; each answer is in the note. Direct only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import contextlib
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable

import psycopg
from psycopg import sql

from bench import harness

BACKFILL_SESSIONS = 250
STATUS_CONNECTIONS = (1, 8)
STATUS_SECONDS = 2.5
RESTORED_BY_STATUS = ("pl_event_outbox", "pl_sync_jobs")  # what a serving process may write


@dataclass
class BenchContext:
    db: harness.BenchDb
    admin_url: str
    reps: int
    proxy: Any = None  # a started bench.latency_proxy.LatencyProxy, or None
    latency_ms: float = 0.0
    backfill: bool = False  # measure the backfill on this database
    backfill_note: str = ""  # why not, when not
    _market: Any = field(default=None, repr=False)

    def market(self):
        if self._market is None:
            from tickstockpl.market import sample

            size = self.db.size
            self._market = sample.generate(stocks=size - size // 5, etfs=size // 5, sessions=self.db.sessions,
                                           end=harness.BENCH_END, seed=harness.BENCH_SEED)
        return self._market

    def urls(self) -> list[tuple[str, str]]:
        """(key suffix, URL): the database, then (with --latency-ms) the database through the proxy."""
        urls = [("", harness.as_url(self.db.url))]
        if self.proxy is not None:
            urls.append(("_latency", self.proxy.url(self.db.url)))
        return urls

    def label(self, label: str, suffix: str) -> str:
        return f"{label}, {self.latency_ms:g} ms latency" if suffix else label

    def command_env(self, count_file: str | None = None) -> dict[str, str]:
        return harness.child_env(self.db, count_file)

    def measure(self, command: list[str]) -> harness.Run:
        return harness.measure(command, self.db, self.admin_url, self.command_env())


def figure(key: str, label: str, value: float | None, unit: str, note: str, *, target: float | None = None,
           target_text: str = "", target_size: int | None = None) -> dict:
    return {"key": key, "label": label, "value": value, "unit": unit, "baseline": None, "note": note,
            "target": target, "target_text": target_text, "target_size": target_size}


def not_measured(key: str, label: str, unit: str, note: str, **target) -> dict:
    return figure(key, label, None, unit, note, **target)


IMPORT_TARGET = {"target": 1.0, "target_text": "≤ 1 s for 12,000 tickers", "target_size": 12000}
BACKFILL_TARGET = {"target": 60.0, "target_text": "≤ 60 s for 250 sessions of 12,000 tickers", "target_size": 12000}


def import_one_session(ctx: BenchContext) -> list[dict]:
    """Import of one full-market session from a flat file (target: 12,000 tickers in <= 1 s)."""
    from bench.import_bench import timed_session
    from tickstockpl.market import sample
    from tickstockpl.pipeline.imports.flatfiles import FlatFileProvider

    nxt = sample.next_session(ctx.market())
    figures = []
    with tempfile.TemporaryDirectory(prefix="tspl-bench-session-") as folder:
        sample.write_flat_files(nxt.market, folder, [nxt.session])
        provider = FlatFileProvider(folder)
        for suffix, url in ctx.urls():
            with psycopg.connect(url, autocommit=True) as conn:
                done = timed_session(conn, provider, nxt.session, ctx.reps)
            note = (f"{done['rows']:,} bars of {nxt.session} (the session after the last one; "
                    f"tickers not in symbols: {done['unknown_tickers']}) into ohlcv_daily holding {ctx.db.bars:,} bars;"
                    f" median of {done['reps']} ({done['min_s']:.3f}–{done['max_s']:.3f} s): read+parse"
                    f" {done['read_parse_s']:.3f} s, validate+COPY+insert+commit {done['validate_write_commit_s']:.3f} s;"
                    " rows deleted after each repetition")
            figures.append(figure("import_session" + suffix, ctx.label("import of one session (flat file)", suffix),
                                  done["median_s"], "s", note, **IMPORT_TARGET))
    return figures


def backfill_sessions(ctx: BenchContext) -> list[dict]:
    """Backfill of 250 sessions from flat files into an empty ohlcv_daily (target: <= 60 s at 12,000)."""
    from bench.import_bench import timed_backfill
    from tickstockpl.market import sample
    from tickstockpl.pipeline.imports.flatfiles import FlatFileProvider

    label = f"backfill of {BACKFILL_SESSIONS} sessions (flat files)"
    if not ctx.backfill:
        return [not_measured("backfill_250", label, "s", ctx.backfill_note, **BACKFILL_TARGET)]
    market = ctx.market()
    days = list(market.sessions[-BACKFILL_SESSIONS:])
    name = f"{ctx.db.name}_backfill"
    url = harness.create_database(ctx.admin_url, name)
    try:
        with tempfile.TemporaryDirectory(prefix="tspl-bench-backfill-") as folder:
            with psycopg.connect(url) as conn:
                sample.write_symbols(conn, market.symbols)
            sample.write_flat_files(market, folder, days)
            with psycopg.connect(url, autocommit=True) as conn:
                done = timed_backfill(conn, FlatFileProvider(folder), days)
    finally:
        harness.drop_database(ctx.admin_url, name)
    note = (f"{done['rows']:,} bars, {done['sessions']} sessions ({days[0]} – {days[-1]}) into an empty"
            f" ohlcv_daily of a separate database; {done['rows_per_s']:,} rows/s; one run (not a median)")
    return [figure("backfill_250", label, done["seconds"], "s", note, **BACKFILL_TARGET)]


@contextlib.contextmanager
def tables_restored(url: str, tables: tuple[str, ...]):
    """Copy `tables` into temporary tables of one held session; on exit put their rows back."""
    with psycopg.connect(url, autocommit=True) as conn:
        for table in tables:
            conn.execute(sql.SQL("CREATE TEMP TABLE {} AS TABLE {}").format(
                sql.Identifier(f"saved_{table}"), sql.Identifier(table)))
        try:
            yield
        finally:
            with conn.transaction():
                for table in tables:
                    saved, real = sql.Identifier(f"saved_{table}"), sql.Identifier(table)
                    conn.execute(sql.SQL("DELETE FROM {}").format(real))
                    conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM {}").format(real, saved))


def status_endpoint(ctx: BenchContext) -> list[dict]:
    """Throughput and p99 latency of GET /api/processing/cache-sync/status/{id}, closed loop."""
    from bench import api_bench

    with psycopg.connect(ctx.db.url) as conn:
        row = conn.execute("SELECT job_id FROM pl_sync_jobs ORDER BY created_at DESC LIMIT 1").fetchone()
    if row is None:
        note = "no sync job in the database to ask about (is `tickstockpl cache-sync` available?)"
        return [not_measured("status_rps", "status endpoint throughput", "req/s", note),
                not_measured("status_p99", "status endpoint p99 latency", "ms", note)]
    path = f"/api/processing/cache-sync/status/{row[0]}"
    figures = []
    with tables_restored(ctx.db.url, RESTORED_BY_STATUS):
        for suffix, url in ctx.urls():
            services = api_bench.Services(url)
            try:
                asyncio.run(api_bench.closed_loop(services.api_port, path, max(STATUS_CONNECTIONS), 1.0))  # warm-up
                for connections in STATUS_CONNECTIONS:
                    done = api_bench.measured(services.api.pid, api_bench.closed_loop(
                        services.api_port, path, connections, STATUS_SECONDS))
                    figures += _status_figures(ctx, suffix, connections, done)
            finally:
                services.close()
    return figures


def _status_figures(ctx: BenchContext, suffix: str, connections: int, done: dict) -> list[dict]:
    note = (f"closed loop, {connections} keep-alive connection{'s' if connections > 1 else ''},"
            f" {STATUS_SECONDS:g} s: {done['requests']:,} requests, {done['errors']} errors; p50 {done['p50_ms']} ms,"
            f" p99 {done['p99_ms']} ms; server CPU {done['server_cpu_ms_per_request']} ms/request")
    key = f"_{connections}c{suffix}"
    on = f"{connections} connection{'s' if connections > 1 else ''}"
    return [figure("status_rps" + key, ctx.label(f"status endpoint throughput, {on}", suffix),
                   done["req_per_s"], "req/s", note),
            figure("status_p99" + key, ctx.label(f"status endpoint p99 latency, {on}", suffix),
                   done["p99_ms"], "ms", note)]


FIRST_ANSWER_TARGET = {"target": 100.0, "target_text": "≤ 100 ms for every endpoint", "target_size": None}


def first_answers(ctx: BenchContext) -> list[dict]:
    """Each endpoint's first answer after the server started (target: every one within 100 ms)."""
    from bench import api_bench
    from tickstockpl.jobs.runtime import start_job
    from tickstockpl.pipeline import coordinator
    from tickstockpl.settings import Settings

    name = f"{ctx.db.name}_first"
    harness.drop_database(ctx.admin_url, name)
    with psycopg.connect(ctx.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                     sql.Identifier(ctx.db.name)))
    url = harness.as_url(harness.with_database(ctx.admin_url, name))
    try:
        with psycopg.connect(url) as conn:
            job = conn.execute("SELECT job_id FROM pl_sync_jobs ORDER BY created_at DESC LIMIT 1").fetchone()
            run = conn.execute("SELECT run_id FROM pl_pipeline_runs ORDER BY start_time DESC LIMIT 1").fetchone()
        end = dt.date.fromisoformat(ctx.db.end)  # the market's last session (bench.harness.BENCH_END), not today's
        if job is None:
            job = (start_job(url, mode="full", triggered_by="cli", background=False, as_of=end).job_id,)
        if run is None:
            run = (coordinator.trigger_run(Settings(database_url=url), url, phases=["cache_sync"], background=False,
                                           skip_market_check=True, session_date=end).run_id,)
        measured = api_bench.first_answers(url, {"job_id": str(job[0]), "run_id": str(run[0])})
    finally:
        harness.drop_database(ctx.admin_url, name)
    slowest = sorted(measured, key=lambda m: -m["ms"])
    note = (f"{len(measured)} endpoints, each the first request of a fresh server (sent when its port opened), on a"
            " copy of this database: " + "; ".join(f"{m['method']} {m['path']} {m['ms']:g} ms ({m['status']})"
                                                 for m in slowest))
    values = sorted(m["ms"] for m in measured)
    return [figure("first_answer_max", "first answer after start, slowest endpoint", slowest[0]["ms"], "ms", note,
                   **FIRST_ANSWER_TARGET),
            figure("first_answer_median", "first answer after start, median endpoint", values[len(values) // 2], "ms",
                   "the median of the answers of the figure above")]


HOOKS: list[Callable[[BenchContext], list[dict]]] = [import_one_session, backfill_sessions, status_endpoint,
                                                     first_answers]


def run_hooks(ctx: BenchContext, hooks: list[Callable[[BenchContext], list[dict]]] | None = None) -> list[dict]:
    figures = []
    for hook in HOOKS if hooks is None else hooks:
        harness.log(f"{ctx.db.name}: {hook.__name__}")
        try:
            figures.extend(hook(ctx))
        except Exception as err:  # a broken hook must not lose the sync figures
            figures.append(not_measured(hook.__name__, hook.__name__, "", f"hook failed: {err!r}"[:300]))
    return figures
