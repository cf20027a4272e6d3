"""The report renders the latency section and the hook figures with their targets from the results
JSON alone (what `python -m bench --render-only` does), and an older results file without them."""

from __future__ import annotations

import json

import pytest

from bench import harness, report


def sized(size: int, *, latency: bool) -> harness.SizeResult:
    db = harness.BenchDb(f"tspl_bench_{size}", "dbname=x", size, 250, size, size * 240, "2026-11-27",
                         "2026-11-26", 0.1, 1.0)

    def figures(extra_s: float, per_statement_s: float) -> dict[str, harness.Figure]:
        out = {harness.LEGACY: harness.Figure(harness.LEGACY, "legacy AppV2 rebuild (baseline)",
                                              [0.3 + 150 * per_statement_s], statements=150, transactions=2)}
        for scenario in harness.SCENARIOS:
            out[scenario.key] = harness.Figure(scenario.key, scenario.label, [0.4 + extra_s + 20 * per_statement_s],
                                               statements=18, transactions=14)
        return out

    extra = [
        {"key": "import_session", "label": "import of one session (flat file)", "value": 0.8, "unit": "s",
         "baseline": None, "note": "n", "target": 1.0, "target_text": "≤ 1 s for 12,000 tickers", "target_size": 12000},
        {"key": "backfill_250", "label": "backfill of 250 sessions (flat files)", "value": 61.5, "unit": "s",
         "baseline": None, "note": "n", "target": 60.0, "target_text": "≤ 60 s", "target_size": 12000},
        {"key": "status_rps_8c", "label": "status endpoint throughput, 8 connections", "value": 1500.0,
         "unit": "req/s", "baseline": None, "note": "n", "target": None, "target_text": "", "target_size": None},
    ]
    slow = figures(0.0, 0.0022) if latency else {}
    return harness.SizeResult(db, figures(0.0, 0.0), extra, slow)


def test_render_only_shows_latency_and_hook_targets(tmp_path):
    meta = {"cpus": 2, "ram_gb": 8, "postgres": "PostgreSQL 15", "python": "3.11", "date": "today",
            "command": "python -m bench --latency-ms 2", "seed": 7, "reps": 1, "end": "2026-11-27",
            "server_statements": False, "total_seconds": 1.0, "load_start": 0.1, "load_end": 0.1,
            "latency_ms": 2.0, "round_trip_ms": {"direct": {"median_ms": 0.1}, "proxy": {"median_ms": 2.3}}}
    data = json.loads(json.dumps(harness.result_json([sized(4000, latency=True), sized(12000, latency=True)], meta)))
    results, meta_back = harness.results_from_json(data)
    assert results[1].latency[harness.LEGACY].median == pytest.approx(results[1].figures[harness.LEGACY].median + 0.33)
    report.write_markdown(results, meta_back, tmp_path / "PERFORMANCE.md", "chart.png")
    text = (tmp_path / "PERFORMANCE.md").read_text(encoding="utf-8")

    assert "## With 2 ms simulated round-trip latency" in text
    assert "### 12,000 symbols × 250 sessions, 2 ms latency" in text
    baseline_row = next(line for line in text.splitlines()
                        if line.startswith("| legacy AppV2 rebuild (baseline) | 150 | 2 |"))
    assert "| +0.330 | 150 | 1.00 | 1.00 |" in baseline_row  # added s, ≈ round trips (0.33 s / 2.2 ms), ratios
    assert "| 12k import of one session (flat file) ≤ 1 s (issue 4) | 0.800 s | yes |" in text
    assert "| 12k backfill of 250 sessions ≤ 60 s (issue 4) | 61.500 s | **no** |" in text
    assert "| 4,000 symbols × 250 sessions | import of one session (flat file) | 0.800 s | ≤ 1 s for 12,000 tickers" \
           " | – (judged at 12,000) |" in text
    assert "| 1,500 req/s | – | – |" in text


def test_an_older_results_file_without_latency_still_renders(tmp_path):
    data = harness.result_json([sized(4000, latency=False)], {
        "cpus": 2, "ram_gb": 8, "postgres": "PostgreSQL 15", "python": "3.11", "date": "today",
        "command": "python -m bench", "seed": 7, "reps": 1, "end": "2026-11-27", "server_statements": False,
        "total_seconds": 1.0, "load_start": 0.1, "load_end": 0.1})
    for size in data["sizes"]:
        del size["latency"]
    results, meta = harness.results_from_json(json.loads(json.dumps(data)))
    report.write_markdown(results, meta, tmp_path / "PERFORMANCE.md", "chart.png")
    assert "Not measured in this run: `python -m bench --latency-ms 2`" in (tmp_path / "PERFORMANCE.md").read_text(
        encoding="utf-8")
