"""The completeness gate of the data import: a session counts as imported only when the provider's
answer looks like the whole day; below that the run waits and asks again, until a deadline.

Real providers publish late (Polygon's grouped-daily aggregates fill in over the evening; flat files can
arrive the next morning). The gate asks the provider for the run's session (the newest missing one) and
compares the answer with what the database already knows:

    bars      the usable bars answered >= `min_ratio` x the median bar count of the last
              `history_sessions` sessions in ohlcv_daily before it
    active    of the active symbols that had a bar on the newest session before it, at least
              `min_ratio` have a usable bar in the answer

Both must hold (with no history at all, any non-empty answer passes). Below them, the run publishes a
waiting progress event (`job_progress_update`, phase data_import, `waiting: true`), sleeps
`retry_minutes` and asks again, until `deadline` (New York wall clock) on the session's date. Past the
deadline the run ends `incomplete`: nothing of that session is written, the previous universes stay
as they are (cache sync does not run), and the morning catch-up (`catch_up_due`, called by the
scheduler after `morning_time`, pipeline/catch_up.py) runs the session again. An answer with no bars at all on a day the
calendar calls open says "no data from the provider" (and how to record a closure), never a silent skip.

Time is injected: `now` (default the market clock, tickstockpl.clock) and `sleep` (default: real
sleep in short steps, checking for a cancel); tests advance a frozen clock instead of sleeping.
Settings: TICKSTOCKPL_IMPORT_MIN_RATIO (0.9), TICKSTOCKPL_IMPORT_RETRY_MINUTES (10),
TICKSTOCKPL_IMPORT_DEADLINE (20:00), TICKSTOCKPL_MORNING_TIME (08:00), docs/CONFIGURATION.md.
"""

from __future__ import annotations

import datetime as dt
import logging
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from tickstockpl import clock
from tickstockpl.errors import TickStockError
from tickstockpl.pipeline.imports.session import NotPublishedYet, Provider, SessionData

log = logging.getLogger(__name__)

NY = clock.NEW_YORK
HISTORY_SESSIONS = 5
SLEEP_STEP_S = 5.0


@dataclass(frozen=True)
class Policy:
    min_ratio: float = 0.9
    retry_minutes: float = 10.0
    deadline: dt.time = dt.time(20, 0)
    morning_time: dt.time = dt.time(8, 0)
    history_sessions: int = HISTORY_SESSIONS

    @classmethod
    def from_settings(cls, settings) -> "Policy":
        return cls(min_ratio=getattr(settings, "import_min_ratio", 0.9),
                   retry_minutes=getattr(settings, "import_retry_minutes", 10),
                   deadline=clock.parse_hhmm(getattr(settings, "import_deadline", "20:00"), "TICKSTOCKPL_IMPORT_DEADLINE"),
                   morning_time=clock.parse_hhmm(getattr(settings, "morning_time", "08:00"), "TICKSTOCKPL_MORNING_TIME"))

    def deadline_for(self, session: dt.date) -> dt.datetime:
        return dt.datetime.combine(session, self.deadline, tzinfo=NY).astimezone(dt.timezone.utc)


@dataclass
class Check:
    """One look at the provider's answer for a session."""

    session: dt.date
    bars: int
    bars_expected: float | None
    active_found: int
    active_expected: int
    min_ratio: float
    note: str | None = None  # what the provider said when it had nothing (NotPublishedYet)

    @property
    def passed(self) -> bool:
        if self.bars == 0:
            return False
        if self.bars_expected and self.bars < self.min_ratio * self.bars_expected:
            return False
        return not (self.active_expected and self.active_found < self.min_ratio * self.active_expected)

    def describe(self) -> str:
        if self.bars == 0:
            return (f"no data from the provider for session {self.session}" + (f" ({self.note})" if self.note else "")
                    + " (the calendar calls it open: if the"
                    f" exchange closed that day, record it with `tickstockpl calendar close {self.session}`)")
        parts = [f"{self.bars} usable bars"
                 + (f" against a median of {self.bars_expected:g} on the previous sessions" if self.bars_expected else "")]
        if self.active_expected:
            parts.append(f"{self.active_found} of the {self.active_expected} active symbols traded on the session"
                         " before")
        return f"session {self.session}: " + ", ".join(parts) + f" (at least {self.min_ratio:.0%} needed)"

    def to_dict(self) -> dict[str, Any]:
        return {"session_date": self.session.isoformat(), "bars": self.bars, "bars_expected": self.bars_expected,
                "active_found": self.active_found, "active_expected": self.active_expected,
                "min_ratio": self.min_ratio, "passed": self.passed}


@dataclass
class Outcome:
    session: dt.date
    passed: bool
    data: SessionData | None
    attempts: int
    checks: list[Check] = field(default_factory=list)
    cancelled: bool = False
    reason: str | None = None
    error: str | None = None  # a provider failure other than NotPublishedYet (not the gate's business)
    failure: BaseException | None = None  # that failure, raised again by the import (no second request)

    def counts(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "retries": max(0, self.attempts - 1),
                "last_check": self.checks[-1].to_dict() if self.checks else None}


def expectations(conn, session: dt.date, history: int = HISTORY_SESSIONS) -> tuple[float | None, set[str]]:
    """(median bars of the last `history` sessions before `session`, active symbols with a bar on the
    newest of them); (None, empty) without history. Reads the date index only."""
    rows = conn.execute("SELECT date, count(*) FROM ohlcv_daily WHERE date < %s AND date >= %s::date - 21"
                        " GROUP BY date ORDER BY date DESC LIMIT %s", (session, session, history)).fetchall()
    if not rows:
        return None, set()
    median = float(statistics.median(count for _d, count in rows))
    active = {r[0] for r in conn.execute(
        "SELECT o.symbol FROM ohlcv_daily o JOIN symbols s ON s.symbol = o.symbol"
        " WHERE o.date = %s AND coalesce(s.active, false)", (rows[0][0],))}
    return median, active


def check(data: SessionData, expected: tuple[float | None, set[str]], min_ratio: float) -> Check:
    from tickstockpl.pipeline.imports.writer import validate

    accepted, _result = validate(data, None, "gate")
    tickers = {row[0] for row in accepted}
    median, active = expected
    return Check(data.session, len(tickers), median, len(active & tickers), len(active), min_ratio)


def _sleeper(should_cancel: Callable[[], bool] | None) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if should_cancel is not None and should_cancel():
                return
            time.sleep(min(SLEEP_STEP_S, left))
    return sleep


def wait_for_session(conn, provider: Provider, session: dt.date, policy: Policy, *,
                     now: Callable[[], dt.datetime] = clock.now, sleep: Callable[[float], None] | None = None,
                     should_cancel: Callable[[], bool] | None = None,
                     on_wait: Callable[[Check, int, dt.datetime], None] | None = None) -> Outcome:
    """Ask the provider for `session` until its answer passes the check or the deadline has passed.
    A provider failure (ProviderError) counts as an answer that did not pass (it is retried too)."""
    sleep = sleep or _sleeper(should_cancel)
    expected = expectations(conn, session, policy.history_sessions)
    deadline = policy.deadline_for(session)
    outcome = Outcome(session, False, None, 0)
    while True:
        outcome.attempts += 1
        try:
            data = provider.fetch(session)
        except NotPublishedYet as err:
            log.info("session %s not published yet: %s", session, err)
            data, note = SessionData(session, []), str(err)
        except TickStockError as err:  # a real provider failure: the import reports it as before
            outcome.error, outcome.failure = str(err), err
            return outcome
        else:
            note = None
        found = check(data, expected, policy.min_ratio)
        found.note = note
        outcome.checks.append(found)
        if found.passed:
            outcome.passed, outcome.data = True, data
            return outcome
        problem = found.describe()
        moment = now()
        wait = dt.timedelta(minutes=policy.retry_minutes)
        if moment + wait > deadline:
            outcome.reason = (f"{problem}; still short at the deadline ({policy.deadline:%H:%M} New York) after"
                              f" {outcome.attempts} attempt(s): the session is incomplete, nothing of it was"
                              " written and the previous universes are kept; the morning catch-up retries it")
            log.warning("import of %s incomplete: %s", session, outcome.reason)
            return outcome
        next_at = moment + wait
        log.info("import of %s waits for the provider (%s); next attempt at %s", session, problem,
                 next_at.isoformat())
        if on_wait is not None:
            on_wait(outcome.checks[-1], outcome.attempts, next_at)
        sleep(wait.total_seconds())
        if should_cancel is not None and should_cancel():
            outcome.cancelled = True
            return outcome


class Prefetched:
    """A provider answering the sessions the gate already fetched from memory, the rest from `inner`."""

    def __init__(self, inner: Provider, answers: dict[dt.date, SessionData | BaseException]):
        self.inner = inner
        self.name = inner.name
        self.answers = dict(answers)

    def fetch(self, session: dt.date) -> SessionData:
        if session in self.answers:
            answer = self.answers.pop(session)
            if isinstance(answer, BaseException):  # the gate's request failed: the same failure, not a new request
                raise answer
            return answer
        return self.inner.fetch(session)

    def close(self) -> None:  # the run closes the inner provider itself
        pass


# --------------------------------------------------------------------------- the morning catch-up

def sessions_to_catch_up(conn, environment: str, now_utc: dt.datetime, policy: Policy) -> list[dt.date]:
    """Sessions whose automatic run ended incomplete, with no successful run since and no second
    (catch-up) automatic run yet, once `morning_time` has passed on a later New York day."""
    local = now_utc.astimezone(NY)
    if local.time() < policy.morning_time:
        return []
    rows = conn.execute(
        "SELECT session_date FROM pl_pipeline_runs r WHERE environment = %s AND trigger_type = 'automatic'"
        " AND status = 'incomplete' AND session_date < %s AND session_date > coalesce((SELECT max(session_date)"
        "   FROM pl_pipeline_runs WHERE environment = %s AND status = 'success'), '-infinity'::date)"
        " AND NOT EXISTS (SELECT 1 FROM pl_pipeline_runs o WHERE o.environment = r.environment"
        "   AND o.session_date = r.session_date AND (o.status IN ('success', 'running')"
        "   OR (o.trigger_type = 'automatic' AND o.start_time > r.start_time)))"
        " GROUP BY session_date HAVING count(*) = 1 ORDER BY session_date",
        (environment, local.date(), environment)).fetchall()
    return [r[0] for r in rows]
