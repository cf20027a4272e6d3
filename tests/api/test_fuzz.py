"""Schemathesis over the OpenAPI document against a live server, with and without the key: never
a 5xx, and every answer conforms to the documented schema. Bounded: a few examples per operation.

The schema is built from `create_app` at collection time (no server needed for that); the test
checks that the running server serves the same document.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)

from tests.api.conftest import KEYS
from tests.support.markets import load_market
from tests.conftest import MARKET_NOW
from tests.live_server import LiveServer
from tests.servers import RedisProcess
from tests.support.databases import fresh_database
from tickstockpl.api.app import create_app
from tickstockpl.settings import Settings

EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
DOCUMENT = create_app(Settings(database_url="postgresql://unused/db", api_keys=KEYS)).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def fuzz_server(pg, schema_template):
    """One live server for the module: the fuzzed requests change nothing another case relies on."""
    with fresh_database(pg, schema_template, "fuzz") as url:
        load_market(url)
        redis = RedisProcess().start()
        # a generous trigger limit, so that fuzzed triggers reach the handler (429 is tested elsewhere)
        live = LiveServer(url, redis_url=redis.url, api_keys=KEYS,
                          env={"TICKSTOCKPL_TRIGGER_RATE_PER_MIN": "100000", "TICKSTOCKPL_NOW": MARKET_NOW}).start()
        yield live
        live.close()
        redis.close()


def test_the_server_serves_the_fuzzed_document(fuzz_server):
    import httpx

    assert httpx.get(fuzz_server.url + "/openapi.json").json() == DOCUMENT


@schema.parametrize()  # positive and negative data (schemathesis default)
@FUZZ
def test_with_the_key(case, fuzz_server):
    case.call_and_validate(base_url=fuzz_server.url, headers={"X-API-Key": KEYS[0]}, checks=CHECKS, timeout=30)


@schema.parametrize()
@settings(FUZZ, max_examples=EXAMPLES // 3)
def test_without_the_key(case, fuzz_server):
    response = case.call(base_url=fuzz_server.url, headers={"X-API-Key": "not-a-valid-key-000"}, timeout=30)
    assert response.status_code < 500, response.text
    if case.path.startswith("/api/"):
        allowed = {401} if case.method.upper() == case.operation.method.upper() else {401, 405}
        assert response.status_code in allowed, (case.method, case.path, response.status_code, response.text)
        assert response.json()["success"] is False
