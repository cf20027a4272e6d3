"""Fixtures of the reliability tests: a PostgreSQL server the tests stop and start, fresh databases on it.

Redis servers come from `tests/conftest.py` (`redis_process`: a redis-server this test owns).
Every test here runs on a fixed market (tests/api/support.py), so the market clock stands at
MARKET_NOW for each of them (`market_clock`, autouse) and for the servers they start.
"""

from __future__ import annotations

import uuid

import pytest

from tests.reliability.support import ControlledPostgres


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
    from tickstockpl.db.migrate import upgrade

    name = controlled_pg.create_database("schema")
    upgrade(controlled_pg.url(name))
    return name


@pytest.fixture
def rel_db(controlled_pg: ControlledPostgres, rel_schema: str) -> str:
    """A fresh database (schema only) on the controlled server; the server is running again afterwards."""
    name = controlled_pg.create_database(f"t{uuid.uuid4().hex[:12]}", template=rel_schema)
    yield controlled_pg.url(name)
    if not controlled_pg.running():
        controlled_pg.start()
    controlled_pg.drop_database(name)
