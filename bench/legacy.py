"""BASELINE ONLY - a re-creation of the legacy AppV2 cache rebuild. NEVER used by the product.

This module exists so that the benchmark (`python -m bench`) can measure TickStockPL's sync
against the algorithm it replaces, on the same database and data, in the same run. It is
written from the description of the old job (contract §8, issue 6), not from its code:

  1. DELETE every cache_entries row of the owned types in the environment (the table is then
     empty of universes until the end of the run: readers see a half-written state);
  2. read the configuration rows (thresholds, themes) from cache_config;
  3. one SELECT per market-cap band, per sector (after listing the sectors), per leader size,
     per theme, per industry (after listing the industries), per ETF category, for the complete
     lists, the combo, the IPO list and the stats, reading `symbols.market_cap` directly (the
     old job did not compute caps from closes; ties in cap order are left to the database);
  4. ONE INSERT PER ROW, then COMMIT.

It keeps the old defects that matter for timing and for comparison (substring ETF matching,
(industry, sector) grouping, no tie-break), writes the same families and value shapes as the
product (not byte-identical), and optionally publishes the old job's 3 Redis notifications.

    python -m bench.legacy --database-url postgresql://... [--environment DEFAULT] [--redis-url ...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
import tomllib
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

DEFAULTS = Path(__file__).resolve().parents[1] / "src" / "tickstockpl" / "universes" / "defaults.toml"
OWNED_TYPES = ["stock_universe", "etf_universe", "themes", "stock_etf_combo", "stock_stats"]
STOCK_COLUMNS = "symbol, name, sector, industry, primary_exchange, market, market_cap"
ELIGIBLE = "active = true AND type = 'CS' AND market_cap > 0"
UPSERT = (
    "INSERT INTO cache_entries (type, name, key, value, environment, created_at, updated_at)"
    " VALUES (%s, %s, %s, %s, %s, now(), now())"
    " ON CONFLICT (type, name, key, environment) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"
)


def load_defaults() -> dict:
    with DEFAULTS.open("rb") as handle:
        return tomllib.load(handle)


def slug(text: str) -> str:
    return text.lower().replace("&", "and").replace(" ", "_")


def stock_items(rows) -> list[dict]:
    return [
        {"name": name, "rank": i, "sector": sector or "Unknown", "ticker": symbol,
         "exchange": pex or "Unknown", "industry": industry or "Unknown", "market_cap": float(cap or 0),
         "market": market or "Unknown"}
        for i, (symbol, name, sector, industry, pex, market, cap) in enumerate(rows, start=1)
    ]


def stock_obj(rows) -> dict:
    items = stock_items(rows)
    return {"count": len(items), "stocks": items}


class Rebuild:
    """The legacy job's state: a cursor, the environment and the rows to insert one by one."""

    def __init__(self, conn: psycopg.Connection, environment: str, config: dict):
        self.cur = conn.cursor()
        self.environment = environment
        self.config = config
        self.pending: list[tuple[str, str, str, object]] = []

    def select(self, query: str, params: tuple = ()) -> list[tuple]:
        self.cur.execute(query, params)
        return self.cur.fetchall()

    def add(self, type_: str, name: str, key: str, value: object) -> None:
        self.pending.append((type_, name, key, value))

    def read_overrides(self) -> None:
        rows = self.select("SELECT name, key, value FROM cache_entries WHERE type = 'cache_config' AND environment = %s",
                           (self.environment,))
        for name, key, value in rows:
            value = json.loads(value) if isinstance(value, str) else value
            if name == "market_cap_thresholds":
                self.config["market_cap_thresholds"][key] = float(value)
            elif name == "theme_definitions":
                self.config["themes"][key] = list(value)

    def market_cap_bands(self) -> None:
        thresholds = self.config["market_cap_thresholds"]
        order = sorted(thresholds, key=thresholds.get, reverse=True)
        for i, band in enumerate(order):
            upper = thresholds[order[i - 1]] if i else 1e30
            rows = self.select(f"SELECT {STOCK_COLUMNS} FROM symbols WHERE {ELIGIBLE}"
                               " AND market_cap >= %s AND market_cap < %s ORDER BY market_cap DESC",
                               (thresholds[band], upper))
            self.add("stock_universe", "market_cap", band, stock_obj(rows))

    def sector_leaders(self) -> None:
        size = self.config.get("sector_leader_size", 10)
        sectors = self.select(f"SELECT DISTINCT sector FROM symbols WHERE {ELIGIBLE}"
                              " AND sector IS NOT NULL AND sector <> 'Unknown' ORDER BY sector")
        for (sector,) in sectors:
            rows = self.select(f"SELECT {STOCK_COLUMNS} FROM symbols WHERE {ELIGIBLE} AND sector = %s"
                               " ORDER BY market_cap DESC LIMIT %s", (sector, size))
            self.add("stock_universe", "sector_leaders", f"top_10_{slug(sector)}", stock_obj(rows))

    def market_leaders(self) -> None:
        for key, size in self.config["leader_sizes"].items():
            rows = self.select(f"SELECT {STOCK_COLUMNS} FROM symbols WHERE {ELIGIBLE}"
                               " ORDER BY market_cap DESC LIMIT %s", (size,))
            self.add("stock_universe", "market_leaders", key, stock_obj(rows))

    def themes(self) -> None:
        names = self.config.get("theme_names", {})
        for key, tickers in self.config["themes"].items():
            rows = self.select("SELECT symbol FROM symbols WHERE symbol = ANY(%s) AND active = true AND type = 'CS'"
                               " ORDER BY symbol", (list(tickers),))
            members = [r[0] for r in rows]
            self.add("themes", names.get(key, key.title()), "list", members)
            self.add("stock_universe", "themes", key, members)

    def industries(self) -> None:
        spec = self.config["industry"]
        groups = self.select(f"SELECT industry, sector, count(*) FROM symbols WHERE {ELIGIBLE} AND industry IS NOT NULL"
                             " GROUP BY industry, sector HAVING count(*) >= %s ORDER BY count(*) DESC LIMIT %s",
                             (spec["min_stocks"], spec["count"]))
        for industry, sector, _count in groups:
            rows = self.select(f"SELECT {STOCK_COLUMNS} FROM symbols WHERE {ELIGIBLE} AND industry = %s AND sector = %s"
                               " ORDER BY market_cap DESC LIMIT %s", (industry, sector, spec["size"]))
            self.add("stock_universe", "industry", slug(industry), {**stock_obj(rows), "sector": sector or "Unknown"})

    def etf_categories(self) -> None:
        for cat in self.config["etf_categories"]:
            include = [f"%{p}%" for p in cat["include"]] or ["%"]
            exclude = [f"%{p}%" for p in cat["exclude"]]
            rows = self.select("SELECT symbol, name, etf_type, issuer FROM symbols WHERE active = true AND type = 'ETF'"
                               " AND name ILIKE ANY(%s) AND NOT (name ILIKE ANY(%s)) ORDER BY symbol", (include, exclude))
            self.add("etf_universe", cat["display_name"], cat["key"], [r[0] for r in rows])
            detailed = [{"symbol": s, "name": n, "etf_type": t or "ETF", "issuer": i or "Unknown"} for s, n, t, i in rows]
            self.add("etf_universe", cat["display_name"], f"{cat['key']}_detailed", {"count": len(rows), "etfs": detailed})

    def complete(self) -> None:
        limits = self.config["complete_limits"]
        top = self.select(f"SELECT {STOCK_COLUMNS} FROM symbols WHERE {ELIGIBLE} ORDER BY market_cap DESC LIMIT %s",
                          (limits["stocks_full_metadata_limit"],))
        self.add("stock_universe", "complete", f"top_{limits['stocks_full_metadata_limit']}", stock_obj(top))
        every = self.select(f"SELECT symbol FROM symbols WHERE {ELIGIBLE} ORDER BY market_cap DESC")
        self.add("stock_universe", "complete", "all_stocks", [r[0] for r in every])
        etf_order = "ORDER BY COALESCE(market_cap, aum_millions * 1000000, 0) DESC"
        etfs = self.select("SELECT symbol, name, etf_type, issuer, primary_exchange, COALESCE(market_cap, 0) FROM symbols"
                           f" WHERE active = true AND type = 'ETF' {etf_order} LIMIT %s",
                           (limits["etfs_full_metadata_limit"],))
        items = [{"name": n, "rank": i, "ticker": s, "etf_type": t or "ETF", "issuer": iss or "Unknown",
                  "exchange": pex or "Unknown", "market_cap": float(cap)}
                 for i, (s, n, t, iss, pex, cap) in enumerate(etfs, start=1)]
        self.add("etf_universe", "complete", f"top_{limits['etfs_full_metadata_limit']}", {"count": len(items), "etfs": items})
        all_etfs = self.select(f"SELECT symbol FROM symbols WHERE active = true AND type = 'ETF' {etf_order}")
        self.add("etf_universe", "complete", "all_etfs", [r[0] for r in all_etfs])

    def combo(self) -> None:
        stocks = self.select(f"SELECT {STOCK_COLUMNS} FROM symbols WHERE {ELIGIBLE} ORDER BY market_cap DESC LIMIT %s",
                             (self.config.get("combo_stock_count", 50),))
        etfs = self.select("SELECT symbol, name, etf_type, issuer, primary_exchange, market FROM symbols"
                           " WHERE symbol = ANY(%s) AND active = true AND type = 'ETF' ORDER BY symbol",
                           (list(self.config["combo"]["essential_etfs"]),))
        stock_part = [{**item, "type": "stock"} for item in stock_items(stocks)]
        etf_part = [{"name": n, "ticker": s, "etf_type": t or "ETF", "issuer": i or "Unknown", "exchange": p or "Unknown",
                     "market": m or "Unknown", "type": "etf"} for s, n, t, i, p, m in etfs]
        members = [s["ticker"] for s in stock_part] + [e["ticker"] for e in etf_part]
        self.add("stock_etf_combo", "stock_etf_test", "combo_test", members)
        self.add("stock_etf_combo", "stock_etf_test", "combo_test_detailed", {
            "count": len(members), "description": "Top stocks and essential ETFs",
            "composition": {"stocks": len(stock_part), "etfs": len(etf_part)}, "stocks": stock_part, "etfs": etf_part})

    def ipos(self, today: dt.date) -> None:
        since = today - dt.timedelta(days=self.config.get("ipo_days", 30))
        rows = self.select(f"SELECT {STOCK_COLUMNS} FROM symbols WHERE active = true AND type IN ('CS', 'ETF')"
                           " AND list_date >= %s ORDER BY list_date DESC", (since,))
        self.add("stock_universe", "ipos", "recent_ipos", stock_obj(rows))

    def stats(self, today: dt.date) -> None:
        total, exchanges, markets, cap_sum, cap_avg, sectors = self.select(
            "SELECT count(*), count(DISTINCT primary_exchange), count(DISTINCT market), COALESCE(sum(market_cap), 0),"
            f" COALESCE(avg(market_cap), 0), count(DISTINCT sector) FROM symbols WHERE {ELIGIBLE}")[0]
        self.add("stock_stats", "universe", "summary", {"overview": {
            "total_stocks": total, "unique_exchanges": exchanges, "unique_markets": markets,
            "total_market_cap": float(cap_sum), "average_market_cap": float(cap_avg), "unique_sectors": sectors,
            "last_updated": today.isoformat()}})

    def insert_all(self) -> int:
        for type_, name, key, value in self.pending:  # one statement per row, as the old job did
            self.cur.execute(UPSERT, (type_, name, key, Jsonb(value), self.environment))
        return len(self.pending)


def rebuild(conn: psycopg.Connection, environment: str = "DEFAULT", today: dt.date | None = None) -> dict:
    """Run the legacy rebuild in one transaction; returns {rows, statements, seconds}."""
    started = time.perf_counter()
    today = today or dt.date.today()
    job = Rebuild(conn, environment, load_defaults())
    job.cur.execute("DELETE FROM cache_entries WHERE environment = %s AND type = ANY(%s)", (environment, OWNED_TYPES))
    job.read_overrides()
    job.market_cap_bands()
    job.sector_leaders()
    job.market_leaders()
    job.themes()
    job.industries()
    job.etf_categories()
    job.complete()
    job.combo()
    job.ipos(today)
    job.stats(today)
    written = job.insert_all()
    conn.commit()
    return {"rows": written, "seconds": round(time.perf_counter() - started, 4)}


def _notify(redis_url: str, result: dict) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    for event in ("cache_rebuild_started", "cache_rebuild_progress", "cache_rebuild_completed"):
        client.publish("tickstock_cache_updates", json.dumps({"event": event, **result}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.legacy", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--environment", default="DEFAULT")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=None, help="'today' of the IPO window and stats")
    parser.add_argument("--redis-url", default=None, help="publish the old job's 3 notifications there")
    args = parser.parse_args(argv)
    with psycopg.connect(args.database_url) as conn:
        result = rebuild(conn, args.environment, args.as_of)
    if args.redis_url:
        _notify(args.redis_url, result)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
