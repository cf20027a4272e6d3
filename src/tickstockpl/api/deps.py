"""Dependency providers with `Annotated` aliases, so route signatures stay short.

    SettingsDep    the process Settings
    ConnDep        a pooled psycopg connection (autocommit) for the length of the request
    KeyRequired    X-API-Key must be valid (router-level dependency)
    ProcessingKey  X-API-Key checked only when settings.require_key_processing is true

Routes are plain `def` functions run in the worker thread pool (see docs/ARCHITECTURE-notes.md):
the whole package is synchronous psycopg, and one model per component keeps it that way.
"""

from __future__ import annotations

from typing import Annotated, Iterator

import psycopg
from fastapi import Depends, Request

from tickstockpl.api.auth import require_key, require_key_processing
from tickstockpl.settings import Settings

POOL_WAIT_S = 5.0  # a request waits this long for a connection before answering 503


async def get_settings(request: Request) -> Settings:  # async: no thread hop
    return request.app.state.settings


def get_conn(request: Request) -> Iterator[psycopg.Connection]:
    with request.app.state.services.pool.connection(timeout=POOL_WAIT_S) as conn:
        yield conn


SettingsDep = Annotated[Settings, Depends(get_settings)]
ConnDep = Annotated[psycopg.Connection, Depends(get_conn)]
KeyRequired = Depends(require_key)
ProcessingKey = Depends(require_key_processing)
