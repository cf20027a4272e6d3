"""What a provider returns: one session's rows (`SessionData`), and the `Provider` protocol.

A row is the tuple `(ticker, open, high, low, close, volume, timestamp_ns)`; a field the provider could
not read is None. Re-exported by the package (`tickstockpl.pipeline.imports`); the providers and the
writer import it from here, so the package can pick a provider without an import cycle.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol

Row = tuple  # (ticker, open, high, low, close, volume, timestamp_ns)


@dataclass
class SessionData:
    session: dt.date
    rows: list[Row]
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (ticker or "line N", reason)


class Provider(Protocol):
    """Fetches one NYSE session of daily bars for the whole US stock market."""

    name: str

    def fetch(self, session: dt.date) -> SessionData: ...

    def close(self) -> None: ...
