"""Several processes on one database: one sync at a time, the same live job seen from every process,
and one scheduled pipeline run per session.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psycopg

from tests.support.markets import load_market
from tests.support.waiting import wait_status
from tests.live_server import LiveServer, as_url
from tests.reliability.support import assert_one_job_at_a_time, sync_jobs

TRIGGER = "/api/processing/cache-sync/trigger"
FIRE_SCRIPT = Path(__file__).with_name("fire_scheduler.py")
NEW_YORK = ZoneInfo("America/New_York")
SCHEDULERS = 3


def _simultaneous(servers: list[LiveServer], per_server: int) -> list[httpx.Response]:
    """`per_server` triggers on each server, all released at once."""
    barrier = threading.Barrier(per_server * len(servers))
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def call(server: LiveServer) -> None:
        with server.client() as c:
            barrier.wait()
            response = c.post(TRIGGER, json={"mode": "full"})
        with lock:
            answers.append(response)

    threads = [threading.Thread(target=call, args=(s,)) for s in servers for _ in range(per_server)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return answers


def test_two_servers_share_one_live_job_and_run_one_sync_at_a_time(db_url, redis_process):
    load_market(db_url)
    with LiveServer(db_url, redis_url=redis_process.url) as a, LiveServer(db_url, redis_url=redis_process.url) as b:
        gate = psycopg.connect(db_url)
        gate.execute("LOCK TABLE symbols IN ACCESS EXCLUSIVE MODE")  # the job stays live while we look
        with a.client() as ca, b.client() as cb:
            job_id = ca.post(TRIGGER, json={"mode": "full"}).json()["job_id"]
            wait_status(cb, job_id, ("running",))  # B sees A's job
            for client in (cb, ca):
                refused = client.post(TRIGGER, json={"mode": "ipos"})
                assert refused.status_code == 409 and refused.json()["job_id"] == job_id, refused.text
            answers = _simultaneous([a, b], 6)
            assert {r.status_code for r in answers} == {409}
            assert {r.json()["job_id"] for r in answers} == {job_id}
            gate.rollback()
            gate.close()
            assert wait_status(cb, job_id, ("completed", "failed"))["status"] == "completed"

            gate = psycopg.connect(db_url)  # the winner stays live until every caller has its answer
            gate.execute("LOCK TABLE symbols IN ACCESS EXCLUSIVE MODE")
            answers = _simultaneous([a, b], 6)  # nothing live: exactly one of twelve wins, on either server
            gate.rollback()
            gate.close()
            codes = sorted(r.status_code for r in answers)
            assert codes == [202] + [409] * 11, [(r.status_code, r.text) for r in answers]
            winner = next(r.json()["job_id"] for r in answers if r.status_code == 202)
            assert {r.json()["job_id"] for r in answers if r.status_code == 409} == {winner}
            assert wait_status(ca, winner, ("completed", "failed"))["status"] == "completed"
    assert_one_job_at_a_time(db_url)
    assert len(sync_jobs(db_url)) == 2


def _fire_in_processes(db_url: str, now: dt.datetime, folder: Path) -> list[dict]:
    go = folder / f"go-{now.timestamp():.0f}"
    procs = [subprocess.Popen([sys.executable, str(FIRE_SCRIPT), as_url(db_url), now.isoformat(), str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(SCHEDULERS)]
    for proc in procs:  # every process has built its scheduler and is polling for the file
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_schedulers_in_several_processes_start_one_run_per_session(db_url, tmp_path):
    session = load_market(db_url)[0]
    fire = dt.datetime.combine(session, dt.time(16, 10), tzinfo=NEW_YORK).astimezone(dt.timezone.utc)
    now = fire + dt.timedelta(minutes=20)  # within the catch-up window of that firing

    first = _fire_in_processes(db_url, now, tmp_path)
    started = [r["started"] for r in first if r["started"]]
    assert len(started) == 1, first
    later = _fire_in_processes(db_url, now + dt.timedelta(minutes=40), tmp_path)  # every process looks again
    assert [r["started"] for r in later] == [None] * SCHEDULERS, later

    with psycopg.connect(db_url) as conn:
        runs = conn.execute("SELECT run_id::text, trigger_type, session_date, status FROM pl_pipeline_runs").fetchall()
        syncs = conn.execute("SELECT count(*) FROM pl_sync_jobs WHERE triggered_by = 'pipeline'").fetchone()[0]
    assert runs == [(started[0], "automatic", session, "success")]
    assert syncs == 1
    assert_one_job_at_a_time(db_url)
