"""Fixtures of the reliability tests: a PostgreSQL server the tests stop and start, fresh databases on it.

`rel_db` is the root `db_url` (tests/support/databases.py) on that server: for the tests that stop,
crash or restart PostgreSQL under a running server or CLI; every other test here uses `db_url`. Redis
servers come from `tests/conftest.py` (`redis_process`: a redis-server this test owns). Every test here
runs on a fixed market (tests/support/markets.py), so the market clock stands at MARKET_NOW for each of
them (`market_clock`, autouse) and for the servers they start.
"""

from __future__ import annotations

import pytest

from tests.reliability.support import ControlledPostgres
from tests.support.databases import fresh_database, migrated_template


@pytest.fixture(autouse=True)
def _fixed_market_clock(market_clock) -> str:
    return market_clock


@pytest.fixture(scope="session")
def controlled_pg() -> ControlledPostgres:
    server = ControlledPostgres()
    yield server
    server.close()


@pytest.fixture(scope="session")
def rel_schema(controlled_pg: ControlledPostgres) -> str:
    """A template database on the controlled server with every migration applied."""
    return migrated_template(controlled_pg)


@pytest.fixture
def rel_db(controlled_pg: ControlledPostgres, rel_schema: str) -> str:
    """A fresh database (schema only) on the controlled server; the server is running again afterwards."""
    with fresh_database(controlled_pg, rel_schema, "t") as url:
        yield url
        if not controlled_pg.running():
            controlled_pg.start()
