"""Quiet logs: one warning when a dependency goes down, one when it is back, naming it with the password
hidden (tickstockpl.outages), from the relay (Redis) and the server's periodic database check."""

from __future__ import annotations

import logging

import pytest

from tests.support.waiting import wait_until
from tickstockpl import outages
from tickstockpl.events import catalog
from tickstockpl.events.outbox import enqueue


@pytest.mark.parametrize("url, shown", [
    ("redis://:s3cret@cache.internal:6379/0", "redis://:***@cache.internal:6379/0"),
    ("postgresql://pl:s3cret@db:5432/tickstock", "postgresql://pl:***@db:5432/tickstock"),
    ("postgresql://pl@db/tickstock?password=s3cret&sslmode=require", "postgresql://pl@db/tickstock?password=***&sslmode=require"),
    ("host=db password=s3cret dbname=tickstock", "host=db password=*** dbname=tickstock"),
    ("postgresql://pl@db/tickstock", "postgresql://pl@db/tickstock"),
])
def test_urls_are_shown_without_their_password(url, shown):
    assert outages.redact(url) == shown


def test_one_line_down_and_one_back_however_often_it_is_seen(caplog):
    caplog.set_level(logging.WARNING, logger="tickstockpl.outages")
    where = "redis://:pw@127.0.0.1:1/0"
    assert outages.down("Redis", where, ConnectionError("refused\nmore"))
    for _ in range(50):
        assert not outages.down("Redis", where, ConnectionError("refused"))
    assert outages.up("Redis", where) and not outages.up("Redis", where)
    lines = [r.getMessage() for r in caplog.records if r.name == "tickstockpl.outages"]
    assert len(lines) == 2
    assert lines[0] == ("Redis at redis://:***@127.0.0.1:1/0 is unavailable (refused); retrying quietly, one more"
                        " line when it is back")
    assert lines[1].startswith("Redis at redis://:***@127.0.0.1:1/0 is back after ")


def test_the_relay_says_redis_is_down_once_and_back_once(db_url, redis_process, caplog):
    from tickstockpl.events.relay import Relay

    caplog.set_level(logging.INFO, logger="tickstockpl")  # a CLI test in this process may have set it to CRITICAL
    redis_process.stop()
    import psycopg

    with psycopg.connect(db_url) as conn:
        enqueue(conn, [catalog.envelope(catalog.UNIVERSE_UPDATED, "test_event", {"n": 1}, "tests")])
    relay = Relay(db_url, redis_process.url, poll_s=0.1).start()
    try:
        where = f"redis://127.0.0.1:{redis_process.port}/0"
        wait_until(lambda: outages.is_down("Redis", where), 30, "the relay noticing Redis is down")
        wait_until(lambda: relay.redis_ok is False, 30, "a few failed attempts")
        redis_process.start()
        wait_until(lambda: not outages.is_down("Redis", where), 60, "the relay noticing Redis is back")
    finally:
        relay.stop()
    mine = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("tickstockpl")]
    assert [r.getMessage().split(" is ")[1].split()[0] for r in mine] == ["unavailable", "back"], \
        [r.getMessage() for r in mine]
    assert all(where in r.getMessage() for r in mine)
