"""Flat-file provider: a directory of daily gzip CSV files, one per session.

A session's file is `{folder}/{YYYY-MM-DD}.csv.gz` or, as the provider's bucket lays them out,
`{folder}/{YYYY}/{MM}/{YYYY-MM-DD}.csv.gz`. The header must be exactly

    ticker,volume,open,close,high,low,window_start,transactions

with `window_start` in epoch nanoseconds. A missing file, another header, or a truncated or corrupt
gzip stream is a ProviderError (the session is then not imported at all); a line that cannot be read
is rejected with its line number and reason.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import zlib
from pathlib import Path

from tickstockpl.errors import ProviderError
from tickstockpl.pipeline.imports.session import SessionData

HEADER = ("ticker", "volume", "open", "close", "high", "low", "window_start", "transactions")
COLUMNS = {name: i for i, name in enumerate(HEADER)}


def session_file(folder: Path, session: dt.date) -> Path:
    """The path a session's file is written to (the flat layout)."""
    return Path(folder) / f"{session.isoformat()}.csv.gz"


class FlatFileProvider:
    name = "flatfiles"

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"FlatFileProvider({str(self.folder)!r})"

    def close(self) -> None:
        return None

    def find(self, session: dt.date) -> Path:
        day = session.isoformat()
        for candidate in (session_file(self.folder, session),
                          self.folder / f"{session.year:04d}" / f"{session.month:02d}" / f"{day}.csv.gz"):
            if candidate.is_file():
                return candidate
        raise ProviderError(f"no flat file for session {day} in {self.folder} (expected {day}.csv.gz)")

    def fetch(self, session: dt.date) -> SessionData:
        path = self.find(session)
        try:
            text = gzip.decompress(path.read_bytes()).decode("utf-8")
        except (EOFError, gzip.BadGzipFile, zlib.error) as err:
            raise ProviderError(f"flat file {path.name} is truncated or not valid gzip ({err})") from None
        except UnicodeDecodeError:
            raise ProviderError(f"flat file {path.name} is not UTF-8 text") from None
        except OSError as err:
            raise ProviderError(f"cannot read flat file {path.name}: {err.strerror or err}") from None
        return parse_csv(text, session, path.name)


def _records(text: str):
    """Fields of each line: a plain split when the text has no quotes (the provider's files), else csv."""
    if '"' in text:
        return csv.reader(io.StringIO(text))
    return (line.split(",") if line else [] for line in text.splitlines())


def parse_csv(text: str, session: dt.date, label: str = "flat file") -> SessionData:
    reader = iter(_records(text))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != HEADER:
        raise ProviderError(f"{label}: the header must be exactly {','.join(HEADER)}"
                            f" (got {','.join(header) if header else 'an empty file'})")
    rows, rejected = [], []
    append = rows.append
    for line_no, fields in enumerate(reader, start=2):
        if len(fields) != 8:
            if fields:  # a blank line is not a row
                rejected.append((f"line {line_no}", f"expected 8 fields, got {len(fields)}"))
            continue
        ticker, volume, open_, close, high, low, window_start, _transactions = fields
        try:
            append((ticker, float(open_), float(high), float(low), float(close), float(volume), int(window_start)))
        except ValueError:
            rejected.append((ticker or f"line {line_no}", _which_field(fields, line_no)))
    return SessionData(session, rows, rejected)


def _which_field(fields: list[str], line_no: int) -> str:
    for name in ("volume", "open", "close", "high", "low"):
        try:
            float(fields[COLUMNS[name]])
        except ValueError:
            return f"line {line_no}: {name} is not a number ({fields[COLUMNS[name]][:20]!r})"
    return f"line {line_no}: window_start is not an integer ({fields[COLUMNS['window_start']][:25]!r})"
