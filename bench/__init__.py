"""TickStockPL benchmarks (issue 6): `python -m bench` measures the cache sync against a faithful
re-creation of the legacy AppV2 rebuild (bench/legacy.py, a baseline never used by the product)
on sample markets of several sizes, and regenerates docs/PERFORMANCE.md and docs/perf_sync_time.png.

Modules: harness (databases, processes, measurements), legacy (the baseline), report (markdown
and chart), extra (hooks for the import and API figures), _instrument/sitecustomize (driver-level
statement counter injected into measured child processes).
"""
