"""Which sessions to import, and importing them one after the other.

`missing_sessions`: the NYSE sessions after the newest date in `ohlcv_daily` (on or before the target)
up to the target, keeping only sessions whose close has passed (by `now_utc`, else by the market
clock, tickstockpl.clock). With no bars at all, the last `initial_sessions` sessions. At most
`max_backfill` sessions (the newest ones; the gap is reported).

`import_sessions`: fetch and write the sessions in date order, each whole or not at all. The first
session that fails stops the import (later sessions are not written, so the next run retries from the
failed one instead of leaving a permanent hole). Cancellation is checked before every session.

`keep_liquidity(before_commit)`: the hook every writer of one session's bars passes to writer.store (this
importer's daily session, the revisions pass): in the transaction that wrote the bars,
`market.liquidity.after_import` moves the rule universes' statistics (pl_symbol_liquidity) to it, one
statement per new session, a rebuild when bars of a session already folded in changed; then the caller's own
hook runs. An import of several sessions (a backfill) moves them once, after its last batch, in a transaction
of its own (`_keep_liquidity_after`): moved after every session, the window statistics were computed again
each time, and a backfill of 250 sessions at 12,000 symbols took several minutes instead of well under the
60 s it is allowed. Bars committed before that last step and statistics behind them are caught up by the
next import or sync (liquidity.catch_up), as after any interruption.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from tickstockpl import clock
from tickstockpl.errors import DataError, TickStockError
from tickstockpl.market import liquidity
from tickstockpl.pipeline.imports.session import Provider
from tickstockpl.pipeline.imports.writer import BeforeCommit, Prepared, SessionResult, prepare, store

log = logging.getLogger(__name__)

MAX_BACKFILL = 300
BATCH_ROWS = 200_000  # rows per transaction when several sessions are imported
MIN_COMPLETENESS = 0.5  # a session with fewer bars than this share of the previous one is incomplete
INITIAL_SESSIONS = 1


@dataclass
class MissingSessions:
    sessions: list[dt.date]
    last_imported: dt.date | None
    dropped: int = 0  # sessions older than the backfill bound, left out


def missing_sessions(conn, target: dt.date, now_utc: dt.datetime | None = None, *,
                     max_backfill: int = MAX_BACKFILL, initial_sessions: int = INITIAL_SESSIONS) -> MissingSessions:
    from tickstockpl.market.calendar import StoredCalendar

    sessions_between = StoredCalendar(conn).between
    now_utc = now_utc or clock.now()
    last = conn.execute("SELECT max(date) FROM ohlcv_daily WHERE date <= %s", (target,)).fetchone()[0]
    if last is None:
        window = max(initial_sessions, 1)
        start = target - dt.timedelta(days=window * 2 + 10)
    else:
        start = last + dt.timedelta(days=1)
    closed = [s.day for s in sessions_between(start, target) if s.close_utc <= now_utc]
    if last is None:
        closed = closed[-max(initial_sessions, 1):]
    dropped = max(0, len(closed) - max_backfill)
    if dropped:
        log.warning("import backfill bounded to %d sessions: %d older missing session(s) left out (from %s)",
                    max_backfill, dropped, closed[0])
        closed = closed[-max_backfill:]
    return MissingSessions(closed, last, dropped)


@dataclass
class ImportReport:
    sessions_requested: int = 0
    sessions_imported: int = 0
    sessions_failed: int = 0
    rows_imported: int = 0
    rows_rejected: int = 0
    unknown_tickers: int = 0
    results: list[SessionResult] = field(default_factory=list)
    error: str | None = None
    cancelled: bool = False
    failed_session: dt.date | None = None
    duration_seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return self.error is None and not self.cancelled and self.sessions_imported == self.sessions_requested

    def counts(self) -> dict[str, Any]:
        return {"sessions_requested": self.sessions_requested, "sessions_imported": self.sessions_imported,
                "sessions_failed": self.sessions_failed, "cancelled": self.cancelled, "rows_imported": self.rows_imported,
                "rows_rejected": self.rows_rejected, "unknown_tickers": self.unknown_tickers,
                "failed_session": self.failed_session.isoformat() if self.failed_session else None,
                "rejection_reasons": _sum_reasons(self.results),
                "sessions": [r.to_dict() | {"rejections": r.rejections[:10]} for r in self.results[-20:]]}


def _sum_reasons(results: list[SessionResult]) -> dict[str, int]:
    total: dict[str, int] = {}
    for r in results:
        for kind, count in r.reasons.items():
            total[kind] = total.get(kind, 0) + count
    return dict(sorted(total.items()))


def keep_liquidity(before_commit: BeforeCommit | None = None) -> BeforeCommit:
    """writer.store's `before_commit` that keeps pl_symbol_liquidity current, then runs `before_commit`."""
    def hook(conn, result: SessionResult) -> None:
        liquidity.after_import(conn, {result.session: result.rows_written})
        if before_commit is not None:
            before_commit(conn, result)
    return hook


def known_symbols(conn) -> frozenset[str]:
    return frozenset(r[0] for r in conn.execute("SELECT symbol FROM symbols"))


def _load(provider: Provider, session: dt.date, known: frozenset[str]) -> Prepared:
    return prepare(provider.fetch(session), known=known, provider=provider.name)


def import_sessions(conn, provider: Provider, sessions: list[dt.date], *, run_id: str | None = None,
                    before_commit: BeforeCommit | None = None,
                    should_cancel: Callable[[], bool] | None = None,
                    batch_rows: int = BATCH_ROWS, min_completeness: float = MIN_COMPLETENESS) -> ImportReport:
    """Import `sessions` in order on `conn` (autocommit); never raises for a provider or data failure:
    the report carries it. Stops with `report.cancelled` when `should_cancel()` turns true between sessions.

    While sessions are written, the next one is fetched and validated in one helper thread (the provider
    and `prepare` never touch the connection), so client parsing overlaps server work. Consecutive
    sessions are written together, up to `batch_rows` rows per transaction (a backfill); the daily
    session is written alone. Sessions prepared before a failure or a cancel are still written.

    A session with fewer accepted bars than `min_completeness` times the previous session's is taken
    as not (fully) published yet and fails (DataError): a partial day is never imported.
    """
    started = time.perf_counter()
    ordered = sorted(sessions)
    report = ImportReport(sessions_requested=len(ordered))
    known = known_symbols(conn) if ordered else frozenset()
    reference = _bars_before(conn, ordered[0]) if ordered else 0
    batch: list[Prepared] = []
    one_session = len(ordered) == 1  # its statistics move with its bars; several: once, after the last batch
    hook = keep_liquidity(before_commit) if one_session else before_commit

    def flush() -> bool:
        if not batch:
            return True
        try:
            results = store(conn, batch, run_id=run_id, before_commit=hook)
        except TickStockError as err:
            _failed(report, batch[0].result.session, err)
            return False
        finally:
            batch.clear()
        for result in results:
            _count(report, result)
        return True

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-prefetch")
    try:
        pending = pool.submit(_load, provider, ordered[0], known) if ordered else None
        for index, session in enumerate(ordered):
            if should_cancel is not None and should_cancel():
                report.cancelled = True
                log.warning("import cancelled before session %s", session)
                break
            try:
                prepared = pending.result()
                _check_complete(prepared.result, reference, min_completeness)
            except TickStockError as err:
                if flush():
                    _failed(report, session, err)
                break
            last = index + 1 == len(ordered)
            pending = None if last else pool.submit(_load, provider, ordered[index + 1], known)
            batch.append(prepared)
            reference = prepared.result.rows_imported
            if last or sum(p.result.rows_imported for p in batch) >= batch_rows:
                if not flush():
                    break
        flush()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    if not one_session:
        _keep_liquidity_after(conn, report)
    report.duration_seconds = time.perf_counter() - started
    return report


def _keep_liquidity_after(conn, report: ImportReport) -> None:
    """The statistics moved to the sessions `report` imported, in one transaction (see the module docstring)."""
    if report.results:
        with conn.transaction():
            liquidity.after_import(conn, {r.session: r.rows_written for r in report.results})


def _bars_before(conn, session: dt.date) -> int:
    """Bars of the newest session before `session` (index on date: the rows of one day only)."""
    return conn.execute("SELECT count(*) FROM ohlcv_daily WHERE date = (SELECT max(date) FROM ohlcv_daily"
                        " WHERE date < %s)", (session,)).fetchone()[0]


def _check_complete(result: SessionResult, reference: int, ratio: float) -> None:
    if reference and result.rows_imported < ratio * reference:
        raise DataError(f"session {result.session} looks incomplete: {result.rows_imported} usable bars against"
                        f" {reference} on the previous session (the provider may not have published the whole"
                        " day yet); nothing imported")


def _failed(report: ImportReport, session: dt.date, err: BaseException) -> None:
    report.sessions_failed += 1
    report.failed_session = session
    report.error = str(err)
    log.error("import of session %s failed: %s", session, err)


def _count(report: ImportReport, result: SessionResult) -> None:
    report.results.append(result)
    report.sessions_imported += 1
    report.rows_imported += result.rows_imported
    report.rows_rejected += result.rows_rejected
    report.unknown_tickers = result.unknown_tickers  # of the newest session imported
    if result.rows_rejected:
        log.warning("session %s: %d row(s) rejected (%s)", result.session, result.rows_rejected,
                    ", ".join(f"{k} x{v}" for k, v in result.reasons.items()))
