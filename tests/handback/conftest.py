"""Fixtures for the hand-back tests: one real server per module over the small fixed market.

The server (`tickstockpl serve` in a subprocess, tests/live_server.py) runs against its own
database cloned from the schema template and its own redis-server process, so the events the
tests subscribe to come from this server only; its market clock stands at `market.NOW`.
"""

from __future__ import annotations

import pytest

from tests.handback import market
from tests.live_server import LiveServer
from tests.servers import RedisProcess
from tests.support.databases import fresh_database

KEY = "test-key-0123456789"
SECOND_KEY = "rotated-key-9876543210"


@pytest.fixture(scope="module")
def handback_redis() -> RedisProcess:
    proc = RedisProcess().start()
    yield proc
    proc.close()


@pytest.fixture(scope="module")
def handback_db(pg, schema_template) -> str:
    with fresh_database(pg, schema_template, "hb") as url:
        market.load(url)
        yield url


@pytest.fixture(scope="module")
def server(handback_db, handback_redis) -> LiveServer:
    live = LiveServer(handback_db, redis_url=handback_redis.url, api_keys=(KEY, SECOND_KEY), env=market.SERVER_ENV)
    live.start()
    yield live
    live.close()
