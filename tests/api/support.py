"""Moved to tests/support/ (markets, waiting, events, databases). These names stay importable from here
for tests written before the move; new tests import from tests.support."""

from tests.support.databases import SymbolsLocked  # noqa: F401
from tests.support.events import Subscriber, completed  # noqa: F401
from tests.support.markets import (IPO_SYMBOL, SESSIONS, STOCKS, activate, delist, hide_ipo_before,  # noqa: F401
                                   load_market, stock_symbol)
from tests.support.waiting import wait_status  # noqa: F401
