"""Universe building: pure functions from a market snapshot and configuration to entries.

Nothing in this package performs I/O; `sync/` and `market/` do.
"""
