"""Putting a sample market (market/sample.py) into PostgreSQL and into daily flat files.

    write(conn, market)                          symbols (COPY, text) + ohlcv_daily (COPY, binary)
    write_flat_files(market, folder, sessions)   one `YYYY-MM-DD.csv.gz` per session
    apply_next_session(conn, market, nxt)        the IPO row, the delisting, the new session's bars

Nothing here commits: rows go into the caller's transaction. Bars are written session by session
(the physical order of a table filled by a daily import) in PostgreSQL's binary COPY format, built
with numpy: each price is sent as a numeric of three base-10000 digits and two decimals (leading
zero digits are allowed by `numeric_recv`), so 2.9 million bars are encoded in under two seconds
while the server's own insert cost (about 9 µs a row into the indexed table here) dominates.
"""

from __future__ import annotations

import datetime as dt
import functools
import gzip
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from tickstockpl.clock import NEW_YORK
from tickstockpl.market.sample_data import BAR_COLUMNS, FLAT_FILE_COLUMNS, SYMBOL_COLUMNS

if TYPE_CHECKING:
    from tickstockpl.market.sample import NextSession, SampleMarket

_SYMBOL_COLUMNS = SYMBOL_COLUMNS
_BAR_COLUMNS = BAR_COLUMNS
_FLAT_HEADER = ",".join(FLAT_FILE_COLUMNS) + "\n"
_PG_EPOCH = dt.date(2000, 1, 1)
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_COPY_TRAILER = b"\xff\xff"


def write(conn, market: "SampleMarket") -> None:
    """Load every symbols row and every bar of `market` (tables assumed empty of these keys)."""
    write_symbols(conn, market.symbols)
    write_bars(conn, market)


def write_symbols(conn, rows: Iterable[dict]) -> int:
    """COPY rows (dicts keyed by symbols columns; missing keys are NULL) into `symbols`."""
    statement = sql.SQL("COPY symbols ({}) FROM STDIN").format(sql.SQL(", ").join(map(sql.Identifier, _SYMBOL_COLUMNS)))
    count = 0
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(tuple(row.get(column) for column in _SYMBOL_COLUMNS))
            count += 1
    return count


def write_bars(conn, market: "SampleMarket", session_indexes: Iterable[int] | None = None) -> int:
    """COPY the bars of the given sessions (indexes into market.sessions; default all); returns rows."""
    indexes = range(len(market.sessions)) if session_indexes is None else list(session_indexes)
    names, lengths = _symbol_bytes(market.bar_symbols)
    statement = sql.SQL("COPY ohlcv_daily ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.SQL(", ").join(map(sql.Identifier, _BAR_COLUMNS)))
    count = 0
    with conn.cursor() as cur, cur.copy(statement, writer=QueuedLibpqWriter(cur)) as copy:
        copy.write(_COPY_SIGNATURE)
        for j in indexes:
            bars = market.session_bars(j)
            count += len(bars.rows)
            for chunk in _encode(names, lengths, bars):
                copy.write(chunk)
        copy.write(_COPY_TRAILER)
    return count


def _symbol_bytes(symbols: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [s.encode("utf-8") for s in symbols]
    width = max((len(e) for e in encoded), default=1)
    return np.array(encoded, dtype=f"S{width}"), np.array([len(e) for e in encoded], dtype=np.int64)


@functools.lru_cache(maxsize=32)
def _record_type(symbol_length: int) -> np.dtype:
    """One binary COPY tuple of (symbol, date, open, high, low, close, volume), big-endian, packed."""
    fields = [("nfields", ">i2"), ("symbol_len", ">i4"), ("symbol", f"S{symbol_length}"),
              ("date_len", ">i4"), ("date", ">i4")]
    for p in ("o", "h", "l", "c"):
        fields += [(f"{p}_len", ">i4"), (f"{p}_ndigits", ">i2"), (f"{p}_weight", ">i2"),
                   (f"{p}_sign", ">u2"), (f"{p}_dscale", ">i2"), (f"{p}_digits", ">i2", (3,))]
    fields += [("volume_len", ">i4"), ("volume", ">i8")]
    return np.dtype(fields)


def _encode(names: np.ndarray, lengths: np.ndarray, bars) -> Iterable[bytes]:
    """Binary COPY tuples for one session, grouped by symbol length (fixed-size records per group)."""
    day_number = (bars.day - _PG_EPOCH).days
    row_lengths = lengths[bars.rows]
    for length in np.unique(row_lengths).tolist():
        pick = row_lengths == length
        records = np.zeros(int(pick.sum()), dtype=_record_type(length))
        records["nfields"] = len(_BAR_COLUMNS)
        records["symbol_len"] = length
        records["symbol"] = names[bars.rows[pick]]
        records["date_len"] = 4
        records["date"] = day_number
        for p, cents in (("o", bars.open), ("h", bars.high), ("l", bars.low), ("c", bars.close)):
            value = cents[pick]
            dollars = value // 100
            records[f"{p}_len"] = 8 + 2 * 3
            records[f"{p}_ndigits"] = 3
            records[f"{p}_weight"] = 1
            records[f"{p}_dscale"] = 2
            records[f"{p}_digits"] = np.stack([dollars // 10000, dollars % 10000, (value % 100) * 100], axis=1)
        records["volume_len"] = 8
        records["volume"] = bars.volume[pick]
        yield records.tobytes()


def write_flat_files(market: "SampleMarket", folder: Path | str, sessions: Iterable[dt.date]) -> list[Path]:
    """One gzip CSV per session, named YYYY-MM-DD.csv.gz, header exactly
    `ticker,volume,open,close,high,low,window_start,transactions`, rows sorted by ticker;
    window_start = the session date at 00:00 America/New_York in epoch nanoseconds.
    The files are byte-identical for the same market (gzip mtime 0)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    index = {day: j for j, day in enumerate(market.sessions)}
    tz = NEW_YORK
    paths = []
    for day in sessions:
        if day not in index:
            raise ValueError(f"{day} is not a session of this sample market")
        bars = market.session_bars(index[day])
        start_ns = int(dt.datetime.combine(day, dt.time(0, 0), tzinfo=tz).timestamp()) * 1_000_000_000
        tickers = [market.bar_symbols[r] for r in bars.rows.tolist()]
        order = sorted(range(len(tickers)), key=tickers.__getitem__)
        o, h, lo, c = (a.tolist() for a in (bars.open, bars.high, bars.low, bars.close))
        v, n = bars.volume.tolist(), bars.transactions.tolist()
        lines = [_FLAT_HEADER]
        for i in order:
            lines.append(f"{tickers[i]},{v[i]},{_money(o[i])},{_money(c[i])},{_money(h[i])},{_money(lo[i])},"
                         f"{start_ns},{n[i]}\n")
        path = folder / f"{day.isoformat()}.csv.gz"
        with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
            out.write("".join(lines).encode("utf-8"))
        paths.append(path)
    return paths


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def apply_next_session(conn, market: "SampleMarket", nxt: "NextSession") -> None:
    """Put `nxt` (from sample.next_session(market)) into a database that holds `market`:
    insert the IPO's symbols row, mark the delisted symbol inactive, COPY the new session's bars."""
    if nxt.market.sessions[:-1] != market.sessions:
        raise ValueError("this next session does not follow the given market")
    write_symbols(conn, [nxt.market.by_symbol[nxt.ipo]])
    gone = nxt.market.by_symbol[nxt.delisted]
    conn.execute(
        "UPDATE symbols SET active = false, last_updated = %s, last_updated_utc = %s WHERE symbol = %s",
        (gone["last_updated"], gone["last_updated_utc"], nxt.delisted),
    )
    write_bars(conn, nxt.market, [len(nxt.market.sessions) - 1])
