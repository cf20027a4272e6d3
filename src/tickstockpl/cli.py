"""The `tickstockpl` command. Thin: parses options, calls the package, prints; heavy modules load lazily.

Exit codes: 0 success; 1 the job failed or was refused (one-line reason on stderr);
2 usage or configuration error; 3 a service (PostgreSQL, Redis) is unavailable; 4 conflict (a job is live).

Built on click rather than typer (decision recorded in docs/ARCHITECTURE.md): typer 0.29 builds
pydantic adapters for every parameter on each invocation, which measured 0.43–0.56 s for
`tickstockpl cache-sync --help` on this machine kind, most of the 0.6 s budget of a whole sync.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import sys
from typing import Optional

import click

from tickstockpl.errors import ConfigError, JobConflict, ServiceUnavailable, TickStockError

MODES = ("full", "market_cap", "themes", "ipos")


class Failed(click.exceptions.Exit):
    """A TickStockError turned into one line on stderr and the exit code of the module docstring."""

    def __init__(self, err: BaseException):
        code = 1
        if isinstance(err, ConfigError):
            code = 2
        elif isinstance(err, ServiceUnavailable):
            code = 3
        elif isinstance(err, JobConflict):
            code = 4
        message = str(err).splitlines()[0] if str(err) else err.__class__.__name__
        click.echo(f"error: {message}", err=True)
        super().__init__(code)


@click.group(help="TickStockPL processing layer.", context_settings={"help_option_names": ["-h", "--help"]})
def app() -> None:
    pass


@app.group(help="Database schema.")
def db() -> None:
    pass


@app.group(help="The daily pipeline.")
def pipeline() -> None:
    pass


def _settings(database_url: Optional[str] = None):
    from tickstockpl.settings import Settings

    settings = Settings.from_env()
    if database_url:
        settings = settings.with_(database_url=database_url)
    return settings


def _require_db(settings) -> str:
    if not settings.database_url:
        raise ConfigError("DATABASE_URL is not set (use `tickstockpl demo` to try everything on embedded servers)")
    return settings.database_url


def _parse_date(value: Optional[str], option: str) -> Optional[dt.date]:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option} must be a date YYYY-MM-DD, got {value!r}") from None


def _logging(verbose: bool) -> None:
    """Quiet by default: results and build warnings are printed by the command itself, and a
    failed job is reported once, as the command's one-line error (not again as a log record)."""
    logging.basicConfig(level=logging.INFO if verbose else logging.ERROR, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        logging.getLogger("tickstockpl.jobs").setLevel(logging.CRITICAL)


@db.command("upgrade")
@click.option("--database-url", default=None, help="Overrides DATABASE_URL.")
def db_upgrade(database_url: Optional[str]) -> None:
    """Apply pending migrations (idempotent) and refresh the NYSE sessions table."""
    _logging(False)
    try:
        from tickstockpl.db.migrate import upgrade

        applied = upgrade(_require_db(_settings(database_url)))
    except TickStockError as err:
        raise Failed(err)
    click.echo("applied: " + ", ".join(applied) if applied else "schema is up to date")


@app.command("cache-sync")
@click.option("--mode", default="full", show_default=True, help="full | market_cap | themes | ipos")
@click.option("--force", is_flag=True, help="Skip the pre-sync validation checks.")
@click.option("--dry-run", is_flag=True, help="Compute and print the plan; write nothing.")
@click.option("--as-of", default=None, help="As-of date YYYY-MM-DD (default: last completed session).")
@click.option("--json", "as_json", is_flag=True, help="Print the result object as JSON.")
@click.option("--database-url", default=None, help="Overrides DATABASE_URL.")
@click.option("-v", "--verbose", is_flag=True)
def cache_sync(mode: str, force: bool, dry_run: bool, as_of: Optional[str], as_json: bool,
               database_url: Optional[str], verbose: bool) -> None:
    """Rebuild every universe of MODE in cache_entries (diff-based, one transaction)."""
    # One short process: the cyclic garbage collector stays off while it imports and works
    # (it kept walking the same long-lived objects: about 10 ms of imports and 30 ms of a
    # 12,000-symbol sync, measured); reference counting still frees what is dropped.
    gc.disable()
    _logging(verbose)
    try:
        if mode not in MODES:
            raise ConfigError(f"--mode must be one of {', '.join(MODES)}; got {mode!r}")
        settings = _settings(database_url)
        result = run_cache_sync(_require_db(settings), settings.environment, mode=mode, force=force,
                                dry_run=dry_run, as_of=_parse_date(as_of, "--as-of"), show_progress=not as_json)
    except TickStockError as err:
        raise Failed(err)
    if as_json:
        click.echo(json.dumps(result.to_dict(), default=str))
    else:
        from tickstockpl.cli_output import print_result

        print_result(result)


def run_cache_sync(db_url: str, environment: str, *, mode: str, force: bool, dry_run: bool,
                   as_of: Optional[dt.date], show_progress: bool, triggered_by: str = "cli"):
    """One sync from the command line: a job row (or a plain dry run), with an optional progress bar."""
    from contextlib import nullcontext

    progress_ctx = nullcontext(None)
    if show_progress and sys.stderr.isatty():
        from tickstockpl.cli_output import progress_bar

        progress_ctx = progress_bar()
    with progress_ctx as on_progress:
        if dry_run:
            from tickstockpl.db.connect import connection
            from tickstockpl.sync.job import SyncRequest, run_sync, no_progress

            with connection(db_url, autocommit=True) as conn:
                return run_sync(conn, SyncRequest(mode=mode, force=force, dry_run=True, as_of=as_of,
                                                  environment=environment),
                                progress=on_progress or no_progress)
        from tickstockpl.jobs.runtime import start_job

        handle = start_job(db_url, mode=mode, force=force, triggered_by=triggered_by, as_of=as_of,
                           environment=environment, background=False, on_progress=on_progress)
        return handle.result


@app.command("demo")
@click.option("--stocks", default=6000, show_default=True, help="Common stocks in the sample market.")
@click.option("--etfs", default=1500, show_default=True, help="ETFs in the sample market.")
@click.option("--sessions", default=60, show_default=True, help="Sessions of daily bars in the sample market.")
@click.option("--keep", is_flag=True, help="Keep the embedded database folder afterwards.")
def demo(stocks: int, etfs: int, sessions: int, keep: bool) -> None:
    """Everything end to end on embedded servers: sample market, pipeline, next session, again."""
    _logging(False)
    from tickstockpl.demo import run_demo

    try:
        run_demo(stocks=stocks, etfs=etfs, sessions=sessions, keep=keep)
    except TickStockError as err:
        raise Failed(err)


@app.command("serve")
@click.option("--host", default=None, help="Bind address (default TICKSTOCKPL_HOST or 0.0.0.0).")
@click.option("--port", default=None, type=int, help="Port (default TICKSTOCKPL_PORT or 8080).")
def serve(host: Optional[str], port: Optional[int]) -> None:
    """Run the HTTP API (and the scheduler and event relay) in this process."""
    try:
        from tickstockpl.api.server import serve as run_server

        settings = _settings()
        run_server(settings.with_(host=host or settings.host, port=port or settings.port))
    except TickStockError as err:
        raise Failed(err)


@pipeline.command("run")
@click.option("--date", default=None, help="Session date YYYY-MM-DD (default: last completed).")
@click.option("--phases", multiple=True, help="Phases to run (repeatable; default: all).")
@click.option("--skip-market-check", is_flag=True, help="Run even if DATE is not an NYSE session.")
@click.option("--json", "as_json", is_flag=True)
def pipeline_run(date: Optional[str], phases: tuple[str, ...], skip_market_check: bool, as_json: bool) -> None:
    """Run the daily pipeline once: data import, then cache sync (Phase 2.5)."""
    _logging(False)
    try:
        from tickstockpl.pipeline.cli import run_from_cli

        run_from_cli(_settings(), date=_parse_date(date, "--date"), phases=list(phases) or ["all"],
                     skip_market_check=skip_market_check, as_json=as_json)
    except TickStockError as err:
        raise Failed(err)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
