"""Issue 14's commands, registered on the `tickstockpl` group by cli.py:

    tickstockpl calendar close DATE [--reason TEXT]          an ad-hoc closure (no session that day)
    tickstockpl calendar early-close DATE --at HH:MM [...]   an early close (New York wall clock)
    tickstockpl calendar list [--since DATE] [--json]        the overrides
    tickstockpl calendar remove DATE                         drop an override
    tickstockpl pipeline revise [--session DATE ...] [--no-sync] [--json]   the revisions pass now
"""

from __future__ import annotations

import json
from typing import Optional

import click

from tickstockpl.cli_common import connect_for as _db, require_db, settings_for


@click.group("calendar", help="Calendar overrides: ad-hoc closures and early closes (consulted before the library"
                              " calendar).")
def calendar() -> None:
    pass


@calendar.command("close")
@click.argument("date")
@click.option("--reason", default="", help="Why (shown in `calendar list`), at most 200 characters.")
@click.option("--database-url", default=None, metavar="URL", help="Overrides DATABASE_URL (and the global --database-url).")
def calendar_close(date: str, reason: str, database_url: Optional[str]) -> None:
    """Record that the exchange is closed on DATE (no run, no import, next_run skips it)."""
    from tickstockpl.market import overrides

    _settings, conn = _db(database_url)
    with conn:
        found = overrides.set_override(conn, overrides.parse_day(date, "DATE"), "closed", None, reason)
    click.echo(f"{found.day}: closed" + (f" ({found.reason})" if found.reason else ""))


@calendar.command("early-close")
@click.argument("date")
@click.option("--at", "at", required=True, metavar="HH:MM", help="The close, New York wall clock (e.g. 13:00).")
@click.option("--reason", default="", help="Why, at most 200 characters.")
@click.option("--database-url", default=None, metavar="URL", help="Overrides DATABASE_URL (and the global --database-url).")
def calendar_early_close(date: str, at: str, reason: str, database_url: Optional[str]) -> None:
    """Record that the session of DATE closes early at --at (New York)."""
    from tickstockpl.market import overrides

    _settings, conn = _db(database_url)
    with conn:
        found = overrides.set_override(conn, overrides.parse_day(date, "DATE"), "early_close", at, reason)
    click.echo(f"{found.day}: early close at {found.close_time:%H:%M} New York"
               + (f" ({found.reason})" if found.reason else ""))


@calendar.command("list")
@click.option("--since", default=None, metavar="YYYY-MM-DD", help="Only overrides on or after this date.")
@click.option("--json", "as_json", is_flag=True, help="Print the overrides as a JSON list.")
@click.option("--database-url", default=None, metavar="URL", help="Overrides DATABASE_URL (and the global --database-url).")
def calendar_list(since: Optional[str], as_json: bool, database_url: Optional[str]) -> None:
    """The calendar overrides, oldest first."""
    from tickstockpl.market import overrides

    _settings, conn = _db(database_url)
    with conn:
        found = overrides.list_overrides(conn, overrides.parse_day(since, "--since") if since else None)
    if as_json:
        click.echo(json.dumps([o.to_dict() for o in found]))
        return
    if not found:
        click.echo("no calendar overrides")
    for o in found:
        what = "closed" if o.kind == "closed" else f"early close at {o.close_time:%H:%M} New York"
        click.echo(f"{o.day}: {what}" + (f" ({o.reason})" if o.reason else ""))


@calendar.command("remove")
@click.argument("date")
@click.option("--database-url", default=None, metavar="URL", help="Overrides DATABASE_URL (and the global --database-url).")
def calendar_remove(date: str, database_url: Optional[str]) -> None:
    """Drop the override of DATE (the library calendar decides that day again)."""
    from tickstockpl.market import overrides

    _settings, conn = _db(database_url)
    with conn:
        found = overrides.remove_override(conn, date)
    click.echo(f"{found.day}: override removed ({found.kind})")


@click.command("revise")
@click.option("--session", "sessions", multiple=True, metavar="YYYY-MM-DD",
              help="A closed session to re-fetch, repeatable (default: the last TICKSTOCKPL_REVISION_SESSIONS).")
@click.option("--no-sync", is_flag=True, help="Record and upsert the revisions without the re-sync.")
@click.option("--json", "as_json", is_flag=True, help="Print the pass (revisions, sample, notes) as JSON.")
@click.option("--database-url", default=None, metavar="URL", help="Overrides DATABASE_URL (and the global --database-url).")
def revise(sessions: tuple[str, ...], no_sync: bool, as_json: bool, database_url: Optional[str]) -> None:
    """Re-fetch recent sessions, upsert the bars the provider corrected, record and publish each revision."""
    from tickstockpl.market.overrides import parse_day
    from tickstockpl.pipeline.revisions import revise as run_revise

    settings = settings_for(database_url)
    days = [parse_day(s, "--session") for s in sessions]
    report = run_revise(settings, require_db(settings), days or None, trigger="cli", sync=not no_sync)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
        return
    click.echo(f"revisions pass {report.batch_id}: {report.revisions} bar(s) revised over"
               f" {', '.join(d.isoformat() for d in report.sessions)}"
               + (f"; re-sync job {report.sync_job_id} ({report.universes_updated} universes written)"
                  if report.sync_job_id else ""))
    for r in report.sample[:20]:
        click.echo(f"  {r['session_date']} {r['symbol']}: close {r['old_close']} -> {r['new_close']},"
                   f" volume {r['old_volume']} -> {r['new_volume']}")
    for note in report.notes:
        click.echo(f"  note: {note}")
