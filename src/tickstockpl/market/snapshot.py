"""The immutable market snapshot a sync builds from, and its loader.

A `Snapshot` holds every row of `symbols` with its latest close on or before the as-of date
and the effective market cap (contract §6.4):

    market_cap = latest close × weighted_shares_outstanding   when both exist and are positive
               = symbols.market_cap                           otherwise
    non-finite, zero or negative => None (the stock is then not eligible)

`load` reads it with one statement: the rows, then one header row with the dates. The `version`
column of `snap` (a hash of the symbol, the xmin of its row, and the date and xmin of the bar it
read: any insert or update gives a row a new xmin, a delete makes another bar the one read) lets
`sync.fingerprint` tell cheaply whether anything read has changed since an earlier sync.
The latest close comes from the rows of the latest
session (found through the index on `ohlcv_daily(date)`), and only symbols without a bar that
day fall back to a per-symbol lookup on the unique `(symbol, date)` index, so the cost does not
grow with years of history.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import NamedTuple

from tickstockpl import clock

STOCK_TYPE = "CS"
ETF_TYPE = "ETF"


class Security(NamedTuple):
    """One row of `symbols` with its latest close and effective cap. A NamedTuple rather than a
    frozen dataclass: building 12,000 of them per sync costs half as much (measured)."""

    symbol: str
    name: str | None
    type: str | None
    active: bool
    market_cap: float | None  # effective cap (see module docstring); None when unknown or invalid
    primary_exchange: str | None = None
    market: str | None = None
    sector: str | None = None
    industry: str | None = None
    list_date: dt.date | None = None
    etf_type: str | None = None
    issuer: str | None = None
    aum_millions: float | None = None
    last_close: float | None = None
    last_bar_date: dt.date | None = None

    @property
    def is_stock(self) -> bool:
        return self.active and self.type == STOCK_TYPE

    @property
    def is_etf(self) -> bool:
        return self.active and self.type == ETF_TYPE

    @property
    def is_eligible_stock(self) -> bool:
        """Contract §5: active, type CS, with a known, finite, positive market cap."""
        return self.is_stock and self.market_cap is not None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the builders may look at, as of one date. Plain data, no I/O."""

    as_of: dt.date
    securities: tuple[Security, ...]
    latest_session: dt.date | None = None  # newest date with bars on or before as_of
    bars_on_latest_session: int = 0
    expected_session: dt.date | None = None  # newest closed NYSE session on or before as_of
    previous_session: dt.date | None = None  # newest date with bars before latest_session
    bars_on_previous_session: int | None = None  # None: not read (the coverage check then compares nothing)
    _eligible: tuple[Security, ...] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def eligible_stocks(self) -> tuple[Security, ...]:
        """The securities that are eligible stocks (contract §5), in order: made on first use and kept (the
        sync and its validation ask; a replayed session's snapshot, which neither asks, pays nothing)."""
        if self._eligible is None:
            object.__setattr__(self, "_eligible", tuple(s for s in self.securities if s.is_eligible_stock))
        return self._eligible

    def by_symbol(self) -> dict[str, Security]:
        return {s.symbol: s for s in self.securities}


def effective_market_cap(
    close: float | None, shares: float | None, stored_cap: float | None
) -> float | None:
    """Contract §6.4, with invalid values (NaN, inf, <= 0) treated as unknown."""
    if _positive(close) and _positive(shares):
        cap = float(close) * float(shares)
        if math.isfinite(cap) and cap > 0:
            return cap
    return float(stored_cap) if _positive(stored_cap) else None


def _positive(value) -> bool:
    if value is None:
        return False
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(number) and number > 0


# The as-of date (given, or the newest NYSE session closed by `now`) and the expected session (the
# newest session closed by `now` on or before it, for pre-sync validation) come out of the same
# statement. `now` is the market clock (tickstockpl.clock), sent as a parameter: see `params`.
_PARAMS = """
WITH params AS (
    SELECT coalesce(%(as_of)s::date,
                    (SELECT max(session) FROM pl_sessions_effective WHERE close_utc <= %(now)s::timestamptz),
                    (%(now)s::timestamptz AT TIME ZONE %(tz)s::text)::date) AS as_of
), expected AS (
    SELECT max(session) AS day FROM pl_sessions_effective
    WHERE session <= (SELECT as_of FROM params) AND close_utc <= %(now)s::timestamptz
), latest AS (
    SELECT max(date) AS day FROM ohlcv_daily WHERE date <= (SELECT as_of FROM params)
), prior_day AS (
    SELECT max(date) AS day FROM ohlcv_daily WHERE date < (SELECT day FROM latest)
)"""

# The common table expressions of every snapshot statement: `params`, `expected`, `latest`,
# `day_bars` and `snap`, one row per symbols row: its 16 SNAPSHOT_COLUMNS and `version`.
CTES = _PARAMS + """, day_bars AS (
    SELECT o.symbol, o.close, o.date, o.xmin AS version
    FROM ohlcv_daily o
    WHERE o.date = (SELECT day FROM latest)
), snap AS MATERIALIZED (
    SELECT s.symbol, s.name, s.type, coalesce(s.active, false) AS active, s.market_cap::float8 AS market_cap,
           s.weighted_shares_outstanding::float8 AS shares, s.primary_exchange, s.market, s.sector,
           s.industry, s.list_date, s.etf_type, s.issuer, s.aum_millions::float8 AS aum_millions,
           coalesce(d.close, back.close)::float8 AS close, coalesce(d.date, back.date) AS bar_date,
           hash_record_extended(ROW(s.symbol, s.xmin, coalesce(d.date, back.date),
                                    coalesce(d.version, back.version)), 0) AS version
    FROM symbols s
    LEFT JOIN day_bars d ON d.symbol = s.symbol
    LEFT JOIN LATERAL (
        SELECT o.close, o.date, o.xmin AS version
        FROM ohlcv_daily o
        WHERE d.symbol IS NULL AND o.symbol = s.symbol AND o.date <= (SELECT as_of FROM params)
        ORDER BY o.date DESC
        LIMIT 1
    ) back ON true
)"""

SNAPSHOT_COLUMNS = ("symbol", "name", "type", "active", "market_cap", "shares", "primary_exchange", "market",
                    "sector", "industry", "list_date", "etf_type", "issuer", "aum_millions", "close", "bar_date")
# The header: as-of date, expected session, latest session with bars and its number of bars, the
# session with bars before it and its number of bars (for validation's coverage check; both counts go
# through the index on ohlcv_daily(date): the rows of one day each). Named columns of the header row
# (symbol NULL, last), read by name (`read`), never by position.
HEADER = {
    "h_as_of": ("(SELECT as_of FROM params)", "date"),
    "h_expected": ("(SELECT day FROM expected)", "date"),
    "h_latest": ("(SELECT day FROM latest)", "date"),
    "h_latest_bars": ("(SELECT count(*) FROM day_bars)", "bigint"),
    "h_previous": ("(SELECT day FROM prior_day)", "date"),
    "h_previous_bars": ("(SELECT count(*) FROM ohlcv_daily o WHERE o.date = (SELECT day FROM prior_day))", "bigint"),
}


@dataclass(frozen=True)
class Gate:
    """What a caller adds to the snapshot statement (sync/fingerprint.py): more common table
    expressions after CTES (starting with a comma), a condition on the data rows (false: only the header
    row comes back), and more header columns (name -> (SQL expression, type))."""

    ctes: str = ""
    where: str = "true"
    header: dict[str, tuple[str, str]] = field(default_factory=dict)


def rows_sql(gate: Gate = Gate()) -> str:
    """CTES, the gate's CTEs, the `snap` rows (WHERE the gate's condition) with NULL header columns,
    then one header row (symbol NULL), last."""
    header = {**HEADER, "h_rows": (f"({gate.where})", "boolean"), **gate.header}
    nulls = ", ".join(f"NULL::{kind} AS {name}" for name, (_, kind) in header.items())
    values = ", ".join(f"{expression}::{kind}" for expression, kind in header.values())
    return (f"{CTES}{gate.ctes}\nSELECT {', '.join(SNAPSHOT_COLUMNS)}, {nulls} FROM snap WHERE {gate.where}\n"
            f"UNION ALL\n"
            f"SELECT {', '.join(['NULL'] * len(SNAPSHOT_COLUMNS))}, {values}")


LOAD_SQL = rows_sql()


def params(as_of: dt.date | None) -> dict[str, object]:
    """The parameters of CTES: the as-of date (None: the newest closed session) and the market
    clock's now (tickstockpl.clock), which decides which sessions have closed, and the market's zone."""
    return {"as_of": as_of, "now": clock.now(), "tz": clock.NEW_YORK_TZ}


@dataclass(frozen=True)
class Loaded:
    """What `read` found: the header row's values by column name, and the snapshot (None when the
    gate's condition was false: `h_rows` of the header)."""

    header: dict[str, object]
    snapshot: "Snapshot | None"


def read(conn, as_of: dt.date | None = None, *, sql: str = LOAD_SQL, extra: dict[str, object] | None = None) -> Loaded:
    """One snapshot statement (`sql`: LOAD_SQL or another rows_sql(gate), `extra`: the gate's parameters),
    one round trip, results in binary (12,000 rows convert faster, measured)."""
    with conn.cursor(binary=True) as cur:
        cur.execute(sql, {**params(as_of), **(extra or {})})
        names = [column.name for column in cur.description]
        rows = cur.fetchall()
    header = dict(zip(names[len(SNAPSHOT_COLUMNS):], rows[-1][len(SNAPSHOT_COLUMNS):]))
    return Loaded(header, from_rows(rows[:-1], header) if header["h_rows"] else None)


def load(conn, as_of: dt.date | None = None) -> Snapshot:
    """Read symbols and latest closes as of `as_of` (default: the newest NYSE session closed by the
    market clock) in one statement; the snapshot also carries the session validation expects bars for."""
    return read(conn, as_of).snapshot


def from_rows(data, header: dict[str, object]) -> Snapshot:
    """The snapshot of the data rows of `rows_sql` (columns after SNAPSHOT_COLUMNS are ignored) and its
    header row's values by name."""
    resolved, expected, latest_session = header["h_as_of"], header["h_expected"], header["h_latest"]
    bars, previous_session, previous_bars = header["h_latest_bars"], header["h_previous"], header["h_previous_bars"]
    securities = []
    append = securities.append
    inf = math.inf
    for (symbol, name, typ, active, cap, shares, pex, market, sector, industry, list_date, etf_type,
         issuer, aum, close, bar_date, *_) in data:
        if close.__class__ is float and shares.__class__ is float and 0.0 < close < inf and 0.0 < shares < inf \
                and 0.0 < (product := close * shares) < inf:
            effective = product  # the common case of effective_market_cap, inlined (12,000 calls)
        else:
            effective = effective_market_cap(close, shares, cap)
        append(Security(
            symbol, name, typ, active, effective, pex, market, sector, industry, list_date, etf_type, issuer,
            aum if aum is not None and math.isfinite(aum) else None, close, bar_date,
        ))
    securities.sort(key=lambda s: s.symbol)
    return Snapshot(as_of=resolved, securities=tuple(securities), latest_session=latest_session,
                    bars_on_latest_session=int(bars or 0), expected_session=expected,
                    previous_session=previous_session,
                    bars_on_previous_session=int(previous_bars) if previous_session is not None else None)
