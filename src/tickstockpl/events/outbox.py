"""The transactional outbox: events are rows written with the change they describe.

`enqueue` takes the caller's connection and never commits: the rows become visible (and the
relay is woken through NOTIFY) exactly when the caller's transaction commits, and vanish with
it on rollback. `events/relay.py` publishes them to Redis afterwards.

`execute_with_events` runs one data-modifying statement (an INSERT or UPDATE of the caller's)
and the outbox insert as ONE statement, so a job's status change and its event cost a single
round trip (and count as one statement of the sync's fixed budget).

Identity: each row's id is its event's `event_id`, written into the stored message as the
envelope's first field (`{"event_id":3887,"event":...}`): the text stored is the text published.
The relay derives the Redis Stream entry id from it and drops re-sends by it (events/relay.py);
consumers drop duplicates by it (docs/EVENTS.md).

Order: the insert first takes the transaction-level advisory lock `locks.OUTBOX_WRITE`, held until
the writer commits or rolls back, so writers take ids one transaction after another and their rows
become visible in id order. The relay can then publish in id order without ever finding a smaller
id committed after a larger one was published. Every writer inserts its events just before its
commit (a sync in its final statements, a pipeline step at its end), so the lock is held briefly.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from tickstockpl.db import locks
from tickstockpl.events.catalog import Event

NOTIFY_CHANNEL = "tickstockpl_outbox"

_INSERT = (
    "added AS (INSERT INTO pl_event_outbox (id, channel, event, message)"
    " SELECT e.id, e.c, e.n, '{\"event_id\":' || e.id || ',' || substr(e.m, 2)"
    " FROM (SELECT nextval('pl_event_outbox_id_seq'::regclass) AS id, u.c, u.n, u.m, u.i"
    "  FROM (SELECT pg_advisory_xact_lock(%s)) AS serialized(l)"
    "  CROSS JOIN unnest(%b::text[], %b::text[], %b::text[]) WITH ORDINALITY AS u(c, n, m, i)"
    "  ORDER BY u.i) AS e"
    " ORDER BY e.i RETURNING id)"
)


def _arrays(events: list[Event]) -> list:
    for e in events:
        if not e.message.startswith('{"'):  # the event_id is inserted after the opening brace
            raise ValueError(f"an event message must be a non-empty JSON object: {e.message[:40]!r}")
    return [locks.OUTBOX_WRITE, [e.channel for e in events], [e.event for e in events],
            [e.message for e in events]]


def enqueue(conn, events: Iterable[Event]) -> int:
    """Insert the events in order (ids ascending = publish order) and wake the relay, in one statement."""
    events = list(events)
    if not events:
        return 0
    conn.execute(
        f"WITH {_INSERT} SELECT pg_notify(%s, '') FROM (SELECT count(*) FROM added) AS done",
        [*_arrays(events), NOTIFY_CHANNEL],
    )
    return len(events)


def execute_with_events(conn, statement: str, params: Sequence, events: Iterable[Event]) -> int:
    """Run `statement` (INSERT/UPDATE/DELETE with %s placeholders, no RETURNING) and enqueue
    `events` in the same statement; returns the number of rows `statement` changed."""
    events = list(events)
    if not events:
        return conn.execute(statement, params).rowcount
    row = conn.execute(
        f"WITH change AS ({statement} RETURNING 1), {_INSERT}"
        " SELECT (SELECT count(*) FROM change), pg_notify(%s, '') FROM (SELECT count(*) FROM added) AS done",
        [*params, *_arrays(events), NOTIFY_CHANNEL],
    ).fetchone()
    return int(row[0])
