"""The hand-back form quotes the committed benchmark run: its performance table is exactly what
bench/handback.py renders from docs/perf_results.json (regenerate both with `python -m bench`)."""

from __future__ import annotations

import json

from bench import handback
from bench.harness import results_from_json


def test_the_forms_performance_table_is_rendered_from_the_committed_results():
    results, meta = results_from_json(json.loads(handback.RESULTS.read_text(encoding="utf-8")))
    table = handback.table_in(handback.FORM.read_text(encoding="utf-8"))
    assert table, "the form has no <!-- perf-table --> block"
    assert table == handback.render(results, meta), "run `python -m bench.handback` after `python -m bench`"


def test_update_rewrites_only_the_block(tmp_path):
    form = tmp_path / "form.md"
    form.write_text(f"before\n{handback.START}\nold table\n{handback.END}\nafter\n", encoding="utf-8")
    assert handback.update(form, handback.RESULTS) is True
    text = form.read_text(encoding="utf-8")
    assert text.startswith("before\n") and text.endswith("after\n") and "old table" not in text
    assert handback.update(form, handback.RESULTS) is False  # idempotent
