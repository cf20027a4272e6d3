"""Benchmark harness: sample-market databases, measured child processes, figures.

For each size it
  1. builds a fresh database `tspl_bench_<size>` (`_<sessions>s` suffix when not 250 sessions) on a
     real PostgreSQL: migrations (`db.migrate.upgrade`), the sample market (seed BENCH_SEED, a fifth
     ETFs) loaded with `sample.write` (the ohlcv_daily indexes are dropped for the load and rebuilt
     with their catalog definitions: about twice as fast as COPY into the indexed table), VACUUM ANALYZE;
  2. measures, as separate processes, alternating within each repetition, N repetitions: the legacy
     baseline (`python -m bench.legacy`), and TickStockPL's `tickstockpl cache-sync --json --as-of END`
     for each scenario of SCENARIOS (each preceded by an unmeasured preparation);
  3. counts, in one extra run per scenario, the SQL statements the process sends (a psycopg wrapper
     injected with PYTHONPATH, see bench/_instrument; also pg_stat_statements when the server preloads it);
     with --latency-ms, every run of step 2 is followed by the same run with the child's DATABASE_URL
     pointed at a delaying proxy (bench/latency_proxy.py; preparations still go direct; statements are
     not counted again: the same code sends the same statements);
  4. per run: wall time (spawn to exit, imports included), rows inserted/updated/deleted
     (pg_stat_user_tables deltas, cache_entries apart from the rest), transactions committed
     (pg_stat_database), events produced (rows inserted into pl_event_outbox); peak RSS comes from
     the counting run (VmHWM of the process at exit: `ru_maxrss` of a child forked from this large
     harness process would report the harness's own size, inherited through fork and exec).

Why a wrapper for statement counts: pg_stat_statements needs `shared_preload_libraries`, which the
machine's server does not set (changing it means restarting a server other work uses), and reading
`log_statement` output needs the server's log files. The wrapper counts exactly what the client sends.
"""

from __future__ import annotations

import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import psycopg
from psycopg import sql

BENCH_SEED = 7
# The sample market's last session, fixed so that every run builds the same market whatever today's date:
# 2026-12-01 is the first session of December, a reconstitution day of every built-in rule universe (the
# daily run's worst case). Left to the default, the market would end at the last completed session.
BENCH_END = datetime.date(2026, 12, 1)
ROOT = Path(__file__).resolve().parents[1]
INSTRUMENT = Path(__file__).resolve().parent / "_instrument"
OWNED_TYPES = ["stock_universe", "etf_universe", "themes", "stock_etf_combo", "stock_stats"]
PL_TABLES = ["pl_sync_changes", "pl_universe_membership", "pl_event_outbox", "pl_sync_jobs"]
LEDGERS = ["pl_cache_ledger", "pl_group_ledger"]
# The bench databases are named <prefix>_<size>...: several benchmarks on one server need their own prefix.
DB_PREFIX = os.environ.get("TICKSTOCKPL_BENCH_DB_PREFIX", "tspl_bench")
LEGACY = "legacy"


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    prepare: str  # "cold": no owned rows; "previous": synced as of the session before END; "synced": as of END;
    #               "legacy": the legacy rebuild's rows, with no ledger and no history (PL's first run after it);
    #               "cold_legacy_set": as "cold", every rule universe switched off (cache_config rows)
    args: tuple[str, ...]


SCENARIOS = (
    Scenario("full_cold", "full sync, empty cache (first run)", "cold", ("--mode", "full")),
    Scenario("full_legacy", "full sync, first run into the legacy rebuild's rows (every universe rewritten)", "legacy",
             ("--mode", "full")),
    Scenario("full_cold_legacy_set", "full sync, empty cache, the legacy job's universes only (rule universes"
             " switched off)", "cold_legacy_set", ("--mode", "full")),
    Scenario("full_next", "full sync, one new session (daily run)", "previous", ("--mode", "full")),
    Scenario("rerun", "no-change rerun", "synced", ("--mode", "full")),
    Scenario("rerun_forced", "no-change rerun with --force (builds and compares everything)", "synced",
             ("--mode", "full", "--force")),
    Scenario("mode_market_cap", "mode market_cap, one new session", "previous", ("--mode", "market_cap")),
    Scenario("mode_themes", "mode themes, one new session", "previous", ("--mode", "themes")),
    Scenario("mode_ipos", "mode ipos, one new session", "previous", ("--mode", "ipos")),
    Scenario("dry_run", "dry run (full), one new session", "previous", ("--mode", "full", "--dry-run")),
)


@dataclass
class Run:
    seconds: float
    returncode: int
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # cache_entries / other tables -> ins/upd/del
    transactions: int = 0
    events: int = 0
    stdout: str = ""
    stderr: str = ""
    outcome: dict = field(default_factory=dict)  # the sync's --json answer (whole), {} when it is not JSON


@dataclass
class Figure:
    key: str
    label: str
    times: list[float] = field(default_factory=list)
    rss_mb: float = 0.0
    statements: int | None = None
    server_statements: int | None = None
    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    transactions: int | None = None
    events: int | None = None
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None


@dataclass
class BenchDb:
    name: str
    url: str
    size: int
    sessions: int
    symbols: int
    bars: int
    end: str
    previous: str
    generate_s: float
    load_s: float


@dataclass
class SizeResult:
    db: BenchDb
    figures: dict[str, Figure]
    extra: list[dict] = field(default_factory=list)
    latency: dict[str, Figure] = field(default_factory=dict)  # the same figures through the latency proxy


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def with_database(url: str, dbname: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**info)


def as_url(conninfo: str) -> str:
    """A postgresql:// URL for child processes (the CLI reads DATABASE_URL as a URL)."""
    info = psycopg.conninfo.conninfo_to_dict(conninfo)
    user = info.get("user", "postgres")
    auth = user + (f":{info['password']}" if info.get("password") else "")
    return f"postgresql://{auth}@{info.get('host', '127.0.0.1')}:{info.get('port', 5432)}/{info['dbname']}"


# --------------------------------------------------------------------------------------------
# databases


def create_database(admin_url: str, name: str) -> str:
    """A fresh, migrated database `name` (dropped first if it exists); returns its URL."""
    from tickstockpl.db.migrate import upgrade

    drop_database(admin_url, name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(admin_url, name)
    upgrade(url)
    return url


MARKET = "generated"  # or "real": market.realistic (python -m bench --market real)


def build_database(admin_url: str, size: int, sessions: int) -> BenchDb:
    """A fresh database with the schema and the sample market of `size` symbols (a fifth ETFs)."""
    from tickstockpl.market import realistic, sample

    name = f"{DB_PREFIX}_{size}" + ("" if sessions == 250 else f"_{sessions}s") + ("_real" if MARKET == "real" else "")
    url = create_database(admin_url, name)
    started = time.perf_counter()
    generate = realistic.generate if MARKET == "real" else sample.generate
    market = generate(stocks=size - size // 5, etfs=size // 5, sessions=sessions, end=BENCH_END, seed=BENCH_SEED)
    generate_s = time.perf_counter() - started
    log(f"{name}: generated {len(market.symbols)} symbols, {market.bar_count} bars in {generate_s:.2f} s")
    started = time.perf_counter()
    load_market(url, market)
    load_s = time.perf_counter() - started
    log(f"{name}: loaded in {load_s:.1f} s")
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("symbols", "ohlcv_daily"):
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
    return BenchDb(name, url, size, sessions, len(market.symbols), market.bar_count, market.end.isoformat(),
                   market.sessions[-2].isoformat(), round(generate_s, 3), round(load_s, 3))


def load_market(url: str, market) -> None:
    """sample.write with the ohlcv_daily unique constraint and indexes rebuilt after the COPY."""
    from tickstockpl.market import sample

    with psycopg.connect(url) as conn:
        constraints = conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'ohlcv_daily'::regclass AND contype IN ('p', 'u')").fetchall()
        names = [c[0] for c in constraints]
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
            " AND tablename = 'ohlcv_daily' AND NOT (indexname = ANY(%s))", (names,)).fetchall()
        for name, _ in constraints:
            conn.execute(sql.SQL("ALTER TABLE ohlcv_daily DROP CONSTRAINT {}").format(sql.Identifier(name)))
        for name, _ in indexes:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        sample.write(conn, market)
        conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
        for name, definition in constraints:  # definitions come from the catalog, not from input
            conn.execute(sql.SQL("ALTER TABLE ohlcv_daily ADD CONSTRAINT {} {}").format(
                sql.Identifier(name), sql.SQL(definition)))
        for _, definition in indexes:
            conn.execute(sql.SQL(definition))
        conn.commit()


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def reset_owned(url: str, ledgers: bool = False, rules_off: bool = False) -> None:
    """No owned cache_entries rows and empty PL job tables: the state before a first sync (`ledgers`:
    the ledgers emptied too, as in a database PL has never written). `rules_off`: every built-in rule
    universe switched off by a `rule_universes` row (else no such row: the bench database's own)."""
    tables = PL_TABLES + (LEDGERS if ledgers else [])
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM cache_entries WHERE type = ANY(%s)", (OWNED_TYPES,))
        conn.execute("DELETE FROM cache_entries WHERE type = 'cache_config' AND name = 'rule_universes'")
        if rules_off:
            from tickstockpl.universes.rules.definition import default_definitions

            for key in sorted(default_definitions()):
                conn.execute("INSERT INTO cache_entries (type, name, key, value, environment) VALUES"
                             " ('cache_config', 'rule_universes', %s, '{\"enabled\": false}', 'DEFAULT')", (key,))
        present = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename = ANY(%s)", (tables,))]
        if present:
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, present))))
        conn.commit()


def liquidity_at(url: str, day: str) -> None:
    """pl_symbol_liquidity (the rule universes' windows) and its statistics (pl_liquidity_stats and its
    state row) standing at session `day`, as PL's importer leaves them once it has imported that day:
    built from the bars the first time (liquidity.rebuild, which computes the statistics) and kept in
    copy tables, restored from the copies afterwards. The bench loads its bars with sample.write, not
    through the importer; without this, the measured daily sync would first catch the table up itself
    (docs/RULE_UNIVERSES.md), which PL's importer does at import time. A version that does not read
    these tables is unaffected; one without the statistics tables gets only the windows."""
    from tickstockpl.market import liquidity

    tables = ["pl_symbol_liquidity", "pl_liquidity_stats", "pl_liquidity_stats_state"]
    with psycopg.connect(url) as conn:
        present = [t for t in tables if conn.execute("SELECT to_regclass(%s) IS NOT NULL", (t,)).fetchone()[0]]
        if "pl_symbol_liquidity" not in present:
            return
        saved = {t: f"bench_{t.removeprefix('pl_')}_{day.replace('-', '')}" for t in present}
        if any(conn.execute("SELECT to_regclass(%s) IS NULL", (copy,)).fetchone()[0] for copy in saved.values()):
            liquidity.rebuild(conn, datetime.date.fromisoformat(day))
            for table, copy in saved.items():
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(copy)))
                conn.execute(sql.SQL("CREATE TABLE {} AS SELECT * FROM {}").format(sql.Identifier(copy),
                                                                                   sql.Identifier(table)))
        else:
            for table, copy in saved.items():
                conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
                conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM {}").format(sql.Identifier(table),
                                                                               sql.Identifier(copy)))
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        for table in present:
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))


# --------------------------------------------------------------------------------------------
# processes


def compile_sources() -> None:
    """Byte-compile the project and the baseline before measuring, as pip does when it installs a
    wheel. An editable install is not compiled, and under PYTHONDONTWRITEBYTECODE=1 (set on this
    machine kind) every measured process would otherwise compile the sources again (measured:
    about 23 ms of a 12,000-symbol sync process); reading existing bytecode is still allowed."""
    import compileall

    for folder in (ROOT / "src", ROOT / "bench"):
        compileall.compile_dir(str(folder), quiet=1)


def project_command() -> list[str] | None:
    """The `tickstockpl` console script beside this interpreter, or None when cache-sync is missing."""
    script = Path(sys.executable).with_name("tickstockpl")
    if not script.exists():
        return None
    probe = subprocess.run([str(script), "cache-sync", "--help"], capture_output=True, text=True, timeout=60)
    return [str(script)] if probe.returncode == 0 and "--dry-run" in probe.stdout else None


def legacy_command(db: BenchDb, database_url: str | None = None) -> list[str]:
    return [sys.executable, "-m", "bench.legacy", "--database-url", database_url or as_url(db.url), "--as-of", db.end]


def child_env(db: BenchDb, count_file: str | None = None, database_url: str | None = None) -> dict[str, str]:
    """The environment of a measured child: DATABASE_URL is the database's, or `database_url` (the proxy)."""
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url or as_url(db.url)
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if count_file:
        env["PYTHONPATH"] = os.pathsep.join([str(INSTRUMENT), env["PYTHONPATH"]])
        env["TSPL_BENCH_COUNT_FILE"] = count_file
    return env


def quiesce(admin_url: str, dbname: str, timeout_s: float = 10.0) -> None:
    """Wait until no session is left on the database, so that its statistics are flushed."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(admin_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            busy = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                                (dbname,)).fetchone()[0]
            if not busy:
                break
            time.sleep(0.02)
    time.sleep(0.05)


def table_counters(url: str) -> dict[str, tuple[int, int, int]]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        rows = conn.execute("SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables").fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def commits(admin_url: str, dbname: str, settle_s: float = 3.0) -> int:
    """Committed transactions of the database, once the counter has stopped moving (a backend that
    just ended may still be flushing its statistics)."""
    query = "SELECT xact_commit FROM pg_stat_database WHERE datname = %s"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        deadline = time.monotonic() + settle_s
        conn.execute("SELECT pg_stat_clear_snapshot()")
        last = conn.execute(query, (dbname,)).fetchone()[0]
        while time.monotonic() < deadline:
            time.sleep(0.1)
            conn.execute("SELECT pg_stat_clear_snapshot()")
            now = conn.execute(query, (dbname,)).fetchone()[0]
            if now == last:
                break
            last = now
    return last


def _rows(before: dict, after: dict, tables: set[str] | None, exclude: set[str] = frozenset()) -> dict[str, int]:
    out = {"inserted": 0, "updated": 0, "deleted": 0}
    for table, values in after.items():
        if (tables is not None and table not in tables) or table in exclude:
            continue
        for key, a, b in zip(out, values, before.get(table, (0, 0, 0))):
            out[key] += a - b
    return out


def measure(command: list[str], db: BenchDb, admin_url: str, env: dict[str, str]) -> Run:
    """Run one child process and measure it (wall time, peak RSS, rows, transactions, events)."""
    quiesce(admin_url, db.name)
    tables_before = table_counters(db.url)
    quiesce(admin_url, db.name)
    commits_before = commits(admin_url, db.name)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=ROOT)
        _, status = os.waitpid(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    quiesce(admin_url, db.name)
    transactions = commits(admin_url, db.name) - commits_before
    tables_after = table_counters(db.url)
    rows = {"cache_entries": _rows(tables_before, tables_after, {"cache_entries"}),
            "other tables": _rows(tables_before, tables_after, None, {"cache_entries"}),
            "change log": _rows(tables_before, tables_after, {"pl_sync_changes"})}  # also in "other tables"
    events = _rows(tables_before, tables_after, {"pl_event_outbox"})["inserted"]
    try:
        outcome = json.loads(stdout)
    except ValueError:
        outcome = {}
    return Run(round(seconds, 4), proc.returncode, rows, transactions, events, stdout[-4000:], stderr[-4000:],
               outcome if isinstance(outcome, dict) else {})


def server_statement_counter(admin_url: str, db: BenchDb) -> Callable[[], int] | None:
    """pg_stat_statements when the server preloads it: returns a function giving calls since reset."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        preload = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()[0]
    if "pg_stat_statements" not in preload:
        return None
    with psycopg.connect(db.url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT pg_stat_statements_reset()")

    def read() -> int:
        with psycopg.connect(db.url, autocommit=True) as conn:
            total = conn.execute(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database"
                " WHERE datname = %s) AND query !~* '(pg_stat|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)'",
                (db.name,)).fetchone()[0]
            conn.execute("SELECT pg_stat_statements_reset()")
        return int(total)

    return read


# --------------------------------------------------------------------------------------------
# scenarios


class Runner:
    """Runs the baseline and the scenarios of one database. A run's `database_url`, when given, is what
    the measured process connects to (the latency proxy); preparations and statistics reads go direct."""

    def __init__(self, db: BenchDb, admin_url: str, project: list[str] | None, source: str | None = None):
        self.db, self.admin_url, self.project = db, admin_url, project
        self.source = source  # another version's src folder, put first on the project's PYTHONPATH (bench/ab.py)

    def env(self, count_file: str | None = None, database_url: str | None = None) -> dict[str, str]:
        env = child_env(self.db, count_file, database_url)
        if self.source:
            env["PYTHONPATH"] = os.pathsep.join([self.source, env["PYTHONPATH"]])
        return env

    def project_args(self, scenario: Scenario, as_of: str | None = None) -> list[str]:
        return [*self.project, "cache-sync", "--json", "--as-of", as_of or self.db.end, *scenario.args]

    def prepare(self, scenario: Scenario) -> str | None:
        """Bring the database into the scenario's starting state; returns an error line or None."""
        reset_owned(self.db.url, ledgers=scenario.prepare == "legacy", rules_off=scenario.prepare == "cold_legacy_set")
        # the statistics as the importer leaves them: at the session synced first, then at END (imported)
        liquidity_at(self.db.url, self.db.previous if scenario.prepare == "previous" else self.db.end)
        if scenario.prepare in ("cold", "cold_legacy_set"):
            return None
        if scenario.prepare == "legacy":
            done = subprocess.run(legacy_command(self.db), capture_output=True, text=True, env=child_env(self.db),
                                  cwd=ROOT)
        else:
            as_of = self.db.previous if scenario.prepare == "previous" else self.db.end
            done = subprocess.run(self.project_args(SCENARIOS[0], as_of), capture_output=True, text=True,
                                  env=self.env(), cwd=ROOT)
        if done.returncode != 0:
            return f"preparation failed (exit {done.returncode}): {_last_line(done.stderr or done.stdout)}"
        if scenario.prepare == "previous":
            liquidity_at(self.db.url, self.db.end)
        return None

    def run(self, key: str, count_file: str | None = None, database_url: str | None = None) -> Run:
        env = self.env(count_file, database_url)
        if key == LEGACY:
            return measure(legacy_command(self.db, database_url), self.db, self.admin_url, env)
        scenario = next(s for s in SCENARIOS if s.key == key)
        problem = self.prepare(scenario)
        if problem:
            return Run(0.0, -1, stderr=problem)
        return measure(self.project_args(scenario), self.db, self.admin_url, env)


def _empty_figures(project: list[str] | None) -> dict[str, Figure]:
    figures = {LEGACY: Figure(LEGACY, "legacy AppV2 rebuild (baseline)")}
    for scenario in SCENARIOS:
        figures[scenario.key] = Figure(scenario.key, scenario.label,
                                       error=None if project else "not available: `tickstockpl cache-sync` not found")
    return figures


def _record(figure: Figure, run: Run) -> None:
    if run.returncode != 0:
        figure.error = f"exit {run.returncode}: {_last_line(run.stderr or run.stdout)}"
        return
    figure.times.append(run.seconds)
    figure.rows, figure.transactions, figure.events = run.rows, run.transactions, run.events


def run_size(db: BenchDb, admin_url: str, reps: int, project: list[str] | None,
             latency_url: str | None = None) -> tuple[dict[str, Figure], dict[str, Figure]]:
    """Alternate baseline and scenarios in every repetition; then one counting run per entry.

    With `latency_url` (the database through the latency proxy) every run is followed at once by the
    same run with the child connected there (its own preparation, direct): the two figures of a pair
    see the same machine load. Those runs are not counted again. Returns (direct, through the proxy)."""
    runner = Runner(db, admin_url, project)
    figures, slow = _empty_figures(project), (_empty_figures(project) if latency_url else {})
    passes = [("", None, figures)] + ([(" through the latency proxy", latency_url, slow)] if latency_url else [])
    keys = [LEGACY] + ([s.key for s in SCENARIOS] if project else [])
    for key in keys:  # warm-up: caches, page cache, bytecode
        for _, url, _ in passes:
            runner.run(key, database_url=url)
    for rep in range(reps):
        for key in keys:
            for _, url, target in passes:
                _record(target[key], runner.run(key, database_url=url))
        for where, _, target in passes:
            log(f"{db.name}{where}: repetition {rep + 1}/{reps}: " + ", ".join(
                f"{k} {target[k].times[-1]:.3f}s" for k in keys if target[k].times))
    server = server_statement_counter(admin_url, db)
    with tempfile.TemporaryDirectory() as folder:
        for key in keys:
            count_file = os.path.join(folder, f"{key}.json")
            if server:
                server()
            run = runner.run(key, count_file)
            if run.returncode == 0 and os.path.exists(count_file):
                with open(count_file, encoding="utf-8") as handle:
                    counted = json.load(handle)
                figures[key].statements = counted["statements"]
                figures[key].rss_mb = round(counted.get("peak_rss_kb", 0) / 1024, 1)
                figures[key].server_statements = server() if server else None
    return figures, slow


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def _figures_json(figures: dict[str, Figure]) -> dict:
    return {k: {**asdict(f), "median": f.median} for k, f in figures.items()}


def _figures_from_json(raw: dict) -> dict[str, Figure]:
    return {key: Figure(**{k: v for k, v in value.items() if k != "median"}) for key, value in raw.items()}


def result_json(results: list[SizeResult], meta: dict) -> dict:
    return {"meta": meta, "sizes": [
        {"db": asdict(r.db), "figures": _figures_json(r.figures), "extra": r.extra,
         "latency": _figures_json(r.latency)} for r in results]}


def results_from_json(data: dict) -> tuple[list[SizeResult], dict]:
    """The inverse of result_json (to re-render a report without measuring again)."""
    results = [SizeResult(BenchDb(**size["db"]), _figures_from_json(size["figures"]), size.get("extra", []),
                          _figures_from_json(size.get("latency", {}))) for size in data["sizes"]]
    return results, data["meta"]
