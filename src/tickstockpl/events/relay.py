"""The outbox relay: publishes committed `pl_event_outbox` rows to Redis, in id order, once each.

One batch (`Relay.deliver_batch`):
    1. BEGIN; pg_try_advisory_xact_lock(locks.OUTBOX_RELAY)   only one relay, across processes,
       publishes at a time; a relay that does not get the lock leaves the batch to the holder
    2. the oldest undelivered rows, ORDER BY id (rows commit in id order: events/outbox.py)
    3. one Lua script (`PUBLISH_SCRIPT`, atomic in Redis) that, for each row in order, XADDs it to
       the capped stream `catalog.stream_for(channel)` with the entry id `<outbox id>-0` and
       PUBLISHes its exact `message` on its `channel` — unless it was sent before: Redis keeps the
       highest outbox id delivered from this database (`tickstock:outbox:delivered:<system
       identifier>:<database oid>`), and a row at or below it whose stream holds an entry with the
       same `outbox_id` and the same message is dropped (a row at or below it that the stream does
       not hold is sent: the outbox ids were reset or the database restored);
    4. once Redis answered: UPDATE ... SET delivered_at = now(); COMMIT (same transaction, still
       holding the lock). If Redis refused or did not answer, the rows stay undelivered (their
       `attempts` and `last_error` are recorded) and the relay backs off and tries again.

So a batch Redis executed although the relay timed out waiting (Redis stalled past the socket
timeout: SIGSTOP, a long fork, a network stall), or whose COMMIT never happened (the relay was
killed, the database failed), is sent again and Redis drops every event of it that it already
has: no second stream entry, no second PUBLISH, nothing reordered. Pub/sub stays at least once only
where Redis itself forgot the key (restarted without persistence, FLUSHALL, evicted) between
publishing a batch and the relay recording it: every event carries `event_id` (its outbox id) for
consumers to drop duplicates by (docs/EVENTS.md).

A stream entry keeps the id `<outbox id>-0` unless the stream already holds a larger id (entries
of an older PL, which used automatic ids, or of another database on the same Redis): such a
stream gets an automatic id, and the entry still carries `outbox_id`.

The loop (`Relay.run`, a daemon thread in `tickstockpl serve`) wakes on LISTEN tickstockpl_outbox
(the writer's NOTIFY fires at its commit) and polls every `poll_s` as a fallback; it prunes
delivered rows older than `retention_hours`. `relay_once` delivers what is pending and returns,
for the CLI and the demo.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg
import redis

from tickstockpl.db import locks
from tickstockpl.db.connect import connect
from tickstockpl.errors import ServiceUnavailable, TickStockError, first_line
from tickstockpl.events.catalog import stream_for
from tickstockpl.events.outbox import NOTIFY_CHANNEL

log = logging.getLogger(__name__)
from tickstockpl import outages  # noqa: E402 - the relay's outage lines

BATCH_SIZE = 200
REDIS_TIMEOUT_S = 5.0  # socket timeout of the relay's Redis client
POLL_S = 1.0
PRUNE_EVERY_S = 60.0
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.1, 5.0
LOCK_BUSY = -1  # deliver_batch: another relay holds the lock
ERROR_TEXT_MAX = 500
DELIVERED_KEY = "tickstock:outbox:delivered:"  # + the source database (see `source_of`)

# KEYS[1]: the highest outbox id delivered from this database; KEYS[1 + i]: the stream of event i.
# ARGV[1]: the streams' MAXLEN; ARGV[2]: how many of a stream's newest entries to look through for a
# re-sent event; then per event i: ARGV[3i] id, ARGV[3i + 1] channel, ARGV[3i + 2] message.
# An event whose id is above KEYS[1] is new. One at or below it was probably sent before (its answer
# was lost): it is dropped when its stream holds an entry with the same outbox_id and the same
# message, and sent otherwise (the ids were reused: the outbox was reset or restored). Returns the
# ids it published.
PUBLISH_SCRIPT = """
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local recent = {}
local function sent_before(stream, id, message)
  local seen = recent[stream]
  if seen == nil then
    seen = {}
    for _, entry in ipairs(redis.call('XREVRANGE', stream, '+', '-', 'COUNT', ARGV[2])) do
      local fields, oid, text = entry[2], nil, nil
      for j = 1, #fields, 2 do
        if fields[j] == 'outbox_id' then oid = fields[j + 1] elseif fields[j] == 'message' then text = fields[j + 1] end
      end
      if oid ~= nil and text ~= nil then seen[oid .. '|' .. text] = true end
    end
    recent[stream] = seen
  end
  return seen[id .. '|' .. message] == true
end
local published = {}
for i = 2, #KEYS do
  local at = 3 * (i - 1)
  local id, channel, message = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  local n = tonumber(id)
  if n > last or not sent_before(KEYS[i], id, message) then
    local added = redis.pcall('XADD', KEYS[i], 'MAXLEN', '~', ARGV[1], id .. '-0',
                              'channel', channel, 'message', message, 'outbox_id', id)
    if type(added) == 'table' and added.err then  -- the stream holds a larger id: an automatic one
      redis.call('XADD', KEYS[i], 'MAXLEN', '~', ARGV[1], '*',
                 'channel', channel, 'message', message, 'outbox_id', id)
    end
    redis.call('PUBLISH', channel, message)
    published[#published + 1] = n
  end
  if n > last then last = n end
end
redis.call('SET', KEYS[1], last)
return published
"""

# What is published: the stored message, which carries its event_id (events/outbox.py); a row written
# by an older PL, without it, gets it here.
PUBLISHED_TEXT = ("CASE WHEN message LIKE '{\"event_id\":%%' THEN message"
                  " ELSE '{\"event_id\":' || id || ',' || substr(message, 2) END")

# The identity of this outbox: the cluster's system identifier and the database's oid (every
# database has its own id sequence, and a database made from a template gets a new oid).
SOURCE_SQL = ("SELECT (SELECT system_identifier FROM pg_control_system())::text || ':' || d.oid::text"
              " FROM pg_database d WHERE d.datname = current_database()")


def source_of(conn: psycopg.Connection) -> str:
    return conn.execute(SOURCE_SQL).fetchone()[0]


def redis_client(url: str, *, timeout_s: float = REDIS_TIMEOUT_S) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=min(timeout_s, 2.0))


class Relay:
    def __init__(self, db_url: str, redis_url: str, *, stream_maxlen: int = 10_000, retention_hours: int = 72,
                 batch_size: int = BATCH_SIZE, poll_s: float = POLL_S, redis_timeout_s: float = REDIS_TIMEOUT_S):
        self.db_url = db_url
        self.redis = redis_client(redis_url, timeout_s=redis_timeout_s)
        self.stream_maxlen = stream_maxlen
        self.retention_hours = retention_hours
        # A re-sent event is recognised in its stream's newest entries: a batch never holds more
        # events than a stream keeps.
        self.batch_size = max(1, min(batch_size, stream_maxlen))
        self.poll_s = poll_s
        self.delivered = 0  # events published by this relay since it started
        self.skipped = 0  # events of re-sent batches that Redis already had
        self.redis_ok: bool | None = None  # outcome of the last attempt to publish
        self._script = self.redis.register_script(PUBLISH_SCRIPT)
        self._delivered_key: str | None = None
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
                f"SELECT id, channel, {PUBLISHED_TEXT} FROM pl_event_outbox WHERE delivered_at IS NULL"
                " ORDER BY id LIMIT %s",
                (self.batch_size,),
            ).fetchall()
            if not rows:
                return 0
            ids = [row[0] for row in rows]
            if self._delivered_key is None:
                self._delivered_key = DELIVERED_KEY + source_of(conn)
            args: list = [self.stream_maxlen, 2 * self.batch_size]
            for row_id, channel, message in rows:
                args += [row_id, channel, message]
            try:
                published = self._script(keys=[self._delivered_key, *(stream_for(c) for _i, c, _m in rows)],
                                         args=args)
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
        self.delivered += len(published)
        self.skipped += len(rows) - len(published)
        if len(published) < len(rows):
            log.info("relay: %d event(s) of a re-sent batch were already in Redis (not sent again)",
                     len(rows) - len(published))
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
                outages.up("Redis", outages.redis_where(self.redis))
                outages.up("PostgreSQL", self.db_url)
                backoff = 0.0
                if time.monotonic() >= next_prune:
                    self.prune(work)
                    next_prune = time.monotonic() + PRUNE_EVERY_S
                for _ in listen.notifies(timeout=self.poll_s, stop_after=1):
                    pass
            except redis.RedisError as err:
                backoff = min(max(backoff * 2, BACKOFF_MIN_S), BACKOFF_MAX_S)
                outages.down("Redis", outages.redis_where(self.redis), err)  # one line down, one back
                self._stop.wait(backoff)
            except (psycopg.Error, ServiceUnavailable) as err:
                backoff = min(max(backoff * 2, BACKOFF_MIN_S), BACKOFF_MAX_S)
                outages.down("PostgreSQL", self.db_url, err)  # one line down, one back
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
        raise ServiceUnavailable(f"cannot publish events to Redis: {first_line(err)}") from None
    finally:
        relay.redis.close()


def translate(err: BaseException) -> TickStockError | None:
    """The one translation of redis-py's errors (db.drivers.as_tickstock): a connection refused, lost or timed
    out -> ServiceUnavailable; None for anything else."""
    if isinstance(err, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        return ServiceUnavailable(f"Redis is unavailable: {first_line(err)}")
    return None
