"""The transactional outbox: events are rows written with the change they describe.

`enqueue` takes the caller's connection and never commits: the rows become visible (and the
relay is woken through NOTIFY) exactly when the caller's transaction commits, and vanish with
it on rollback. `events/relay.py` publishes them to Redis afterwards.
"""

from __future__ import annotations

from typing import Iterable

from tickstockpl.events.catalog import Event

NOTIFY_CHANNEL = "tickstockpl_outbox"


def enqueue(conn, events: Iterable[Event]) -> int:
    """Insert the events in order (ids ascending = publish order) and wake the relay, in one statement."""
    events = list(events)
    if not events:
        return 0
    with conn.cursor() as cur:
        cur.execute(
            "WITH added AS (INSERT INTO pl_event_outbox (channel, event, message)"
            " SELECT c, n, m FROM unnest(%b::text[], %b::text[], %b::text[]) WITH ORDINALITY AS e(c, n, m, i)"
            " ORDER BY i RETURNING id)"
            " SELECT pg_notify(%s, '') FROM (SELECT count(*) FROM added) AS done",
            ([e.channel for e in events], [e.event for e in events], [e.message for e in events], NOTIFY_CHANNEL),
        )
    return len(events)
