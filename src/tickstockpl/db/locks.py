"""PostgreSQL advisory-lock ids, the one place they are defined (64-bit keys, "TSPL" prefix)."""

MIGRATIONS = 0x5453_504C_0000_0001
CACHE_SYNC = 0x5453_504C_0000_0002  # held for the whole life of a live sync job
OUTBOX_RELAY = 0x5453_504C_0000_0003  # one relay publishes at a time, in id order
PIPELINE = 0x5453_504C_0000_0004  # held for the whole life of a live pipeline run
SCHEDULER_TICK = 0x5453_504C_0000_0005
OUTBOX_WRITE = 0x5453_504C_0000_0006  # transaction lock of outbox writers: ids become visible in id order
