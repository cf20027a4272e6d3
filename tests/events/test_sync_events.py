"""Events of real syncs, received by a real Redis subscriber: channel, name, payload, order, after commit."""

from __future__ import annotations

import re

import psycopg
import pytest

from tests.support.events import completed
from tests.support.markets import IPO_SYMBOL, delist
from tickstockpl.errors import ValidationFailed
from tickstockpl.jobs.runtime import start_job

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

# Literal strings from the contract (§3.2), not the catalog's constants: they must agree.
TRIGGERED = ("tickstock:cache:sync_triggered", "cache_sync_triggered")
COMPLETE = ("tickstock:cache:sync_complete", "cache_sync_completed")
UPDATED = ("tickstock:universe:updated", "universe_updated")
IPO = ("tickstock:cache:ipo_assignment", "ipo_assignment")
DELISTING = ("tickstock:cache:delisting_cleanup", "delisting_cleanup")
PROGRESS = ("tickstock:cache:progress", "cache_sync_progress")


def _of(sub, channel_event, job_id):
    channel, event = channel_event
    return [b for c, b in sub.messages if c == channel and b["event"] == event and b["payload"].get("job_id") == job_id]


def _check_envelope(body):
    assert set(body) == {"event_id", "event", "timestamp", "source", "version", "payload"}
    assert next(iter(body)) == "event_id" and isinstance(body["event_id"], int)  # the outbox id, first
    assert body["version"] == "1.0" and ISO_Z.match(body["timestamp"]) and body["source"]


def _outbox_messages(db_url):
    with psycopg.connect(db_url) as conn:
        return [m for (m,) in conn.execute("SELECT message FROM pl_event_outbox ORDER BY id")]


def test_a_sync_announces_itself_its_universes_ipos_delistings_and_its_end(db_url, market, subscriber, relay):
    first = start_job(db_url, as_of=market[1], background=False, triggered_by="cli")
    subscriber.wait_for(completed(first.job_id))
    delist(db_url, "S003", "S007")
    second = start_job(db_url, mode="full", background=False, triggered_by="scheduler")
    subscriber.wait_for(completed(second.job_id))

    for channel, body in subscriber.messages:
        _check_envelope(body)

    (trig,) = _of(subscriber, TRIGGERED, second.job_id)
    assert trig["payload"] == {"job_id": second.job_id, "mode": "full", "force": False, "triggered_by": "scheduler"}

    (done,) = _of(subscriber, COMPLETE, second.job_id)
    p = done["payload"]
    assert p["status"] == "completed" and p["mode"] == "full"
    assert p["total_changes"] == second.result.total_changes > 0
    assert p["universes_updated"] == second.result.universes_updated > 0
    assert isinstance(p["duration_seconds"], float) and p["duration_seconds"] >= 0

    updates = _of(subscriber, UPDATED, second.job_id)
    assert len(updates) == second.result.universes_updated
    by_universe = {u["payload"]["universe"]: u["payload"] for u in updates}
    top10 = by_universe["stock_universe:market_leaders:top_10_stocks"]
    assert top10["action"] == "updated" and top10["removed"] == 2 and top10["added"] == 2
    assert set(top10["removed_symbols"]) == {"S003", "S007"}
    assert {"universe", "action", "added", "removed"} <= set(top10)

    (cleanup,) = _of(subscriber, DELISTING, second.job_id)
    assert cleanup["payload"]["removed_count"] == 2 and sorted(cleanup["payload"]["symbols"]) == ["S003", "S007"]

    ipos = _of(subscriber, IPO, first.job_id)
    assert [i["payload"]["symbol"] for i in ipos] == [IPO_SYMBOL]
    assert ipos[0]["payload"]["universe"] == "stock_universe:ipos:recent_ipos"
    assert _of(subscriber, IPO, second.job_id) == []  # announced once, not on every sync

    progress = _of(subscriber, PROGRESS, second.job_id)
    assert progress and progress[-1]["payload"]["percent"] == 100.0
    assert {"total_steps", "completed_steps", "current_task", "percent"} <= set(progress[0]["payload"])
    percents = [e["payload"]["percent"] for e in progress]
    assert percents == sorted(percents)

    # Everything arrived, once each, in commit order, as the exact text stored in the outbox.
    import json

    received = [json.dumps(b, separators=(",", ":")) for _c, b in subscriber.messages]
    assert received == _outbox_messages(db_url)


def test_a_failed_sync_ends_with_completed_status_failed_and_the_error(db_url, market, subscriber, relay):
    with psycopg.connect(db_url) as conn:  # no bars for the newest session: validation refuses
        conn.execute("DELETE FROM ohlcv_daily WHERE date = %s", (market[0],))
    with pytest.raises(ValidationFailed):
        start_job(db_url, background=False, triggered_by="api")
    # both events, each on its channel (the subscriber may get one before the other: waiting only for the
    # completed event read the error channel too early under load)
    subscriber.wait_for(lambda m: {COMPLETE[0], "tickstock:errors"} <= {c for c, _ in m})
    (done,) = [b for c, b in subscriber.messages if c == COMPLETE[0]]
    assert done["event"] == "cache_sync_completed"
    assert done["payload"]["status"] == "failed"
    assert "no bars" in done["payload"]["error"]
    errors = [b for c, b in subscriber.messages if c == "tickstock:errors"]
    assert errors and errors[0]["severity"] == "error" and errors[0]["error_id"] and errors[0]["message"]
    # cache_sync_error, never processing_error: AppV2 marks its last pipeline run failed on a processing_error
    assert [e["event"] for e in errors] == ["cache_sync_error"]
    assert errors[0]["payload"]["component"] == errors[0]["component"] == "cache_sync"
    assert errors[0]["payload"]["job_id"] == done["payload"]["job_id"] and "run_id" not in errors[0]["payload"]


def test_events_arrive_only_after_the_data_they_describe_is_committed(db_url, market, subscriber, relay):
    seen: list[tuple[str, bool]] = []

    def check(channel, body):
        payload = body["payload"]
        with psycopg.connect(db_url) as fresh:
            if channel == UPDATED[0]:
                type_, name, key = payload["universe"].split(":", 2)
                row = fresh.execute(
                    "SELECT count(*) FROM pl_sync_change_rows WHERE job_id = %s AND universe = %s",
                    (payload["job_id"], payload["universe"]),
                ).fetchone()
                exists = fresh.execute(
                    "SELECT count(*) FROM cache_entries WHERE type = %s AND name = %s AND key = %s",
                    (type_, name, key),
                ).fetchone()
                seen.append((channel, row[0] > 0 and exists[0] == 1))
            elif channel == COMPLETE[0]:
                status = fresh.execute("SELECT status FROM pl_sync_jobs WHERE job_id = %s",
                                       (payload["job_id"],)).fetchone()[0]
                seen.append((channel, status == payload["status"]))
            elif channel == TRIGGERED[0]:
                row = fresh.execute("SELECT 1 FROM pl_sync_jobs WHERE job_id = %s", (payload["job_id"],)).fetchone()
                seen.append((channel, row is not None))

    subscriber.on_message(check)
    handle = start_job(db_url, as_of=market[1], background=False, triggered_by="cli")
    subscriber.wait_for(completed(handle.job_id))
    assert len([s for s in seen if s[0] == UPDATED[0]]) == handle.result.universes_updated
    assert all(ok for _c, ok in seen), [s for s in seen if not s[1]]
