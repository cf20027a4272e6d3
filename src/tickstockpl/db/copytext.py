"""Values in the text format of COPY ... FROM STDIN, for writers that build the whole stream themselves
(market/liquidity.py's statistics): one `str.join` is several times faster than psycopg's row-by-row
`Copy.write_row` for tens of thousands of rows (35 ms of 30,000 change-log rows, when the change log was
written this way; since migration 0015 it is a binary COPY of a few hundred runs).

    field(text)       a text field: backslash, tab, newline and carriage return escaped
    needs_escape(t)   whether `field(t)` differs from `t`
    NULL              the null marker
"""

from __future__ import annotations

import re

NULL = "\\N"
_SPECIAL = re.compile(r"[\\\t\n\r]")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def field(text: str) -> str:
    return text.translate(_ESCAPES) if _SPECIAL.search(text) else text


def needs_escape(text: str) -> bool:
    """Whether `field(text)` differs from `text` (test a join of many values at once)."""
    return _SPECIAL.search(text) is not None
