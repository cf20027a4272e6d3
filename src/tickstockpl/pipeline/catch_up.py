"""The morning catch-up of a session whose automatic run ended `incomplete` (pipeline/completeness.py).

Called by the scheduler (pipeline/scheduler.py) on every refresh; it starts at most one catch-up run
per incomplete session, after the morning time (TICKSTOCKPL_MORNING_TIME) of a later New York day.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from tickstockpl import clock
from tickstockpl.pipeline.completeness import Policy, sessions_to_catch_up

log = logging.getLogger(__name__)


def catch_up_due(settings, db_url: str, now_utc: dt.datetime | None = None, **trigger_options: Any) -> str | None:
    """Start the catch-up run of the newest incomplete session (an automatic run: the import takes every
    missing session up to it); the run id, or None when nothing is due or a run is live."""
    from tickstockpl.db.connect import connection
    from tickstockpl.errors import JobConflict
    from tickstockpl.pipeline import coordinator

    now_utc = now_utc or clock.now()
    with connection(db_url, autocommit=True) as conn:
        due = sessions_to_catch_up(conn, settings.environment, now_utc, Policy.from_settings(settings))
    if not due:
        return None
    try:
        handle = coordinator.trigger_run(settings, db_url, trigger_type="automatic", session_date=due[-1],
                                         phases=["all"], **trigger_options)
    except JobConflict as err:
        log.info("catch-up of %s waits: %s", due[-1], err)
        return None
    log.info("pipeline catch-up: run %s for incomplete session %s", handle.run_id, due[-1])
    return handle.run_id
