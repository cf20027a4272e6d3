"""The outbox relay: publishes committed `pl_event_outbox` rows to Redis, in id order, once each.

One batch (`Relay.deliver_batch`):
    1. BEGIN; pg_try_advisory_xact_lock(locks.OUTBOX_RELAY)   only one relay, across processes,
       publishes at a time; a relay that does not get the lock leaves the batch to the holder
    2. the oldest undelivered rows, ORDER BY id
    3. one MULTI/EXEC: for each row PUBLISH its exact `message` on its `channel` and XADD it to
       the capped stream `catalog.stream_for(channel)` (MAXLEN ~ stream_maxlen)
    4. only once Redis accepted: UPDATE ... SET delivered_at = now(); COMMIT (same transaction,
       still holding the lock). If Redis refused, the rows stay undelivered (their `attempts` and
       `last_error` are recorded) and the relay backs off and tries again: nothing is dropped or
       reordered. The one window left is the database failing between EXEC and COMMIT, which
       publishes that batch a second time (at least once, never lost).

The loop (`Relay.run`, a daemon thread in `tickstockpl serve`) wakes on LISTEN tickstockpl_outbox
(the writer's NOTIFY fires at its commit) and polls every `poll_s` as a fallback; it prunes
delivered rows older than `retention_hours`. `relay_once` delivers what is pending and returns,
for the CLI and the demo.

Ordering assumes outbox rows commit in id order, which holds for the cache sync (single-flight,
one writer at a time).
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg
import redis

from tickstockpl.db import locks
from tickstockpl.db.connect import connect
from tickstockpl.errors import ServiceUnavailable
from tickstockpl.events.catalog import stream_for
from tickstockpl.events.outbox import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

BATCH_SIZE = 200
POLL_S = 1.0
PRUNE_EVERY_S = 60.0
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.1, 5.0
LOCK_BUSY = -1  # deliver_batch: another relay holds the lock
ERROR_TEXT_MAX = 500


def redis_client(url: str, *, timeout_s: float = 5.0) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=min(timeout_s, 2.0))


class Relay:
    def __init__(self, db_url: str, redis_url: str, *, stream_maxlen: int = 10_000, retention_hours: int = 72,
                 batch_size: int = BATCH_SIZE, poll_s: float = POLL_S):
        self.db_url = db_url
        self.redis = redis_client(redis_url)
        self.stream_maxlen = stream_maxlen
        self.retention_hours = retention_hours
        self.batch_size = batch_size
        self.poll_s = poll_s
        self.delivered = 0  # events published by this relay since it started
        self.redis_ok: bool | None = None  # outcome of the last attempt to publish
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None

    # --- one batch -------------------------------------------------------------------------
    def deliver_batch(self, conn: psycopg.Connection) -> int:
        """Publish up to batch_size pending rows; returns how many, or LOCK_BUSY. Raises
        redis.RedisError (rows kept) when Redis refused them."""
        failure: redis.RedisError | None = None
        with conn.transaction():
            if not conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (locks.OUTBOX_RELAY,)).fetchone()[0]:
                return LOCK_BUSY
            rows = conn.execute(
                "SELECT id, channel, message FROM pl_event_outbox WHERE delivered_at IS NULL ORDER BY id LIMIT %s",
                (self.batch_size,),
            ).fetchall()
            if not rows:
                return 0
            ids = [row[0] for row in rows]
            try:
                pipe = self.redis.pipeline(transaction=True)
                for row_id, channel, message in rows:
                    pipe.publish(channel, message)
                    pipe.xadd(stream_for(channel), {"channel": channel, "message": message, "outbox_id": row_id},
                              maxlen=self.stream_maxlen, approximate=True)
                pipe.execute()
            except redis.RedisError as err:
                failure = err
                conn.execute(
                    "UPDATE pl_event_outbox SET attempts = attempts + 1, last_error = %s WHERE id = ANY(%s)",
                    (f"{err.__class__.__name__}: {err}"[:ERROR_TEXT_MAX], ids),
                )
            else:
                conn.execute("UPDATE pl_event_outbox SET delivered_at = now() WHERE id = ANY(%s)", (ids,))
        if failure is not None:
            self.redis_ok = False
            raise failure
        self.redis_ok = True
        self.delivered += len(rows)
        return len(rows)

    def drain(self, conn: psycopg.Connection, *, wait_busy_s: float = 0.0) -> int:
        """Deliver batches until nothing is pending; returns the number published by this relay."""
        total, deadline = 0, time.monotonic() + wait_busy_s
        while not self._stop.is_set():
            sent = self.deliver_batch(conn)
            if sent == LOCK_BUSY:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.05)
                continue
            total += sent
            if sent < self.batch_size:
                break
        return total

    def prune(self, conn: psycopg.Connection) -> int:
        cur = conn.execute(
            "DELETE FROM pl_event_outbox WHERE delivered_at IS NOT NULL"
            " AND delivered_at < now() - make_interval(hours => %s)",
            (self.retention_hours,),
        )
        return cur.rowcount

    # --- the loop --------------------------------------------------------------------------
    def start(self) -> "Relay":
        self._thread = threading.Thread(target=self.run, name="outbox-relay", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.redis.close()

    def run(self) -> None:
        listen: psycopg.Connection | None = None
        work: psycopg.Connection | None = None
        backoff = 0.0
        next_prune = 0.0
        while not self._stop.is_set():
            try:
                if listen is None or listen.closed:
                    listen = connect(self.db_url, autocommit=True, application_name="tickstockpl-relay")
                    listen.execute(f"LISTEN {NOTIFY_CHANNEL}")
                if work is None or work.closed:
                    work = connect(self.db_url, autocommit=True, application_name="tickstockpl-relay")
                self.drain(work)
                backoff = 0.0
                if time.monotonic() >= next_prune:
                    self.prune(work)
                    next_prune = time.monotonic() + PRUNE_EVERY_S
                for _ in listen.notifies(timeout=self.poll_s, stop_after=1):
                    pass
            except redis.RedisError as err:
                backoff = min(max(backoff * 2, BACKOFF_MIN_S), BACKOFF_MAX_S)
                log.warning("relay: Redis refused events (%s); retrying in %.1fs", err.__class__.__name__, backoff)
                self._stop.wait(backoff)
            except (psycopg.Error, ServiceUnavailable) as err:
                backoff = min(max(backoff * 2, BACKOFF_MIN_S), BACKOFF_MAX_S)
                log.warning("relay: database unavailable (%s); retrying in %.1fs", _first_line(err), backoff)
                for conn in (listen, work):
                    if conn is not None:
                        conn.close()
                listen = work = None
                self._stop.wait(backoff)
        for conn in (listen, work):
            if conn is not None:
                conn.close()


def relay_once(db_url: str, redis_url: str, *, stream_maxlen: int = 10_000, wait_busy_s: float = 5.0) -> int:
    """Deliver every event pending now; returns the count. Raises ServiceUnavailable if Redis is down
    (the events stay in the outbox for the next attempt)."""
    relay = Relay(db_url, redis_url, stream_maxlen=stream_maxlen)
    try:
        with connect(db_url, autocommit=True, application_name="tickstockpl-relay") as conn:
            return relay.drain(conn, wait_busy_s=wait_busy_s)
    except redis.RedisError as err:
        raise ServiceUnavailable(f"cannot publish events to Redis: {_first_line(err)}") from None
    finally:
        relay.redis.close()


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else err.__class__.__name__
