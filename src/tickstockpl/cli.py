"""The `tickstockpl` command. Thin: parses options, calls the package, prints; heavy modules load lazily.

Exit codes: 0 success; 1 the job failed or was refused (one-line reason on stderr);
2 usage or configuration error; 3 a service (PostgreSQL, Redis) is unavailable; 4 conflict (a job is live).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Optional

import typer

from tickstockpl.errors import ConfigError, JobConflict, ServiceUnavailable, TickStockError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="TickStockPL processing layer.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
pipeline_app = typer.Typer(no_args_is_help=True, help="The daily pipeline.")
app.add_typer(db_app, name="db")
app.add_typer(pipeline_app, name="pipeline")

MODES = ("full", "market_cap", "themes", "ipos")


def _fail(err: BaseException) -> "typer.Exit":
    code = 1
    if isinstance(err, ConfigError):
        code = 2
    elif isinstance(err, ServiceUnavailable):
        code = 3
    elif isinstance(err, JobConflict):
        code = 4
    message = str(err).splitlines()[0] if str(err) else err.__class__.__name__
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


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


@db_app.command("upgrade")
def db_upgrade(database_url: Optional[str] = typer.Option(None, help="Overrides DATABASE_URL.")) -> None:
    """Apply pending migrations (idempotent) and refresh the NYSE sessions table."""
    _logging(False)
    try:
        from tickstockpl.db.migrate import upgrade

        applied = upgrade(_require_db(_settings(database_url)))
    except TickStockError as err:
        raise _fail(err)
    typer.echo("applied: " + ", ".join(applied) if applied else "schema is up to date")


@app.command("cache-sync")
def cache_sync(
    mode: str = typer.Option("full", help="full | market_cap | themes | ipos"),
    force: bool = typer.Option(False, help="Skip the pre-sync validation checks."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Compute and print the plan; write nothing."),
    as_of: Optional[str] = typer.Option(None, help="As-of date YYYY-MM-DD (default: last completed session)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result object as JSON."),
    database_url: Optional[str] = typer.Option(None, help="Overrides DATABASE_URL."),
    verbose: bool = typer.Option(False, "-v", "--verbose"),
) -> None:
    """Rebuild every universe of MODE in cache_entries (diff-based, one transaction)."""
    _logging(verbose)
    try:
        if mode not in MODES:
            raise ConfigError(f"--mode must be one of {', '.join(MODES)}; got {mode!r}")
        settings = _settings(database_url)
        result = run_cache_sync(_require_db(settings), settings.environment, mode=mode, force=force,
                                dry_run=dry_run, as_of=_parse_date(as_of, "--as-of"), show_progress=not as_json)
    except TickStockError as err:
        raise _fail(err)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), default=str))
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
def demo(
    stocks: int = typer.Option(6000, help="Common stocks in the sample market."),
    etfs: int = typer.Option(1500, help="ETFs in the sample market."),
    sessions: int = typer.Option(60, help="Sessions of daily bars in the sample market."),
    keep: bool = typer.Option(False, help="Keep the embedded database folder afterwards."),
) -> None:
    """Everything end to end on embedded servers: sample market, sync, next session, sync again."""
    _logging(False)
    from tickstockpl.demo import run_demo

    try:
        run_demo(stocks=stocks, etfs=etfs, sessions=sessions, keep=keep)
    except TickStockError as err:
        raise _fail(err)


@app.command("serve")
def serve(
    host: Optional[str] = typer.Option(None, help="Bind address (default TICKSTOCKPL_HOST or 0.0.0.0)."),
    port: Optional[int] = typer.Option(None, help="Port (default TICKSTOCKPL_PORT or 8080)."),
) -> None:
    """Run the HTTP API (and the scheduler and event relay) in this process."""
    try:
        from tickstockpl.api.server import serve as run_server

        settings = _settings()
        run_server(settings.with_(host=host or settings.host, port=port or settings.port))
    except TickStockError as err:
        raise _fail(err)


@pipeline_app.command("run")
def pipeline_run(
    date: Optional[str] = typer.Option(None, "--date", help="Session date YYYY-MM-DD (default: last completed)."),
    phases: Optional[list[str]] = typer.Option(None, "--phases", help="Phases to run (default: all)."),
    skip_market_check: bool = typer.Option(False, help="Run even if DATE is not an NYSE session."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Run the daily pipeline once: data import, then cache sync (Phase 2.5)."""
    _logging(False)
    try:
        from tickstockpl.pipeline.cli import run_from_cli

        run_from_cli(_settings(), date=_parse_date(date, "--date"), phases=phases or ["all"],
                     skip_market_check=skip_market_check, as_json=as_json)
    except TickStockError as err:
        raise _fail(err)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
