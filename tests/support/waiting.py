"""One bounded wait, and the waits on the API built on it. A timeout only bounds a wait; no test asserts
how long something took (docs: no timed tests)."""

from __future__ import annotations

import time
from typing import Any, Callable

FINISHED = ("completed", "failed")


def wait_until(condition: Callable[[], Any], timeout: float, message: str = "condition", every: float = 0.05):
    """Poll until `condition()` is truthy; returns its value. Fails naming `message` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} not reached within {timeout:.0f} s")
        time.sleep(every)


def wait_status(client, job_id: str, statuses: tuple[str, ...] = FINISHED, timeout: float = 60.0) -> dict:
    """Poll the cache-sync status endpoint until the job reaches one of `statuses`; returns the body."""
    last: list[Any] = [None]

    def reached():
        response = client.get(f"/api/processing/cache-sync/status/{job_id}")
        assert response.status_code == 200, response.text
        last[0] = response.json()
        return last[0] if last[0]["status"] in statuses else None

    try:
        return wait_until(reached, timeout, f"job {job_id} reaching {statuses}")
    except AssertionError as err:
        raise AssertionError(f"{err}; last: {last[0]}") from None


def wait_pipeline_idle(client, timeout: float = 90.0) -> dict[str, Any]:
    """Poll GET /api/processing/status until no run is live; returns the last body."""
    def idle():
        body = client.get("/api/processing/status").json()
        return body if not body["is_running"] else None

    return wait_until(idle, timeout, "the pipeline run finishing", every=0.1)
