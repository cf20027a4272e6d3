"""The daily pipeline (contract §7): schedule, Phase 2 data import, Phase 2.5 cache sync, runs.

    schedule.py      pure schedule maths (NYSE sessions, DST) and the schedule as a value
    schedule_store.py  the stored schedule (pl_pipeline_schedule) and its `schedule_updated` event
    scheduler.py     the APScheduler loop of a `serve` process (starts automatic runs)
    imports/         providers (REST grouped daily, flat files), row validation and the atomic writer
    coordinator.py   runs: phases in order, single-flight, events through the outbox
    runs.py          stored runs: status, history, cancel, abandoned-run recovery
    cli.py           `tickstockpl pipeline run`
"""

PHASES = ("data_import", "cache_sync", "indicator_processing", "pattern_detection")
