"""kill -9 of the serving process while a large sync is inside its write transaction.

The market has 4,000 common stocks and 400 ETFs: where the kill lands is set by a lock, not by the size
(with 20,000 + 2,000, until 2026-12-03, the module's setup alone took 17-20 s of a suite run). The kill is
made to land inside the write: the test holds `LOCK TABLE pl_sync_changes IN SHARE MODE`, so the sync's
transaction has already upserted and deleted `cache_entries` rows and then waits on its change-log COPY;
the test sees that backend waiting (pg_stat_activity) and holding its row-exclusive lock on cache_entries
(pg_locks) before it kills the server with SIGKILL.

Expected: cache_entries equals the complete old state (checksum), no change log, membership or
data event of the killed job exists, the job becomes `failed` ("abandoned") when a server starts,
and the next sync writes exactly the state a sync without a crash writes (checksum of a twin
database synced without interference).
"""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from tests.support.events import Subscriber
from tests.support.waiting import wait_status
from tests.conftest import MARKET_NOW
from tests.live_server import LiveServer
from tests.reliability.support import backend_waiting, checksum, job_events, job_row, server_backends
from tests.support.waiting import wait_until
from tickstockpl.events import catalog

STOCKS, ETFS, SESSIONS = 4_000, 400, 3
END = dt.date(2026, 11, 27)  # the newest session closed at the market clock (tests.conftest.MARKET_NOW)
TRIGGER = "/api/processing/cache-sync/trigger"
DATA_EVENTS = {catalog.EV_UNIVERSE_UPDATED, catalog.EV_IPO_ASSIGNMENT, catalog.EV_DELISTING_CLEANUP}
SERVER_APPS = ("tickstockpl", "tickstockpl-api", "tickstockpl-relay")


@pytest.fixture(scope="module")
def large_market(controlled_pg, rel_schema):
    """(template database holding the old state, checksum of the new state a clean sync writes).

    Old state: a sync as of the second newest session. New state: a sync as of the newest one (what
    the API's trigger uses: the last completed session), computed on a twin database.
    """
    from tickstockpl import clock
    from tickstockpl.jobs.runtime import start_job
    from tickstockpl.market.sample import generate, write

    market = generate(stocks=STOCKS, etfs=ETFS, sessions=SESSIONS, end=END, seed=23)
    name = controlled_pg.create_database("large", template=rel_schema)
    url = controlled_pg.url(name)
    with psycopg.connect(url) as conn:
        write(conn, market)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE symbols")
        conn.execute("VACUUM ANALYZE ohlcv_daily")
    with pytest.MonkeyPatch.context() as patch:  # module scope: before the per-test market_clock
        patch.setenv(clock.ENV, MARKET_NOW)
        start_job(url, triggered_by="cli", as_of=market.sessions[-2], background=False)
        twin = controlled_pg.create_database("large_twin", template=name)
        start_job(controlled_pg.url(twin), triggered_by="cli", background=False)
    new_state = checksum(controlled_pg.url(twin))
    controlled_pg.drop_database(twin)
    yield name, new_state
    controlled_pg.drop_database(name)


def test_kill_9_inside_the_write_keeps_the_old_state_and_the_next_sync_writes_the_new_one(
        controlled_pg, large_market, redis_process):
    template, new_state = large_market
    name = controlled_pg.create_database("crash", template=template)
    url = controlled_pg.url(name)
    old_state = checksum(url)
    assert old_state != new_state and old_state[1] > 50  # one row per universe
    server = LiveServer(url, redis_url=redis_process.url)
    subscriber = Subscriber(redis_process.url, (catalog.UNIVERSE_UPDATED, catalog.CACHE_SYNC_COMPLETE))
    gate = psycopg.connect(url)
    try:
        gate.execute("LOCK TABLE pl_sync_changes IN SHARE MODE")  # the write will wait here, mid-transaction
        server.start()
        with server.client() as c:
            accepted = c.post(TRIGGER, json={"mode": "full"})
            assert accepted.status_code == 202, accepted.text
            job_id = accepted.json()["job_id"]
            wait_until(lambda: backend_waiting(url, "COPY pl_sync_changes"), 180, "the sync reaching its change-log COPY")
        writer_holds = gate.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.relation = 'cache_entries'::regclass AND l.mode = 'RowExclusiveLock' AND l.granted"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"  # copies share oids
            " AND a.wait_event_type = 'Lock' AND a.query LIKE 'COPY pl_sync_changes%'").fetchone()[0]
        assert writer_holds == 1, "the kill must land after cache_entries was written, inside the transaction"

        server.kill()  # SIGKILL: the process gets no chance to clean up
        gate.rollback()  # let the orphaned backend run into its dead client
        for app in SERVER_APPS:
            wait_until(lambda app=app: server_backends(url, app) == 0, 60, f"backends of {app} gone")

        assert checksum(url) == old_state  # the complete old state: nothing of the killed write is visible
        assert job_row(url, job_id)["status"] == "running"  # nobody has looked at it yet
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM pl_sync_change_rows WHERE job_id = %s", (job_id,)).fetchone()[0] == 0
            assert conn.execute("SELECT count(*) FROM pl_universe_membership WHERE job_id = %s",
                                (job_id,)).fetchone()[0] == 0
        before_restart = [e for _c, e, _p in job_events(url, job_id)]
        assert set(before_restart) <= {catalog.EV_CACHE_SYNC_TRIGGERED, catalog.EV_CACHE_SYNC_STARTED,
                                       catalog.EV_CACHE_SYNC_PROGRESS}, before_restart

        server.start()  # startup recovery: the lock is free, so the live row is an orphan
        with server.client() as c:
            failed = wait_status(c, job_id, ("failed", "completed"), timeout=60)
            assert failed["status"] == "failed" and failed["error_details"].startswith("abandoned")
            events = job_events(url, job_id)
            assert not [e for _c, e, _p in events if e in DATA_EVENTS]  # no event for uncommitted work
            completions = [p for c, e, p in events if c == catalog.CACHE_SYNC_COMPLETE and e == catalog.EV_CACHE_SYNC_COMPLETED]
            assert len(completions) == 1 and completions[0]["status"] == "failed"

            again = c.post(TRIGGER, json={"mode": "full"})
            assert again.status_code == 202, again.text
            done = wait_status(c, again.json()["job_id"], ("completed", "failed"), timeout=180)
            assert done["status"] == "completed", done
        assert checksum(url) == new_state  # the complete new state, as a sync without a crash writes it
        assert [e for _c, e, _p in job_events(url, again.json()["job_id"]) if e in DATA_EVENTS]
        subscriber.wait_for(lambda m: any(b["payload"].get("job_id") == again.json()["job_id"]
                                          and c == catalog.CACHE_SYNC_COMPLETE for c, b in m), timeout=60)
        assert not [b for _c, b in subscriber.messages
                    if b["event"] == catalog.EV_UNIVERSE_UPDATED and b["payload"]["job_id"] == job_id]
    finally:
        gate.close()
        subscriber.close()
        server.close()
        controlled_pg.drop_database(name)
