"""`python -m bench.liquidity_bench [--symbols 12000] [--sessions 250]`: the cost of pl_symbol_liquidity.

Builds a sample market in a fresh database `tspl_liq_bench` (dropped at the end) on the server of
TICKSTOCKPL_BENCH_PG (default postgresql://postgres@127.0.0.1:5432/postgres), then measures
`liquidity.rebuild` through the last session and `liquidity.update_session` of the last session
(from the table rebuilt through the session before), each in its own transaction, rolled back.
Prints wall times (median of --reps) and the rows written. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time

import psycopg

from bench.harness import BENCH_END
from bench.scratch import sample_market_db
from tickstockpl.market import liquidity


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=12_000)
    parser.add_argument("--sessions", type=int, default=250)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with sample_market_db("tspl_liq_bench", symbols=args.symbols, sessions=args.sessions,
                          analyse="ohlcv_daily", end=BENCH_END) as (url, market):
        days = market.sessions
        rebuilds, updates, rows = [], [], 0
        for _ in range(args.reps):
            with psycopg.connect(url) as conn:
                start = time.perf_counter()
                rows = liquidity.rebuild(conn, days[-1])
                rebuilds.append(time.perf_counter() - start)
                conn.rollback()
            with psycopg.connect(url) as conn:
                liquidity.rebuild(conn, days[-2])
                start = time.perf_counter()
                liquidity.update_session(conn, days[-1])
                updates.append(time.perf_counter() - start)
                conn.rollback()
        print(f"{market.bar_count:,} bars, {rows:,} symbols, {len(days)} sessions")
        print(f"rebuild through {days[-1]}: {statistics.median(rebuilds):.3f} s (median of {args.reps})")
        print(f"update_session {days[-1]}: {statistics.median(updates):.3f} s (median of {args.reps})")


if __name__ == "__main__":
    main()
