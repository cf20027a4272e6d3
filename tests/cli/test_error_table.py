"""One table of errors (errors.py): each class carries its HTTP status and exit code, the API's handler
and the CLI read it, and a driver's error is translated once (db.connect.translate, events.relay.translate)."""

from __future__ import annotations

import httpx
import psycopg
import pytest
import redis
from fastapi import FastAPI
from psycopg_pool import PoolTimeout

from tickstockpl import errors
from tickstockpl.api.app import _install_error_handlers
from tickstockpl.cli import describe
from tickstockpl.db.drivers import as_tickstock


def _import_every_module() -> None:
    """Every module of the package, so that a TickStockError subclass defined anywhere is seen."""
    import importlib
    import pkgutil

    import tickstockpl

    for info in pkgutil.walk_packages(tickstockpl.__path__, "tickstockpl."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)


def _classes(root=errors.TickStockError):
    found = [root]
    for sub in root.__subclasses__():
        found.extend(_classes(sub))
    return found


def _instance(cls):
    if cls is errors.ValidationFailed:
        return cls(["no bars"])
    if cls is errors.JobConflict:
        return cls("a sync is live", "job-1")
    if cls is errors.UnusableValue:
        return cls("NumericValueOutOfRange", "integer out of range")
    return cls(f"{cls.__name__} happened")


EXPECTED = {  # class: (HTTP status, exit code) as the API and the CLI answered before the table existed
    errors.TickStockError: (400, 1), errors.ConfigError: (422, 2), errors.DataError: (422, 1),
    errors.ValidationFailed: (422, 1), errors.UnusableValue: (422, 1), errors.SchemaError: (400, 1),
    errors.StatementRefused: (500, 1), errors.ServiceUnavailable: (503, 3), errors.JobConflict: (409, 4),
    errors.NotFound: (404, 1), errors.NotReady: (409, 1), errors.PhaseUnavailable: (422, 1), errors.PhaseFailed: (400, 1),
    errors.Cancelled: (400, 1), errors.ProviderError: (400, 1), errors.LiquidityError: (400, 1),
    errors.SessionIncomplete: (400, 1), errors.NotPublishedYet: (400, 1),
    errors.AuthError: (401, 1),
    errors.AddressUnavailable: (400, 5),
}


def test_every_class_is_in_the_table_and_every_exit_code_is_documented():
    documented = dict(errors.EXIT_CODES)
    _import_every_module()
    elsewhere = [f"{c.__module__}.{c.__name__}" for c in _classes() if c.__module__ != errors.__name__]
    assert not elsewhere, f"define these in errors.py, with their status and exit code: {elsewhere}"
    assert set(_classes()) == set(EXPECTED)
    for cls in _classes():
        assert (cls.http_status, cls.exit_code) == EXPECTED[cls], cls
        assert cls.exit_code in documented
        assert describe(_instance(cls))[1] == cls.exit_code


@pytest.fixture
def client():
    app = FastAPI()
    _install_error_handlers(app)
    raised: list[BaseException] = []

    @app.get("/raise")
    async def raise_it():
        raise raised[0]

    async def answer(err: BaseException) -> httpx.Response:
        raised[:] = [err]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                     base_url="http://t") as c:
            return await c.get("/raise")

    return answer


async def test_the_api_answers_each_class_with_its_status(client):
    for cls in _classes():
        err = _instance(cls)
        answer = await client(err)
        assert answer.status_code == cls.http_status, cls
        body = answer.json()
        assert body["success"] is False
        if cls.http_status == 500:
            assert body["message"] == "internal error"
        elif cls is errors.ServiceUnavailable:
            assert body["message"] == "database unavailable: try again shortly"
        else:
            assert body["message"] == err.public_message()
    conflict = (await client(_instance(errors.JobConflict))).json()
    assert conflict["job_id"] == "job-1"
    assert (await client(errors.AuthError("missing X-API-Key header"))).headers["WWW-Authenticate"] == "X-API-Key"


@pytest.mark.parametrize("driver_error, cls, status, code, message", [
    (psycopg.OperationalError("connection to server at \"10.0.0.7\" failed\nDETAIL: x"), errors.ServiceUnavailable,
     503, 3, "PostgreSQL is unavailable: connection to server at \"10.0.0.7\" failed"),
    (psycopg.InterfaceError("the connection is closed"), errors.ServiceUnavailable, 503, 3,
     "PostgreSQL is unavailable: the connection is closed"),
    (PoolTimeout("couldn't get a connection after 5.00 sec"), errors.ServiceUnavailable, 503, 3,
     "no database connection free: couldn't get a connection after 5.00 sec"),
    (psycopg.errors.NumericValueOutOfRange("integer out of range"), errors.UnusableValue, 422, 1,
     "PostgreSQL refused a statement: NumericValueOutOfRange: integer out of range"),
    (psycopg.errors.UniqueViolation("duplicate key value"), errors.StatementRefused, 500, 1,
     "PostgreSQL refused a statement: UniqueViolation: duplicate key value"),
    (redis.exceptions.ConnectionError("Error 111 connecting to 10.0.0.8:6380."), errors.ServiceUnavailable, None, 3,
     "Redis is unavailable: Error 111 connecting to 10.0.0.8:6380."),
])
async def test_a_driver_error_is_translated_once_and_both_edges_agree(client, driver_error, cls, status, code,
                                                                      message):
    translated = as_tickstock(driver_error)
    assert type(translated) is cls and str(translated) == message
    cli_line, exit_code = describe(driver_error)
    assert exit_code == code and cli_line.startswith(message)
    if status is not None:  # the API's driver handler: psycopg (and psycopg_pool) errors
        answer = await client(driver_error)
        assert answer.status_code == status
        assert "10.0.0.7" not in answer.text  # a 503 or 500 never carries the driver's text


async def test_the_api_body_of_an_unusable_value_and_of_an_exhausted_pool(client):
    assert (await client(psycopg.errors.NumericValueOutOfRange("integer out of range"))).json()["message"] == \
        "a value in the request cannot be used: integer out of range"
    assert (await client(PoolTimeout("couldn't get a connection"))).json()["message"] == \
        "database unavailable (no connection within the time limit)"


@pytest.mark.parametrize("value, expected", [
    (ValueError("first\nsecond"), "first"), (ValueError("\n  padded  \n"), "padded"), (ValueError(""), "ValueError"),
    ("", ""), ("  text\nmore", "text"),
])
def test_first_line(value, expected):
    assert errors.first_line(value) == expected


async def test_an_exhausted_pool_is_not_logged_per_request_a_lost_connection_is(client, caplog):
    """As before the table: during an outage the pool's timeouts add no log lines (the outage is logged
    once down and once back); a connection lost in a route is a warning with the driver's detail."""
    with caplog.at_level("WARNING", logger="tickstockpl.api.app"):
        assert (await client(PoolTimeout("couldn't get a connection"))).status_code == 503
        assert not caplog.records
        assert (await client(psycopg.OperationalError("server closed the connection at /tmp/.s.PGSQL.5432"))
                ).status_code == 503
    assert [r.levelname for r in caplog.records] == ["WARNING"] and ".s.PGSQL" in caplog.records[0].getMessage()
