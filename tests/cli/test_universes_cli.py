"""`tickstockpl universes churn`: the same answer as the API's, a table by default, one-line errors."""

from __future__ import annotations

import json

from tests.cli.test_cache_sync_cli import run


def test_churn_after_two_syncs(market_db_url):
    assert run(["cache-sync", "--as-of", "2026-11-25"], market_db_url).returncode == 0
    assert run(["cache-sync", "--as-of", "2026-11-27"], market_db_url).returncode == 0
    out = run(["universes", "churn", "--from", "2026-11-25", "--to", "2026-11-27", "--json"], market_db_url)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["from"] == "2026-11-25" and body["count"] == len(body["universes"]) > 20
    complete = next(u for u in body["universes"] if u["universe"] == "stock_universe:complete:all_stocks")
    assert complete["days"][0] == {"day": "2026-11-25", "before": 0, "after": complete["days"][0]["after"],
                                   "entered": complete["days"][0]["after"], "left": 0, "turnover": 1.0}
    table = run(["universes", "churn", "--from", "2026-11-25", "--to", "2026-11-27",
                 "--universe", "stock_universe:complete:all_stocks", "--days"], market_db_url, COLUMNS="200")
    assert table.returncode == 0 and "stock_universe:complete:all_stocks" in table.stdout
    assert "2026-11-25" in table.stdout and "100.00%" in table.stdout
    quiet = run(["universes", "churn", "--from", "2020-01-01", "--to", "2020-02-01"], market_db_url)
    assert quiet.returncode == 0 and "no universe changed between 2020-01-01 and 2020-02-01" in quiet.stdout
    backwards = run(["universes", "churn", "--from", "2026-11-27", "--to", "2026-11-25"], market_db_url)
    assert backwards.returncode == 2 and backwards.stderr.strip() == \
        "error: from (2026-11-27) is after to (2026-11-25)"
    bad = run(["universes", "churn", "--from", "yesterday"], market_db_url)
    assert bad.returncode == 2 and "--from must be a date YYYY-MM-DD, got 'yesterday'" in bad.stderr
