"""The revisions pass: re-fetch recent sessions, upsert the bars the provider corrected, record each change.

Providers correct daily aggregates after the close. `revise` asks the provider again for recent closed
sessions (given ones, or the last `revision_sessions`) and, per session in ONE transaction:

    stage the validated answer in a temp table with ohlcv_daily's column types (prices round as stored),
    record every bar whose open/high/low/close/volume differ (and every new bar) in `pl_bar_revisions`
    (symbol, session, old -> new close and volume, the pass's batch_id), then the writer's upsert.

After the sessions, when anything was revised, a full cache sync runs (it writes only the universes
the revised bars change; its own events say which) and `data_revised` (tickstock:data:revisions,
docs/EVENTS.md) goes out through the outbox with the pass's counts and the sync's job id, in the
same transaction as the pass row (`pl_revision_passes`). A pass that revised nothing publishes
nothing and syncs nothing. A pass that stopped after its revisions committed but before that last
transaction is finished by the next pass of its environment (re-sync, then its own event), first. Sessions with no data from the provider are reported in the pass's notes.

Single-flight with the pipeline: the pass holds locks.PIPELINE (JobConflict while a run is live). A
session that has not closed is refused naming the last closed one (never imported before the close).
The scheduler calls `scheduled_pass_due` once per New York session day (weekends, holidays and
closures skipped), within PASS_WINDOW (4 h) after the morning time (a process started later that day skips the day's pass; `pipeline revise` runs it by hand).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from tickstockpl import clock
from tickstockpl.db import locks
from tickstockpl.errors import ConfigError, JobConflict, TickStockError
from tickstockpl.events import catalog
from tickstockpl.events.outbox import enqueue

log = logging.getLogger(__name__)

SAMPLE = 50
PASS_WINDOW = dt.timedelta(hours=4)  # the scheduled pass starts within this long after the morning time
TRIGGERS = ("scheduled", "cli", "api")

# The real column types of ohlcv_daily (AppV2's DECIMAL(12,4) rounds the answer as the stored bar was
# rounded), without its constraints or other columns.
STAGE = ("CREATE TEMP TABLE pl_revise_stage ON COMMIT DROP AS"
         " SELECT symbol, date, open, high, low, close, volume FROM ohlcv_daily WITH NO DATA")
DIFF = """
INSERT INTO pl_bar_revisions (batch_id, session_date, symbol, old_close, new_close, old_volume, new_volume)
SELECT %(batch)s, %(day)s, n.symbol, o.close, n.close, o.volume, n.volume
FROM pl_revise_stage n LEFT JOIN ohlcv_daily o ON o.symbol = n.symbol AND o.date = %(day)s
WHERE (o.open, o.high, o.low, o.close, o.volume) IS DISTINCT FROM (n.open, n.high, n.low, n.close, n.volume)
ORDER BY n.symbol
RETURNING symbol, old_close, new_close, old_volume, new_volume
"""


@dataclass
class RevisionReport:
    batch_id: str
    sessions: list[dt.date]
    revisions: int = 0
    by_session: dict[str, int] = field(default_factory=dict)
    sample: list[dict[str, Any]] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sync_job_id: str | None = None
    universes_updated: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "sessions": [d.isoformat() for d in self.sessions],
                "revisions": self.revisions, "by_session": self.by_session, "sample": self.sample,
                "symbols": self.symbols[:SAMPLE], "notes": self.notes, "sync_job_id": self.sync_job_id,
                "universes_updated": self.universes_updated}


def _num(value) -> float | None:
    return None if value is None else float(value)


def recent_sessions(calendar, now_utc: dt.datetime, count: int) -> list[dt.date]:
    last = calendar.last_completed(now_utc).day
    found = [s.day for s in calendar.between(last - dt.timedelta(days=count * 2 + 10), last)
             if s.close_utc <= now_utc]
    return found[-count:]


def check_sessions(calendar, sessions: list[dt.date], now_utc: dt.datetime) -> None:
    """Every session must be a session (overrides applied) that has closed."""
    last = calendar.last_completed(now_utc).day
    for day in sessions:
        session = calendar.on(day)
        if session is None:
            raise ConfigError(f"{day} is not an NYSE session (weekend, holiday or a calendar override)")
        if session.close_utc > now_utc:
            raise ConfigError(f"the {day} session has not closed yet and is never revised before it has:"
                              f" the last closed session is {last}")


def revise(settings, db_url: str, sessions: list[dt.date] | None = None, *, provider=None,
           trigger: str = "cli", now_utc: dt.datetime | None = None, sync: bool = True) -> RevisionReport:
    from tickstockpl.db.connect import connect
    from tickstockpl.market.calendar import StoredCalendar
    from tickstockpl.pipeline.imports import provider_from_settings
    from tickstockpl.pipeline.imports.importer import known_symbols

    if trigger not in TRIGGERS:
        raise ValueError(f"trigger must be one of {TRIGGERS}")
    now_utc = now_utc or clock.now()
    conn = connect(db_url, autocommit=True)
    own_provider = provider is None
    try:
        calendar = StoredCalendar(conn)
        days = sorted(set(sessions)) if sessions else recent_sessions(
            calendar, now_utc, getattr(settings, "revision_sessions", 3))
        check_sessions(calendar, days, now_utc)
        if provider is None:
            provider = provider_from_settings(settings)
            if provider is None:
                raise ConfigError("no import provider is configured (set TICKSTOCKPL_FLATFILES_DIR or MASSIVE_API_KEY)")
        if not conn.execute("SELECT pg_try_advisory_lock(%s)", (locks.PIPELINE,)).fetchone()[0]:
            raise JobConflict("a pipeline run or revisions pass is running; try again after it", None)
        try:
            for earlier, earlier_trigger in _interrupted(conn, settings.environment):  # died after its revisions
                if sync:
                    _resync(db_url, settings, earlier)
                _finish(conn, earlier, earlier_trigger)
                log.warning("revisions pass %s had stopped before its event: %d bar revision(s) published now",
                            earlier.batch_id, earlier.revisions)
            report = RevisionReport(str(uuid.uuid4()), days)
            market_day = now_utc.astimezone(clock.NEW_YORK).date()
            try:
                conn.execute("INSERT INTO pl_revision_passes (batch_id, environment, trigger, market_day, sessions)"
                             " VALUES (%s, %s, %s, %s, %s)",
                             (report.batch_id, settings.environment, trigger, market_day, days))
            except Exception as err:  # noqa: BLE001 - the scheduled pass of today already ran
                import psycopg

                if isinstance(err, psycopg.errors.UniqueViolation):
                    raise JobConflict(f"the scheduled revisions pass of {market_day} already ran", None) from None
                raise
            known = known_symbols(conn)
            for day in days:
                _revise_session(conn, provider, day, known, report)
            if report.revisions and sync:
                _resync(db_url, settings, report)
            _finish(conn, report, trigger)
            log.info("revisions pass %s: %d bar(s) revised over %s", report.batch_id, report.revisions,
                     ", ".join(map(str, days)))
            return report
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (locks.PIPELINE,))
    finally:
        conn.close()
        if own_provider and provider is not None:
            provider.close()


def _finish(conn, report: RevisionReport, trigger: str) -> None:
    """The pass row's totals and, when bars were revised, `data_revised` in the outbox: one transaction."""
    with conn.transaction():
        conn.execute("UPDATE pl_revision_passes SET revisions = %s, sync_job_id = %s, notes = %s::jsonb"
                     " WHERE batch_id = %s", (report.revisions, report.sync_job_id,
                                              json.dumps(report.notes), report.batch_id))
        if report.revisions:
            enqueue(conn, [catalog.data_revised(
                report.batch_id, sessions=[d.isoformat() for d in report.sessions], revisions=report.revisions,
                symbols=report.symbols[:SAMPLE], sample=report.sample, trigger=trigger,
                by_session=report.by_session, sync_job_id=report.sync_job_id,
                universes_updated=report.universes_updated)])


# Passes whose revisions committed (one transaction per session) but whose totals and event did not: the
# process stopped in between. The next pass of the environment finishes them first (re-sync, event), so a
# revision is never left unannounced: re-fetching would find nothing to revise.
_INTERRUPTED_SQL = (
    "SELECT p.batch_id::text, p.trigger, p.sessions, r.session_date, r.symbol, r.old_close, r.new_close, r.old_volume,"
    " r.new_volume FROM pl_revision_passes p JOIN pl_bar_revisions r ON r.batch_id = p.batch_id"
    " WHERE p.environment = %s AND p.revisions = 0 ORDER BY p.created_at, r.revision_id")


def _interrupted(conn, environment: str) -> list[tuple[RevisionReport, str]]:
    """Each interrupted pass as a report rebuilt from its recorded revisions, with the pass's trigger."""
    found: dict[str, tuple[RevisionReport, str]] = {}
    for batch, trigger, sessions, day, symbol, old_close, new_close, old_volume, new_volume in conn.execute(
            _INTERRUPTED_SQL, (environment,)):
        report, _ = found.setdefault(batch, (RevisionReport(batch, sorted(sessions)), trigger))
        report.revisions += 1
        report.by_session[day.isoformat()] = report.by_session.get(day.isoformat(), 0) + 1
        report.symbols.append(symbol)
        if len(report.sample) < SAMPLE:
            report.sample.append({"symbol": symbol, "session_date": day.isoformat(), "old_close": _num(old_close),
                                  "new_close": _num(new_close), "old_volume": old_volume, "new_volume": new_volume})
    for report, _ in found.values():
        report.notes.append("finished by a later pass: the process running this pass stopped before its event")
    return list(found.values())


def _revise_session(conn, provider, day: dt.date, known, report: RevisionReport) -> None:
    from tickstockpl.pipeline.imports.importer import keep_liquidity
    from tickstockpl.pipeline.imports.writer import prepare, store, validate

    try:
        data = provider.fetch(day)
    except TickStockError as err:
        report.notes.append(f"{day}: the provider failed: {err}")
        return
    accepted, _result = validate(data, known, provider.name)
    if not accepted:
        report.notes.append(f"{day}: no data from the provider (nothing revised)")
        return
    try:
        prepared = prepare(data, known=known, provider=provider.name)
    except TickStockError as err:
        report.notes.append(f"{day}: {err}")
        return
    with conn.transaction():
        with conn.cursor() as cur:
            cur.execute(STAGE)
            with cur.copy("COPY pl_revise_stage (symbol, date, open, high, low, close, volume) FROM STDIN") as copy:
                for t, o, h, l, c, v in accepted:
                    copy.write_row((t, day, o, h, l, c, v))
            changed = cur.execute(DIFF, {"batch": report.batch_id, "day": day}).fetchall()
        if changed:  # nested: a savepoint of this transaction; the statistics follow the corrected bars
            store(conn, [prepared], before_commit=keep_liquidity())
    report.revisions += len(changed)
    report.by_session[day.isoformat()] = len(changed)
    for symbol, old_close, new_close, old_volume, new_volume in changed:
        report.symbols.append(symbol)
        if len(report.sample) < SAMPLE:
            report.sample.append({"symbol": symbol, "session_date": day.isoformat(), "old_close": _num(old_close),
                                  "new_close": _num(new_close), "old_volume": old_volume, "new_volume": new_volume})


def _resync(db_url: str, settings, report: RevisionReport) -> None:
    from tickstockpl.jobs.runtime import start_job

    try:
        handle = start_job(db_url, mode="full", triggered_by="pipeline", environment=settings.environment,
                           background=False, extra_event_fields={"revision_batch": report.batch_id})
    except TickStockError as err:
        report.notes.append(f"re-sync after the revisions failed: {err}")
        log.error("revisions pass %s: re-sync failed: %s", report.batch_id, err)
        return
    report.sync_job_id = handle.job_id
    if handle.result is not None:
        report.universes_updated = handle.result.universes_updated


def scheduled_pass_due(settings, db_url: str, now_utc: dt.datetime | None = None, *, provider=None) -> str | None:
    """The scheduled pass, once per New York day after the morning time; its batch id or None."""
    from tickstockpl.db.connect import connection
    from tickstockpl.pipeline.completeness import Policy

    now_utc = now_utc or clock.now()
    local = now_utc.astimezone(clock.NEW_YORK)
    start = dt.datetime.combine(local.date(), Policy.from_settings(settings).morning_time, tzinfo=clock.NEW_YORK)
    if not start <= local < start + PASS_WINDOW:
        return None
    with connection(db_url, autocommit=True) as conn:
        from tickstockpl.market.calendar import StoredCalendar

        if not StoredCalendar(conn).is_session(local.date()):
            return None  # the pass runs on the mornings of sessions (overrides applied), not weekends
        if conn.execute("SELECT 1 FROM pl_revision_passes WHERE environment = %s AND market_day = %s"
                        " AND trigger = 'scheduled'", (settings.environment, local.date())).fetchone():
            return None
    try:
        return revise(settings, db_url, provider=provider, trigger="scheduled", now_utc=now_utc).batch_id
    except JobConflict as err:
        log.info("scheduled revisions pass waits: %s", err)
        return None
