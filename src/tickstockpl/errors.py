"""Every error TickStockPL raises on purpose, in one place.

    TickStockError                 base class: a message a user can act on
    ├── ConfigError                settings or universe configuration is invalid (bad env, malformed cache_config row)
    ├── DataError                  the market data cannot be used (validation before a sync, bad provider rows)
    │   └── ValidationFailed       pre-sync checks refused the data (skipped by `force`)
    ├── SchemaError                the shared tables' shapes do not let PL work (`db check`); carries the report
    ├── ServiceUnavailable         PostgreSQL or Redis cannot be reached
    ├── JobConflict                a sync or pipeline run is already live (single-flight); carries the live id
    ├── NotFound                   an unknown job, run or universe
    ├── PhaseUnavailable           a pipeline phase that this installation does not provide
    ├── Cancelled                  a run or job was cancelled by a user
    ├── ProviderError              an import provider failed (HTTP error, malformed body, rate limit exhausted)
    └── AddressUnavailable         `serve` cannot listen on its address (port in use): exit code 5

The API maps these classes to status codes in one handler (`api/app.py`); the CLI prints the
message on one line and exits non-zero (`cli.py`). Driver errors (psycopg, redis) are translated
into these once, at the edge that calls the driver.
"""

from __future__ import annotations


class TickStockError(Exception):
    """Base class; `str(err)` is the one-line message shown to users."""


class ConfigError(TickStockError):
    pass


class DataError(TickStockError):
    pass


class ValidationFailed(DataError):
    """Pre-sync validation refused the data; `problems` lists each reason."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("pre-sync validation failed: " + "; ".join(self.problems))


class SchemaError(TickStockError):
    """A shared table has a shape PL cannot work with (db/check.py); the message names the first failure
    and its fix, `report` holds every finding."""

    def __init__(self, message: str, report=None):
        self.report = report
        super().__init__(message)


class ServiceUnavailable(TickStockError):
    pass


class JobConflict(TickStockError):
    def __init__(self, message: str, live_id: str | None):
        self.live_id = live_id
        super().__init__(message)


class NotFound(TickStockError):
    pass


class PhaseUnavailable(TickStockError):
    pass


class Cancelled(TickStockError):
    pass


class ProviderError(TickStockError):
    pass


class AddressUnavailable(TickStockError):
    """`serve` cannot listen on its address (in use, or not permitted)."""
