"""The outbox relay against a real PostgreSQL and a real Redis: exact text, order, once, never lost."""

from __future__ import annotations

import json
import time

import psycopg
import pytest
import redis

from tests.support.events import Subscriber
from tickstockpl.db import locks
from tickstockpl.errors import ServiceUnavailable
from tickstockpl.events import catalog
from tickstockpl.events.outbox import enqueue
from tickstockpl.events.relay import Relay, relay_once


def _events(n: int, channel: str = catalog.UNIVERSE_UPDATED) -> list[catalog.Event]:
    return [catalog.envelope(channel, "test_event", {"n": i}, "tests") for i in range(n)]


def _commit(db_url: str, events: list[catalog.Event]) -> None:
    with psycopg.connect(db_url) as conn:
        enqueue(conn, events)


def _outbox(db_url: str) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT id, channel, message, delivered_at, attempts, last_error FROM pl_event_outbox ORDER BY id"
        ).fetchall()


def _stream(redis_url: str, channel: str) -> list[dict]:
    client = redis.Redis.from_url(redis_url)
    try:
        return [{"entry_id": entry_id.decode(), **{k.decode(): v.decode() for k, v in fields.items()}}
                for entry_id, fields in client.xrange(catalog.stream_for(channel))]
    finally:
        client.close()


def _published_text(db_url: str) -> list[str]:
    """What the relay publishes: the stored messages, each with its event_id."""
    return [row[2] for row in _outbox(db_url)]


def _with_event_id(event_id: int, message: str) -> str:
    return '{"event_id":%d,' % event_id + message[1:]


def test_relay_once_publishes_the_exact_text_in_order_and_appends_to_the_stream(db_url, redis_process):
    sub = Subscriber(redis_process.url, (catalog.UNIVERSE_UPDATED, catalog.CACHE_SYNC_COMPLETE))
    try:
        events = _events(3) + [catalog.envelope(catalog.CACHE_SYNC_COMPLETE, "x", {"n": 3}, "tests")]
        _commit(db_url, events)
        assert relay_once(db_url, redis_process.url) == 4
        sub.wait_for(lambda m: len(m) == 4, timeout=10)
        rows = _outbox(db_url)
        # the event's text with its outbox id as the envelope's first field, event_id
        assert [r[2] for r in rows] == [_with_event_id(r[0], e.message) for r, e in zip(rows, events)]
        assert [(e.channel, json.loads(r[2])) for r, e in zip(rows, events)] == sub.messages
        assert [b["event_id"] for _c, b in sub.messages] == [r[0] for r in rows]
        assert all(row[3] is not None for row in rows)
        stream = _stream(redis_process.url, catalog.UNIVERSE_UPDATED)
        assert [s["message"] for s in stream] == [r[2] for r in rows[:3]]  # same family: tickstock:universe
        assert [s["entry_id"] for s in stream] == [f"{r[0]}-0" for r in rows[:3]]  # entry id from the outbox id
        assert _stream(redis_process.url, catalog.CACHE_SYNC_COMPLETE)[0]["channel"] == catalog.CACHE_SYNC_COMPLETE
        assert relay_once(db_url, redis_process.url) == 0  # nothing twice
    finally:
        sub.close()


def test_streams_are_one_per_channel_family_and_capped(db_url, redis_process):
    assert catalog.stream_for("tickstock:cache:sync_complete") == "tickstock:stream:cache"
    assert catalog.stream_for("tickstock:universe:updated") == "tickstock:stream:universe"
    _commit(db_url, _events(300))
    relay = Relay(db_url, redis_process.url, stream_maxlen=10, batch_size=50)
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert relay.drain(conn) == 300
    client = redis.Redis.from_url(redis_process.url)
    try:
        length = client.xlen(catalog.stream_for(catalog.UNIVERSE_UPDATED))
    finally:
        client.close()
    assert 10 <= length < 300  # MAXLEN ~ trims in whole nodes: about the cap, never the whole history


def test_uncommitted_and_rolled_back_events_are_never_published(db_url, redis_process):
    with psycopg.connect(db_url) as writer:
        enqueue(writer, _events(2))
        assert relay_once(db_url, redis_process.url, wait_busy_s=0) == 0  # not committed yet: invisible
        writer.rollback()
    assert relay_once(db_url, redis_process.url) == 0
    assert _outbox(db_url) == []


def test_redis_down_keeps_the_events_and_records_the_attempt(db_url, redis_process):
    _commit(db_url, _events(2))
    redis_process.stop()
    with pytest.raises(ServiceUnavailable):
        relay_once(db_url, redis_process.url)
    rows = _outbox(db_url)
    assert [r[3] for r in rows] == [None, None]
    assert all(r[4] == 1 and r[5] for r in rows)
    redis_process.start()
    assert relay_once(db_url, redis_process.url) == 2


def test_relay_thread_wakes_on_commit(db_url, redis_process, relay):
    sub = Subscriber(redis_process.url, (catalog.UNIVERSE_UPDATED,))
    try:
        for i in range(5):
            _commit(db_url, _events(1))
        sub.wait_for(lambda m: len(m) == 5, timeout=10)
        assert [b["payload"]["n"] for _c, b in sub.messages] == [0] * 5
    finally:
        sub.close()


def test_relay_thread_survives_an_outage_and_delivers_everything_once_in_order(db_url, redis_process, relay):
    redis_process.stop()
    for i in range(4):  # four committed transactions while Redis is down
        batch = [catalog.envelope(catalog.UNIVERSE_UPDATED, "test_event", {"tx": i, "n": j}, "tests") for j in range(3)]
        _commit(db_url, batch)
    expected = _published_text(db_url)
    deadline = time.monotonic() + 20
    while not any(r[4] > 0 for r in _outbox(db_url)):  # the relay tried, and kept them
        assert time.monotonic() < deadline, "relay never tried while Redis was down"
        time.sleep(0.05)
    assert all(r[3] is None for r in _outbox(db_url))
    with psycopg.connect(db_url, autocommit=True) as gate:
        gate.execute("SELECT pg_advisory_lock(%s)", (locks.OUTBOX_RELAY,))  # hold the relay until we listen
        redis_process.start()
        sub = Subscriber(redis_process.url, (catalog.UNIVERSE_UPDATED,))
        gate.execute("SELECT pg_advisory_unlock(%s)", (locks.OUTBOX_RELAY,))
    try:
        sub.wait_for(lambda m: len(m) >= len(expected), timeout=20)
        time.sleep(0.5)  # anything sent twice would arrive now
        received = [json.dumps(b, separators=(",", ":")) for _c, b in sub.messages]
        assert received == expected
        assert [s["message"] for s in _stream(redis_process.url, catalog.UNIVERSE_UPDATED)] == expected
        assert all(r[3] is not None for r in _outbox(db_url))
    finally:
        sub.close()


def test_two_relays_publish_each_event_once(db_url, redis_process):
    relays = [Relay(db_url, redis_process.url, batch_size=7, poll_s=0.1).start() for _ in range(2)]
    try:
        for _ in range(10):
            _commit(db_url, _events(10))
        deadline = time.monotonic() + 20
        while any(r[3] is None for r in _outbox(db_url)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        for r in relays:
            r.stop()
    ids = [int(s["outbox_id"]) for s in _stream(redis_process.url, catalog.UNIVERSE_UPDATED)]
    assert ids == sorted(set(ids)) and len(ids) == 100
    assert sum(r.delivered for r in relays) == 100


def test_prune_removes_only_delivered_rows_past_retention(db_url, redis_process):
    _commit(db_url, _events(3))
    relay_once(db_url, redis_process.url)
    _commit(db_url, _events(2))  # pending: never pruned
    keep = Relay(db_url, redis_process.url, retention_hours=1)
    drop = Relay(db_url, redis_process.url, retention_hours=0)
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert keep.prune(conn) == 0
        assert drop.prune(conn) == 3
    assert [r[3] for r in _outbox(db_url)] == [None, None]
