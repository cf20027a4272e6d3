"""Shared fixtures: a real PostgreSQL and a real Redis, a fresh database per test.

A template database with every migration applied is made once per run; each test that asks for
`db_url` gets its own copy (CREATE DATABASE ... TEMPLATE), so no test sees another's rows. The
databases, dates, markets and waits behind these fixtures are in tests/support/.
"""

from __future__ import annotations

import datetime as dt
import os

import psycopg
import pytest

from tests.servers import PostgresHandle, RedisProcess, local_redis_url
from tests.support.databases import fresh_database, migrated_template
from tests.support.markets import MARKET_NOW  # noqa: F401 - also imported from here by the tests

# Decision: the suite's connections, and those of the servers and commands it starts (they inherit the
# environment), run without JIT compilation. Its databases are small and fresh, where the planner's estimates
# put statements such as the liquidity rebuild above jit_above_cost and compiling costs more than it saves:
# measured, the first rebuild of a 500-symbol market 155 ms with JIT, 86 ms without. Production keeps the
# server's setting: at 12,000 symbols JIT makes that rebuild faster (12.0 s against 15.2 s, bench.liquidity_bench).
if "jit=off" not in os.environ.get("PGOPTIONS", ""):  # the xdist workers inherit the controller's
    os.environ["PGOPTIONS"] = f"{os.environ.get('PGOPTIONS', '')} -c jit=off".strip()

pytest_plugins = ("tests.processes",)  # no_leaked_servers: every test, no server it started may outlive it


def pytest_configure(config) -> None:
    """Byte-compile the package once per run, before the workers start (in the xdist controller, or the only
    process): the suite starts about 170 `serve` and CLI subprocesses, and under PYTHONDONTWRITEBYTECODE (set on
    this machine kind) each would compile the package's sources again. Measured: a `serve` start 1.77 -> 1.55 s
    of CPU. The same call as the benchmark's (bench/harness.compile_sources)."""
    if not hasattr(config, "workerinput"):
        from bench.harness import compile_sources

        compile_sources()


# The small sample market of `market_template` / `market_db_url` (see `small_market`).
SMALL_MARKET = {"stocks": 400, "etfs": 100, "sessions": 30, "end": dt.date(2026, 11, 27), "seed": 7}
# MARKET_NOW (tests/support/markets.py): the instant the tests' fixed markets are seen from (the market
# clock, TICKSTOCKPL_NOW), a Saturday: the newest closed NYSE session is the half day of 2026-11-27.


@pytest.fixture
def market_clock(monkeypatch) -> str:
    """Set the market clock (tickstockpl.clock) to MARKET_NOW for this test and the servers it starts
    (tests/live_server.py passes TICKSTOCKPL_NOW on). Tests on a fixed market need it: what "now" is
    decides the default as-of date, the expected session and which sessions have closed."""
    from tickstockpl import clock

    monkeypatch.setenv(clock.ENV, MARKET_NOW)
    return MARKET_NOW


@pytest.fixture(scope="session")
def pg() -> PostgresHandle:
    handle = PostgresHandle()
    yield handle
    handle.close()


@pytest.fixture(scope="session")
def schema_template(pg: PostgresHandle) -> str:
    """Name of a database holding the full schema (and the NYSE sessions table), no data."""
    return migrated_template(pg)


@pytest.fixture
def db_url(pg: PostgresHandle, schema_template: str) -> str:
    """A fresh database with the schema applied, dropped after the test."""
    with fresh_database(pg, schema_template) as url:
        yield url


@pytest.fixture(scope="session")
def small_market():
    """The small sample market (market.sample.generate(**SMALL_MARKET)), shared read-only.

    500 symbols: 397 CS + 3 ADRC + 100 ETFs; 30 NYSE sessions 2026-10-16 .. 2026-11-27 (the last
    one the half day after Thanksgiving). Holds: the 20 essential ETFs and the curated ETFs of
    every category and exclusion (`sample_data.CURATED_ETFS`, e.g. IBB "iShares Biotechnology
    ETF", FINX "FinTech"); stocks in all 11 sectors and ~70 industries, one in each market-cap
    band (mega ... micro) and below micro, a few with NULL sector or NULL caps; recent IPOs
    listed within 30 days of the end (a CS and an ETF listed on 2026-11-27 itself); delisted
    (inactive) CS and ETFs whose bars stop earlier; active stocks whose last bar is a few
    sessions old; a few CS without any bar. Use `small_market.by_symbol`, `.last_close(sym)`,
    `.bar_symbols` to find examples instead of hard-coding tickers.
    """
    from tickstockpl.market.sample import generate

    return generate(**SMALL_MARKET)


@pytest.fixture(scope="session")
def market_template(pg: PostgresHandle, schema_template: str, small_market) -> str:
    """Name of a database with the schema and `small_market` loaded (symbols + ohlcv_daily), analysed."""
    from tickstockpl.market.sample import write

    name = pg.create_database("market", template=schema_template)
    with psycopg.connect(pg.url(name)) as conn:
        write(conn, small_market)
    with psycopg.connect(pg.url(name), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE symbols")
        conn.execute("VACUUM ANALYZE ohlcv_daily")
    return name


@pytest.fixture
def market_db_url(pg: PostgresHandle, market_template: str, market_clock) -> str:
    """A fresh copy of `market_template` (schema + the small sample market), dropped after the test.

    Nothing is in cache_entries; see `small_market` for what the market contains. The market clock
    stands at MARKET_NOW (`market_clock`).
    """
    with fresh_database(pg, market_template, "m") as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A real Redis: the machine's when it answers, else a redis-server process of our own."""
    url = local_redis_url()
    if url:
        yield url
        return
    proc = RedisProcess().start()
    yield proc.url
    proc.close()


@pytest.fixture
def redis_process() -> RedisProcess:
    """A Redis server this test controls (stop/start for outage scenarios)."""
    proc = RedisProcess().start()
    yield proc
    proc.close()
