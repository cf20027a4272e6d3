"""Events with identity: a batch Redis executed but whose answer the relay never saw is sent again, and
Redis drops what it already has (events/relay.py). Each event carries `event_id` (its outbox id).

Injected: Redis frozen (SIGSTOP) past the relay's socket timeout while a backlog is published, then
thawed (SIGCONT); `tickstockpl serve` killed (SIGKILL) three times while its relay drains a backlog,
each time after Redis executed a batch and before the relay recorded it. Seen by a plain SUBSCRIBE
client: every event exactly once, in outbox order, also without dropping duplicates by `event_id`;
each stream entry once, with the entry id `<outbox id>-0`.
"""

from __future__ import annotations

import json
import os
import signal
import threading

import psycopg
import redis

from tests.support.events import Subscriber
from tests.live_server import LiveServer
from tests.reliability.support import backend_waiting
from tests.support.waiting import wait_until
from tickstockpl.db import locks
from tickstockpl.events import catalog
from tickstockpl.events.outbox import enqueue
from tickstockpl.events.relay import Relay, relay_once

CHANNELS = (catalog.UNIVERSE_UPDATED, catalog.CACHE_SYNC_COMPLETE, catalog.MONITORING)


def _write(db_url: str, transactions: int, per_transaction: int, tag: str) -> None:
    for t in range(transactions):
        with psycopg.connect(db_url) as conn:
            enqueue(conn, [catalog.envelope(CHANNELS[(t + i) % 2], "test_event", {"tag": tag, "tx": t, "n": i}, "tests")
                           for i in range(per_transaction)])


def _outbox(db_url: str) -> list[tuple[int, str, str, bool, int]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT id, channel, message, delivered_at IS NOT NULL, attempts FROM pl_event_outbox"
                            " ORDER BY id").fetchall()


def _undelivered(db_url: str) -> int:
    return sum(1 for row in _outbox(db_url) if not row[3])


def _deduped(messages: list[tuple[str, dict]]) -> list[int]:
    """What a consumer that drops duplicates by event_id sees: the event ids, in arrival order."""
    seen, kept = set(), []
    for _channel, body in messages:
        if body["event_id"] not in seen:
            seen.add(body["event_id"])
            kept.append(body["event_id"])
    return kept


def _check_delivery(db_url: str, redis_url: str, subscriber: Subscriber) -> list[int]:
    """Every outbox row published exactly once, in id order, as stored; each stream entry once."""
    rows = _outbox(db_url)
    ids = [row[0] for row in rows]
    subscriber.wait_for(lambda m: len(_deduped(m)) >= len(ids), timeout=60)
    # a sentinel committed last: anything sent twice (a re-sent batch) would arrive before it
    with psycopg.connect(db_url) as conn:
        enqueue(conn, [catalog.envelope(catalog.MONITORING, "sentinel", {}, "tests")])
    subscriber.wait_for(lambda m: any(b["event"] == "sentinel" for _c, b in m), timeout=60)
    received = [(c, b) for c, b in subscriber.messages if b["event"] != "sentinel"]
    assert _deduped(received) == ids  # the consumer that dedupes: each event once, in order
    assert [b["event_id"] for _c, b in received] == ids  # and nothing was even sent twice
    assert [(c, json.dumps(b, separators=(",", ":"))) for c, b in received] == [(r[1], r[2]) for r in rows]
    client = redis.Redis.from_url(redis_url)
    try:
        for stream in sorted({catalog.stream_for(c) for c in CHANNELS}):
            entries = [(e.decode(), int(f[b"outbox_id"])) for e, f in client.xrange(stream)
                       if json.loads(f[b"message"])["event"] != "sentinel"]
            wanted = [i for i, c, *_ in rows if catalog.stream_for(c) == stream]
            assert entries == [(f"{i}-0", i) for i in wanted], stream
    finally:
        client.close()
    return ids


def test_redis_frozen_past_the_socket_timeout_gets_each_event_once_in_order(db_url, redis_process):
    subscriber = Subscriber(redis_process.url, CHANNELS)
    relay = Relay(db_url, redis_process.url, batch_size=25, poll_s=0.1, redis_timeout_s=1.0)
    frozen = False
    try:
        _write(db_url, 2, 5, "before")
        relay.start()
        wait_until(lambda: _undelivered(db_url) == 0, 30, "the first events delivered")
        os.kill(redis_process.proc.pid, signal.SIGSTOP)
        frozen = True
        _write(db_url, 8, 10, "frozen")  # 80 events: four batches wait behind the frozen Redis
        # the relay sent a batch, timed out waiting for the answer, and tried again (and again)
        wait_until(lambda: max(row[4] for row in _outbox(db_url)) >= 2, 60, "the relay timing out twice")
        assert _undelivered(db_url) == 80
        os.kill(redis_process.proc.pid, signal.SIGCONT)
        frozen = False
        wait_until(lambda: _undelivered(db_url) == 0, 60, "every event delivered after the thaw")
        ids = _check_delivery(db_url, redis_process.url, subscriber)
        assert len(ids) == 90
        # Redis ran the batches the relay had given up on, then dropped them when they came again
        assert relay.skipped > 0, "no batch was re-sent: the freeze did not reach the relay"
        print(f"\nfrozen Redis: 90 events, {relay.skipped} re-sent event(s) dropped by Redis, none received twice")
    finally:
        if frozen:
            os.kill(redis_process.proc.pid, signal.SIGCONT)
        relay.stop()
        subscriber.close()


def test_serve_killed_while_its_relay_drains_a_backlog_sends_nothing_twice(db_url, redis_process):
    subscriber = Subscriber(redis_process.url, CHANNELS)
    server = LiveServer(db_url, redis_url=redis_process.url)
    gate = psycopg.connect(db_url, autocommit=True)  # holding locks.OUTBOX_RELAY: no relay publishes
    try:
        gate.execute("SELECT pg_advisory_lock(%s)", (locks.OUTBOX_RELAY,))
        _write(db_url, 20, 50, "backlog")  # 1,000 events: five batches of 200
        server.start()
        for _kill in range(3):
            # Hold one row of the next batch: the relay publishes the batch, then waits to mark it
            # delivered. That is the moment to kill it: Redis has the batch, the outbox does not know.
            pending = [row[0] for row in _outbox(db_url) if not row[3]]
            holder = psycopg.connect(db_url)
            holder.execute("SELECT 1 FROM pl_event_outbox WHERE id = %s FOR UPDATE", (pending[100],))
            gate.execute("SELECT pg_advisory_unlock(%s)", (locks.OUTBOX_RELAY,))
            wait_until(lambda: backend_waiting(db_url, "UPDATE pl_event_outbox SET delivered_at"), 60,
                       "the relay waiting to record a published batch")
            subscriber.wait_for(lambda m: pending[199] in {b["event_id"] for _c, b in m}, timeout=30)
            server.kill()
            with psycopg.connect(db_url, autocommit=True) as admin:  # its backend goes with it
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                              " AND application_name = 'tickstockpl-relay'")
            gate.execute("SELECT pg_advisory_lock(%s)", (locks.OUTBOX_RELAY,))  # once that backend is gone
            holder.rollback()
            holder.close()
            assert _undelivered(db_url) == len(pending)  # the killed batch is still pending: it is sent again
            server.start()
        gate.execute("SELECT pg_advisory_unlock(%s)", (locks.OUTBOX_RELAY,))
        wait_until(lambda: _undelivered(db_url) == 0, 60, "the backlog drained")
        ids = _check_delivery(db_url, redis_process.url, subscriber)
        assert len(ids) == 1000
        assert "already in Redis" in server.logs()
    finally:
        gate.close()
        server.close()
        subscriber.close()


def test_a_reset_outbox_reuses_ids_and_nothing_is_lost(db_url, redis_process):
    """Ids at or below what Redis saw are dropped only when the stream holds that very message: after
    TRUNCATE ... RESTART IDENTITY (or a restored database) the new events with old ids are sent."""
    subscriber = Subscriber(redis_process.url, CHANNELS)
    try:
        _write(db_url, 1, 5, "first")
        assert relay_once(db_url, redis_process.url) == 5
        with psycopg.connect(db_url) as conn:
            conn.execute("TRUNCATE pl_event_outbox RESTART IDENTITY")
        _write(db_url, 1, 3, "second")
        assert relay_once(db_url, redis_process.url) == 3
        subscriber.wait_for(lambda m: len(m) == 8, timeout=30)
        assert [(b["event_id"], b["payload"]["tag"]) for _c, b in subscriber.messages] == \
            [(i, "first") for i in range(1, 6)] + [(i, "second") for i in range(1, 4)]
    finally:
        subscriber.close()


def test_streams_with_older_entries_and_a_shared_redis_still_get_every_event_once(pg, schema_template, redis_process):
    """A stream holding larger (automatic) ids from an older PL, and two PL databases on one Redis: events
    are appended with automatic ids there, and a re-sent batch is still dropped."""
    client = redis.Redis.from_url(redis_process.url)
    client.xadd(catalog.stream_for(catalog.UNIVERSE_UPDATED), {"channel": "old", "message": "{}"})  # a ms id
    names = [pg.create_database(f"shared{i}_{os.getpid()}", template=schema_template) for i in range(2)]
    urls = [pg.url(name) for name in names]
    subscriber = Subscriber(redis_process.url, CHANNELS)
    try:
        for i, url in enumerate(urls):
            _write(url, 1, 4, f"database {i}")
        relays = [Relay(url, redis_process.url) for url in urls]
        for relay, url in zip(relays, urls):
            with psycopg.connect(url, autocommit=True) as conn:
                assert relay.drain(conn) == 4
        subscriber.wait_for(lambda m: len(m) == 8, timeout=30)
        for relay, url in zip(relays, urls):  # the same batch again, as after a lost answer
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("UPDATE pl_event_outbox SET delivered_at = NULL")
                assert relay.drain(conn) == 4
            assert relay.skipped == 4
            relay.redis.close()
        with psycopg.connect(urls[0]) as conn:
            enqueue(conn, [catalog.envelope(catalog.MONITORING, "sentinel", {}, "tests")])
        relay_once(urls[0], redis_process.url)
        subscriber.wait_for(lambda m: any(b["event"] == "sentinel" for _c, b in m), timeout=30)
        assert len(subscriber.messages) == 9  # 2 x 4 events once each, and the sentinel
        entries = client.xrange(catalog.stream_for(catalog.UNIVERSE_UPDATED))
        assert sum(1 for _e, f in entries if f[b"channel"] != b"old") == \
            sum(1 for c, b in subscriber.messages if c == catalog.UNIVERSE_UPDATED)
    finally:
        subscriber.close()
        client.close()
        for name in names:
            pg.drop_database(name)


def test_writers_make_their_events_visible_in_id_order(db_url, redis_process):
    """A writer that took ids first and commits last holds the next writer back (locks.OUTBOX_WRITE):
    the relay never sees a larger id committed before a smaller one."""
    first = psycopg.connect(db_url)
    enqueue(first, [catalog.envelope(catalog.MONITORING, "first", {}, "tests")])
    done = threading.Event()

    def second_writer() -> None:
        with psycopg.connect(db_url) as conn:
            enqueue(conn, [catalog.envelope(catalog.MONITORING, "second", {}, "tests")])
        done.set()

    thread = threading.Thread(target=second_writer)
    thread.start()
    try:
        wait_until(lambda: backend_waiting(db_url, "WITH added AS"), 30, "the second writer waiting")
        assert relay_once(db_url, redis_process.url, wait_busy_s=0) == 0  # nothing visible yet
        first.commit()
        thread.join(30)
        assert done.is_set()
    finally:
        first.close()
    rows = _outbox(db_url)
    assert [json.loads(r[2])["event"] for r in rows] == ["first", "second"]
    assert [json.loads(r[2])["event_id"] for r in rows] == [r[0] for r in rows]


def test_the_client_listener_drops_an_event_delivered_twice():
    from tickstockpl.client import CacheEventListener

    listener = CacheEventListener("redis://127.0.0.1:1/0")  # never started: dispatch is pure
    got: list[int] = []
    listener.on("universe_updated", lambda envelope, channel: got.append(envelope["event_id"]))
    first = b'{"event_id": 7, "event": "universe_updated", "payload": {}}'
    assert listener.dispatch(catalog.UNIVERSE_UPDATED, first) == "universe_updated"
    assert listener.dispatch(catalog.UNIVERSE_UPDATED, first) is None  # the same event again
    assert listener.dispatch(catalog.UNIVERSE_UPDATED, first.replace(b"7", b"8")) == "universe_updated"
    assert got == [7, 8]
    for i in range(100, 100 + CacheEventListener.RECENT_IDS):  # bounded memory
        listener.dispatch(catalog.UNIVERSE_UPDATED, b'{"event_id": %d, "event": "x"}' % i)
    assert len(listener._recent_ids) == CacheEventListener.RECENT_IDS
