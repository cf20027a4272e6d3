"""The benchmark's first-answer figures (bench/extra.py `first_answers`) cover every operation of the API.

The figures themselves are measured by `python -m bench`, never asserted in a test.
"""

from __future__ import annotations

import re

from bench import api_bench
from tickstockpl.api.app import create_app
from tickstockpl.settings import Settings


def test_first_requests_cover_every_operation_of_the_api():
    app = create_app(Settings(database_url="postgresql://x@127.0.0.1:1/x", api_keys=("k" * 16,)))
    operations = {(method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops}
    operations.add(("GET", "/openapi.json"))  # served by FastAPI itself, not listed in its own paths
    sent = set()
    for method, template, _body in api_bench.FIRST_REQUESTS:
        path = template.split("?")[0]
        matching = {(m, p) for m, p in operations
                    if m == method and re.fullmatch(re.sub(r"\{\w+\}", r"[^/]+", p), path)}
        assert matching, f"{method} {template} is no operation of the API"
        sent |= matching
    assert operations - sent == set()
