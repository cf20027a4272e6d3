"""The transactional outbox: events are rows written with the change they describe.

`enqueue` takes the caller's connection and never commits: the rows become visible (and the
relay is woken through NOTIFY) exactly when the caller's transaction commits, and vanish with
it on rollback. `events/relay.py` publishes them to Redis afterwards.

`execute_with_events` runs one data-modifying statement (an INSERT or UPDATE of the caller's)
and the outbox insert as ONE statement, so a job's status change and its event cost a single
round trip (and count as one statement of the sync's fixed budget).
"""

from __future__ import annotations

from typing import Iterable, Sequence

from tickstockpl.events.catalog import Event

NOTIFY_CHANNEL = "tickstockpl_outbox"

_INSERT = (
    "added AS (INSERT INTO pl_event_outbox (channel, event, message)"
    " SELECT c, n, m FROM unnest(%b::text[], %b::text[], %b::text[]) WITH ORDINALITY AS e(c, n, m, i)"
    " ORDER BY i RETURNING id)"
)


def _arrays(events: list[Event]) -> list:
    return [[e.channel for e in events], [e.event for e in events], [e.message for e in events]]


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
