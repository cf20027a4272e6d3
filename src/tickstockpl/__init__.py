"""TickStockPL: the processing layer of TickStock.

The public surface is small on purpose: the CLI (`tickstockpl`), the HTTP API
(`tickstockpl serve`) and the client AppV2 imports (`tickstockpl.client`).
"""

__version__ = "0.1.0"
