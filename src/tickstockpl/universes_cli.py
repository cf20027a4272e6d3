"""`tickstockpl universes ...`: questions about the stored universes, registered on the group by cli.py.

    tickstockpl universes churn [--from DATE] [--to DATE] [--universe T:N:K] [--json]
        turnover per universe over a range, from the membership history (sync/history.churn)
    tickstockpl universes explain KEY SYMBOL [--json]
        why SYMBOL is in or out of the rule universe stock_universe/rules/KEY (sync/explain.explain)
    tickstockpl universes backfill --from DATE [--through DATE] [--json]
        the membership history of past sessions replayed from the stored bars (universes/backfill.py)
"""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from typing import Optional

import click

from tickstockpl.cli_common import DATABASE_URL_HELP, connect_for, parse_date


@click.group("universes", help="The stored universes: churn, why a symbol is in or out of a rule universe,"
                                      " and their history rebuilt from bars (backfill).")
def universes() -> None:
    pass


@universes.command("churn")
@click.option("--from", "first", default=None, metavar="YYYY-MM-DD", help="First day (default: 30 days before --to).")
@click.option("--to", "last", default=None, metavar="YYYY-MM-DD", help="Last day (default: today in New York).")
@click.option("--universe", default=None, metavar="TYPE:NAME:KEY", help="Only this universe.")
@click.option("--days", "show_days", is_flag=True, help="Also list every day each universe changed.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer of GET /api/universes/churn as JSON.")
@click.option("--database-url", default=None, metavar="URL", help=DATABASE_URL_HELP)
def churn(first: Optional[str], last: Optional[str], universe: Optional[str], show_days: bool, as_json: bool,
          database_url: Optional[str]) -> None:
    """Turnover per universe: (entered + left) / (members at the start + at the end), over the range and
    on each day it changed. Only universes that changed in the range are listed."""
    from tickstockpl.sync import history

    day_from, day_to = history.churn_range(parse_date(first, "--from"), parse_date(last, "--to"))
    settings, conn = connect_for(database_url)
    with conn:
        found = history.churn(conn, settings.environment, day_from, day_to, universe)
    if as_json:
        click.echo(json.dumps(history.churn_document(day_from, day_to, found)))
        return
    _print(found, day_from.isoformat(), day_to.isoformat(), show_days)


def _print(found, first: str, last: str, show_days: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"churn {first} .. {last}", show_lines=False)
    for column in ("universe", "start", "end", "entered", "left", "turnover", "days changed"):
        table.add_column(column, justify="left" if column == "universe" else "right")
    for u in found:
        table.add_row(u.universe, str(u.members_start), str(u.members_end), str(u.entered), str(u.left),
                      f"{u.turnover:.2%}", str(len(u.days)))
        if show_days:
            for d in u.days:
                table.add_row(f"  {d.day}", str(d.before), str(d.after), str(d.entered), str(d.left),
                              f"{d.turnover:.2%}", "")
    console = Console(soft_wrap=True)
    if not found:
        console.print(f"no universe changed between {first} and {last}")
        return
    console.print(table)


@universes.command("explain")
@click.argument("key")
@click.argument("symbol")
@click.option("--json", "as_json", is_flag=True, help="Print the answer of GET .../explain?symbol= as JSON.")
@click.option("--database-url", default=None, metavar="URL", help=DATABASE_URL_HELP)
def explain(key: str, symbol: str, as_json: bool, database_url: Optional[str]) -> None:
    """Why SYMBOL is in or out of the rule universe KEY (e.g. liquid_500) on the newest session, with
    every rule's check and its numbers. Reads only."""
    from tickstockpl.sync.explain import explain as explain_symbol

    settings, conn = connect_for(database_url)
    with conn:
        answer = explain_symbol(conn, settings.environment, key, symbol.upper())
    if as_json:
        click.echo(json.dumps(answer))
        return
    click.echo(f"{answer['universe']} on {answer['session']}: {answer['symbol']} {answer['summary']}")
    for check in answer["checks"]:
        click.echo(f"  {'ok  ' if check['ok'] else 'FAIL'} {check['rule']}: {check['text']}")


@universes.command("backfill")
@click.option("--from", "first", required=True, metavar="YYYY-MM-DD",
              help="The first session to replay (a date that is no session: the first session after it); from"
                   " 2000-01-01 to the newest session with bars.")
@click.option("--through", "last", default=None, metavar="YYYY-MM-DD",
              help="The last session to replay (default: the newest session with bars).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--database-url", default=None, metavar="URL", help=DATABASE_URL_HELP)
def backfill(first: str, last: Optional[str], as_json: bool, database_url: Optional[str]) -> None:
    """Replay every past session from the stored bars and fill the membership history (pl_universe_membership),
    so that ?as_of= answers for dates before PL was installed: the legacy universes and the rule universes.

    One transaction per session; idempotent (a second run changes nothing) and resumable (a run stopped
    part-way continues where it stopped). Universes with live history are replayed up to their first live
    session and joined to it (docs/RULE_UNIVERSES.md, "Backfill")."""
    from tickstockpl.universes.backfill import backfill as run_backfill

    start, end = parse_date(first, "--from"), parse_date(last, "--through")
    settings, conn = connect_for(database_url)
    progress_ctx = nullcontext(None)
    if not as_json and sys.stderr.isatty():
        from tickstockpl.cli_output import progress_bar

        progress_ctx = progress_bar("backfill", counts=True)
    with conn, progress_ctx as on_progress:
        result = run_backfill(conn, settings.environment, start, end, progress=on_progress)
    if as_json:
        click.echo(json.dumps(result.to_dict()))
        return
    click.echo(f"backfill {result.from_session} .. {result.through_session} (environment {result.environment}):"
               f" {result.written} session(s) written, {result.skipped} already written, {result.opened} row(s)"
               f" opened, {result.closed} closed, {result.merged} joined to live history, {result.universes}"
               f" universe(s), {result.seconds:.1f} s")
