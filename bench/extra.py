"""Hooks for the figures of other components (import, backfill, API), filled in by their owners.

Each hook takes a `BenchContext` and returns a list of figure dicts:
    {"key": str, "label": str, "value": float | None, "unit": str, "baseline": float | None, "note": str}
`value=None` means "not measured yet"; the report shows the note. Hooks run after the sync
figures of each size, on the same database (restore what you change: the next size starts fresh
anyway). Helpers on the context: `market()` regenerates the exact sample market of the database
(for flat files: `sample.write_flat_files(ctx.market(), folder, days)`), `command_env()` gives the
environment of a measured child, and `measure(command)` runs and measures one child process
(wall time, peak RSS, rows written, transactions) exactly like the sync figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from bench import harness


@dataclass
class BenchContext:
    db: harness.BenchDb
    admin_url: str
    reps: int

    def market(self):
        from tickstockpl.market import sample

        size = self.db.size
        return sample.generate(stocks=size - size // 5, etfs=size // 5, sessions=self.db.sessions,
                               seed=harness.BENCH_SEED)

    def command_env(self, count_file: str | None = None) -> dict[str, str]:
        return harness.child_env(self.db, count_file)

    def measure(self, command: list[str]) -> harness.Run:
        return harness.measure(command, self.db, self.admin_url, self.command_env())


def not_measured(key: str, label: str, unit: str, note: str) -> dict:
    return {"key": key, "label": label, "value": None, "unit": unit, "baseline": None, "note": note}


def import_one_session(ctx: BenchContext) -> list[dict]:
    """Import of one full-market session (target: 12,000 tickers in <= 1 s). Owner: pipeline."""
    return [not_measured("import_session", "import of one session (flat file)", "s",
                         "hook not filled yet (bench/extra.py: import_one_session)")]


def backfill_sessions(ctx: BenchContext) -> list[dict]:
    """Backfill of 250 sessions from flat files. Owner: pipeline."""
    return [not_measured("backfill_250", "backfill of 250 sessions", "s",
                         "hook not filled yet (bench/extra.py: backfill_sessions)")]


def status_endpoint(ctx: BenchContext) -> list[dict]:
    """Throughput and p99 latency of GET /api/processing/cache-sync/status/{id}. Owner: API."""
    return [not_measured("status_rps", "status endpoint throughput", "req/s",
                         "hook not filled yet (bench/extra.py: status_endpoint)"),
            not_measured("status_p99", "status endpoint p99 latency", "ms",
                         "hook not filled yet (bench/extra.py: status_endpoint)")]


HOOKS: list[Callable[[BenchContext], list[dict]]] = [import_one_session, backfill_sessions, status_endpoint]


def run_hooks(ctx: BenchContext) -> list[dict]:
    figures = []
    for hook in HOOKS:
        try:
            figures.extend(hook(ctx))
        except Exception as err:  # a broken hook must not lose the sync figures
            figures.append(not_measured(hook.__name__, hook.__name__, "", f"hook failed: {err!r}"[:300]))
    return figures
