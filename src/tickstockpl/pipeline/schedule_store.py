"""The stored schedule: the one row of `pl_pipeline_schedule` (the migration inserts it).

`update_schedule` validates the changed keys (schedule.validate_changes: ConfigError on bad values) and
writes the row and the `schedule_updated` event together; `public_schedule` is the body of
GET /api/processing/schedule, its next run from the stored NYSE sessions (market.calendar.StoredCalendar).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from tickstockpl.events import catalog
from tickstockpl.events.outbox import enqueue
from tickstockpl.market.calendar import StoredCalendar
from tickstockpl.pipeline.schedule import Schedule, validate_changes

_SELECT = "SELECT enabled, trigger_time, timezone, market_check, universes FROM pl_pipeline_schedule WHERE id = 1"


def get_schedule(conn) -> Schedule:
    row = conn.execute(_SELECT).fetchone()
    if row is None:  # the migration inserts the row; recreate it if someone deleted it
        return Schedule()
    enabled, trigger_time, timezone, market_check, universes = row
    return Schedule(enabled, trigger_time, timezone, market_check, tuple(universes or ()))


def public_schedule(conn, schedule: Schedule | None = None) -> dict[str, Any]:
    """The body of GET /api/processing/schedule, its next run from the stored NYSE sessions."""
    return (schedule or get_schedule(conn)).to_public(is_session=StoredCalendar(conn).is_session)


def update_schedule(conn, changes: Any, now_utc: dt.datetime | None = None) -> Schedule:
    """Apply the changed keys; the row and the `schedule_updated` event commit together."""
    clean = validate_changes(changes)
    if not clean:
        return get_schedule(conn)
    with conn.transaction():
        conn.execute("INSERT INTO pl_pipeline_schedule (id) VALUES (1) ON CONFLICT (id) DO NOTHING")
        current = get_schedule(conn)
        merged = Schedule(**{**current.__dict__, **clean})
        conn.execute(
            "UPDATE pl_pipeline_schedule SET enabled = %s, trigger_time = %s, timezone = %s, market_check = %s,"
            " universes = %s::jsonb, updated_at = now() WHERE id = 1",
            (merged.enabled, merged.trigger_time, merged.timezone, merged.market_check,
             json.dumps(list(merged.universes))),
        )
        public = merged.to_public(now_utc, StoredCalendar(conn).is_session)
        enqueue(conn, [catalog.schedule_updated(public, sorted(clean))])
    return merged
