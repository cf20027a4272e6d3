"""Phase 2, data import: providers fetch one session for the whole market; the writer stores it.

    Provider.fetch(session) -> SessionData      rest.RestProvider (grouped daily), flatfiles.FlatFileProvider
                                                (the types in session.py, which the providers import)
    writer.write_session(conn, ...)             validate rows, COPY into staging, ONE upsert into ohlcv_daily
    importer.missing_sessions / import_sessions the sessions after the last imported one, in order

A row is the tuple `(ticker, open, high, low, close, volume, timestamp_ns)`; a field the provider
could not read is None and the writer rejects the row with a reason. Rows a provider could not even
split into fields are returned in `SessionData.rejected` with their reason; nothing is dropped silently.
"""

from __future__ import annotations

from typing import Optional

from tickstockpl.errors import ConfigError
from tickstockpl.pipeline.imports.session import Provider, Row, SessionData

__all__ = ["Provider", "Row", "SessionData", "provider_configured", "provider_from_settings"]

def provider_from_settings(settings) -> Optional[Provider]:
    """The configured provider, or None when none is configured (the data_import phase is then unavailable).

    TICKSTOCKPL_IMPORT_PROVIDER picks one explicitly; otherwise flat files when a directory is set,
    else REST when an API key is set.
    """
    choice = settings.import_provider
    if choice is None:
        choice = "flatfiles" if settings.flatfiles_dir else ("rest" if settings.provider_api_key else None)
    if choice == "flatfiles":
        if not settings.flatfiles_dir:
            raise ConfigError("TICKSTOCKPL_IMPORT_PROVIDER=flatfiles needs TICKSTOCKPL_FLATFILES_DIR")
        from tickstockpl.pipeline.imports.flatfiles import FlatFileProvider

        return FlatFileProvider(settings.flatfiles_dir)
    if choice == "rest":
        if not settings.provider_api_key:
            raise ConfigError("TICKSTOCKPL_IMPORT_PROVIDER=rest needs MASSIVE_API_KEY (or POLYGON_API_KEY)")
        from tickstockpl.pipeline.imports.rest import RestProvider

        return RestProvider(settings.provider_api_key, settings.provider_base_url)
    return None


def provider_configured(settings) -> bool:
    try:
        return (settings.import_provider or settings.flatfiles_dir or settings.provider_api_key) is not None
    except AttributeError:
        return False
