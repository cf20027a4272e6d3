"""Prometheus metrics, computed from the database at scrape time.

Reading them from `pl_sync_jobs` and `pl_event_outbox` (not from in-process counters) makes every
serving process report the same numbers, whichever process (API, scheduler, CLI) ran the jobs.

    tickstockpl_sync_jobs{status}                      jobs by status (all time, this environment)
    tickstockpl_sync_last_success_timestamp_seconds    end time of the newest completed job (0 if none)
    tickstockpl_sync_duration_seconds (histogram)      durations of completed jobs
    tickstockpl_outbox_pending_events                  outbox rows not yet delivered to Redis
    tickstockpl_outbox_oldest_pending_age_seconds      age of the oldest of them (0 if none)
    tickstockpl_events_relayed_total                   events this process's relay published
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tickstockpl.jobs import reports

CONTENT_TYPE = CONTENT_TYPE_LATEST
DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
STATUSES = ("pending", "running", "completed", "failed")


class _Snapshot:
    """A collector yielding metric families that were computed before collection."""

    def __init__(self, families):
        self._families = families

    def collect(self):
        return iter(self._families)


async def render(aconn, environment: str, relay=None) -> bytes:
    """The scrape, read on the API's AsyncConnection (GET /metrics is its only caller)."""
    view = await reports.metrics_view(aconn, environment, DURATION_BUCKETS)
    counts, last_ok = view.by_status, view.last_completed_epoch
    pending, oldest = await (await aconn.execute(
        "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8"
        " FROM pl_event_outbox WHERE delivered_at IS NULL"
    )).fetchone()

    jobs = GaugeMetricFamily("tickstockpl_sync_jobs", "Cache sync jobs by status", labels=["status"])
    for status in STATUSES:
        jobs.add_metric([status], counts.get(status, 0))
    total, total_sum, cumulative = view.durations
    buckets = [(str(b), c) for b, c in zip(DURATION_BUCKETS, cumulative)] + [("+Inf", total)]
    families = [
        jobs,
        GaugeMetricFamily("tickstockpl_sync_last_success_timestamp_seconds",
                          "Unix time at which the newest completed sync ended", value=last_ok),
        HistogramMetricFamily("tickstockpl_sync_duration_seconds", "Duration of completed cache syncs",
                              buckets=buckets, sum_value=total_sum),
        GaugeMetricFamily("tickstockpl_outbox_pending_events", "Events waiting in the outbox for Redis",
                          value=pending),
        GaugeMetricFamily("tickstockpl_outbox_oldest_pending_age_seconds",
                          "Age of the oldest event waiting in the outbox", value=oldest),
    ]
    if relay is not None:
        families.append(CounterMetricFamily("tickstockpl_events_relayed", "Events this process published to Redis",
                                            value=relay.delivered))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    return generate_latest(registry)
