"""The ownership rule at the command line: a dry run lists foreign rows, `cache prune` previews then deletes."""

from __future__ import annotations

import psycopg

from tests.cli.test_cache_sync_cli import run

LEFTOVER = ("etf_universe", "Complete", "top_100", '{"count": 0, "etfs": []}')
CURATED = ("etf_universe", "Core ETFs", "etf_core", '["SPY", "QQQ"]')


def _insert(conn, row) -> None:
    conn.execute("INSERT INTO cache_entries (type, name, key, value, environment) VALUES (%s, %s, %s, %s, 'DEFAULT')",
                 row)


def _count(conn, row) -> int:
    return conn.execute("SELECT count(*) FROM cache_entries WHERE type = %s AND name = %s AND key = %s",
                        row[:3]).fetchone()[0]


def test_dry_run_lists_foreign_rows_and_prune_previews_then_deletes(market_db_url):
    with psycopg.connect(market_db_url, autocommit=True) as conn:
        _insert(conn, LEFTOVER)
        _insert(conn, CURATED)
    dry = run(["cache-sync", "--dry-run", "--as-of", "2026-11-27"], market_db_url, COLUMNS="200")
    assert dry.returncode == 0, dry.stderr
    assert "foreign, left as is: 2" in dry.stdout
    assert "etf_universe:Complete:top_100" in dry.stdout and "etf_universe:Core ETFs:etf_core" in dry.stdout

    preview = run(["cache", "prune", "--legacy"], market_db_url)
    assert preview.returncode == 0, preview.stderr
    assert "would delete: etf_universe:Complete:top_100" in preview.stdout and "etf_core" not in preview.stdout
    assert "run again with --yes" in preview.stdout
    with psycopg.connect(market_db_url) as conn:
        assert _count(conn, LEFTOVER) == 1

    done = run(["cache", "prune", "--legacy", "--yes"], market_db_url)
    assert done.returncode == 0, done.stderr
    assert "deleted: etf_universe:Complete:top_100" in done.stdout
    with psycopg.connect(market_db_url) as conn:
        assert _count(conn, LEFTOVER) == 0 and _count(conn, CURATED) == 1


def test_prune_of_a_row_pl_builds_is_one_line_and_changes_nothing(market_db_url):
    assert run(["cache-sync", "--as-of", "2026-11-27"], market_db_url).returncode == 0
    refused = run(["cache", "prune", "--universe", "stock_universe:market_cap:mega_cap", "--yes"], market_db_url)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "not a foreign row" in refused.stderr
    with psycopg.connect(market_db_url) as conn:
        assert _count(conn, ("stock_universe", "market_cap", "mega_cap")) == 1
