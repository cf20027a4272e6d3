"""Validate one session's rows and write them into `ohlcv_daily`, whole or not at all.

Validation (`validate`), each failure a rejected row with its reason, never a silent drop:
    ticker present, at most 20 characters, not seen before in the session
    open/high/low/close finite and > 0; low <= open, close <= high
    volume finite, >= 0, fits bigint (fractional volumes are rounded)
    the bar's timestamp falls on the session date (New York or UTC calendar day)
Tickers absent from `symbols` are imported (ohlcv_daily has no foreign key) and reported.
The real column types of `ohlcv_daily` are read from the catalog when a batch is stored (`db.check.ohlcv_limits`,
one statement): AppV2's historical loader creates `symbol varchar(10)` and `DECIMAL(12,4)` prices, so a
longer ticker, or a price that does not fit, is rejected row by row there too (`fit`), with its reason
among the session's other rejections, and the session's other rows import.

Writing (`write_session` = `prepare`, pure, then `store`, which may take several whole sessions), in
ONE transaction on the caller's connection: COPY the accepted rows into a temporary staging table,
ONE `INSERT ... ON CONFLICT (symbol, date) DO UPDATE` (in index order; a plain INSERT when no bar
of those dates exists yet) into `ohlcv_daily` (rows whose values did not change are not rewritten),
the `pl_import_sessions` record, and whatever the caller's `before_commit` adds (run progress, outbox
events; the importer and the revisions pass add the rule universes' statistics: importer.keep_liquidity).
A session with no acceptable row, or with more than `max_reject_ratio` of its rows rejected,
raises DataError and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from tickstockpl.clock import NEW_YORK
from tickstockpl.errors import DataError
from tickstockpl.pipeline.imports.session import SessionData
from tickstockpl.universes.model import TICKER_MAX

# TICKER_MAX (universes.model): PL's own bound (contract §4.1: varchar(20)); a narrower real column is read when storing
BIGINT_MAX = 2**63 - 1
REJECTION_SAMPLE = 100
UNKNOWN_SAMPLE = 100
MAX_REJECT_RATIO = 0.5

STAGE_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS pl_ohlcv_stage (symbol text, date date, open numeric, high numeric,"
    " low numeric, close numeric, volume bigint) ON COMMIT DELETE ROWS"
)
NO_BARS_YET = "SELECT NOT EXISTS (SELECT 1 FROM ohlcv_daily WHERE date = ANY(%s))"
INSERT_NEW = """
INSERT INTO ohlcv_daily (symbol, date, open, high, low, close, volume)
SELECT symbol, date, open, high, low, close, volume FROM pl_ohlcv_stage ORDER BY symbol, date
"""
UPSERT = """
WITH written AS (
    INSERT INTO ohlcv_daily (symbol, date, open, high, low, close, volume)
    SELECT symbol, date, open, high, low, close, volume FROM pl_ohlcv_stage ORDER BY symbol, date
    ON CONFLICT (symbol, date) DO UPDATE
    SET open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
        volume = EXCLUDED.volume
    WHERE (ohlcv_daily.open, ohlcv_daily.high, ohlcv_daily.low, ohlcv_daily.close, ohlcv_daily.volume)
          IS DISTINCT FROM (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close, EXCLUDED.volume)
    RETURNING date
)
SELECT date, count(*) FROM written GROUP BY date
"""
RECORD = """
INSERT INTO pl_import_sessions (session_date, provider, rows_imported, rows_rejected, unknown_tickers, rejections, run_id)
VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s)
ON CONFLICT (session_date) DO UPDATE SET provider = EXCLUDED.provider, rows_imported = EXCLUDED.rows_imported,
    rows_rejected = EXCLUDED.rows_rejected, unknown_tickers = EXCLUDED.unknown_tickers,
    rejections = EXCLUDED.rejections, run_id = EXCLUDED.run_id, imported_at = now()
"""


@dataclass
class SessionResult:
    """What happened to one session: counts, and samples of what was rejected or unknown."""

    session: dt.date
    provider: str
    rows_received: int = 0
    rows_imported: int = 0
    rows_rejected: int = 0
    rows_written: int = 0  # inserted or changed; identical rows are not rewritten
    known_imported: int = 0  # accepted rows whose ticker is in `symbols`
    unknown_tickers: int = 0
    unknown_sample: list[str] = field(default_factory=list)
    rejections: list[dict[str, str]] = field(default_factory=list)  # capped sample
    reasons: dict[str, int] = field(default_factory=dict)  # reason kind -> count (exact)

    def to_dict(self) -> dict[str, Any]:
        return {"session_date": self.session.isoformat(), "provider": self.provider,
                "rows_received": self.rows_received, "rows_imported": self.rows_imported,
                "rows_rejected": self.rows_rejected, "rows_written": self.rows_written,
                "known_imported": self.known_imported, "unknown_tickers": self.unknown_tickers,
                "unknown_sample": self.unknown_sample, "rejection_reasons": self.reasons,
                "rejections": self.rejections}


def session_window_ns(session: dt.date) -> tuple[int, int]:
    """[start, end) in epoch ns of instants whose New York or UTC calendar date is `session`."""
    utc_start = dt.datetime.combine(session, dt.time(), tzinfo=dt.timezone.utc)
    ny_end = dt.datetime.combine(session + dt.timedelta(days=1), dt.time(), tzinfo=NEW_YORK)
    return int(utc_start.timestamp()) * 1_000_000_000, int(ny_end.timestamp()) * 1_000_000_000


def validate(data: SessionData, known: frozenset[str] | set[str] | None, provider: str
             ) -> tuple[list[tuple], SessionResult]:
    """Split rows into accepted (symbol, open, high, low, close, volume) and a result with the rejections."""
    result = SessionResult(data.session, provider, rows_received=len(data.rows) + len(data.rejected))
    reasons: Counter[str] = Counter()
    sample = result.rejections

    def reject(ticker: Any, kind: str, detail: str | None = None) -> None:
        reasons[kind] += 1
        if len(sample) < REJECTION_SAMPLE:
            sample.append({"ticker": str(ticker)[:40], "reason": detail or kind})

    for ticker, reason in data.rejected:
        reject(ticker, "unreadable", reason)
    start_ns, end_ns = session_window_ns(data.session)
    seen: set[str] = set()
    accepted: list[tuple] = []
    isfinite = math.isfinite
    for row in data.rows:
        ticker, o, h, l, c, v, ts = row
        if not isinstance(ticker, str) or not ticker.strip():
            reject(ticker, "missing ticker")
            continue
        ticker = ticker.strip()
        if len(ticker) > TICKER_MAX:
            reject(ticker, "ticker too long", f"ticker longer than {TICKER_MAX} characters")
            continue
        if o is None or h is None or l is None or c is None:
            reject(ticker, "missing price")
            continue
        if not (isfinite(o) and isfinite(h) and isfinite(l) and isfinite(c)) or min(o, h, l, c) <= 0:
            reject(ticker, "non-positive price", f"prices must be finite and > 0 (o={o} h={h} l={l} c={c})")
            continue
        if not (l <= o <= h and l <= c <= h):
            reject(ticker, "inconsistent range", f"need low <= open, close <= high (o={o} h={h} l={l} c={c})")
            continue
        if v is None or not isfinite(v) or v < 0 or v > BIGINT_MAX:
            reject(ticker, "bad volume", f"volume must be a finite number >= 0 (got {v})")
            continue
        if ts is None or not start_ns <= ts < end_ns:
            reject(ticker, "wrong date", f"bar timestamp {ts} is not on session {data.session}")
            continue
        if ticker in seen:
            reject(ticker, "duplicate ticker", "the ticker appears twice in this session")
            continue
        seen.add(ticker)
        accepted.append((ticker, o, h, l, c, int(round(v))))
    result.rows_imported = len(accepted)
    result.rows_rejected = sum(reasons.values())
    result.reasons = dict(sorted(reasons.items()))
    if known is not None:
        unknown = sorted(seen - set(known)) if not isinstance(known, (set, frozenset)) else sorted(seen - known)
        result.unknown_tickers = len(unknown)
        result.unknown_sample = unknown[:UNKNOWN_SAMPLE]
    result.known_imported = result.rows_imported - result.unknown_tickers
    return accepted, result


def _copy_text(rows: Iterable[tuple], day: str) -> bytes:
    """COPY text format for the staging table; repr() of a float round-trips exactly into numeric."""
    return "".join(f"{t}\t{day}\t{o!r}\t{h!r}\t{l!r}\t{c!r}\t{v}\n" for t, o, h, l, c, v in rows).encode()


def _needs_escaping(rows: list[tuple]) -> bool:
    return any(("\t" in r[0] or "\n" in r[0] or "\\" in r[0] or "\r" in r[0]) for r in rows)


@dataclass
class Prepared:
    """A validated session ready to store: its result and the staging rows as COPY text (or rows)."""

    result: SessionResult
    copy_text: bytes | None
    rows: list[tuple]
    known: frozenset[str] | set[str] | None = None
    max_reject_ratio: float = MAX_REJECT_RATIO


def prepare(data: SessionData, *, known: frozenset[str] | None, provider: str,
            max_reject_ratio: float = MAX_REJECT_RATIO) -> Prepared:
    """Validate a session (no I/O); raises DataError when it is unusable, so nothing gets written."""
    accepted, result = validate(data, known, provider)
    _refuse_if_unusable(result, max_reject_ratio)
    if _needs_escaping(accepted):
        return Prepared(result, None, accepted, known, max_reject_ratio)
    return Prepared(result, _copy_text(accepted, data.session.isoformat()), [], known, max_reject_ratio)


def _refuse_if_unusable(result: SessionResult, max_reject_ratio: float) -> None:
    if not result.rows_imported:
        raise DataError(f"session {result.session}: no usable bars ({result.rows_received} received,"
                        f" {result.rows_rejected} rejected{_reason_text(result)})")
    if result.rows_received and result.rows_rejected / result.rows_received > max_reject_ratio:
        raise DataError(f"session {result.session}: {result.rows_rejected} of {result.rows_received} rows rejected"
                        f" (more than {max_reject_ratio:.0%}){_reason_text(result)}; nothing imported")


def _tightens(limits) -> bool:
    """Whether the real columns refuse rows that `validate` accepts."""
    return ((limits.ticker_width is not None and limits.ticker_width < TICKER_MAX) or bool(limits.price_max)
            or limits.volume_max is not None)


def fit(prepared: Prepared, limits) -> Prepared:
    """`prepared` without the rows that the real ohlcv_daily columns (`limits`, a db.check.OhlcvLimits)
    cannot hold, each recorded as a rejection with its reason; raises DataError when the session is then
    unusable (no row left, or more than its max_reject_ratio rejected). Rare: only where the columns are
    narrower than PL's own bounds (the COPY text is parsed back)."""
    if not _tightens(limits):
        return prepared
    width = limits.ticker_width if limits.ticker_width is not None and limits.ticker_width < TICKER_MAX else None
    prices = [(i, column, bound, limits.price_types[column]) for i, column in enumerate(("open", "high", "low", "close"), 1)
              if (bound := limits.price_max.get(column)) is not None]
    scales = {column: int(kind.rstrip(")").split(",")[1]) for _, column, _, kind in prices}

    def refusal(row: tuple) -> tuple[str, str] | None:
        ticker = row[0]
        if width is not None and len(ticker) > width:
            return "ticker too long", f"ticker longer than {width} characters (ohlcv_daily.symbol is varchar({width}))"
        for i, column, bound, kind in prices:
            if abs(round(row[i], scales[column])) >= bound:
                return "price out of range", f"{column}={row[i]!r} does not fit ohlcv_daily.{column} {kind}"
        if limits.volume_max is not None and row[5] > limits.volume_max:
            return "volume out of range", f"volume {row[5]} does not fit ohlcv_daily.volume {limits.volume_type}"
        return None

    refused: list[tuple[str, str, str]] = []
    if prepared.copy_text is not None:
        kept_lines = []
        for line in prepared.copy_text.splitlines(keepends=True):
            t, _day, o, h, l, c, v = line.rstrip(b"\n").split(b"\t")
            why = refusal((t.decode(), float(o), float(h), float(l), float(c), int(v)))
            if why is None:
                kept_lines.append(line)
            else:
                refused.append((t.decode(), *why))
        copy_text, rows = b"".join(kept_lines), []
    else:
        copy_text, rows = None, []
        for row in prepared.rows:
            why = refusal(row)
            if why is None:
                rows.append(row)
            else:
                refused.append((row[0], *why))
    if not refused:
        return prepared
    result = prepared.result
    reasons = Counter(result.reasons)
    for ticker, kind, detail in refused:
        reasons[kind] += 1
        if len(result.rejections) < REJECTION_SAMPLE:
            result.rejections.append({"ticker": ticker[:40], "reason": detail})
    result.reasons = dict(sorted(reasons.items()))
    result.rows_rejected += len(refused)
    result.rows_imported -= len(refused)
    if prepared.known is not None:
        gone = {t for t, _, _ in refused if t not in prepared.known}
        result.unknown_tickers -= len(gone)
        result.unknown_sample = [t for t in result.unknown_sample if t not in gone]
    result.known_imported = result.rows_imported - result.unknown_tickers
    _refuse_if_unusable(result, prepared.max_reject_ratio)
    return Prepared(result, copy_text, rows, prepared.known, prepared.max_reject_ratio)


BeforeCommit = Callable[[Any, SessionResult], None]


def store(conn, batch: list[Prepared], *, run_id: str | None = None,
          before_commit: BeforeCommit | None = None) -> list[SessionResult]:
    """Write whole sessions in ONE transaction: COPY into staging, ONE statement into ohlcv_daily, one
    import record each. First (one catalog statement) the rows the real ohlcv_daily columns cannot hold
    are rejected (`fit`); a session left unusable raises DataError and nothing is written.

    The statement is the upsert; when no bar of these dates exists yet (checked in the transaction,
    through the date index) it is the same INSERT without ON CONFLICT, which costs the server half as
    much (a backfill). Should another writer add such a bar meanwhile, the unique index refuses the
    INSERT and the whole transaction rolls back (DataError). Several sessions in one statement touch
    each leaf page of the (symbol, date) index once instead of once per session.
    """
    import psycopg

    from tickstockpl.db.check import ohlcv_limits

    limits = ohlcv_limits(conn)
    batch = [fit(p, limits) for p in batch]
    results = [p.result for p in batch]
    dates = [r.session for r in results]
    try:
        with conn.transaction():
            with conn.cursor() as cur:
                cur.execute(STAGE_DDL)
                with cur.copy("COPY pl_ohlcv_stage (symbol, date, open, high, low, close, volume) FROM STDIN") as copy:
                    for prepared in batch:
                        if prepared.copy_text is not None:
                            copy.write(prepared.copy_text)
                        else:
                            for t, o, h, l, c, v in prepared.rows:
                                copy.write_row((t, prepared.result.session, o, h, l, c, v))
                if cur.execute(NO_BARS_YET, (dates,)).fetchone()[0]:
                    cur.execute(INSERT_NEW)
                    written = {r.session: r.rows_imported for r in results}
                else:
                    written = dict(cur.execute(UPSERT).fetchall())
                cur.executemany(RECORD, [(r.session, r.provider, r.rows_imported, r.rows_rejected,
                                          r.unknown_tickers, json.dumps(r.rejections), run_id) for r in results])
            for result in results:
                result.rows_written = int(written.get(result.session, 0))
                if before_commit is not None:
                    before_commit(conn, result)
    except psycopg.errors.UniqueViolation:
        raise DataError(f"another writer added bars for {', '.join(map(str, dates))} during the import;"
                        " nothing imported (run it again)") from None
    return results


def write_session(conn, data: SessionData, *, known: frozenset[str] | None, provider: str,
                  run_id: str | None = None, before_commit: BeforeCommit | None = None,
                  max_reject_ratio: float = MAX_REJECT_RATIO) -> SessionResult:
    """Validate and store one session in one transaction; raises DataError (nothing written) when unusable."""
    return store(conn, [prepare(data, known=known, provider=provider, max_reject_ratio=max_reject_ratio)],
                 run_id=run_id, before_commit=before_commit)[0]


def _reason_text(result: SessionResult) -> str:
    if not result.reasons:
        return ""
    return ": " + ", ".join(f"{kind} x{count}" for kind, count in result.reasons.items())
