"""Capture real request/response bodies and events, and refresh the captured examples of the docs.

    .venv/bin/python -m tests.handback.capture                       # run, write tests/handback/captured.json
    .venv/bin/python -m tests.handback.capture --update-form         # ... and rewrite the documents' examples

It runs tests/handback/scenario.py against a fresh database (on the PostgreSQL the tests use:
TICKSTOCKPL_TEST_PG, else an embedded one), its own redis-server process and a real
`tickstockpl serve`. `--update-form` replaces only what sits between the `<!-- example: ID -->` /
`<!-- event: ID -->` markers of the hand-back form, docs/API.md and docs/EVENTS.md (DOCUMENTS); prose is
left alone. Ids in them that the run did not produce are listed, and the exit code is 1, so a stale
document cannot go unnoticed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from tests.handback import form, scenario
from tests.servers import PostgresHandle, RedisProcess

ROOT = Path(__file__).resolve().parents[2]
FORM = ROOT / "docs" / "TickStockAppV2_integration_callback.md"
DOCUMENTS = (FORM, ROOT / "docs" / "API.md", ROOT / "docs" / "EVENTS.md")  # the files holding captured examples
CAPTURED = Path(__file__).resolve().parent / "captured.json"


def capture() -> scenario.Capture:
    from tickstockpl.db.migrate import upgrade

    pg = PostgresHandle()
    redis = RedisProcess().start()
    workdir = Path(tempfile.mkdtemp(prefix="tspl-capture-"))
    try:
        name = pg.create_database("capture")
        upgrade(pg.url(name))
        return scenario.run(pg.url(name), redis.url, workdir)
    finally:
        redis.close()
        pg.close()
        shutil.rmtree(workdir, ignore_errors=True)


def renderings(result: scenario.Capture) -> tuple[dict[str, str], dict[str, str], list[str]]:
    examples = {ex.id: form.render_example(ex.method, ex.path, ex.headers, ex.body, ex.status, ex.response)
                for ex in result.exchanges.values()}
    events, missing = {}, []
    for ev_id in scenario.EVENT_EXAMPLES:
        picked = scenario.pick_event(ev_id, result.events)
        if picked is None:
            missing.append(ev_id)
        else:
            events[ev_id] = form.render_event(*picked)
    return examples, events, missing


def as_lines(data: dict[str, list]) -> str:
    """JSON with one exchange or event per line (readable diffs between two captures)."""
    parts = []
    for name, items in data.items():
        rows = ",\n".join("  " + json.dumps(item, ensure_ascii=False) for item in items)
        parts.append(f"{json.dumps(name)}: [\n{rows}\n]")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update-form", action="store_true",
                        help="rewrite the examples in " + ", ".join(d.name for d in DOCUMENTS))
    parser.add_argument("--json", type=Path, default=CAPTURED, help="where to write the raw capture")
    args = parser.parse_args(argv)

    result = capture()
    args.json.write_text(as_lines(result.to_json()), encoding="utf-8")
    examples, events, missing = renderings(result)
    print(f"captured {len(result.exchanges)} exchanges and {len(result.events)} events -> {args.json}")
    for ex in result.exchanges.values():
        print(f"  {ex.status}  {ex.method:6} {ex.path}  [{ex.id}]")
    pairs = sorted({(c, m.get('event')) for c, m in result.events})
    print("event kinds: " + ", ".join(f"{c} {e}" for c, e in pairs))
    status = 0
    if missing:
        print("no captured event for: " + ", ".join(missing), file=sys.stderr)
        status = 1
    if args.update_form:
        for document in DOCUMENTS:
            text, untouched = form.update(document.read_text(encoding="utf-8"), examples, events)
            document.write_text(text, encoding="utf-8")
            print(f"updated {document}")
            if untouched:
                print(f"ids in {document.name} without a capture: " + ", ".join(untouched), file=sys.stderr)
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
