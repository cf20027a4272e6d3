"""Fixtures of the API tests: the app in this process on the test's own database and Redis (`api`,
`client`), or a `tickstockpl serve` subprocess (`live`) where the process is the point: its log, a
kill, a signal, many connections at once."""

from __future__ import annotations

import pytest

from tests.support.markets import load_market
from tests.live_server import LiveServer
from tests.support.asgi import InProcessServer
from tests.support.databases import fresh_database

KEYS = ("test-key-primary-0001", "test-key-rotated-0002")


@pytest.fixture
def market(db_url, market_clock):
    """The small market; returns its two sessions, newest first (the market clock at MARKET_NOW)."""
    return load_market(db_url)


@pytest.fixture
def api(db_url, redis_process, market_clock):
    """The app (create_app, lifespan and all) in this process on this test's database and Redis, two
    keys valid, its market clock at MARKET_NOW."""
    with InProcessServer(db_url, redis_url=redis_process.url, api_keys=KEYS) as server:
        yield server


@pytest.fixture
def client(api):
    with api.client() as c:
        yield c


@pytest.fixture
def live(db_url, redis_process, market_clock):
    """A running `tickstockpl serve` on this test's database and Redis, two keys valid, its market
    clock at MARKET_NOW."""
    with LiveServer(db_url, redis_url=redis_process.url, api_keys=KEYS) as server:
        yield server


@pytest.fixture(scope="module")
def shared_api(pg, schema_template):
    """One app in this process per module, for checks that change nothing: its own empty database
    (schema only), no Redis (health says degraded), the market clock at MARKET_NOW. A test that
    starts a job, writes a row or needs the market uses `api` instead."""
    from tests.conftest import MARKET_NOW
    from tickstockpl import clock

    with fresh_database(pg, schema_template, "api") as url, pytest.MonkeyPatch.context() as patch:
        patch.setenv(clock.ENV, MARKET_NOW)
        with InProcessServer(url, api_keys=KEYS) as server:
            yield server


@pytest.fixture
def anonymous(shared_api):
    """A client of `shared_api` that sends no key."""
    with shared_api.client(key=False) as c:
        yield c


@pytest.fixture
def keyed(shared_api):
    """A client of `shared_api` that sends the first key."""
    with shared_api.client() as c:
        yield c
