"""One scheduler process for test_two_servers: `python fire_scheduler.py DB_URL NOW_ISO GO_FILE`.

Builds the pipeline scheduler of a `serve` process with the market clock fixed at NOW_ISO
(TICKSTOCKPL_NOW, tickstockpl.clock), prints `ready`, waits until GO_FILE exists
(so that every process fires together), calls its own entry point `refresh()` (which fires the run of a
session whose 16:10 passed within the catch-up window), then waits until no pipeline run is live and
prints one JSON line: {"started": <run id or null>, "next_run": <ISO>}.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> int:
    db_url, now_iso, go_file = sys.argv[1:4]
    from tickstockpl.db.connect import connection
    from tickstockpl.pipeline import coordinator
    from tickstockpl.pipeline.scheduler import PipelineScheduler
    from tickstockpl.settings import Settings

    os.environ["TICKSTOCKPL_NOW"] = now_iso  # the process's market clock
    scheduler = PipelineScheduler(Settings(database_url=db_url), db_url)
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(go_file):
        if time.monotonic() > deadline:
            return 2
        time.sleep(0.002)
    next_run = scheduler.refresh()
    deadline = time.monotonic() + 120
    with connection(db_url, autocommit=True) as conn:  # let a run started here finish before exiting
        while coordinator.is_running(conn) and time.monotonic() < deadline:
            time.sleep(0.05)
    print(json.dumps({"started": scheduler.last_started, "next_run": next_run.isoformat() if next_run else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
