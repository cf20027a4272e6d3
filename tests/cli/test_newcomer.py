"""What a newcomer trips over on the command line (issue 15): --version, help on every option, the exit
codes in --help, a global --database-url, one rule for dates, empty data refused with a reason, errors
naming the CLI's own flags, a pipeline without a provider saying so first, a no-op `db upgrade` that
loads no calendar."""

from __future__ import annotations

import subprocess
import sys

import click
import psycopg
import pytest

from tests.cli.test_failures import one_line, run
from tests.conftest import MARKET_NOW
from tests.live_server import as_url


def test_version_and_the_exit_codes_in_help():
    version = run(["--version"])
    assert version.returncode == 0 and version.stdout.strip() == "tickstockpl 0.1.0"
    text = run(["--help"]).stdout
    assert "Exit codes:" in text
    for code in ("0", "1", "2", "3", "4", "5", "130", "143"):
        assert any(line.split()[:1] == [code] for line in text.splitlines()), code
    assert all(len(line) <= 80 for line in text.splitlines())


def test_every_option_of_every_command_has_help():
    from tickstockpl.cli import app

    missing = []

    def walk(command: click.Command, path: str) -> None:
        for param in command.params:
            if isinstance(param, click.Option) and not (param.help or "").strip():
                missing.append(f"{path} {param.opts[0]}")
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(app, "tickstockpl")
    assert not missing, missing
    phases = run(["pipeline", "run", "--help"]).stdout
    for name in ("data_import", "cache_sync", "indicator_processing", "pattern_detection"):
        assert name in phases


def test_the_global_database_url_serves_every_command(db_url):
    url = as_url(db_url)
    assert run(["--database-url", url, "db", "check"]).returncode == 0
    assert "schema is up to date" in run(["--database-url", url, "db", "upgrade"]).stdout
    # a command's own --database-url wins over the global one
    line = one_line(run(["--database-url", url, "db", "check", "--database-url", "postgresql://postgres@127.0.0.1:1/x"]), 3)
    assert line.startswith("error: cannot connect to PostgreSQL")


@pytest.mark.parametrize("flag, args", [("--as-of", ["cache-sync"]), ("--date", ["pipeline", "run"])])
@pytest.mark.parametrize("day, now, expected", [
    ("2031-01-02", MARKET_NOW, "{flag} 2031-01-02 is in the future (today is 2026-11-28 in New York); the last closed"
                               " NYSE session is 2026-11-27"),
    ("2026-11-26", MARKET_NOW, "{flag} 2026-11-26 is not an NYSE session (a market holiday); the session before it is"
                               " 2026-11-25, the one after it 2026-11-27"),
    ("2026-11-22", MARKET_NOW, "{flag} 2026-11-22 is not an NYSE session (a weekend); the session before it is"
                               " 2026-11-20, the one after it 2026-11-23"),
    ("2026-11-27", "2026-11-27T15:00:00Z", "{flag} 2026-11-27: that session has not closed yet (it closes at 13:00"
                                           " New York time); the last closed session is 2026-11-25"),
])
def test_one_rule_for_dates_in_every_command(market_db_url, flag, args, day, now, expected):
    done = run([*args, flag, day], market_db_url, TICKSTOCKPL_NOW=now)
    line = one_line(done, 2)
    assert line.startswith("error: " + expected.format(flag=flag)), line
    if flag == "--date" and "not an NYSE session" in expected:
        assert line.endswith("; --skip-market-check runs it anyway")


def test_a_weekend_date_that_is_asked_for_runs_with_skip_market_check(market_db_url):
    done = run(["pipeline", "run", "--date", "2026-11-22", "--skip-market-check", "--phases", "cache_sync", "--json"],
               market_db_url, TICKSTOCKPL_NOW=MARKET_NOW)
    assert done.returncode in (0, 1) and "not an NYSE session" not in done.stderr, done.stderr


def test_empty_data_is_a_failure_with_a_reason_even_with_force(db_url):
    for args in (["cache-sync"], ["cache-sync", "--force"], ["cache-sync", "--dry-run"]):
        line = one_line(run(args, db_url, TICKSTOCKPL_NOW=MARKET_NOW), 1)
        assert line.startswith("error: pre-sync validation failed: no eligible stock: symbols holds no active common"
                               " stock (type CS) with a market cap"), line
        assert "tickstockpl cache-sync --allow-empty" in line
    allowed = run(["cache-sync", "--force", "--allow-empty", "--json"], db_url, TICKSTOCKPL_NOW=MARKET_NOW)
    assert allowed.returncode == 0, allowed.stderr


def test_a_pipeline_without_a_provider_says_so_first(db_url):
    done = run(["pipeline", "run"], db_url, TICKSTOCKPL_NOW=MARKET_NOW)
    assert done.returncode == 1
    note, error = done.stderr.strip().splitlines()
    assert note.startswith("note: no import provider is configured (set TICKSTOCKPL_FLATFILES_DIR or MASSIVE_API_KEY)")
    assert error.startswith("error: pipeline run") and "no eligible stock" in error


def test_errors_name_the_commands_flags_not_the_apis_fields(market_db_url):
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM ohlcv_daily WHERE date = '2026-11-27'")
    sync = one_line(run(["cache-sync"], market_db_url, TICKSTOCKPL_NOW=MARKET_NOW), 1)
    assert sync.endswith("run the data import first or rerun with --force") and "pass force" not in sync
    pipe = run(["pipeline", "run", "--phases", "cache_sync"], market_db_url, TICKSTOCKPL_NOW=MARKET_NOW)
    line = pipe.stderr.strip().splitlines()[-1]
    assert "`tickstockpl pipeline run --phases data_import` first" in line and "`tickstockpl cache-sync --force`" in line
    assert "pass force" not in line


def test_a_no_op_db_upgrade_loads_no_calendar(db_url):
    code = ("import sys; from tickstockpl.db.migrate import upgrade; upgrade(sys.argv[1]);"
            " print('exchange_calendars' in sys.modules)")
    first = subprocess.run([sys.executable, "-c", code, db_url], capture_output=True, text=True, timeout=120)
    assert first.stdout.strip() == "False", first.stderr  # the template was upgraded already: nothing to do
    with psycopg.connect(db_url, autocommit=True) as conn:  # a stale sessions table is refreshed
        conn.execute("COMMENT ON TABLE pl_market_sessions IS NULL")
    again = subprocess.run([sys.executable, "-c", code, db_url], capture_output=True, text=True, timeout=120)
    assert again.stdout.strip() == "True", again.stderr
    third = subprocess.run([sys.executable, "-c", code, db_url], capture_output=True, text=True, timeout=120)
    assert third.stdout.strip() == "False"
