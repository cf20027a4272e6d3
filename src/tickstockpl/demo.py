"""`tickstockpl demo`: the whole daily job end to end on embedded servers, told in plain words.

1. start a real PostgreSQL and a real Redis (db/embedded.py) in this run's own data folder
   (demo_data.run_folder: a new folder per run, or the one the user names), migrate;
2. make the sample market: real names of large US companies and ETFs with synthetic prices plus the
   generated long tail (market/realistic.py; `--market generated` for the fully generated one),
   `sessions` sessions ending one session before the last NYSE session closed by the market clock
   (tickstockpl.clock: the real time, or TICKSTOCKPL_NOW); load all but its last five sessions, and
   write those five as daily flat files;
3. run the real pipeline for that session (flat-file import, then the cache sync), relay the events to
   Redis, and say what was built: families, counts and a few real members;
4. simulate the next session (prices move, one fictional IPO lists, one generated company is delisted),
   run the pipeline again and say what changed and why;
5. say how long each step took and what to run next.
The servers are stopped on every way out (the end, an error, Ctrl-C, SIGTERM; a parent-death signal
when this process is killed). Without `--keep` the run's data is deleted; with it, demo-mode `serve`
opens it. The demo never touches a configured DATABASE_URL.
"""

from __future__ import annotations

import datetime as dt
import shutil
import textwrap
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable

from tickstockpl import clock, demo_data, lifecycle
from tickstockpl.settings import Settings

WIDTH = 80
INDUSTRY_NAMES: dict[str, str] = {}  # industry slug -> its name, filled from the market shown
THEME_LABELS = {"ai": "AI", "ev": "EV", "semi": "Semiconductors", "biotech": "Biotech", "cloud": "Cloud",
                "crypto": "Crypto", "fintech": "Fintech", "cybersecurity": "Cybersecurity"}


class Story:
    """Plain lines wrapped to the terminal (at most WIDTH columns), continuation lines indented; a word
    longer than a line (a long path) is kept whole, and commands to copy are never wrapped."""

    def __init__(self, write: Callable[[str], None] = print, width: int | None = None):
        self.write = write
        self.width = width or max(40, min(WIDTH, shutil.get_terminal_size((WIDTH, 24)).columns))

    def say(self, text: str = "", indent: int = 0, hang: int = 2) -> None:
        if not text:
            self.write("")
            return
        lines = textwrap.wrap(text, self.width, initial_indent=" " * indent, subsequent_indent=" " * (indent + hang),
                              break_on_hyphens=False, break_long_words=False)  # a path is never cut
        for line in lines:
            self.write(line)

    def command(self, text: str, indent: int = 5) -> None:
        """A command to copy: one line, never wrapped, whatever its length."""
        self.write(" " * indent + text)


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _money(value: float) -> str:
    if value >= 1e12:
        return f"${value / 1e12:.2f} tn"
    if value >= 1e9:
        return f"${value / 1e9:.1f} bn"
    return f"${value / 1e6:.0f} m"


def run_demo(*, stocks: int = 6000, etfs: int = 1500, sessions: int = 60, keep: bool = False,
             market_kind: str = "real", story: Story | None = None) -> Path:
    """The demo; returns the data folder (deleted unless `keep`)."""
    from tickstockpl.db.connect import connection
    from tickstockpl.db.embedded import start_postgres, start_redis
    from tickstockpl.db.migrate import upgrade

    out = story or Story()
    started = time.perf_counter()
    timings: list[tuple[str, float]] = []
    env = Settings.from_env()
    folder, named = demo_data.run_folder(env)
    out.say("TickStockPL demo: the whole daily job on embedded servers, nothing to configure.")
    out.say(f"Data folder: {folder} ({'named by TICKSTOCKPL_DATA_DIR' if named else 'this run’s own'};"
            f" {'kept afterwards' if keep else 'deleted at the end, --keep keeps it'}).")
    pg = redis = None
    key = None
    try:
        t = time.perf_counter()
        pg, db_url = start_postgres(folder / "postgres", data_root=folder)
        redis, redis_url = start_redis(folder / "redis")
        upgrade(db_url)
        timings.append(("servers", time.perf_counter() - t))
        out.say("")
        out.say(f"1. Servers ({timings[-1][1]:.1f} s)")
        out.say(f"PostgreSQL (pid {pg.pid}) and Redis (pid {redis.pid}) started from the wheels' binaries,"
                " on unix sockets in the data folder (no TCP port); PL's tables created and the NYSE"
                " calendar loaded.", indent=3)

        with connection(db_url, autocommit=True) as conn:
            last, previous = [r[0] for r in conn.execute(
                "SELECT session FROM pl_market_sessions WHERE close_utc <= %s ORDER BY session DESC LIMIT 2",
                (clock.now(),))]
        t = time.perf_counter()
        market, nxt_of = _make_market(market_kind, stocks, etfs, sessions, previous)
        flat = folder / "flatfiles"
        from tickstockpl.market import sample_io

        with connection(db_url) as conn:
            sample_io.write_symbols(conn, market.symbols)
            sample_io.write_bars(conn, market, range(len(market.sessions) - 5))
            conn.commit()
        sample_io.write_flat_files(market, flat, market.sessions[-5:])
        timings.append(("market", time.perf_counter() - t))
        _tell_market(out, market, market_kind, timings[-1][1])
        from tickstockpl.universes.naming import slug

        INDUSTRY_NAMES.update({slug(r["industry"]): r["industry"] for r in market.symbols if r.get("industry")})

        settings = Settings.from_env(environ={}, dotenv=None).with_(
            database_url=db_url, redis_url=redis_url, flatfiles_dir=flat, import_provider="flatfiles",
            demo=True, data_dir=folder)
        t = time.perf_counter()
        first = _pipeline(out, settings, db_url, redis_url, previous, f"3. The daily pipeline for the session of {previous}")
        timings.append(("pipeline", time.perf_counter() - t))
        _tell_universes(out, db_url)

        t = time.perf_counter()
        nxt = nxt_of(market)
        with connection(db_url) as conn:
            sample_io.write_symbols(conn, [nxt.market.by_symbol[nxt.ipo]])
            conn.execute("UPDATE symbols SET active = false WHERE symbol = %s", (nxt.delisted,))
            conn.commit()
        sample_io.write_flat_files(nxt.market, flat, [nxt.session])
        second = _pipeline(out, settings, db_url, redis_url, nxt.session, f"4. The next session, {nxt.session}")
        timings.append(("next session", time.perf_counter() - t))
        _tell_changes(out, db_url, nxt)

        if keep:
            key = demo_data.api_key(folder)
            demo_data.remember_kept(env, folder)
        total = time.perf_counter() - started
        out.say("")
        out.say(f"5. Done in {total:.1f} s (pipeline runs {first[:8]} and {second[:8]})")
        out.say(", ".join(f"{name} {secs:.1f} s" for name, secs in timings), indent=3)
    except SystemExit as stop:  # SIGTERM (lifecycle.exit_on_signals in the CLI): one line, then the cleanup
        if stop.code:
            import sys

            print(f"error: stopped by SIGTERM (the servers are stopped{'' if keep else ', this run’s data removed'})",
                  file=sys.stderr, flush=True)
        raise
    finally:
        with lifecycle.signals_blocked():
            if redis is not None:
                redis.stop()
            if pg is not None:
                pg.stop()
            if not keep:
                _remove_own_data(folder, named)
    _tell_next(out, folder, keep, key, env)
    return folder


def _make_market(kind: str, stocks: int, etfs: int, sessions: int, end: dt.date):
    if kind == "generated":
        from tickstockpl.market import sample

        return sample.generate(stocks=stocks, etfs=etfs, sessions=sessions, end=end), sample.next_session
    from tickstockpl.market import realistic

    return realistic.generate(stocks=stocks, etfs=etfs, sessions=sessions, end=end), realistic.next_session


def _remove_own_data(folder: Path, named: bool) -> None:
    """Delete what this run made: its whole folder, or (a folder the user named) only its parts."""
    if not named:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for part in demo_data.PARTS:
        path = folder / part
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _tell_market(out: Story, market, kind: str, seconds: float) -> None:
    from tickstockpl.market import realistic

    stocks = [r for r in market.symbols if r["type"] in ("CS", "ADRC")]
    etfs = [r for r in market.symbols if r["type"] == "ETF"]
    out.say("")
    out.say(f"2. The market ({seconds:.1f} s)")
    if kind == "real":
        real_s = sum(realistic.is_real(r["symbol"]) for r in stocks)
        real_e = sum(realistic.is_real(r["symbol"]) for r in etfs)
        out.say(f"{_n(len(market.symbols))} symbols: {real_s} real US companies and {real_e} real ETFs (their"
                f" names, sectors and industries are real; prices, shares and bars are synthetic), plus a"
                f" generated long tail of {_n(len(stocks) - real_s)} stocks and {_n(len(etfs) - real_e)} ETFs"
                " with invented names: IPOs, delistings, stale and missing bars, missing caps and sectors,"
                " foreign ADRs.", indent=3)
    else:
        out.say(f"{_n(len(market.symbols))} generated symbols ({_n(len(stocks))} stocks, {_n(len(etfs))} ETFs),"
                " invented tickers and names.", indent=3)
    out.say(f"{len(market.sessions)} sessions of daily bars, {market.sessions[0]} to {market.sessions[-1]}:"
            f" all but the last 5 loaded into ohlcv_daily ({_n(market.bar_count)} bars in all); the last 5"
            " written as daily flat files for the pipeline to import.", indent=3)


def _pipeline(out: Story, settings: Settings, db_url: str, redis_url: str, session: dt.date, title: str) -> str:
    from tickstockpl.db.connect import connection
    from tickstockpl.events.relay import relay_once
    from tickstockpl.pipeline.coordinator import get_run, trigger_run

    with connection(db_url, autocommit=True) as conn:
        first_event = conn.execute("SELECT coalesce(max(id), 0) FROM pl_event_outbox").fetchone()[0]
    handle = trigger_run(settings, db_url, trigger_type="manual", session_date=session, background=False)
    relay_once(db_url, redis_url)
    with connection(db_url, autocommit=True) as conn:
        run, phases = get_run(conn, handle.run_id)
        channels = Counter((r[0].split(":") + [""])[1] or r[0] for r in conn.execute(
            "SELECT channel FROM pl_event_outbox WHERE id > %s AND delivered_at IS NOT NULL", (first_event,)))
    out.say("")
    out.say(f"{title}: {run.status} in {run.duration_seconds:.1f} s")
    for phase in phases:
        counts = phase["counts"] or {}
        took = f" ({phase['duration_seconds']:.1f} s)" if phase.get("duration_seconds") is not None else ""
        if phase["phase"] == "data_import":
            sessions = counts.get("sessions_imported", 0)
            out.say(f"import{took}: {sessions} session(s) from flat files, {_n(counts.get('rows_imported', 0))}"
                    f" bars imported, {_n(counts.get('rows_rejected', 0))} rejected"
                    f" ({_n(counts.get('unknown_tickers', 0))} for tickers missing from symbols).", indent=3)
        elif phase["phase"] == "cache_sync":
            out.say(f"cache sync{took}: {counts.get('eligible_stocks', 0):,} eligible stocks;"
                    f" {counts.get('universes_updated', 0)} universes written,"
                    f" {counts.get('universes_unchanged', 0)} unchanged, {_n(counts.get('total_changes', 0))}"
                    " membership changes recorded.", indent=3)
    if channels:
        out.say(f"events: {sum(channels.values())} published to Redis by this run ("
                + ", ".join(f"{n} {c}" for c, n in sorted(channels.items())) + ").", indent=3)
    if run.status != "success":
        from tickstockpl.errors import TickStockError

        raise TickStockError(f"demo pipeline run failed: {run.error}")
    return run.run_id


# What each family is called in the story, by (type, name) of cache_entries.
def _family(type_: str, name: str) -> str | None:
    if type_ == "stock_universe":
        return {"market_cap": "market-cap bands", "market_leaders": "market leaders",
                "sector_leaders": "sector leaders", "industry": "industries", "themes": "themes",
                "complete": "complete lists", "ipos": "recent IPOs"}.get(name, name)
    if type_ == "etf_universe":
        return "ETF lists" if name == "complete" else "ETF categories"
    if type_ == "stock_etf_combo":
        return "stocks + ETFs combo"
    if type_ == "stock_stats":
        return "summary statistics"
    return None  # themes/<Display>/list: the same members as stock_universe/themes/<key>


def _label(type_: str, name: str, key: str) -> str:
    if type_ == "stock_universe":
        if name == "market_cap":
            return key.replace("_cap", "") + " caps"
        if name == "market_leaders":
            return key.replace("_stocks", "").replace("_", " ")
        if name == "sector_leaders":
            return key.removeprefix("top_10_").replace("_", " ").title()
        if name == "industry":
            return INDUSTRY_NAMES.get(key, key.replace("_", " "))
        if name == "ipos":
            return "recent IPOs"
        if name == "themes":
            return THEME_LABELS.get(key, key.title())
        return key.replace("_", " ")
    if type_ == "etf_universe":
        return key.removeprefix("etf_").replace("_", " ") if name != "complete" else key.replace("_", " ")
    return key


def _built(db_url: str):
    from tickstockpl.db.connect import connection
    from tickstockpl.universes.model import members

    with connection(db_url, autocommit=True) as conn:
        rows = conn.execute("SELECT type, name, key, value FROM cache_entries WHERE type <> 'cache_config'"
                            " ORDER BY type, name, key").fetchall()
    return [(t, n, k, members(v), v) for t, n, k, v in rows]


def _tell_universes(out: Story, db_url: str) -> None:
    rows = _built(db_url)
    families: dict[str, list] = defaultdict(list)
    twins = 0
    for type_, name, key, syms, value in rows:
        family = _family(type_, name)
        if family is None or key.endswith("_detailed"):
            twins += 1
            continue
        families[family].append((type_, name, key, syms, value))
    out.say("")
    out.say(f"What it built: {len(rows)} rows in cache_entries, the universes AppV2 reads ({twins} of them"
            " twins of others: the _detailed rows with each member's metadata, and themes/<name>/list).",
            indent=3)
    order = ["market-cap bands", "market leaders", "sector leaders", "industries", "themes", "recent IPOs",
             "complete lists", "ETF categories", "ETF lists", "stocks + ETFs combo", "summary statistics"]
    for family in order + sorted(set(families) - set(order)):
        items = sorted(families.get(family) or [], key=_natural)
        if not items:
            continue
        if family == "summary statistics":
            overview = (items[0][4] or {}).get("overview", {}) if isinstance(items[0][4], dict) else {}
            out.say(f"- {family}: {overview.get('total_stocks', 0):,} eligible stocks in"
                    f" {overview.get('unique_sectors', 0)} sectors, total market cap"
                    f" {_money(float(overview.get('total_market_cap', 0) or 0))}.", indent=3)
            continue
        if family == "stocks + ETFs combo":
            syms = items[0][3]
            out.say(f"- {family} (stored as {items[0][0]}/{items[0][1]}, the name AppV2 reads):"
                    f" {len(syms)} members, the largest stocks then the essential ETFs:"
                    f" {' '.join(syms[:6])} ... {' '.join(syms[-3:])}.", indent=3)
            continue
        shown = sorted(items, key=lambda i: -len(i[3]))[:3] if family in ("industries", "sector leaders",
                                                                          "ETF categories") else \
            items if family == "themes" else items[:5]
        parts = [f"{_label(t, n, k)} {len(s)}" + (f" ({' '.join(s[:5])}{' ...' if len(s) > 5 else ''})" if s else "")
                 for t, n, k, s, _v in shown]
        more = f"; {len(items) - len(shown)} more" if len(items) > len(shown) else ""
        empty = sum(1 for i in items if not i[3])
        out.say(f"- {family} ({len(items)}): " + "; ".join(parts) + more
                + (f"; {empty} empty" if empty else "") + ".", indent=3)


BANDS = ("mega_cap", "large_cap", "mid_cap", "small_cap", "micro_cap")


def _natural(item) -> tuple:
    """Bands from mega to micro, leaders by size (top 10 before top 50), the rest by key."""
    _type, name, key = item[0], item[1], item[2]
    if name == "market_cap" and key in BANDS:
        return (BANDS.index(key), key)
    digits = "".join(ch for ch in key if ch.isdigit())
    return (int(digits) if digits and name in ("market_leaders", "complete") else 0, key)


def _tell_changes(out: Story, db_url: str, nxt) -> None:
    from tickstockpl.db.connect import connection
    from tickstockpl.jobs import reports
    from tickstockpl.sync import changelog

    with connection(db_url, autocommit=True) as conn:
        job_id, result = reports.latest_completed(conn)
        changes = changelog.of_job(conn, job_id)
    by_symbol: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for universe, symbol, action, reason in changes:
        type_, name, key = universe.split(":", 2)
        if _family(type_, name) is None or key.endswith("_detailed"):
            continue
        by_symbol[symbol].append((action, _label(type_, name, key) + _suffix(type_, name), reason))
    market = nxt.market
    out.say("")
    out.say(f"What changed and why ({result.get('universes_updated', 0)} universes rewritten,"
            f" {result.get('total_changes', 0)} membership changes, twins included):", indent=3)
    ipo_row = market.by_symbol[nxt.ipo]
    cap = market.last_close(nxt.ipo) * (ipo_row["weighted_shares_outstanding"] or 0)
    out.say(f"- {nxt.ipo} {ipo_row['name']} (a fictional listing) went public at ${market.last_close(nxt.ipo):.2f},"
            f" a {_money(cap)} {ipo_row['industry']} company: added to "
            + _list(u for x, u, _r in by_symbol.get(nxt.ipo, []) if x == "added") + ".",
            indent=3)
    gone = [u for x, u, r in by_symbol.get(nxt.delisted, []) if x == "removed"]
    out.say(f"- {nxt.delisted} {market.by_symbol[nxt.delisted]['name']} was delisted (symbols.active = false):"
            f" removed from {_list(gone)}.", indent=3)
    def band_move(items) -> bool:  # left one market-cap band for another: the clearest "why"
        return any(u.endswith(" caps") for x, u, _r in items if x == "added") and \
            any(u.endswith(" caps") for x, u, _r in items if x == "removed")

    movers = [(s, items) for s, items in sorted(by_symbol.items(), key=lambda kv: (not band_move(kv[1]),
                                                                                 -len(kv[1]), kv[0]))
              if s not in (nxt.ipo, nxt.delisted)]
    if movers:
        out.say(f"- prices moved: {len(movers)} other stocks changed universes, for example:", indent=3)
        for symbol, items in movers[:4]:
            row = market.by_symbol.get(symbol, {})
            close = market.last_close(symbol)
            shares = row.get("weighted_shares_outstanding")
            why = f" (market cap now {_money(close * shares)})" if close and shares else ""
            added = [u for x, u, _r in items if x == "added"]
            removed = [u for x, u, _r in items if x == "removed"]
            text = f"{symbol} {row.get('name', '')}{why}:"
            text += (f" joined {_list(added)}" if added else "") + (";" if added and removed else "")
            text += f" left {_list(removed)}" if removed else ""
            out.say(text + ".", indent=5)


def _suffix(type_: str, name: str) -> str:
    if type_ == "stock_universe" and name == "sector_leaders":
        return " leaders"
    if type_ == "stock_universe" and name == "industry":
        return " (industry)"
    if type_ == "stock_universe" and name == "themes":
        return " (theme)"
    if type_ == "stock_universe" and name == "market_leaders":
        return " leaders"
    if type_ == "etf_universe":
        return " ETFs"
    return ""


def _list(items) -> str:
    items = list(dict.fromkeys(items))
    if not items:
        return "nothing"
    if len(items) > 6:
        return ", ".join(items[:6]) + f" and {len(items) - 6} more"
    return ", ".join(items[:-1]) + (" and " if len(items) > 1 else "") + items[-1]


def _tell_next(out: Story, folder: Path, keep: bool, key: str | None, env: Settings) -> None:
    out.say("")
    out.say("What next:")
    if keep:
        out.say(f"The data is kept in {folder}. Browse it with the API (the demo key is kept there too):", indent=3)
        port = env.port
        out.command(demo_data.serve_command(folder))
        out.command(f"curl -s -H 'X-API-Key: {key}' http://127.0.0.1:{port}/api/universes")
        out.command(f"curl -s -H 'X-API-Key: {key}' http://127.0.0.1:{port}/api/universes/stock_universe/"
                    "market_leaders/top_10_stocks")
        out.say("(`TICKSTOCKPL_DEMO=true tickstockpl serve` alone opens the newest kept demo.)", indent=3)
    else:
        out.say("The servers are stopped and this run's data is deleted. Run `tickstockpl demo --keep`"
                " to keep it and browse it with `serve` and the API.", indent=3)
    out.say("Against the shared database: set DATABASE_URL and run `tickstockpl db check`, then"
            " `tickstockpl db upgrade` and `tickstockpl cache-sync --dry-run` (README).", indent=3)
