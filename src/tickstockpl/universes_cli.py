"""`tickstockpl universes ...`: questions about the stored universes, registered on the group by cli.py.

    tickstockpl universes churn [--from DATE] [--to DATE] [--universe T:N:K] [--json]
        turnover per universe over a range, from the membership history (sync/history.churn)
"""

from __future__ import annotations

import json
from typing import Optional

import click

from tickstockpl.cli_common import DATABASE_URL_HELP, connect_for, parse_date


@click.group("universes", help="The stored universes: churn (and their history).")
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
