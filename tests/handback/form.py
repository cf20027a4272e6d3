"""Reading and writing the machine-checkable examples of docs/TickStockAppV2_integration_callback.md.

An HTTP example sits between `<!-- example: ID -->` and `<!-- /example -->`:

    ```http
    POST /api/processing/cache-sync/trigger
    Content-Type: application/json
    X-API-Key: tickstock-cache-sync-2025
    ```
    Request body:
    ```json
    {"mode": "full", "force": false}
    ```
    Response: 202
    ```json
    {"success": true, ...}
    ```

(a body that is not JSON, such as the malformed-JSON example, is fenced as `text`). An event sits
between `<!-- event: ID -->` and `<!-- /event -->`: a `#### Channel: \`tickstock:...\`` heading and
one fenced json block with the whole message. Prose outside the markers is never touched by
`update`, so the capture script can refresh the examples in place.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

EXAMPLE = re.compile(r"<!-- example: (?P<id>[\w.-]+) -->\n(?P<body>.*?)<!-- /example -->", re.S)
EVENT = re.compile(r"<!-- event: (?P<id>[\w.-]+) -->\n(?P<body>.*?)<!-- /event -->", re.S)
CODE = re.compile(r"<!-- code: (?P<id>[\w.-]+) -->\n```python\n(?P<code>.*?)\n```", re.S)
FENCE = re.compile(r"```(?P<lang>\w*)\n(?P<text>.*?)\n```", re.S)
TRIM_AT = 3  # arrays longer than this are shown with their first TRIM_AT items


@dataclass
class HttpExample:
    id: str
    method: str
    path: str
    headers: dict[str, str]
    body: str | None          # the request body exactly as documented (None: no body)
    status: int
    response: Any             # the documented response JSON


@dataclass
class EventExample:
    id: str
    channel: str
    message: dict[str, Any]


class FormError(ValueError):
    pass


def _fences(text: str) -> list[tuple[int, str, str]]:
    return [(m.start(), m.group("lang"), m.group("text")) for m in FENCE.finditer(text)]


def parse_examples(text: str) -> list[HttpExample]:
    found = []
    for match in EXAMPLE.finditer(text):
        ex_id, body = match.group("id"), match.group("body")
        fences = _fences(body)
        if not fences or fences[0][1] != "http":
            raise FormError(f"example {ex_id}: must start with a ```http block")
        lines = fences[0][2].splitlines()
        method, _, path = lines[0].partition(" ")
        headers = {}
        for line in lines[1:]:
            if line.strip():
                name, sep, value = line.partition(":")
                if not sep:
                    raise FormError(f"example {ex_id}: header line without a colon: {line!r}")
                headers[name.strip()] = value.strip()
        request_body = None
        marker = body.find("Request body:")
        response_at = re.search(r"^Response: (\d{3})\s*$", body, re.M)
        if response_at is None:
            raise FormError(f"example {ex_id}: no 'Response: NNN' line")
        if marker != -1:
            after = [f for f in fences if marker < f[0] < response_at.start()]
            if not after:
                raise FormError(f"example {ex_id}: 'Request body:' without a fenced block")
            request_body = after[0][2]
        responses = [f for f in fences if f[0] > response_at.start()]
        if not responses or responses[0][1] != "json":
            raise FormError(f"example {ex_id}: the response must be a ```json block")
        try:
            response = json.loads(responses[0][2])
        except ValueError as err:
            raise FormError(f"example {ex_id}: response block is not JSON ({err})") from None
        found.append(HttpExample(ex_id, method.strip(), path.strip(), headers, request_body,
                                 int(response_at.group(1)), response))
    ids = [e.id for e in found]
    if len(set(ids)) != len(ids):
        raise FormError(f"an example id is used twice: {sorted(ids)}")
    return found


def parse_events(text: str) -> list[EventExample]:
    found = []
    for match in EVENT.finditer(text):
        ev_id, body = match.group("id"), match.group("body")
        heading = re.search(r"^#### Channel: `([^`]+)`\s*$", body, re.M)
        fences = [f for f in _fences(body) if f[1] == "json"]
        if heading is None or not fences:
            raise FormError(f"event {ev_id}: needs a '#### Channel: `...`' heading and a ```json block")
        try:
            message = json.loads(fences[0][2])
        except ValueError as err:
            raise FormError(f"event {ev_id}: not JSON ({err})") from None
        found.append(EventExample(ev_id, heading.group(1), message))
    ids = [e.id for e in found]
    if len(set(ids)) != len(ids):
        raise FormError(f"an event id is used twice: {sorted(ids)}")
    return found


def code_blocks(text: str) -> dict[str, str]:
    """The python blocks marked `<!-- code: NAME -->` (the integration code AppV2 copies)."""
    return {m.group("id"): m.group("code") for m in CODE.finditer(text)}


def python_blocks(text: str) -> list[str]:
    return [m.group("text") for m in FENCE.finditer(text) if m.group("lang") == "python"]


# --- rendering (used by the capture script) ----------------------------------------------------
def trimmed(value: Any, notes: list[str], where: str = "") -> Any:
    """`value` with long arrays cut to TRIM_AT items; each cut is described in `notes`."""
    if isinstance(value, dict):
        return {k: trimmed(v, notes, f"{where}.{k}" if where else k) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) > TRIM_AT:
            notes.append(f"`{where or 'body'}`: {TRIM_AT} of {len(value)} items shown")
            value = value[:TRIM_AT]
        return [trimmed(v, notes, f"{where}[]") for v in value]
    return value


def render_example(method: str, path: str, headers: dict[str, str], body: str | None, status: int,
                   response: Any) -> str:
    head = "\n".join([f"{method} {path}", *(f"{k}: {v}" for k, v in headers.items())])
    parts = [f"```http\n{head}\n```"]
    if body is not None:
        try:
            pretty, lang = json.dumps(json.loads(body), indent=2), "json"
        except ValueError:
            pretty, lang = body, "text"
        parts.append(f"Request body:\n```{lang}\n{pretty}\n```")
    notes: list[str] = []
    shown = trimmed(response, notes)
    parts.append(f"Response: {status}\n```json\n{json.dumps(shown, indent=2, ensure_ascii=False)}\n```")
    if notes:
        parts.append("_(" + "; ".join(dict.fromkeys(notes)) + ")_")
    return "\n".join(parts) + "\n"


def render_event(channel: str, message: dict[str, Any]) -> str:
    notes: list[str] = []
    shown = trimmed(message, notes)
    text = f"#### Channel: `{channel}`\n```json\n{json.dumps(shown, indent=2, ensure_ascii=False)}\n```\n"
    if notes:
        text += "_(" + "; ".join(dict.fromkeys(notes)) + ")_\n"
    return text


def update(text: str, examples: dict[str, str], events: dict[str, str]) -> tuple[str, list[str]]:
    """Replace the inside of every marker whose id has a rendering; returns (text, ids left as they were)."""
    untouched: list[str] = []

    def swap(table: dict[str, str], tag: str):
        def replace(match: re.Match) -> str:
            rendered = table.get(match.group("id"))
            if rendered is None:
                untouched.append(f"{tag}:{match.group('id')}")
                return match.group(0)
            return f"<!-- {tag}: {match.group('id')} -->\n{rendered}<!-- /{tag} -->"
        return replace

    text = EXAMPLE.sub(swap(examples, "example"), text)
    text = EVENT.sub(swap(events, "event"), text)
    return text, untouched
