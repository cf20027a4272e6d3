"""PostgreSQL advisory-lock ids, the one place they are defined (64-bit keys, "TSPL" prefix).

A lock held per environment (`for_environment`) is the base id itself for DEFAULT (so processes of
an earlier version, which had one id for every environment, still exclude each other there) and,
for any other environment, 48 bits of a SHA-256 of (base, environment) under the "TS" prefix:
different environments never wait for one another (a collision between two environment names would
only make them share one lock: 2^-48).
"""

import hashlib

from tickstockpl.settings import DEFAULT_ENVIRONMENT

MIGRATIONS = 0x5453_504C_0000_0001
CACHE_SYNC = 0x5453_504C_0000_0002  # per environment (`cache_sync`): held for the whole life of a live sync job
OUTBOX_RELAY = 0x5453_504C_0000_0003  # one relay publishes at a time, in id order
PIPELINE = 0x5453_504C_0000_0004  # held for the whole life of a live pipeline run
SCHEDULER_TICK = 0x5453_504C_0000_0005
OUTBOX_WRITE = 0x5453_504C_0000_0006  # transaction lock of outbox writers: ids become visible in id order
LIQUIDITY = 0x5453_504C_0000_0007  # transaction lock of every writer of pl_symbol_liquidity (market/liquidity.py)
CHANGE_LOG_IDS = 0x5453_504C_0000_0008  # transaction lock of change-log writers: each reserves a block of ids



def for_environment(base: int, environment: str) -> int:
    """The id of lock `base` in `environment` (see the module docstring)."""
    if environment == DEFAULT_ENVIRONMENT:
        return base
    digest = hashlib.sha256(f"{base}:{environment}".encode("utf-8")).digest()
    return 0x5453_0000_0000_0000 | int.from_bytes(digest[:6], "big")


def cache_sync(environment: str) -> int:
    """The single-flight lock of the cache sync in `environment`."""
    return for_environment(CACHE_SYNC, environment)
