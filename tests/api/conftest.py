from __future__ import annotations

import pytest

from tests.api.support import load_market
from tests.live_server import LiveServer

KEYS = ("test-key-primary-0001", "test-key-rotated-0002")


@pytest.fixture
def market(db_url, market_clock):
    """The small market; returns its two sessions, newest first (the market clock at MARKET_NOW)."""
    return load_market(db_url)


@pytest.fixture
def server(db_url, redis_process, market_clock):
    """A running `tickstockpl serve` on this test's database and Redis, two keys valid, its market
    clock at MARKET_NOW."""
    with LiveServer(db_url, redis_url=redis_process.url, api_keys=KEYS) as live:
        yield live


@pytest.fixture
def client(server):
    with server.client() as c:
        yield c
