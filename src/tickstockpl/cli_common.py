"""What every command module shares (cli.py, late_cli.py, universes_cli.py): the settings with the
command's `--database-url` applied, a connection, a date option. One place, so the command modules
import it and not each other (the package keeps no import cycles)."""

from __future__ import annotations

import datetime as dt
from typing import Optional

import click

from tickstockpl.errors import ConfigError

NO_DATABASE = "DATABASE_URL is not set (use `tickstockpl demo` to try everything on embedded servers)"
DATABASE_URL_HELP = "Overrides DATABASE_URL (and the global --database-url)."


def settings_for(database_url: Optional[str] = None):
    """The settings, with --database-url applied: the command's own, else the global one."""
    from tickstockpl.settings import Settings

    settings = Settings.from_env()
    ctx = click.get_current_context(silent=True)
    database_url = database_url or (ctx.find_root().params.get("database_url") if ctx is not None else None)
    if database_url:
        settings = settings.with_(database_url=database_url)
    return settings


def require_db(settings) -> str:
    if not settings.database_url:
        raise ConfigError(NO_DATABASE)
    return settings.database_url


def connect_for(database_url: Optional[str]):
    """(settings, an autocommit connection) to the configured database."""
    from tickstockpl.db.connect import connect

    settings = settings_for(database_url)
    return settings, connect(require_db(settings), autocommit=True)


def parse_date(value: Optional[str], option: str) -> Optional[dt.date]:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option} must be a date YYYY-MM-DD, got {value!r}") from None
