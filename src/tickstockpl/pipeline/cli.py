"""`tickstockpl pipeline run`: one manual run in the foreground, a summary on stdout.

A run that fails or is cancelled raises after printing, so the command exits non-zero
(cli.py turns the error into one line: exit 1; 4 when another run is live).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

from tickstockpl.errors import Cancelled, ConfigError


def run_from_cli(settings, date: dt.date | None, phases: list[str], skip_market_check: bool,
                 as_json: bool, *, provider=None) -> dict[str, Any]:
    from tickstockpl.errors import PhaseFailed
    from tickstockpl.pipeline.coordinator import get_run, trigger_run

    if not settings.database_url:
        raise ConfigError("DATABASE_URL is not set (use `tickstockpl demo` to try everything on embedded servers)")
    from tickstockpl.pipeline.imports import provider_configured

    if provider is None and "all" in phases and not provider_configured(settings):
        from tickstockpl.db.connect import connect

        connect(settings.database_url).close()  # an unreachable database is the one line, not this note
        print("note: no import provider is configured (set TICKSTOCKPL_FLATFILES_DIR or MASSIVE_API_KEY), so this"
              " run cannot import bars: it runs cache_sync only, on the bars already in ohlcv_daily",
              file=sys.stderr, flush=True)
    handle = trigger_run(settings, settings.database_url, trigger_type="manual", session_date=date,
                         phases=phases, skip_market_check=skip_market_check, background=False, provider=provider)
    from tickstockpl.db.connect import connection

    with connection(settings.database_url, autocommit=True) as conn:
        run, phase_rows = get_run(conn, handle.run_id)
    summary = {**run.to_history(), "phase_results": phase_rows}
    if as_json:
        print(json.dumps(summary, default=str))
    else:
        _print_human(summary)
    if run.status == "cancelled":
        raise Cancelled(f"pipeline run {run.run_id} was cancelled")
    if run.status != "success":
        raise PhaseFailed(f"pipeline run {run.run_id} {run.status}: {_cli_words(run.error)}")
    return summary


def _print_human(summary: dict[str, Any]) -> None:
    """The run in plain words: one line for the run, one per phase (no internal field names)."""
    print(f"pipeline run {summary['run_id']} for session {summary['session_date']}: {summary['status']}"
          f" in {summary['duration_seconds']:.2f} s; {summary['symbols_processed']} active symbols with bars that"
          f" session, {summary['symbols_failed']} rows rejected")
    for phase in summary["phase_results"]:
        counts = phase["counts"] or {}
        took = f" in {phase['duration_seconds']:.2f} s" if phase["duration_seconds"] is not None else ""
        head = f"  {phase['phase']}: {phase['status']}{took}"
        if phase["phase"] == "data_import" and counts:
            head += (f"; {counts.get('sessions_imported', 0)} of {counts.get('sessions_requested', 0)} session(s)"
                     f" imported from {counts.get('provider', 'the provider')}, {counts.get('rows_imported', 0)} bars,"
                     f" {counts.get('rows_rejected', 0)} rejected, {counts.get('unknown_tickers', 0)} bars of tickers"
                     " not in symbols (imported)")
            if counts.get("sessions_left_out"):
                head += f", {counts['sessions_left_out']} older session(s) left out"
        elif phase["phase"] == "cache_sync" and counts.get("job_id"):
            head += (f"; job {counts['job_id']}: {counts.get('universes_updated', 0)} universes written,"
                     f" {counts.get('universes_unchanged', 0)} unchanged, {counts.get('total_changes', 0)} changes,"
                     f" {counts.get('eligible_stocks', 0)} eligible stocks")
        if phase["error"] and phase["status"] != "success":
            head += f"; error: {_cli_words(phase['error'])}"
        print(head)


def _cli_words(error: str | None) -> str | None:
    """A run's error in this command's words: the API's field names become the commands to run."""
    if error is None:
        return None
    return error.replace("run the data import first or pass force",
                         "run `tickstockpl pipeline run --phases data_import` first (it needs an import provider),"
                         " or `tickstockpl cache-sync --force` to sync anyway")
