"""Every error TickStockPL raises on purpose, in one place, each class with its HTTP status and exit code.

    class                          status exit  meaning
    TickStockError                   400   1    base class: a message a user can act on
    ├── ConfigError                  422   2    settings or universe configuration is invalid (bad env, option, date)
    ├── DataError                    422   1    the market data cannot be used (bad provider rows)
    │   ├── ValidationFailed         422   1    pre-sync checks refused the data (skipped by `force`)
    │   └── UnusableValue            422   1    PostgreSQL refused a value sent to it (driver DataError)
    ├── SchemaError                  400   1    the shared tables' shapes do not let PL work (`db check`)
    ├── StatementRefused             500   1    PostgreSQL refused a statement (any other driver error)
    ├── ServiceUnavailable           503   3    PostgreSQL or Redis cannot be reached (or no pooled connection)
    ├── JobConflict                  409   4    a sync or pipeline run is already live; carries the live id
    ├── NotFound                     404   1    an unknown job, run or universe
    ├── PhaseUnavailable             422   1    a pipeline phase that this installation does not provide
    ├── PhaseFailed                  400   1    a pipeline phase did not complete (the run is recorded failed)
    │   └── SessionIncomplete        400   1    the provider never published the whole session by the deadline
    ├── Cancelled                    400   1    a run or job was cancelled by a user
    ├── ProviderError                400   1    an import provider failed (HTTP error, malformed body, rate limit)
    │   └── NotPublishedYet          400   1    the provider has nothing for the session yet (waited for)
    ├── LiquidityError               400   1    pl_symbol_liquidity cannot be moved to a session incrementally
    ├── AuthError                    401   1    missing or wrong X-API-Key
    └── AddressUnavailable           400   5    `serve` cannot listen on its address (port in use)

`http_status` and `exit_code` are the one table: the API's handler (`api/app.py`) answers
`http_status` with `public_message()` as the body's message (a 500 says only "internal error"), and the
CLI (`cli.py`) prints `str(err)` on one line and exits `exit_code`; EXIT_CODES below is what
`tickstockpl --help` lists. Driver errors (psycopg, redis) are turned into these classes once:
`db.connect.translate` (psycopg, psycopg_pool) and `events.relay.translate` (redis), both asked by
`db.drivers.as_tickstock`.
"""

from __future__ import annotations

# Every exit code of the `tickstockpl` command and what it means (`tickstockpl --help`, docs/OPERATIONS.md).
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "success"),
    (1, "the job failed or was refused (validation, a phase, the schema check)"),
    (2, "usage or configuration error (option, date, variable, database URL)"),
    (3, "PostgreSQL or Redis unavailable (unreachable, no database, refused)"),
    (4, "conflict: a sync job or pipeline run is already live"),
    (5, "serve cannot listen on its address (the port is in use)"),
    (130, "interrupted (Ctrl-C)"),
    (143, "the demo was stopped by SIGTERM"),
)
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


def first_line(value: BaseException | str) -> str:
    """The first non-blank line of an error's text, stripped; an exception with no text gives its
    class name, an empty string gives ''. The one place a multi-line driver message is cut to a line."""
    for line in str(value).strip().splitlines():
        if line.strip():
            return line.strip()
    return value.__class__.__name__ if isinstance(value, BaseException) else ""


class TickStockError(Exception):
    """Base class; `str(err)` is the one-line message shown to users."""

    http_status = 400
    exit_code = 1
    debug_hint = False  # the CLI adds "run with --debug for the traceback" (unexpected, not the user's doing)

    def public_message(self) -> str:
        """What an API answer says (never a driver's text naming hosts, ports or socket paths)."""
        return str(self) or self.__class__.__name__


class ConfigError(TickStockError):
    http_status, exit_code = 422, 2


class DataError(TickStockError):
    http_status = 422


class ValidationFailed(DataError):
    """Pre-sync validation refused the data; `problems` lists each reason."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("pre-sync validation failed: " + "; ".join(self.problems))


class UnusableValue(DataError):
    """PostgreSQL refused a value (out of range, not representable): the CLI says which statement
    class refused it, an API answer says the request held it."""

    debug_hint = True

    def __init__(self, driver_class: str, text: str):
        self.text = text
        super().__init__(f"PostgreSQL refused a statement: {driver_class}: {text}")

    def public_message(self) -> str:
        return "a value in the request cannot be used: " + self.text


class SchemaError(TickStockError):
    """A shared table has a shape PL cannot work with (db/check.py); the message names the first failure
    and its fix, `report` holds every finding."""

    def __init__(self, message: str, report=None):
        self.report = report
        super().__init__(message)


class StatementRefused(TickStockError):
    """PostgreSQL refused a statement for a reason other than a value or a lost connection: a fault of
    PL or of the database, not of the caller (an API answer is 500 "internal error", logged)."""

    http_status = 500

    def __init__(self, message: str, *, debug_hint: bool = True):
        self.debug_hint = debug_hint
        super().__init__(message)

    def public_message(self) -> str:
        return "internal error"


class ServiceUnavailable(TickStockError):
    """A service cannot be reached. The answer names the service only; `public` overrides it.
    `logged=False`: the API does not log it per request (an exhausted pool during an outage: the outage
    itself is logged once down and once back, tickstockpl.outages)."""

    http_status, exit_code = 503, 3

    def __init__(self, message: str, *, public: str | None = None, logged: bool = True):
        self.public = public
        self.logged = logged
        super().__init__(message)

    def public_message(self) -> str:
        if self.public is not None:
            return self.public
        if "Redis" in str(self):
            return "Redis unavailable: try again shortly"
        return "database unavailable: try again shortly"


class JobConflict(TickStockError):
    http_status, exit_code = 409, 4

    def __init__(self, message: str, live_id: str | None):
        self.live_id = live_id
        super().__init__(message)


class NotFound(TickStockError):
    http_status = 404


class NotReady(TickStockError):
    """The answer needs state that is not there yet (e.g. an explanation of a rule universe while the
    liquidity statistics do not stand at the newest session); the message says what to do."""

    http_status = 409


class PhaseUnavailable(TickStockError):
    http_status = 422


class PhaseFailed(TickStockError):
    """A phase did not complete; the run stops and is recorded as failed with this message."""


class SessionIncomplete(PhaseFailed):
    """The provider never published the whole session before the deadline (pipeline/completeness.py):
    the run is recorded `incomplete`, not failed; the morning catch-up picks the session up."""


class Cancelled(TickStockError):
    pass


class ProviderError(TickStockError):
    pass


class NotPublishedYet(ProviderError):
    """The provider has nothing for the session yet (a flat file not there yet): the completeness gate
    waits and asks again (pipeline/completeness.py); any other ProviderError fails the run."""


class LiquidityError(TickStockError):
    """The liquidity table (market/liquidity.py) cannot be moved to the asked session incrementally
    (empty, a gap, or ahead of it)."""


class AuthError(TickStockError):
    """Missing or wrong key; the API answers 401 with a JSON body and `WWW-Authenticate`."""

    http_status = 401

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class AddressUnavailable(TickStockError):
    """`serve` cannot listen on its address (in use, or not permitted)."""

    exit_code = 5

