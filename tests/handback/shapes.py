"""Comparing JSON by shape: the same field names and JSON types, recursively; values may differ.

    mismatches(documented, actual) -> ["$.jobs[0].progress: documented null, got object", ...]

Rules: objects must have exactly the same keys; an int and a float are both "number"; a documented
array item must have the shape of at least one actual item (documented arrays may be trimmed, and
an empty documented array says nothing about the items); null matches only null.
"""

from __future__ import annotations

from typing import Any


def kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def mismatches(documented: Any, actual: Any, where: str = "$") -> list[str]:
    doc_kind, act_kind = kind(documented), kind(actual)
    if doc_kind != act_kind:
        return [f"{where}: documented {doc_kind}, got {act_kind}"]
    if doc_kind == "object":
        problems = []
        missing = sorted(set(documented) - set(actual))
        extra = sorted(set(actual) - set(documented))
        if missing:
            problems.append(f"{where}: documented field(s) not in the response: {', '.join(missing)}")
        if extra:
            problems.append(f"{where}: response field(s) not documented: {', '.join(extra)}")
        for key in sorted(set(documented) & set(actual)):
            problems += mismatches(documented[key], actual[key], f"{where}.{key}")
        return problems
    if doc_kind == "array":
        problems = []
        for i, item in enumerate(documented):
            if not actual:
                problems.append(f"{where}[{i}]: documented an item, the response array is empty")
                break
            candidates = [mismatches(item, other, f"{where}[{i}]") for other in actual]
            if all(candidates):
                problems += min(candidates, key=len)
        return problems
    return []


def matches(documented: Any, actual: Any) -> bool:
    return not mismatches(documented, actual)
