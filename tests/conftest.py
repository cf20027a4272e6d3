"""Shared fixtures: a real PostgreSQL and a real Redis, a fresh database per test.

A template database with every migration applied is made once per run; each test that asks for
`db_url` gets its own copy (CREATE DATABASE ... TEMPLATE), so no test sees another's rows.
"""

from __future__ import annotations

import pytest

from tests.servers import PostgresHandle, RedisProcess, local_redis_url


@pytest.fixture(scope="session")
def pg() -> PostgresHandle:
    handle = PostgresHandle()
    yield handle
    handle.close()


@pytest.fixture(scope="session")
def schema_template(pg: PostgresHandle) -> str:
    """Name of a database holding the full schema (and the NYSE sessions table), no data."""
    from tickstockpl.db.migrate import upgrade

    name = pg.create_database("schema")
    upgrade(pg.url(name))
    return name


@pytest.fixture
def db_url(pg: PostgresHandle, schema_template: str, request) -> str:
    """A fresh database with the schema applied, dropped after the test."""
    name = pg.create_database(f"d{abs(hash(request.node.nodeid)) % 10**8}_{id(request)}"[:40], template=schema_template)
    yield pg.url(name)
    pg.drop_database(name)


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
