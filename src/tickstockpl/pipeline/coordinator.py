"""Pipeline runs: the phases in order, one run at a time, cancel, and their events.

    trigger_run(settings, db_url, ...)
      1. resolve_phases     requested names -> the available phases in pipeline order
                            (unknown -> ConfigError; indicator/pattern phases -> PhaseUnavailable)
      2. resolve_session    the session date: an NYSE session that has closed (skip_market_check skips only
                            the trading-day check), from pl_market_sessions (market.calendar.StoredCalendar)
      3. _claim             the environment's PIPELINE lock on the run's own connection, held for the run's
                            life (jobs.single_flight.claim); run + phase rows and `daily_processing_started`
                            in one transaction
      4. _Runner.execute    data_import (imports.importer) -> cache_sync (jobs.runtime.start_job);
                            a failed or incomplete import stops the run before cache sync;
                            cancellation is checked between phases and between import sessions
      5. _Runner._finish    status success|failed|cancelled|incomplete and `daily_processing_completed`
                            (+ `processing_error` on tickstock:errors) in one transaction

Single-flight is the one runner of `jobs/single_flight.py`, shared with sync jobs (the table is
`runs.RUNS`): the advisory lock per environment, and the unique partial index `pl_pipeline_runs_one_live`.
A second index, on automatic runs per (environment, session_date), makes a second scheduled run of one
session impossible. A live row whose lock nobody holds belongs to a process
that died: it is marked failed ("abandoned") by the next trigger, status read or cancel. Reading runs,
cancel and that recovery live in `runs.py` (re-exported here).

Every state change writes its outbox events in the same transaction (contract §3.1/§3.3).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from typing import Any, Callable

from tickstockpl.db.connect import connect
from tickstockpl.errors import (Cancelled, ConfigError, JobConflict, PhaseFailed, PhaseUnavailable, SessionIncomplete,
                                TickStockError)
from tickstockpl.events import catalog
from tickstockpl.events.outbox import enqueue
from tickstockpl.jobs import single_flight as flight
from tickstockpl.market import dates
from tickstockpl.market.calendar import StoredCalendar
from tickstockpl.market.dates import SessionChoice
from tickstockpl.pipeline import PHASES
from tickstockpl.pipeline.imports import Provider, provider_configured, provider_from_settings
from tickstockpl.pipeline.runs import (RUNS, Run, automatic_run_exists, cancel_current, get_run, is_running,
                                       live_run, mark_abandoned, processing_status, recover_abandoned_runs,
                                       run_history)

# The API, /health, the scheduler and the CLI use these names from here.
__all__ = ["PhaseFailed", "RunHandle", "SessionChoice", "automatic_run_exists", "available_phases", "cancel_current",
           "get_run", "is_running", "live_run", "processing_status", "recover_abandoned_runs", "resolve_phases",
           "resolve_session", "run_history", "trigger_run"]

log = logging.getLogger(__name__)

TRIGGER_TYPES = ("automatic", "manual")
EXTENSION_PHASES = ("indicator_processing", "pattern_detection")
UNIVERSE_MAX = 100


# --------------------------------------------------------------------------- requests

def available_phases(settings) -> tuple[str, ...]:
    """data_import needs an import provider; cache_sync is always there; phases 3 and 4 are not provided."""
    return (("data_import",) if provider_configured(settings) else ()) + ("cache_sync",)


def resolve_phases(requested: list[str] | tuple[str, ...] | None, available: tuple[str, ...]) -> list[str]:
    names = ["all"] if requested is None else list(requested)
    if not names:
        raise ConfigError("phases must name at least one phase (or \"all\")")
    unknown = [n for n in names if n != "all" and n not in PHASES]
    if unknown:
        raise ConfigError(f"unknown phase(s): {', '.join(map(repr, unknown))}; phases are {', '.join(PHASES)} or all")
    if "all" in names:
        return [p for p in PHASES if p in available]
    missing = [n for n in dict.fromkeys(names) if n not in available]
    if missing:
        reasons = [f"{n} is not available in this installation" + (
            " (no import provider configured: set TICKSTOCKPL_FLATFILES_DIR or MASSIVE_API_KEY)"
            if n == "data_import" else "") for n in missing]
        raise PhaseUnavailable("; ".join(reasons) + f"; available phases: {', '.join(available)}")
    return [p for p in PHASES if p in names]


def resolve_session(session_date: dt.date | None, skip_market_check: bool,
                    now_utc: dt.datetime | None = None, calendar=None) -> SessionChoice:
    """The session a run processes: the one date rule (market.dates.choose_session, which the CLI's
    --date and --as-of follow too), in the API's words (`skip_market_check` runs a weekend or holiday
    date; it skips only the trading-day check). "Now" is `now_utc`, else the market clock; `calendar`
    is a StoredCalendar (a serving process) or ExchangeCalendar (the default)."""
    return dates.choose_session(session_date, calendar=calendar, now_utc=now_utc, skip=skip_market_check,
                                skip_flag="skip_market_check")


# --------------------------------------------------------------------------- triggering

class RunHandle(flight.Handle):
    """A claimed run: its id, and (in the background) the thread executing it."""

    def __init__(self, run_id: str, session_date: dt.date, phases: list[str], note: str | None = None):
        super().__init__(run_id)
        self.session_date = session_date
        self.phases = phases
        self.note = note  # why session_date is not the session asked for (resolve_session)
        self.status: str | None = None  # success | failed | cancelled | incomplete once finished
        self.error: str | None = None
        self.phase_counts: dict[str, dict[str, Any]] = {}

    @property
    def run_id(self) -> str:
        return self.id


def trigger_run(settings, db_url: str, *, trigger_type: str = "manual", session_date: dt.date | None = None,
                phases: list[str] | None = None, skip_market_check: bool = False, universe: str | None = None,
                background: bool = True, provider: Provider | None = None,
                sleep: Callable[[float], None] | None = None) -> RunHandle:
    """Claim a run (JobConflict while one is live) and execute it, in a daemon thread by default.

    Returns once the run row is committed. `provider` replaces the configured import provider (tests,
    the demo). "Now" for the session checks and the import is the market clock (tickstockpl.clock);
    `sleep` replaces the completeness gate's waits between provider attempts (tests advance the clock).
    """
    if trigger_type not in TRIGGER_TYPES:
        raise ConfigError(f"trigger_type must be one of {TRIGGER_TYPES}")
    if universe is not None and (not isinstance(universe, str) or not 0 < len(universe) <= UNIVERSE_MAX):
        raise ConfigError(f"universe must be a name of 1 to {UNIVERSE_MAX} characters")
    available = available_phases(settings) if provider is None else ("data_import", "cache_sync")
    chosen = resolve_phases(phases, available)
    conn = connect(db_url, autocommit=True)
    try:
        flight.job_session(conn)
        choice = resolve_session(session_date, skip_market_check, calendar=StoredCalendar(conn))
        if "data_import" in chosen and provider is None:
            provider = provider_from_settings(settings)
        run_id = _claim(conn, settings.environment, trigger_type, choice.day, chosen, universe)
    except BaseException:
        conn.close()
        raise
    handle = RunHandle(run_id, choice.day, chosen, choice.note)
    runner = _Runner(conn, settings, db_url, handle, trigger_type, universe, provider)
    runner.sleep = sleep
    flight.launch(conn, RUNS, settings.environment, handle, runner.execute, background=background,
                  thread_name="pipeline", after=runner.close_provider)
    return handle


def _claim(conn, environment: str, trigger_type: str, session: dt.date, phases: list[str],
           universe: str | None) -> str:
    def insert(conn) -> str:
        run_id = str(uuid.uuid4())
        total = conn.execute("SELECT count(*) FROM symbols WHERE coalesce(active, false)").fetchone()[0]
        with conn.transaction():
            conn.execute(
                "INSERT INTO pl_pipeline_runs (run_id, environment, trigger_type, session_date, phases, universe,"
                " status, current_phase, symbols_total, owner) VALUES (%s, %s, %s, %s, %s, %s, 'running', %s, %s, %s)",
                (run_id, environment, trigger_type, session, phases, universe, phases[0], total, flight.OWNER))
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO pl_pipeline_phases (run_id, phase, position, status)"
                                " VALUES (%s, %s, %s, 'pending')",
                                [(run_id, p, i) for i, p in enumerate(phases)])
            enqueue(conn, [catalog.daily_processing_started(
                run_id, total_symbols=total, trigger_type=trigger_type, phases=phases,
                session_date=session.isoformat(), universe=universe)])
        return run_id

    def automatic_again(err) -> JobConflict | None:
        return JobConflict(f"session {session} already had its automatic run", None) if "one_automatic" in str(err) \
            else None

    return flight.claim(conn, RUNS, environment, insert=insert, live=lambda c: live_run(c, environment),
                        conflict=_conflict, abandon=lambda c: mark_abandoned(c, environment),
                        unique_conflict=automatic_again)


def _conflict(live: Run) -> JobConflict:
    return JobConflict(f"a pipeline run is already running (run {live.run_id})", live.run_id)


# --------------------------------------------------------------------------- executing

def _merged(first, second):
    """Two import reports (the older sessions, then the gated newest one) as one."""
    first.sessions_imported += second.sessions_imported
    first.sessions_failed += second.sessions_failed
    first.rows_imported += second.rows_imported
    first.rows_rejected += second.rows_rejected
    first.results += second.results
    if second.results:
        first.unknown_tickers = second.unknown_tickers
    first.error, first.cancelled = second.error, second.cancelled
    first.failed_session = second.failed_session or first.failed_session
    first.duration_seconds += second.duration_seconds
    return first


class _Runner:
    """Executes one claimed run on its own connection (which holds the pipeline lock)."""

    def __init__(self, conn, settings, db_url, handle: RunHandle, trigger_type, universe, provider):
        self.conn = conn
        self.settings = settings
        self.db_url = db_url
        self.handle = handle
        self.run_id = handle.run_id
        self.trigger_type = trigger_type
        self.universe = universe
        self.provider = provider
        self.started = time.perf_counter()
        self.symbols_failed = 0
        self.sleep: Callable[[float], None] | None = None  # the completeness gate's waits (None: real time)

    # --- progress ----------------------------------------------------------------
    def _percent(self, phase: str, fraction: float) -> float:
        phases = self.handle.phases
        return min(100.0, 100.0 * (phases.index(phase) + max(0.0, min(1.0, fraction))) / len(phases))

    def _progress(self, conn, phase: str, fraction: float,
                  symbols_completed: int | None = None) -> tuple[float, int, str | None]:
        """Update the run row and enqueue daily_processing_progress, on `conn`'s current transaction;
        returns (percent, symbols completed, estimated completion) as published. Recorded at steps
        (the one policy, jobs.single_flight.StepProgress): a phase's start and end, each imported
        session, and the cache sync's recorded steps and end."""
        percent = self._percent(phase, fraction)
        elapsed = time.perf_counter() - self.started
        eta = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=elapsed * (100 - percent) / percent)
               if percent > 0 else None)
        row = conn.execute(
            "UPDATE pl_pipeline_runs SET progress = %s, current_phase = %s, estimated_completion = %s,"
            " symbols_processed = coalesce(%s, symbols_processed) WHERE run_id = %s RETURNING symbols_processed",
            (percent, phase, eta, symbols_completed, self.run_id)).fetchone()
        completed, eta_iso = row[0] if row else 0, catalog.iso_z(eta)
        enqueue(conn, [catalog.daily_processing_progress(
            self.run_id, progress=percent, current_phase=phase, symbols_completed=completed,
            estimated_completion=eta_iso, session_date=self.handle.session_date.isoformat())])
        return percent, completed, eta_iso

    def _phase_start(self, phase: str, events: list[catalog.Event] = ()) -> None:
        with self.conn.transaction():
            self.conn.execute("UPDATE pl_pipeline_phases SET status = 'running', start_time = now()"
                              " WHERE run_id = %s AND phase = %s", (self.run_id, phase))
            self._progress(self.conn, phase, 0.0)
            enqueue(self.conn, list(events))

    def _phase_end(self, phase: str, status: str, counts: dict[str, Any], error: str | None,
                   events: list[catalog.Event] = ()) -> None:
        self.handle.phase_counts[phase] = counts
        with self.conn.transaction():
            self.conn.execute("UPDATE pl_pipeline_phases SET status = %s, end_time = now(), counts = %s::jsonb,"
                              " error = %s WHERE run_id = %s AND phase = %s",
                              (status, json.dumps(counts, default=str), error, self.run_id, phase))
            if status == "success":
                self._progress(self.conn, phase, 1.0)
            enqueue(self.conn, list(events))

    def _cancel_requested(self) -> bool:
        row = self.conn.execute("SELECT cancel_requested FROM pl_pipeline_runs WHERE run_id = %s",
                                (self.run_id,)).fetchone()
        return bool(row and row[0])

    def _symbols_with_bars(self, conn=None) -> int:
        return (conn or self.conn).execute(
            "SELECT count(*) FROM ohlcv_daily o JOIN symbols s ON s.symbol = o.symbol"
            " WHERE o.date = %s AND coalesce(s.active, false)", (self.handle.session_date,)).fetchone()[0]

    # --- the run -----------------------------------------------------------------
    def execute(self) -> None:
        status, error = "success", None
        try:
            for phase in self.handle.phases:
                if self._cancel_requested():
                    raise Cancelled(f"cancelled before {phase}")
                getattr(self, f"_run_{phase}")()
        except Cancelled as err:
            status, error = "cancelled", str(err)
        except SessionIncomplete as err:
            status, error = "incomplete", str(err)
        except PhaseFailed as err:
            status, error = "failed", str(err)
        except BaseException as err:  # noqa: BLE001 - a run records every failure
            status, error = "failed", flight.failure_reason(err, self.conn, "the run")
            if flight.is_lost_connection(err, self.conn):
                log.error("pipeline run %s failed: %s", self.run_id, error)
            else:
                log.exception("pipeline run %s failed unexpectedly", self.run_id)
        finally:
            self._finish(status, error)

    def _run_data_import(self) -> None:
        from tickstockpl.pipeline.imports.importer import import_sessions, missing_sessions

        phase = "data_import"
        missing = missing_sessions(self.conn, self.handle.session_date)
        sessions = [d.isoformat() for d in missing.sessions]
        universes = [self.universe] if self.universe else self._schedule_universes()
        self._phase_start(phase, catalog.data_import_started(
            self.run_id, universe_names=universes, sessions=sessions, provider=self.provider.name,
            sessions_left_out=missing.dropped,
            last_imported=missing.last_imported.isoformat() if missing.last_imported else None))
        total = len(missing.sessions)
        done = [0, 0, 0]  # sessions, rows imported, rows rejected

        def before_commit(tx_conn, result) -> None:
            done[0] += 1
            done[1] += result.rows_imported
            done[2] += result.rows_rejected
            percent, completed, eta = self._progress(tx_conn, phase, done[0] / total, result.known_imported)
            enqueue(tx_conn, [catalog.import_progress(
                self.run_id, percentage=percent, completed=completed, failed=done[2], estimated_completion=eta,
                session_date=result.session.isoformat(), sessions_completed=done[0], sessions_total=total,
                rows_imported=done[1], rows_rejected=done[2], unknown_tickers=result.unknown_tickers)])

        # The older missing sessions first, then the newest one through the completeness gate (issue 14).
        earlier, newest = missing.sessions[:-1], missing.sessions[-1:]
        report = import_sessions(self.conn, self.provider, earlier, run_id=self.run_id,
                                 before_commit=before_commit, should_cancel=self._cancel_requested)
        gate = None
        if newest and report.complete:
            if self._cancel_requested():
                report.cancelled = True
            else:
                gate, answers = self._completeness_gate(phase, newest)
                if gate is not None and gate.cancelled:
                    report.cancelled = True
                elif gate is None or gate.passed:
                    report = _merged(report, import_sessions(
                        self.conn, answers, newest, run_id=self.run_id,
                        before_commit=before_commit, should_cancel=self._cancel_requested))
        report.sessions_requested = total
        self.symbols_failed = report.rows_rejected
        counts = report.counts() | {"sessions_left_out": missing.dropped, "provider": self.provider.name,
                                    "completeness": gate.counts() if gate else None}
        completed = dict(success_count=report.sessions_imported, failure_count=report.sessions_failed,
                         duration_seconds=report.duration_seconds, rows_rejected=report.rows_rejected,
                         rows_imported=report.rows_imported, sessions=sessions)
        if report.cancelled:
            self._phase_end(phase, "cancelled", counts, "cancelled", catalog.data_import_completed(
                self.run_id, **completed, status="cancelled"))
            raise Cancelled(f"cancelled during data import after {report.sessions_imported} of {total} session(s)")
        if gate is not None and not gate.passed:  # the older sessions are written; the newest is short
            self._phase_end(phase, "incomplete", counts, gate.reason, catalog.data_import_completed(
                self.run_id, **completed, status="incomplete", error=gate.reason))
            raise SessionIncomplete(f"data import incomplete: {gate.reason}; cache sync not started")
        if not report.complete:
            message = f"data import failed: {report.error}; cache sync not started"
            self._phase_end(phase, "failed", counts, report.error, catalog.data_import_completed(
                self.run_id, **completed, status="failed", error=report.error))
            raise PhaseFailed(message)
        with self.conn.transaction():
            self.conn.execute("UPDATE pl_pipeline_runs SET symbols_processed = %s, symbols_failed = %s"
                              " WHERE run_id = %s", (self._symbols_with_bars(), self.symbols_failed, self.run_id))
        self._phase_end(phase, "success", counts, None, catalog.data_import_completed(
            self.run_id, **completed, status="completed"))

    # --- issue 14: the completeness gate (pipeline/completeness.py) -----------------
    def _completeness_gate(self, phase: str, sessions: list[dt.date]):
        """Wait until the provider's answer for the newest missing session passes the gate (or the deadline).

        Returns (the gate's outcome, the provider the import of that session reads): the answer the gate
        passed, or its provider failure raised again (no second request); the outcome is None on a failure,
        so the import fails with it as before."""
        from tickstockpl.pipeline import completeness

        if not sessions:
            return None, self.provider
        policy = completeness.Policy.from_settings(self.settings)

        def on_wait(check, attempt: int, next_at: dt.datetime) -> None:
            with self.conn.transaction():
                percent = self._percent(phase, 0.0)
                enqueue(self.conn, [catalog.import_waiting(
                    self.run_id, percentage=percent, session_date=check.session.isoformat(), attempt=attempt,
                    next_attempt_at=catalog.iso_z(next_at), deadline=catalog.iso_z(policy.deadline_for(check.session)),
                    check=check.to_dict())])

        outcome = completeness.wait_for_session(self.conn, self.provider, sessions[-1], policy, sleep=self.sleep,
                                                should_cancel=self._cancel_requested, on_wait=on_wait)
        if outcome.error:
            return None, completeness.Prefetched(self.provider, {outcome.session: outcome.failure})
        if outcome.passed:
            return outcome, completeness.Prefetched(self.provider, {outcome.session: outcome.data})
        return outcome, self.provider

    def _schedule_universes(self) -> list[str]:
        from tickstockpl.pipeline.schedule_store import get_schedule

        return list(get_schedule(self.conn).universes)

    def _run_cache_sync(self) -> None:
        from tickstockpl.jobs.runtime import RECORDED_STEPS, start_job
        from tickstockpl.sync.job import STEPS

        phase = "cache_sync"
        self._phase_start(phase)
        policy = flight.StepProgress(STEPS, RECORDED_STEPS)

        def on_progress(completed: int, total: int, task: str) -> None:
            if policy.due(completed, total) or completed == total:  # the steps the sync job records, and its end
                with self.conn.transaction():
                    self._progress(self.conn, phase, completed / total if total else 0.0)

        try:
            handle = start_job(self.db_url, mode="full", triggered_by="pipeline", as_of=self.handle.session_date,
                               environment=self.settings.environment, background=False,
                               extra_event_fields={"run_id": self.run_id}, on_progress=on_progress)
        except JobConflict as err:
            self._fail_phase(phase, f"cache sync could not start: {err}", {"job_id": err.live_id})
        except TickStockError as err:
            self._fail_phase(phase, f"cache sync failed: {err}", {})
        else:
            counts: dict[str, Any] = {"job_id": handle.job_id}
            result = handle.result
            if result is not None:
                counts |= {"total_changes": result.total_changes, "universes_updated": result.universes_updated,
                           "universes_unchanged": result.universes_unchanged,
                           "eligible_stocks": result.eligible_stocks, "as_of": result.as_of}
            self._phase_end(phase, "success", counts, None)

    def _fail_phase(self, phase: str, message: str, counts: dict[str, Any]) -> None:
        self._phase_end(phase, "failed", counts, message)
        raise PhaseFailed(message)

    def _finish(self, status: str, error: str | None) -> None:
        """Record the end (flight.record_end: on fresh connections once the run's own is gone, so the
        run ends with its real reason); the runner releases the lock and the connection afterwards."""
        self.handle.status, self.handle.error = status, error
        seconds = time.perf_counter() - self.started
        flight.record_end(self.conn, self.db_url, f"the end of pipeline run {self.run_id}",
                          lambda target: self._record_end(target, status, error, seconds))

    def close_provider(self) -> None:
        if self.provider is not None:
            try:
                self.provider.close()
            except Exception:  # noqa: BLE001
                log.exception("closing the import provider failed")

    def _record_end(self, conn, status: str, error: str | None, seconds: float) -> None:
        """Status, phases and the end events (in record_end's transaction); nothing when the run is no
        longer live."""
        processed = self._symbols_with_bars(conn)
        ended = flight.end_row(conn, RUNS, self.run_id, status, error, current_phase=None,
                               estimated_completion=None, symbols_processed=processed,
                               symbols_failed=self.symbols_failed, **({"progress": 100} if status == "success"
                                                                      else {}))
        if not ended:  # another process took it for abandoned meanwhile, and announced that
            return
        conn.execute("UPDATE pl_pipeline_phases SET status = CASE WHEN status = 'running' THEN %s"
                     " ELSE 'skipped' END, end_time = coalesce(end_time, now())"
                     " WHERE run_id = %s AND status IN ('pending', 'running')",
                     ("cancelled" if status == "cancelled" else "failed", self.run_id))
        events = [catalog.daily_processing_completed(
            self.run_id, status=status, symbols_processed=processed, symbols_failed=self.symbols_failed,
            duration_seconds=seconds, session_date=self.handle.session_date.isoformat(),
            phases=self.handle.phases, **({"error": error} if error else {}))]
        if status == "failed":
            events.append(catalog.pipeline_error(self.run_id, f"pipeline run {self.run_id} failed: {error}",
                                                 self.handle.session_date.isoformat()))
        enqueue(conn, events)
        log.log(logging.INFO if status == "success" else logging.WARNING, "pipeline run %s %s%s",
                self.run_id, status, f": {error}" if error else "")
