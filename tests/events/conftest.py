from __future__ import annotations

import pytest

from tests.support.events import Subscriber
from tests.support.markets import load_market
from tickstockpl.events import catalog

ALL_CHANNELS = (
    *catalog.CACHE_SYNC_CHANNELS, catalog.CACHE_STARTED, catalog.CACHE_PROGRESS, catalog.CACHE_COMPLETED, catalog.ERRORS,
)


@pytest.fixture
def market(db_url, market_clock):
    return load_market(db_url)


@pytest.fixture
def subscriber(redis_process):
    sub = Subscriber(redis_process.url, ALL_CHANNELS)
    yield sub
    sub.close()


@pytest.fixture
def relay(db_url, redis_process):
    from tickstockpl.events.relay import Relay

    running = Relay(db_url, redis_process.url, stream_maxlen=1000, poll_s=0.2).start()
    yield running
    running.stop()
