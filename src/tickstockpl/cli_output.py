"""Human output of the CLI (rich): the progress bar and the result tables. Imported only when shown."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

# emoji=False: a universe such as themes:Cloud:list must not print as "themes☁list"
console = Console(emoji=False)


@contextmanager
def progress_bar(label: str = "cache sync", *, counts: bool = False):
    """Yields a `Progress` hook (completed, total, task) that drives a rich bar on stderr; `counts`: with
    "completed/total" and the time remaining (the backfill's sessions)."""
    more = (MofNCompleteColumn(),) if counts else ()
    later = (TimeRemainingColumn(),) if counts else ()
    with Progress(TextColumn(f"[bold]{label}"), BarColumn(), *more, TextColumn("{task.description}"),
                  TimeElapsedColumn(), *later, console=Console(stderr=True, emoji=False), transient=True) as bar:
        task = bar.add_task("starting", total=1)

        def update(completed: int, total: int, name: str) -> None:
            bar.update(task, completed=completed, total=total, description=name)

        yield update


def print_result(result, title: str | None = None) -> None:
    verb = "would change" if result.dry_run else "changed"
    console.print(
        f"[bold]{title or 'cache sync'}[/] mode={result.mode} as_of={result.as_of}"
        + (f" job={result.job_id}" if result.job_id else "")
        + f": {result.universes_updated} universe(s) {verb}, {result.total_changes} change(s),"
        f" {result.universes_unchanged} unchanged, {result.eligible_stocks} eligible stocks,"
        f" {result.duration_seconds:.3f} s"
    )
    if result.universes:
        table = Table("universe", "action", "+added", "-removed")
        table.columns[0].overflow = "fold"  # a long universe id wraps whole, never cut into look-alikes
        for row in result.universes[:60]:
            table.add_row(escape(row["universe"]), row["action"], f"+{row['added']}", f"-{row['removed']}")
        if len(result.universes) > 60:
            table.add_row(f"… {len(result.universes) - 60} more", "", "", "")
        console.print(table)
    _ownership_lines(result)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", emoji=False)


def _ownership_lines(result) -> None:
    """What the ledger decided (contract §5.5): rows taken over, put back, and left as is."""
    taken = "would take over" if result.dry_run else "took over"
    for label, universes in ((f"{taken} (existing row of a key PL builds)", result.adopted),
                             ("put back PL's value (edited outside PL)", result.restored),
                             ("foreign, left as is", result.foreign)):
        if universes:
            console.print(f"{label}: {len(universes)}", emoji=False, markup=False)
            for universe in universes[:40]:
                console.print(f"  {universe}", emoji=False, markup=False)
            if len(universes) > 40:
                console.print(f"  … {len(universes) - 40} more", emoji=False, markup=False)

