"""Statement counter injected into a measured child process by bench.harness (via PYTHONPATH).

When TSPL_BENCH_COUNT_FILE is set, every SQL statement the process sends through psycopg is
counted: Cursor.execute (Connection.execute goes through it), each parameter set of
executemany, each COPY, each server-side cursor declaration. Transaction control (BEGIN,
COMMIT, savepoints issued by `conn.transaction()`) is not counted here; the harness reads
committed transactions from pg_stat_database. The counts, and the peak resident size of the
process (VmHWM), are written as JSON at exit.
Timed runs never load this file: only the separate counting run does.
"""

import atexit
import json
import os

_PATH = os.environ.get("TSPL_BENCH_COUNT_FILE")


def _install(path: str) -> None:
    try:
        import psycopg
    except ImportError:  # the process does not use psycopg: nothing to count
        return
    counts = {"execute": 0, "executemany": 0, "copy": 0}

    def count(kind: str, n: int = 1) -> None:
        counts[kind] += n

    def wrap_sync(cls, name: str, kind: str) -> None:
        original = getattr(cls, name)

        def wrapper(self, *args, **kwargs):
            if kind == "executemany":
                params = list(args[1]) if len(args) > 1 else list(kwargs.pop("params_seq"))
                count(kind, len(params))
                return original(self, args[0], params, *args[2:], **kwargs)
            count(kind)
            return original(self, *args, **kwargs)

        setattr(cls, name, wrapper)

    def wrap_async(cls, name: str, kind: str) -> None:
        original = getattr(cls, name)

        async def wrapper(self, *args, **kwargs):
            if kind == "executemany":
                params = list(args[1]) if len(args) > 1 else list(kwargs.pop("params_seq"))
                count(kind, len(params))
                return await original(self, args[0], params, *args[2:], **kwargs)
            count(kind)
            return await original(self, *args, **kwargs)

        setattr(cls, name, wrapper)

    for cls in (psycopg.Cursor, psycopg.ServerCursor):
        wrap_sync(cls, "execute", "execute")
    wrap_sync(psycopg.Cursor, "executemany", "executemany")
    for cls in (psycopg.AsyncCursor, psycopg.AsyncServerCursor):
        wrap_async(cls, "execute", "execute")
    wrap_async(psycopg.AsyncCursor, "executemany", "executemany")
    copy_sync = psycopg.Cursor.copy
    copy_async = psycopg.AsyncCursor.copy

    def copy(self, *args, **kwargs):
        count("copy")
        return copy_sync(self, *args, **kwargs)

    def acopy(self, *args, **kwargs):
        count("copy")
        return copy_async(self, *args, **kwargs)

    psycopg.Cursor.copy = copy
    psycopg.AsyncCursor.copy = acopy

    def dump() -> None:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({**counts, "statements": sum(counts.values()), "peak_rss_kb": _peak_rss_kb()}, handle)

    atexit.register(dump)


def _peak_rss_kb() -> int:
    """VmHWM: the high-water resident size of this process since its exec."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


if _PATH:
    _install(_PATH)
