"""Every CLI failure is one line a person can act on and a non-zero exit, never a traceback; `--debug`
shows the traceback (issue 11, item 4). The real command, as a process, against a real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest
from click.testing import CliRunner

from tests.appv2_schemas import HISTORICAL, MAINTENANCE, MODEL, appv2_database  # noqa: F401

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/none"


def run(args, url=None, *, cwd=None, **env):
    full_env = {k: v for k, v in os.environ.items()  # the market clock (TICKSTOCKPL_NOW) is passed on
                if not k.startswith(("TICKSTOCKPL_", "DATABASE_", "MASSIVE_")) or k == "TICKSTOCKPL_NOW"}
    if url is not None:
        full_env["DATABASE_URL"] = url
    full_env.update(env)
    return subprocess.run([sys.executable, "-m", "tickstockpl.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=120, cwd=cwd or "/")


def one_line(done, code: int | None = None) -> str:
    """The single stderr line of a failed command (asserting there is exactly one and no traceback)."""
    assert done.returncode != 0, (done.stdout, done.stderr)
    if code is not None:
        assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


@pytest.mark.parametrize("args", [["cache-sync"], ["cache-sync", "--dry-run"], ["db", "upgrade"], ["db", "check"],
                                  ["pipeline", "run"]])
def test_database_unreachable(args):
    line = one_line(run(args, UNREACHABLE), 3)
    assert line.startswith("error: cannot connect to PostgreSQL:") and "Connection refused" in line


@pytest.mark.parametrize("url, code, expected", [
    ("dbname=x foo=bar", 2, 'error: invalid database URL: invalid connection option "foo"'),
    ("mysql://user@host/db", 2, "error: DATABASE_URL must be a postgresql:// URL"),
    ("<server>/tspl_no_such_database", 3, 'database "tspl_no_such_database" does not exist'),
    ("postgresql://postgres@127.0.0.1:5432/x?sslmode=bogus", 3, 'invalid sslmode value: "bogus"'),  # refused before connecting
])
def test_wrong_database_url(url, code, expected, pg):
    if url.startswith("<server>/"):  # on the test run's own server (the machine's, or an embedded one)
        url = pg.url(url.removeprefix("<server>/"))
    for args in (["cache-sync"], ["db", "check"]):
        assert expected in one_line(run(args, url), code)


def test_no_database_url():
    assert "DATABASE_URL is not set" in one_line(run(["db", "check"]), 2)


def test_unknown_mode_bad_date_and_usage_errors(db_url):
    assert one_line(run(["cache-sync", "--mode", "everything"], db_url), 2) == (
        "error: --mode must be one of full, market_cap, themes, ipos; got 'everything'")
    assert one_line(run(["cache-sync", "--as-of", "27/11/2026"], db_url), 2) == (
        "error: --as-of must be a date YYYY-MM-DD, got '27/11/2026'")
    assert one_line(run(["pipeline", "run", "--date", "2026-13-01"], db_url), 2) == (
        "error: --date must be a date YYYY-MM-DD, got '2026-13-01'")
    assert one_line(run(["cache-sync", "--zzz"], db_url), 2) == (
        "error: No such option '--zzz'. (see `tickstockpl cache-sync --help`)")
    assert one_line(run(["nosuch"], db_url), 2) == "error: No such command 'nosuch'. (see `tickstockpl --help`)"


def test_validation_refusal(market_db_url):
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM ohlcv_daily WHERE date = '2026-11-27'")
    line = one_line(run(["cache-sync", "--as-of", "2026-11-27"], market_db_url), 1)
    assert line.startswith("error: pre-sync validation failed: ohlcv_daily has no bars")


def test_a_database_pl_never_upgraded(pg):
    name = pg.create_database("cli_empty")
    try:
        url = pg.url(name)
        for args in (["cache-sync"], ["cache-sync", "--dry-run"], ["pipeline", "run", "--date", "2026-11-27"]):
            line = one_line(run(args, url), 1)
            assert "tickstockpl db upgrade" in line, line
        check = run(["db", "check"], url)
        assert one_line(check, 1).startswith("error: schema check failed: symbols table: found no such table;"
                                             " fix: tickstockpl db upgrade")
        assert "failure PL's tables version" in check.stdout
    finally:
        pg.drop_database(name)


def test_schema_mismatch(appv2_database):
    url = appv2_database(MODEL, upgrade=False)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE cache_entries ADD COLUMN owner text NOT NULL")
    upgrade = run(["db", "upgrade"], url)
    assert one_line(upgrade, 1).startswith("error: schema check failed: cache_entries column owner: found owner text"
                                           " NOT NULL without a default")
    assert upgrade.stdout == ""
    check = run(["db", "check"], url)
    failures = [line for line in check.stdout.splitlines() if line.startswith("failure")]
    assert failures[0].startswith("failure cache_entries column owner:") and "fix: ALTER TABLE cache_entries" in failures[0]
    assert one_line(check, 1).startswith("error: schema check failed: cache_entries column owner")


def test_schema_mismatch_on_a_sync(appv2_database):
    url = appv2_database(MODEL)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE cache_entries DROP CONSTRAINT unique_cache_entry,"
                     " ADD CONSTRAINT ce_type_key UNIQUE (type, key)")
    for args in (["cache-sync"], ["cache-sync", "--dry-run"]):
        line = one_line(run(args, url), 1)
        assert "ce_type_key" in line, line


@pytest.mark.parametrize("variant", [MODEL, MAINTENANCE, HISTORICAL])
def test_db_check_passes_on_every_variant(appv2_database, variant):
    done = run(["db", "check"], appv2_database(variant))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    *findings, summary = done.stdout.strip().splitlines()
    assert summary.startswith("PL can work with this database")
    assert findings and all(line.split()[0] in ("ok", "warning") for line in findings)
    if variant == MAINTENANCE:
        assert any(line.startswith("warning cache_entries unique key") for line in findings)


def test_db_check_json(appv2_database):
    import json

    done = run(["db", "check", "--json"], appv2_database(HISTORICAL))
    result = json.loads(done.stdout)
    assert done.returncode == 0 and result["ok"] is True
    assert {"level": "warning", "table": "ohlcv_daily", "subject": "symbol width"}.items() <= next(
        f for f in result["findings"] if f["level"] == "warning").items()


def test_db_upgrade_prints_the_check_warnings(appv2_database):
    done = run(["db", "upgrade"], appv2_database(MAINTENANCE, upgrade=False))
    assert done.returncode == 0 and done.stdout.startswith("applied: 0001_shared_tables")
    assert done.stderr.startswith("warning: cache_entries unique key: cache_entries_type_key_environment_key")


def test_debug_shows_the_traceback():
    done = run(["--debug", "cache-sync"], UNREACHABLE)
    assert done.returncode == 3
    assert done.stderr.startswith("Traceback (most recent call last):")
    assert done.stderr.strip().splitlines()[-1].startswith("error: cannot connect to PostgreSQL")


def test_an_unexpected_error_is_one_line_and_debug_shows_where(db_url, monkeypatch):
    from tickstockpl import cli
    from tickstockpl.db import check

    def broken(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(check, "check", broken)
    monkeypatch.setenv("DATABASE_URL", db_url)
    plain = CliRunner().invoke(cli.app, ["db", "check"])
    assert plain.exit_code == 1 and plain.stderr == (
        "error: unexpected RuntimeError: boom (run `tickstockpl --debug ...` for the traceback)\n")
    debug = CliRunner().invoke(cli.app, ["--debug", "db", "check"])
    assert debug.exit_code == 1 and "Traceback" in debug.stderr and "in broken" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1].startswith("error: unexpected RuntimeError: boom")
