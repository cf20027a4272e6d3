"""Names and keys of universes (contract §5.2), and the words of a name (ETF matching, §5.3).

slug(s) -- the key form of a free-text label such as a sector or an industry:
    1. lower-case (`str.lower`);
    2. every `&` becomes `and`;
    3. every run of whitespace becomes one `_`;
    4. runs of `_` collapse to one, and leading/trailing `_` are removed.
    Every other character is kept as it is.
    "Financial Services" -> "financial_services", "Oil & Gas" -> "oil_and_gas",
    "E&P" -> "eandp", "  Real   Estate " -> "real_estate".
    For a label with single spaces and no leading/trailing blanks this equals AppV2's old
    `label.lower().replace(' ', '_').replace('&', 'and')`, so keys it stored stay stable.

Two labels with one slug ("Oil & Gas", "oil and gas") are MERGED: the builders group by slug,
so they describe one sector or industry and give one universe; the builder returns a warning
naming the spellings it merged. A name or key that is empty or longer than `model.KEY_MAX`
characters (cache_entries.name / key are varchar(100)) is SKIPPED with a warning
(`problem()` says why). Neither aborts a run.

words(text) -- the case-insensitive words of a name: runs of letters and digits, plus each `&`
as a word of its own; all other characters separate words. A phrase matches a name when its
words occur in the name consecutively ("S&P 500" matches "SPDR S&P 500 ETF Trust";
"Tech" does not match "Biotechnology").
"""

from __future__ import annotations

import re
from functools import lru_cache

from tickstockpl.universes.model import KEY_MAX

UNKNOWN = "Unknown"

_WHITESPACE = re.compile(r"\s+")
_UNDERSCORES = re.compile(r"_{2,}")
_WORD = re.compile(r"[^\W_]+|&")


@lru_cache(maxsize=8192)  # a market has a few hundred distinct labels, each slugged thousands of times
def slug(label: str) -> str:
    """The key form of `label` (see the module docstring); "" for a blank label."""
    text = label.lower().replace("&", "and")
    text = _WHITESPACE.sub("_", text)
    return _UNDERSCORES.sub("_", text).strip("_")


def is_unknown(label: str | None) -> bool:
    """True when a sector/industry label is missing, blank or "Unknown" (any case)."""
    return label is None or slug(label) in ("", "unknown")


def problem(name: str, key: str) -> str | None:
    """Why (name, key) cannot be a cache_entries row, or None when it can."""
    for what, text in (("name", name), ("key", key)):
        if not text:
            return f"empty {what}"
        if len(text) > KEY_MAX:
            return f"{what} longer than {KEY_MAX} characters ({len(text)}): {text[:40]}..."
    return None


def top_key(size: int) -> str:
    """Key of a top-N list: "top_1000"."""
    return f"top_{size}"


def sector_leaders_key(sector_slug: str, size: int) -> str:
    """Key of a sector-leaders universe: "top_10_financial_services"."""
    return f"top_{size}_{sector_slug}"


def detailed_key(category_key: str) -> str:
    """Key of the EtfDetailObj twin of an ETF category array: "etf_growth_detailed"."""
    return f"{category_key}_detailed"


def theme_key(name: str) -> str:
    """The key of a theme: its name stripped and lower-cased ("AI " -> "ai")."""
    return name.strip().lower()


def theme_display_name(key: str, names: dict[str, str]) -> str:
    """The display name of a theme: the configured one, else `key.title()` ("ai" -> "Ai")."""
    return names.get(key) or key.title()


def category_key(name: str) -> str:
    """An ETF category key: slugged, with the "etf_" prefix added when missing ("growth" -> "etf_growth")."""
    key = slug(name)
    return key if key.startswith("etf_") else f"etf_{key}"


def category_display_name(key: str) -> str:
    """Display name for a new ETF category: "etf_dividend_income" -> "Dividend Income ETFs"."""
    base = key.removeprefix("etf_").replace("_", " ").strip()
    return f"{base.title()} ETFs" if base else "ETFs"


def words(text: str) -> tuple[str, ...]:
    """The case-insensitive words of `text` (see the module docstring)."""
    return tuple(_WORD.findall(text.casefold()))
