"""The one clock of market time: what "now" is whenever the product decides something about the market.

    now()              aware datetime in UTC: the real time, or TICKSTOCKPL_NOW when it is set
    today_new_york()   the New York date of now()

By default it is the real time. When the environment variable `TICKSTOCKPL_NOW` is set to an
ISO-8601 instant with a time zone (`2026-11-27T21:30:00Z`, `2026-11-27T16:30:00-05:00`), every call
returns that instant: the clock is frozen there for the whole process. An empty value counts as
unset; anything else that is not such an instant raises ConfigError naming the variable. It is read
from the process environment on every call (not from `.env`), so tests can set it per test and hand
it to the servers they start.

The clock decides *market time*:
  - which NYSE session has closed: the default as-of date and the expected session of a sync
    (market/snapshot.py), the session a pipeline run processes and whether a date is in the future
    (pipeline/coordinator.py), the sessions an import finds missing (pipeline/imports/importer.py);
  - the schedule's next run and the scheduler's catch-up (pipeline/schedule.py, pipeline/scheduler.py);
  - the last session of the sample market and of the demo (market/sample.py, demo.py).
Bookkeeping keeps using real time: job and run start/end times (written by the database's now()),
durations, ETAs, event timestamps, retention, Retry-After waits, and the scheduler's timer, which
waits in real time for the next run this clock computes and is not placed when that instant has
already passed in real time. With the clock frozen in the past the scheduler therefore fires only
through its catch-up: the one automatic run of a session whose trigger time lies within the
catch-up window before the frozen instant.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
from typing import Any
from zoneinfo import ZoneInfo

from tickstockpl.errors import ConfigError

ENV = "TICKSTOCKPL_NOW"
NEW_YORK_TZ = "America/New_York"  # the market's zone: the one place it is named
NEW_YORK = ZoneInfo(NEW_YORK_TZ)
UTC = dt.timezone.utc
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def hhmm(text: Any) -> dt.time | None:
    """A wall-clock time written HH:MM (24-hour), or None when `text` is not one (the caller words the error)."""
    if not isinstance(text, str) or not _HHMM.match(text):
        return None
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


def parse_hhmm(text: Any, name: str) -> dt.time:
    """A New York wall-clock time of the setting `name` (settings.py, pipeline/completeness.py)."""
    found = hhmm(text)
    if found is None:
        raise ConfigError(f"{name} must be HH:MM (24-hour, New York), got {text!r}")
    return found


def now() -> dt.datetime:
    """The current instant for market-time decisions, timezone-aware, in UTC."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return dt.datetime.now(UTC)
    return parse(text)


def today_new_york() -> dt.date:
    """The date in New York at now(): the market's "today"."""
    return now().astimezone(NEW_YORK).date()


@functools.lru_cache(maxsize=8)
def parse(text: str) -> dt.datetime:
    """An ISO-8601 instant with a time zone, in UTC; ConfigError naming TICKSTOCKPL_NOW otherwise."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or moment.utcoffset() is None:
        raise ConfigError(f"{ENV} must be an ISO-8601 instant with a time zone, such as 2026-11-27T21:30:00Z;"
                          f" got {text[:80]!r}")
    return moment.astimezone(UTC)
