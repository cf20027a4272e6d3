"""Single flight over HTTP: 20 simultaneous triggers -> one job, nineteen 409s naming it."""

from __future__ import annotations

import threading

import httpx
import psycopg

from tests.support.databases import SymbolsLocked
from tests.support.waiting import wait_status

TRIGGER = "/api/processing/cache-sync/trigger"
CALLERS = 20


def test_twenty_simultaneous_triggers_start_exactly_one_job(live, db_url, market):
    server = live  # twenty connections at once to a real server
    barrier = threading.Barrier(CALLERS)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def call() -> None:
        with server.client() as c:
            barrier.wait()
            response = c.post(TRIGGER, json={"mode": "full", "force": False})
        with lock:
            answers.append(response)

    with SymbolsLocked(db_url) as held:  # the winner stays live until every caller has its answer
        threads = [threading.Thread(target=call) for _ in range(CALLERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        held.release()

    codes = sorted(r.status_code for r in answers)
    assert codes == [202] + [409] * (CALLERS - 1), [(r.status_code, r.text) for r in answers]
    winner = next(r.json()["job_id"] for r in answers if r.status_code == 202)
    assert {r.json()["job_id"] for r in answers if r.status_code == 409} == {winner}
    assert all(r.json()["success"] is False and r.json()["message"] for r in answers if r.status_code == 409)
    with server.client() as c:
        assert wait_status(c, winner, ("completed", "failed"))["status"] == "completed"
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM pl_sync_jobs").fetchone()[0] == 1
