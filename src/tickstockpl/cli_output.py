"""Human output of the CLI (rich): the progress bar and the result tables. Imported only when shown."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console()


@contextmanager
def progress_bar():
    """Yields a `Progress` hook (completed, total, task) that drives a rich bar on stderr."""
    with Progress(TextColumn("[bold]cache sync"), BarColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
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
        for row in result.universes[:60]:
            table.add_row(row["universe"], row["action"], f"+{row['added']}", f"-{row['removed']}")
        if len(result.universes) > 60:
            table.add_row(f"… {len(result.universes) - 60} more", "", "", "")
        console.print(table)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}")


def print_universes(rows) -> None:
    table = Table("type", "name", "key", "members")
    for type_, name, key, count in rows:
        table.add_row(type_, name, key, str(count))
    console.print(table)
