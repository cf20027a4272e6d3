"""`as_tickstock(err)`: a driver's exception as the TickStockError it stands for, for the two edges that
report failures (the API's handler, the CLI). psycopg's errors go through `db.connect.translate`, redis's
through `events.relay.translate`: each driver's errors are translated in one place."""

from __future__ import annotations

import sys

from tickstockpl.errors import TickStockError


def as_tickstock(err: BaseException) -> BaseException:
    """`err` as a TickStockError when it is one or a driver's error that stands for one; anything else as
    it is. A driver that was never imported cannot have raised, so none is imported here."""
    if isinstance(err, TickStockError):
        return err
    if "psycopg" in sys.modules:
        from tickstockpl.db.connect import translate

        found = translate(err)
        if found is not None:
            return found
    if "redis" in sys.modules:
        from tickstockpl.events.relay import translate as translate_redis

        found = translate_redis(err)
        if found is not None:
            return found
    return err
