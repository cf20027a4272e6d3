"""A half-loaded latest session is refused (sync/validate.py, rule 4): another loader (AppV2's, say) wrote
only part of the expected session's bars, and a sync would mix prices of two dates.

A market of 2,500 symbols (about 2,400 bars a session) synced once on complete data; then 95 % and 99.9 %
of the last session's bars go missing. The sync is refused with the coverage reason and writes nothing;
`force` syncs anyway; a complete session passes. The rule itself on built snapshots.
"""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from tests.live_server import as_url
from tests.reliability.support import checksum
from tickstockpl.errors import ValidationFailed
from tickstockpl.jobs.runtime import get_job, start_job
from tickstockpl.market.snapshot import Security, Snapshot
from tickstockpl.sync import validate

END = dt.date(2026, 11, 27)


@pytest.fixture(scope="module")
def coverage_template(pg, schema_template):
    from tickstockpl.market.sample import generate, write

    name = pg.create_database("coverage", template=schema_template)
    with psycopg.connect(pg.url(name)) as conn:
        write(conn, generate(stocks=2000, etfs=500, sessions=3, end=END, seed=11))
    yield name
    pg.drop_database(name)


@pytest.fixture
def synced(pg, coverage_template, market_clock, request):
    """A fresh copy of the market, synced once on complete data."""
    name = pg.create_database(f"cov{abs(hash(request.node.nodeid)) % 10**8}", template=coverage_template)
    url = pg.url(name)
    start_job(url, triggered_by="cli", background=False)
    yield url
    pg.drop_database(name)


def _keep_only(url: str, fraction: float) -> tuple[int, int]:
    """Delete all but `fraction` of the last session's bars (the rest never arrived); (kept, before)."""
    with psycopg.connect(url) as conn:
        before = conn.execute("SELECT count(*) FROM ohlcv_daily WHERE date = %s", (END,)).fetchone()[0]
        keep = max(1, int(before * fraction))
        conn.execute("DELETE FROM ohlcv_daily WHERE date = %s AND symbol NOT IN"
                     " (SELECT symbol FROM ohlcv_daily WHERE date = %s ORDER BY md5(symbol) LIMIT %s)",
                     (END, END, keep))
    return keep, before


@pytest.mark.parametrize("missing", [0.95, 0.999])
def test_a_partly_loaded_session_is_refused_and_force_overrides(synced, missing):
    kept, before = _keep_only(synced, 1 - missing)
    assert before > 2000 and kept <= before * (1 - missing) + 1
    state = checksum(synced)
    with pytest.raises(ValidationFailed) as refused:
        start_job(synced, triggered_by="cli", background=False)
    reasons = refused.value.problems
    assert any(f"the session {END} looks partly loaded: {kept} bars against" in r and "pass force" in r
               for r in reasons), reasons
    assert any("eligible stocks have a bar on it" in r for r in reasons), reasons
    assert checksum(synced) == state  # nothing written
    with psycopg.connect(synced) as conn:
        (job,) = [str(r[0]) for r in conn.execute(
            "SELECT job_id FROM pl_sync_jobs WHERE status = 'failed' ORDER BY created_at DESC LIMIT 1")]
        assert "looks partly loaded" in get_job(conn, job).error_details

    forced = start_job(synced, triggered_by="cli", force=True, background=False).result
    assert forced.total_changes > 0  # mixed dates, but the operator asked for it
    assert checksum(synced) != state


def test_the_cli_names_the_reason_and_the_flag(synced):
    import os
    import subprocess
    import sys

    _keep_only(synced, 0.05)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_",))}
    env["DATABASE_URL"] = as_url(synced)
    done = subprocess.run([sys.executable, "-m", "tickstockpl.cli", "cache-sync"], env=env, capture_output=True,
                          text=True, timeout=120, cwd="/")
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: pre-sync validation failed: the session 2026-11-27 looks partly loaded")
    assert "--force" in line


def test_a_complete_session_passes(synced):
    with psycopg.connect(synced) as conn:  # a new bar on the last session: a real change, a full sync
        conn.execute("UPDATE ohlcv_daily SET close = close * 1.5 WHERE date = %s AND symbol ="
                     " (SELECT min(symbol) FROM ohlcv_daily WHERE date = %s)", (END, END))
    result = start_job(synced, triggered_by="cli", background=False).result
    assert result.unchanged_since is None


def _stock(symbol: str, bar: dt.date | None) -> Security:
    return Security(symbol=symbol, name=symbol, type="CS", active=True, market_cap=1e9, last_close=10.0,
                    last_bar_date=bar)


def _etf(symbol: str, bar: dt.date | None) -> Security:
    return Security(symbol=symbol, name=symbol, type="ETF", active=True, market_cap=None, last_bar_date=bar)


def test_the_rule_against_the_previous_session_and_the_eligible_stocks():
    day, before = END, END - dt.timedelta(days=2)

    def snap(securities, bars, previous_bars):
        return Snapshot(as_of=day, securities=tuple(securities), latest_session=day, expected_session=day,
                        bars_on_latest_session=bars, previous_session=before, bars_on_previous_session=previous_bars)

    stocks = [_stock(f"S{i:03d}", day) for i in range(100)]
    assert validate.coverage_problems(snap(stocks, 100, 100)) == []
    assert validate.coverage_problems(snap(stocks, 90, 100)) == []  # 90 %: the threshold itself passes
    (problem,) = validate.coverage_problems(snap(stocks, 89, 100))
    assert problem == ("the session 2026-11-27 looks partly loaded: 89 bars against 100 on 2026-11-25 (89 %;"
                       " at least 90 % needed); finish loading it or pass force")
    # every ETF's bar arrived, most stocks' did not: the count alone would pass
    mixed = [_stock(f"S{i:03d}", day if i < 50 else before) for i in range(100)] + \
        [_etf(f"E{i:03d}", day) for i in range(200)]
    (problem,) = validate.coverage_problems(snap(mixed, 250, 270))
    assert "only 50 of the 100 eligible stocks have a bar on it (50 %" in problem
    # no previous session (the first day of history) and not the expected session: nothing to compare
    assert validate.coverage_problems(snap(stocks, 100, None)) == []
    stale = Snapshot(as_of=day, securities=tuple(stocks), latest_session=before, expected_session=day,
                     bars_on_latest_session=5, previous_session=None, bars_on_previous_session=None)
    assert validate.coverage_problems(stale) == []  # rule 1 reports the missing session instead
    assert validate.MIN_SESSION_COVERAGE == 0.9
