"""A scratch database holding the sample market, for the benchmarks of the statistics and the rule universes
(bench/liquidity_bench.py, bench/rules_bench.py): made on the server of TICKSTOCKPL_BENCH_PG (default
postgresql://postgres@127.0.0.1:5432/postgres), migrated, the market written and analysed, dropped at the end."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import psycopg

from tickstockpl.db.migrate import upgrade
from tickstockpl.market.sample import generate, write


@contextmanager
def sample_market_db(name: str, *, symbols: int, sessions: int, analyse: str = "", **generate_kw) -> Iterator[tuple]:
    """(url, market) of a fresh database `name` with market.sample.generate(seed 11, a sixth of the symbols
    ETFs, `sessions` sessions, **generate_kw) written; `analyse`: the table VACUUM ANALYZE looks at (all: "")."""
    admin = os.environ.get("TICKSTOCKPL_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    url = admin.rsplit("/", 1)[0] + "/" + name
    try:
        upgrade(url)
        etfs = symbols // 6
        market = generate(stocks=symbols - etfs, etfs=etfs, sessions=sessions, seed=11, **generate_kw)
        with psycopg.connect(url) as conn:
            write(conn, market)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"VACUUM ANALYZE {analyse}".strip())
        yield url, market
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
