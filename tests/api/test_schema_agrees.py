"""The OpenAPI document and the answers agree (the nits schemathesis found).

`since` is a date-time, never a Unix time (`0.5` was read as 1970-01-01T00:00:00.5Z); the schedule
update's fields may be left out but are not nullable, and a null answers 422 (the document said
nullable); the trigger's date pattern refuses `0000-00-00` and months or days that do not exist; a
method a path does not have answers 405 with every method it does have in `Allow` (`OPTIONS
/api/processing/schedule` named GET only). The app runs in process (tests/support/asgi.py); the checks that
change nothing share one per module (`keyed`).
"""

from __future__ import annotations

import re

from tickstockpl.api.models import DATE_PATTERN


def test_since_is_a_date_time_not_an_epoch(keyed):
    client = keyed
    for number in ("0.5", "1700000000", "-1", "1e9", ".5"):
        answer = client.get("/api/universes/changes", params={"since": number})
        assert answer.status_code == 422, (number, answer.text)
        assert "ISO-8601 date-time" in answer.json()["message"]
    for good in ("2026-11-27T00:00:00Z", "2026-11-27T09:30:00-05:00", "2026-11-27T00:00:00"):
        assert client.get("/api/universes/changes", params={"since": good}).status_code == 200, good


def test_schedule_fields_are_optional_never_null(client, market):
    document = client.get("/openapi.json").json()
    schema = document["components"]["schemas"]["ProcessingScheduleUpdate"]
    for name, field in schema["properties"].items():
        assert "anyOf" not in field and field.get("type") != "null" and "default" not in field, (name, field)
    assert "required" not in schema
    for name in schema["properties"]:
        answer = client.post("/api/processing/schedule", json={name: None})
        assert answer.status_code == 422, (name, answer.text)
        assert answer.json()["errors"][0]["field"] == name
    assert client.post("/api/processing/schedule", json={}).status_code == 200  # nothing sent: nothing changes
    assert client.post("/api/processing/schedule", json={"enabled": False}).json()["enabled"] is False


def test_the_date_pattern_takes_only_real_looking_dates(keyed):
    client = keyed
    document = client.get("/openapi.json").json()
    pattern = document["components"]["schemas"]["ProcessingTriggerRequest"]["properties"]["date"]["anyOf"][0]["pattern"]
    assert pattern == DATE_PATTERN
    for bad in ("0000-00-00", "2026-00-10", "2026-13-01", "2026-11-00", "2026-11-32", "0000-11-27", "2026-1-27"):
        assert not re.match(pattern, bad), bad
        answer = client.post("/api/processing/trigger-manual", json={"date": bad, "phases": ["cache_sync"]})
        assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "date", (bad, answer.text)
    for good in ("2026-11-27", "0001-01-01", "2026-02-28", "2026-12-31"):
        assert re.match(pattern, good), good
    # a day the month does not have matches the pattern; the route refuses it, naming the field
    answer = client.post("/api/processing/trigger-manual", json={"date": "2026-02-30", "phases": ["cache_sync"]})
    assert answer.status_code == 422 and "date" in answer.json()["message"], answer.text


def test_a_405_lists_every_method_of_the_path(keyed):
    client = keyed
    document = client.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        documented = sorted(m.upper() for m in operations)
        answer = client.request("OPTIONS", concrete)
        assert answer.status_code == 405, (path, answer.status_code)
        assert answer.headers["Allow"].split(", ") == documented, (path, answer.headers.get("Allow"))
    assert client.request("PUT", "/api/processing/schedule").headers["Allow"] == "GET, POST"
