"""Universe configuration: the packaged defaults, overridden per key by `cache_config` rows.

    default_config()                 -> UniverseConfig read from universes/defaults.toml
    apply_overrides(config, rows)    -> a new UniverseConfig (contract §5.4); pure

Override rows (type `cache_config` in cache_entries; AppV2 keeps them, PL only reads them):

    name                    key                          value
    market_cap_thresholds   mega_cap ... micro_cap       finite positive number; the five must
                                                         still strictly decrease mega > ... > micro
    theme_definitions       theme name (-> lower case)   array of tickers; replaces or adds a theme
    complete_limits         stocks_full_metadata_limit,  integer 1 ... 100000
                            etfs_full_metadata_limit
    etf_categories          category key ("etf_growth";  {"display_name"|"name": str, "include": [str],
                            "growth" gets the prefix)      "exclude": [str]}  or  [include words]
    industry_groups,        any key                      JSON object or array, kept in `extra`
    sic_mapping, sic_ranges                              (validated, not used by any builder)

A value may arrive as a JSON value or as a string holding JSON text; a string that is not JSON
is taken as it is (and then usually rejected). Rows with any other `name` are ignored. A
malformed row raises ConfigError naming it, e.g.
`cache_config row market_cap_thresholds/mega_cap: expected a finite positive number, got "abc"`.

For an etf_categories object, fields it leaves out keep the category's current values; a new
category needs `include` (an empty include list means "every active ETF", as for etf_all); an
array replaces only the include words; a bare string (AppV2's old fallback format) renames a
known category and is rejected for an unknown one, which would have no words to match. A theme's display name is `theme_names[key]` when set,
else `key.title()` (AppV2's old job wrote "Ai", "Biotech"... so the stored names stay stable).

UniverseConfig is frozen; its dict fields are fresh copies and are never mutated by this
package (apply_overrides builds new ones), so treat them as read-only.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Iterable

from tickstockpl.errors import ConfigError
from tickstockpl.universes import naming
from tickstockpl.universes.model import TICKER_MAX

BANDS = ("mega_cap", "large_cap", "mid_cap", "small_cap", "micro_cap")
COMPLETE_LIMIT_KEYS = ("stocks_full_metadata_limit", "etfs_full_metadata_limit")
EXTRA_NAMES = ("industry_groups", "sic_mapping", "sic_ranges")
LIMIT_MAX = 100_000


@dataclass(frozen=True)
class EtfCategory:
    """An ETF category (contract §5.3); an empty `include` matches every active ETF."""

    key: str
    display_name: str
    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class UniverseConfig:
    """Every parameter of the universe builders. Validated and normalised on construction."""

    market_cap_thresholds: dict[str, float]
    leader_sizes: dict[str, int]
    sector_leader_size: int
    industry_count: int
    industry_min_stocks: int
    industry_size: int
    stocks_full_metadata_limit: int
    etfs_full_metadata_limit: int
    themes: dict[str, tuple[str, ...]]
    theme_names: dict[str, str]
    etf_categories: tuple[EtfCategory, ...]
    essential_etfs: tuple[str, ...]
    combo_stock_count: int
    ipo_days: int
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = "universe configuration"
        thresholds = _mapping(self.market_cap_thresholds, f"{where}: market_cap_thresholds")
        if set(thresholds) != set(BANDS):
            raise ConfigError(f"{where}: market_cap_thresholds must have exactly the keys {', '.join(BANDS)}")
        fixed = {band: _positive_number(thresholds[band], f"{where}: market_cap_thresholds.{band}") for band in BANDS}
        _check_band_order(fixed, {}, f"{where}: market_cap_thresholds")
        leaders = {
            str(key): _count(size, f"{where}: leader_sizes.{key}")
            for key, size in _mapping(self.leader_sizes, f"{where}: leader_sizes").items()
        }
        themes = {}
        for key, tickers in _mapping(self.themes, f"{where}: themes").items():
            themes[naming.theme_key(_text(key, f"{where}: theme key"))] = _tickers(tickers, f"{where}: themes.{key}")
        names = {
            naming.theme_key(str(key)): _text(name, f"{where}: theme_names.{key}")
            for key, name in _mapping(self.theme_names, f"{where}: theme_names").items()
        }
        categories = tuple(
            _category(cat, f"{where}: etf_categories.{getattr(cat, 'key', '?')}") for cat in self.etf_categories
        )
        seen = [cat.key for cat in categories]
        if len(set(seen)) != len(seen):
            raise ConfigError(f"{where}: etf_categories has a key twice: {sorted(seen)}")
        extra = {str(k): dict(_mapping(v, f"{where}: extra.{k}")) for k, v in _mapping(self.extra, f"{where}: extra").items()}
        fields = dict(
            market_cap_thresholds=fixed,
            leader_sizes=leaders,
            themes=themes,
            theme_names=names,
            etf_categories=categories,
            essential_etfs=_tickers(self.essential_etfs, f"{where}: essential_etfs"),
            extra=extra,
        )
        for name in ("sector_leader_size", "industry_count", "industry_min_stocks", "industry_size",
                     "stocks_full_metadata_limit", "etfs_full_metadata_limit", "combo_stock_count"):
            fields[name] = _count(getattr(self, name), f"{where}: {name}")
        fields["ipo_days"] = _count(self.ipo_days, f"{where}: ipo_days", minimum=0)
        for name, value in fields.items():
            object.__setattr__(self, name, value)


CONFIG_TYPE = "cache_config"  # the cache_entries type of the override rows


@dataclass(frozen=True)
class ConfigRow:
    """One `cache_config` row: value is a JSON value or a string holding JSON text."""

    name: str
    key: str
    value: Any


def default_config() -> UniverseConfig:
    """The packaged defaults (universes/defaults.toml) as a UniverseConfig."""
    text = resources.files("tickstockpl.universes").joinpath("defaults.toml").read_text(encoding="utf-8")
    return config_from_toml(text, "defaults.toml")


def config_from_toml(text: str, source: str) -> UniverseConfig:
    """A UniverseConfig from TOML text laid out like defaults.toml; ConfigError names `source`."""
    try:
        data = tomllib.loads(text)
        limits = data["complete_limits"]
        industry = data["industry"]
        return UniverseConfig(
            market_cap_thresholds=dict(data["market_cap_thresholds"]),
            leader_sizes=dict(data["leader_sizes"]),
            sector_leader_size=data["sector_leader_size"],
            industry_count=industry["count"],
            industry_min_stocks=industry["min_stocks"],
            industry_size=industry["size"],
            stocks_full_metadata_limit=limits["stocks_full_metadata_limit"],
            etfs_full_metadata_limit=limits["etfs_full_metadata_limit"],
            themes=dict(data["themes"]),
            theme_names=dict(data.get("theme_names", {})),
            etf_categories=tuple(
                EtfCategory(c["key"], c["display_name"], tuple(c["include"]), tuple(c.get("exclude", ())))
                for c in data["etf_categories"]
            ),
            essential_etfs=tuple(data["combo"]["essential_etfs"]),
            combo_stock_count=data["combo_stock_count"],
            ipo_days=data["ipo_days"],
        )
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"{source}: missing or malformed entry {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def apply_overrides(base: UniverseConfig, rows: Iterable[ConfigRow]) -> UniverseConfig:
    """`base` with every recognised row applied in order (later rows win); see the module docstring."""
    state = _Overrides(base)
    for row in rows:
        handler = _HANDLERS.get(row.name)
        if handler is not None:
            handler(state, str(row.key), decode_value(row.value), f"cache_config row {row.name}/{row.key}")
    return state.result()


def decode_value(value: Any) -> Any:
    """A row value as a Python JSON value: strings holding JSON text are parsed, others kept."""
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class _Overrides:
    """The mutable working copy apply_overrides fills; `result()` turns it into a config."""

    def __init__(self, base: UniverseConfig):
        self.base = base
        self.thresholds = dict(base.market_cap_thresholds)
        self.threshold_rows: dict[str, str] = {}
        self.limits = {key: getattr(base, key) for key in COMPLETE_LIMIT_KEYS}
        self.themes = dict(base.themes)
        self.categories = {cat.key: cat for cat in base.etf_categories}
        self.extra = {name: dict(values) for name, values in base.extra.items()}

    def result(self) -> UniverseConfig:
        _check_band_order(self.thresholds, self.threshold_rows, "universe configuration")
        return dataclasses.replace(
            self.base,
            market_cap_thresholds=self.thresholds,
            themes=self.themes,
            etf_categories=tuple(self.categories.values()),
            extra=self.extra,
            **self.limits,
        )


def _threshold_row(state: _Overrides, key: str, value: Any, where: str) -> None:
    if key not in BANDS:
        raise ConfigError(f"{where}: unknown band (expected one of {', '.join(BANDS)})")
    state.thresholds[key] = _positive_number(value, where)
    state.threshold_rows[key] = where


def _theme_row(state: _Overrides, key: str, value: Any, where: str) -> None:
    theme = naming.theme_key(key)
    if not theme:
        raise ConfigError(f"{where}: empty theme name")
    state.themes[theme] = _tickers(value, where)


def _limit_row(state: _Overrides, key: str, value: Any, where: str) -> None:
    if key not in COMPLETE_LIMIT_KEYS:
        raise ConfigError(f"{where}: unknown limit (expected one of {', '.join(COMPLETE_LIMIT_KEYS)})")
    state.limits[key] = _count(value, where)


def _category_row(state: _Overrides, key: str, value: Any, where: str) -> None:
    cat_key = naming.category_key(key)
    if cat_key == "etf_":
        raise ConfigError(f"{where}: empty category key")
    current = state.categories.get(cat_key)
    if isinstance(value, list):
        value = {"include": value}
    if isinstance(value, str) and current is not None:
        # AppV2's old fallback config stored bare display names ('etf_growth': 'Growth ETFs'):
        # for a category we know, that renames it and keeps its words.
        value = {"display_name": value}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected an object with display_name/include/exclude or an array of words, got {show_value(value)}")
    if "include" not in value and current is None:
        raise ConfigError(f"{where}: a new category needs an \"include\" list of words")
    name = value.get("display_name", value.get("name"))
    if name is None:
        name = current.display_name if current else naming.category_display_name(cat_key)
    state.categories[cat_key] = _category(
        EtfCategory(
            key=cat_key,
            display_name=name,
            include=value["include"] if "include" in value else current.include,
            exclude=value.get("exclude", current.exclude if current else ()),
        ),
        where,
    )


def _extra_row(name: str):
    def handler(state: _Overrides, key: str, value: Any, where: str) -> None:
        if not isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: expected a JSON object or array, got {show_value(value)}")
        state.extra.setdefault(name, {})[key] = value

    return handler


_HANDLERS = {
    "market_cap_thresholds": _threshold_row,
    "theme_definitions": _theme_row,
    "complete_limits": _limit_row,
    "etf_categories": _category_row,
    **{name: _extra_row(name) for name in EXTRA_NAMES},
}


# --- validators: each returns the normalised value or raises ConfigError("<where>: ...") ---

def show_value(value: Any) -> str:
    """A short JSON-ish rendering of a bad value for an error message (rules/definition.py uses it too)."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _positive_number(value: Any, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an int beyond the float range
            number = math.inf
        if math.isfinite(number) and number > 0:
            return number
    raise ConfigError(f"{where}: expected a finite positive number, got {show_value(value)}")


def _count(value: Any, where: str, minimum: int = 1) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= LIMIT_MAX:
        return value
    raise ConfigError(f"{where}: expected an integer from {minimum} to {LIMIT_MAX}, got {show_value(value)}")


def _text(value: Any, where: str) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ConfigError(f"{where}: expected a non-empty string, got {show_value(value)}")


def _mapping(value: Any, where: str) -> dict:
    if isinstance(value, dict):
        return value
    raise ConfigError(f"{where}: expected a table/object, got {show_value(value)}")


def _tickers(value: Any, where: str) -> tuple[str, ...]:
    """Tickers stripped and upper-cased, duplicates dropped, order kept."""
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where}: expected an array of tickers, got {show_value(value)}")
    out: dict[str, None] = {}
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item.strip()) > TICKER_MAX:
            raise ConfigError(f"{where}: expected tickers of 1 to {TICKER_MAX} characters, got {show_value(item)}")
        out[item.strip().upper()] = None
    return tuple(out)


def _phrases(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where}: expected an array of words, got {show_value(value)}")
    for item in value:
        if not isinstance(item, str) or not naming.words(item):
            raise ConfigError(f"{where}: expected words (letters or digits), got {show_value(item)}")
    return tuple(item.strip() for item in value)


def _category(cat: Any, where: str) -> EtfCategory:
    if not isinstance(cat, EtfCategory):
        raise ConfigError(f"{where}: expected an EtfCategory, got {show_value(repr(cat))}")
    return EtfCategory(
        key=_text(cat.key, f"{where}: key"),
        display_name=_text(cat.display_name, f"{where}: display_name"),
        include=_phrases(cat.include, f"{where}: include"),
        exclude=_phrases(cat.exclude, f"{where}: exclude"),
    )


def _check_band_order(thresholds: dict[str, float], rows: dict[str, str], where: str) -> None:
    """Raise unless thresholds strictly decrease mega > large > mid > small > micro.

    The message names the override rows of the two bands in conflict (`rows`: band -> row
    name), or `where` when neither came from a row.
    """
    for upper, lower in zip(BANDS, BANDS[1:]):
        if not thresholds[upper] > thresholds[lower]:
            named = " and ".join(rows[band] for band in (upper, lower) if band in rows) or where
            raise ConfigError(
                f"{named}: market-cap thresholds must strictly decrease from mega_cap to micro_cap, "
                f"but {upper}={thresholds[upper]:g} is not above {lower}={thresholds[lower]:g}"
            )
