"""Rule-universe definitions as data: the packaged rules/defaults.toml plus `cache_config` overrides.

    default_definitions()                   -> {key: RuleDefinition} from rules/defaults.toml
    definitions_from_toml(text, source)     -> the same from any TOML text of that layout
    apply_overrides(definitions, rows)      -> a new dict with every `rule_universes` row applied (pure)
    parse_definition(key, data, where)      -> one RuleDefinition from a plain mapping

A definition is a TOML table `[universe.<key>]` (or a JSON object in a row) with these fields; every
error is one line naming the definition and the field, e.g.
`rule universe liquid_500: selection.count: expected an integer from 1 to 100000, got -5`.

    title, description          text
    enabled                     bool (default true); a row with enabled=false switches a built-in off
    candidates                  types (["CS"]), exchanges ([] = any), active (true), min_ipo_sessions (0)
    entry / stay                screens: median_dollar_volume = {sessions, min}, mean_dollar_volume =
                                {sessions, min}, min_price, coverage = {sessions, min_sessions} ("k of the
                                last N"), recent_sessions (M: "each of the last M"); `stay` defaults to `entry`
    rank                        metric ("market_cap" | "mean_dollar_volume" | "median_dollar_volume"),
                                sessions (the window of a dollar-volume metric)
    selection                   kind "all" | "top" (count) | "rank_range" (first, last) |
                                "percentile_range" (from_pct, to_pct: cumulative share of the metric)
    sector_cap                  fraction 0 < x <= 1 of the selection's size (top / rank_range only)
    band                        ranks (rank buffer) or percentile (cumulative-percentile band), not both
    min_stay_sessions           a member stays at least this many sessions (maintenance still applies)
    reconstitution              schedule "every_session" | "monthly" | "quarterly" | "semi_annual",
                                months (for quarterly / semi_annual)
    ipo_policy                  "reconstitution" (IPOs wait for the next reconstitution day) or
                                "fast_entry" (within `ipo_window_sessions` of seasoning an IPO may join
                                on any session it meets the entry rules)

Override rows (type `cache_config`, name `rule_universes`, key = the definition key): the value is a
JSON object (or a string holding one) merged table by table over the built-in of that key (a new key
needs a whole definition). Rows are applied in order, later rows win. A `stay` that defaults to the
entry keeps following it when a row changes `entry`; a row giving `stay` merges it over the entry.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any, Iterable, Mapping

from tickstockpl.errors import ConfigError
from tickstockpl.universes.config import decode_value, show_value as _show

ROWS_NAME = "rule_universes"  # cache_config rows of this name override definitions
MAX_WINDOW = 252  # the longest window of pl_symbol_liquidity (market/liquidity.WINDOW)
COUNT_MAX = 100_000
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,99}$")

METRICS = ("market_cap", "mean_dollar_volume", "median_dollar_volume")
SELECTIONS = ("all", "top", "rank_range", "percentile_range")
SCHEDULES = ("every_session", "monthly", "quarterly", "semi_annual")
DEFAULT_MONTHS = {"every_session": (), "monthly": tuple(range(1, 13)), "quarterly": (3, 6, 9, 12),
                  "semi_annual": (6, 12)}
MONTH_COUNTS = {"quarterly": 4, "semi_annual": 2}
IPO_POLICIES = ("reconstitution", "fast_entry")

_TOP_FIELDS = {"title", "description", "enabled", "candidates", "entry", "stay", "rank", "selection",
               "sector_cap", "band", "min_stay_sessions", "reconstitution", "ipo_policy", "ipo_window_sessions"}


@dataclass(frozen=True, slots=True)
class Window:
    """A dollar-volume screen: the statistic over the last `sessions` sessions must be >= `minimum`."""

    sessions: int
    minimum: float


@dataclass(frozen=True, slots=True)
class Coverage:
    """A valid close on at least `min_sessions` of the last `sessions` sessions."""

    sessions: int
    min_sessions: int


@dataclass(frozen=True, slots=True)
class Screens:
    median_dollar_volume: Window | None = None
    mean_dollar_volume: Window | None = None
    min_price: float | None = None
    coverage: Coverage | None = None
    recent_sessions: int | None = None  # a valid close on each of the last M sessions


@dataclass(frozen=True, slots=True)
class Candidates:
    types: tuple[str, ...] = ("CS",)
    exchanges: tuple[str, ...] = ()  # empty: any exchange
    active: bool = True
    min_ipo_sessions: int = 0


@dataclass(frozen=True, slots=True)
class Rank:
    metric: str = "market_cap"
    sessions: int | None = None  # the window of a dollar-volume metric


@dataclass(frozen=True, slots=True)
class Selection:
    kind: str = "all"
    count: int | None = None  # top
    first: int | None = None  # rank_range (1-based, inclusive)
    last: int | None = None
    from_pct: float | None = None  # percentile_range: from_pct < cumulative share <= to_pct
    to_pct: float | None = None

    @property
    def size(self) -> int | None:
        """The number of ranks the selection spans (top, rank_range), None otherwise."""
        if self.kind == "top":
            return self.count
        if self.kind == "rank_range":
            return self.last - self.first + 1
        return None


@dataclass(frozen=True, slots=True)
class Band:
    ranks: int = 0  # rank buffer
    percentile: float = 0.0  # cumulative-percentile band, percentage points

    @property
    def active(self) -> bool:
        return self.ranks > 0 or self.percentile > 0


@dataclass(frozen=True, slots=True)
class Reconstitution:
    schedule: str = "every_session"
    months: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleDefinition:
    key: str
    title: str
    description: str
    candidates: Candidates
    entry: Screens
    stay: Screens
    rank: Rank
    selection: Selection
    band: Band
    reconstitution: Reconstitution
    sector_cap: float | None = None
    min_stay_sessions: int = 0
    ipo_policy: str = "reconstitution"
    ipo_window_sessions: int = 0
    enabled: bool = True

    def sector_cap_count(self) -> int | None:
        """How many members one sector may hold (floor of cap × selection size), or None."""
        if self.sector_cap is None:
            return None
        return max(1, math.floor(self.sector_cap * self.selection.size + 1e-9))

    def windows(self) -> tuple[int, ...]:
        """Every window (in sessions) the definition's screens and metric read, sorted."""
        found = {self.rank.sessions} if self.rank.sessions else set()
        for screens in (self.entry, self.stay):
            for window in (screens.median_dollar_volume, screens.mean_dollar_volume, screens.coverage):
                if window is not None:
                    found.add(window.sessions)
        return tuple(sorted(found))


# --- loading -------------------------------------------------------------------------------------

def default_definitions() -> dict[str, RuleDefinition]:
    """The built-in definitions (universes/rules/defaults.toml)."""
    text = resources.files("tickstockpl.universes.rules").joinpath("defaults.toml").read_text(encoding="utf-8")
    return definitions_from_toml(text, "rules/defaults.toml")


def definitions_from_toml(text: str, source: str) -> dict[str, RuleDefinition]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    tables = data.get("universe")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"{source}: expected [universe.<key>] tables")
    return {key: parse_definition(key, body, f"{source}: rule universe {key}") for key, body in tables.items()}


def apply_overrides(definitions: Mapping[str, RuleDefinition], rows: Iterable[Any]) -> dict[str, RuleDefinition]:
    """`definitions` with every `rule_universes` row applied in order (rows of other names ignored).

    Each row has .name, .key and .value (universes.config.ConfigRow). The value is merged over the
    current definition of that key (built-in or an earlier row), field by field and table by table.
    """
    raw = {key: to_mapping(d) for key, d in definitions.items()}
    out = dict(definitions)
    for row in rows:
        if row.name != ROWS_NAME:
            continue
        key = str(row.key)
        where = f"cache_config row {ROWS_NAME}/{key}: rule universe {key}"
        value = decode_value(row.value)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a JSON object, got {_show(value)}")
        base = raw.get(key, {})
        if isinstance(value.get("stay"), dict) and "stay" not in base and isinstance(base.get("entry"), dict):
            base = {**base, "stay": base["entry"]}  # a stay that followed the entry starts from it
        merged = _merge(base, value)
        out[key] = parse_definition(key, merged, where)
        raw[key] = merged
    return out


def to_mapping(d: RuleDefinition) -> dict[str, Any]:
    """The plain mapping parse_definition reads back into `d` (for merging overrides)."""
    def screens(s: Screens) -> dict:
        m: dict[str, Any] = {}
        for name in ("median_dollar_volume", "mean_dollar_volume"):
            w = getattr(s, name)
            if w is not None:
                m[name] = {"sessions": w.sessions, "min": w.minimum}
        if s.min_price is not None:
            m["min_price"] = s.min_price
        if s.coverage is not None:
            m["coverage"] = {"sessions": s.coverage.sessions, "min_sessions": s.coverage.min_sessions}
        if s.recent_sessions is not None:
            m["recent_sessions"] = s.recent_sessions
        return m

    sel = {k: v for k, v in (("kind", d.selection.kind), ("count", d.selection.count), ("first", d.selection.first),
                             ("last", d.selection.last), ("from_pct", d.selection.from_pct),
                             ("to_pct", d.selection.to_pct)) if v is not None}
    out: dict[str, Any] = {
        "title": d.title, "description": d.description, "enabled": d.enabled,
        "candidates": {"types": list(d.candidates.types), "exchanges": list(d.candidates.exchanges),
                       "active": d.candidates.active, "min_ipo_sessions": d.candidates.min_ipo_sessions},
        "entry": screens(d.entry),
        "rank": {"metric": d.rank.metric, **({"sessions": d.rank.sessions} if d.rank.sessions else {})},
        "selection": sel,
        "min_stay_sessions": d.min_stay_sessions,
        "reconstitution": {"schedule": d.reconstitution.schedule,
                           **({"months": list(d.reconstitution.months)} if d.reconstitution.schedule in MONTH_COUNTS
                              else {})},
        "ipo_policy": d.ipo_policy, "ipo_window_sessions": d.ipo_window_sessions,
    }
    if d.stay != d.entry:  # left out when equal: a stay that defaults to the entry keeps following it
        out["stay"] = screens(d.stay)
    if d.band.ranks:
        out["band"] = {"ranks": d.band.ranks}
    elif d.band.percentile:
        out["band"] = {"percentile": d.band.percentile}
    if d.sector_cap is not None:
        out["sector_cap"] = d.sector_cap
    return out


def liquidity_filter(definition: RuleDefinition) -> dict[str, Any]:
    """The rules a member is screened by, as JSON (the relational group's `liquidity_filter`): the
    definition's candidates, entry and stay screens, rank, selection, band, sector cap and calendar."""
    plain = to_mapping(definition)
    return {k: plain[k] for k in ("candidates", "entry", "stay", "rank", "selection", "band", "sector_cap",
                                  "min_stay_sessions", "reconstitution", "ipo_policy", "ipo_window_sessions") if k in plain}


# A table whose kind changes is replaced, not merged: {"selection": {"kind": "percentile_range", ...}}
# over a top selection must not keep its `count`.
_KIND_FIELDS = {"selection": "kind", "reconstitution": "schedule", "rank": "metric"}


def _merge(base: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in change.items():
        old = out.get(key)
        kind = _KIND_FIELDS.get(key)
        replaced = key == "band" or (kind is not None and isinstance(value, dict) and isinstance(old, dict)
                                     and kind in value and value[kind] != old.get(kind))
        if isinstance(value, dict) and isinstance(old, dict) and not replaced:
            out[key] = _merge(old, value)
        else:
            out[key] = value  # a band replaces the band: {"ranks": 0} must not keep an old percentile
    return out


# --- parsing and validation ----------------------------------------------------------------------

def parse_definition(key: Any, data: Any, where: str | None = None) -> RuleDefinition:
    """One definition from a mapping; ConfigError("<where>: <field>: ...") on anything malformed."""
    where = where or f"rule universe {key}"
    if not isinstance(key, str) or not KEY_RE.match(key) or key.startswith("dev_"):
        raise ConfigError(f"{where}: key: expected lower-case letters, digits and _ (1 to 100, not dev_), got {_show(key)}")
    body = _table(data, where, "")
    _known(body, _TOP_FIELDS, where, "")
    candidates = _candidates(body.get("candidates", {}), where)
    entry = _screens(body.get("entry", {}), where, "entry")
    stay = _screens(body["stay"], where, "stay") if "stay" in body else entry
    rank = _rank(body.get("rank", {}), where)
    selection = _selection(body.get("selection", {}), where)
    band = _band(body.get("band", {}), selection, where)
    sector_cap = None
    if body.get("sector_cap") is not None:
        sector_cap = _number(body["sector_cap"], where, "sector_cap", low=0.0, high=1.0, open_low=True)
        if selection.size is None:
            raise ConfigError(f"{where}: sector_cap: needs a selection of kind top or rank_range, not {selection.kind}")
    recon = _reconstitution(body.get("reconstitution", {}), where)
    policy = _choice(body.get("ipo_policy", "reconstitution"), IPO_POLICIES, where, "ipo_policy")
    window = _int(body.get("ipo_window_sessions", 0), where, "ipo_window_sessions", low=0, high=MAX_WINDOW)
    if policy == "fast_entry" and window == 0:
        raise ConfigError(f"{where}: ipo_window_sessions: fast_entry needs a window of 1 or more sessions")
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where}: enabled: expected true or false, got {_show(enabled)}")
    return RuleDefinition(
        key=key,
        title=_text(body.get("title", key), where, "title"),
        description=_text(body.get("description", ""), where, "description", empty=True),
        candidates=candidates, entry=entry, stay=stay, rank=rank, selection=selection, band=band,
        reconstitution=recon, sector_cap=sector_cap,
        min_stay_sessions=_int(body.get("min_stay_sessions", 0), where, "min_stay_sessions", low=0, high=COUNT_MAX),
        ipo_policy=policy, ipo_window_sessions=window, enabled=enabled,
    )


def _candidates(data: Any, where: str) -> Candidates:
    body = _table(data, where, "candidates")
    _known(body, {"types", "exchanges", "active", "min_ipo_sessions"}, where, "candidates.")
    types = _codes(body.get("types", ["CS"]), where, "candidates.types", empty=False)
    exchanges = _codes(body.get("exchanges", []), where, "candidates.exchanges", empty=True)
    active = body.get("active", True)
    if not isinstance(active, bool):
        raise ConfigError(f"{where}: candidates.active: expected true or false, got {_show(active)}")
    seasoning = _int(body.get("min_ipo_sessions", 0), where, "candidates.min_ipo_sessions", low=0, high=COUNT_MAX)
    return Candidates(types, exchanges, active, seasoning)


def _screens(data: Any, where: str, name: str) -> Screens:
    body = _table(data, where, name)
    _known(body, {"median_dollar_volume", "mean_dollar_volume", "min_price", "coverage", "recent_sessions"},
           where, f"{name}.")
    windows = {}
    for field in ("median_dollar_volume", "mean_dollar_volume"):
        if body.get(field) is not None:
            w = _table(body[field], where, f"{name}.{field}")
            _known(w, {"sessions", "min"}, where, f"{name}.{field}.")
            windows[field] = Window(
                _int(w.get("sessions"), where, f"{name}.{field}.sessions", low=1, high=MAX_WINDOW),
                _number(w.get("min"), where, f"{name}.{field}.min", low=0.0))
    price = None
    if body.get("min_price") is not None:
        price = _number(body["min_price"], where, f"{name}.min_price", low=0.0)
    coverage = None
    if body.get("coverage") is not None:
        c = _table(body["coverage"], where, f"{name}.coverage")
        _known(c, {"sessions", "min_sessions"}, where, f"{name}.coverage.")
        sessions = _int(c.get("sessions"), where, f"{name}.coverage.sessions", low=1, high=MAX_WINDOW)
        coverage = Coverage(sessions, _int(c.get("min_sessions"), where, f"{name}.coverage.min_sessions",
                                           low=1, high=sessions))
    recent = None
    if body.get("recent_sessions") is not None:
        recent = _int(body["recent_sessions"], where, f"{name}.recent_sessions", low=1, high=MAX_WINDOW)
    return Screens(windows.get("median_dollar_volume"), windows.get("mean_dollar_volume"), price, coverage, recent)


def _rank(data: Any, where: str) -> Rank:
    body = _table(data, where, "rank")
    _known(body, {"metric", "sessions"}, where, "rank.")
    metric = _choice(body.get("metric", "market_cap"), METRICS, where, "rank.metric")
    if metric == "market_cap":
        if body.get("sessions") is not None:
            raise ConfigError(f"{where}: rank.sessions: market_cap has no window (leave sessions out)")
        return Rank(metric)
    return Rank(metric, _int(body.get("sessions"), where, "rank.sessions", low=1, high=MAX_WINDOW))


def _selection(data: Any, where: str) -> Selection:
    body = _table(data, where, "selection")
    kind = _choice(body.get("kind", "all"), SELECTIONS, where, "selection.kind")
    fields = {"all": set(), "top": {"count"}, "rank_range": {"first", "last"},
              "percentile_range": {"from_pct", "to_pct"}}
    _known(body, {"kind"} | fields[kind], where, "selection.")
    if kind == "top":
        return Selection(kind, count=_int(body.get("count"), where, "selection.count", low=1, high=COUNT_MAX))
    if kind == "rank_range":
        first = _int(body.get("first"), where, "selection.first", low=1, high=COUNT_MAX)
        last = _int(body.get("last"), where, "selection.last", low=first, high=COUNT_MAX)
        return Selection(kind, first=first, last=last)
    if kind == "percentile_range":
        low = _number(body.get("from_pct"), where, "selection.from_pct", low=0.0, high=100.0)
        high = _number(body.get("to_pct"), where, "selection.to_pct", low=0.0, high=100.0)
        if not high > low:
            raise ConfigError(f"{where}: selection.to_pct: must be above from_pct ({low:g}), got {high:g}")
        return Selection(kind, from_pct=low, to_pct=high)
    return Selection(kind)


def _band(data: Any, selection: Selection, where: str) -> Band:
    body = _table(data, where, "band")
    _known(body, {"ranks", "percentile"}, where, "band.")
    ranks = _int(body.get("ranks", 0), where, "band.ranks", low=0, high=COUNT_MAX)
    pct = _number(body.get("percentile", 0.0), where, "band.percentile", low=0.0, high=50.0)
    if ranks and pct:
        raise ConfigError(f"{where}: band: a rank buffer or a percentile band, not both")
    if ranks and selection.kind not in ("top", "rank_range"):
        raise ConfigError(f"{where}: band.ranks: a rank buffer needs a selection of kind top or rank_range")
    if pct and selection.kind != "percentile_range":
        raise ConfigError(f"{where}: band.percentile: a percentile band needs a selection of kind percentile_range")
    return Band(ranks, pct)


def _reconstitution(data: Any, where: str) -> Reconstitution:
    body = _table(data, where, "reconstitution")
    _known(body, {"schedule", "months"}, where, "reconstitution.")
    schedule = _choice(body.get("schedule", "every_session"), SCHEDULES, where, "reconstitution.schedule")
    months = body.get("months")
    if months is None or (schedule in ("every_session", "monthly") and months == []):
        return Reconstitution(schedule, DEFAULT_MONTHS[schedule])
    if schedule in ("every_session", "monthly"):
        raise ConfigError(f"{where}: reconstitution.months: {schedule} takes no months")
    if not isinstance(months, list) or not all(isinstance(m, int) and not isinstance(m, bool) and 1 <= m <= 12
                                               for m in months) or len(set(months)) != len(months):
        raise ConfigError(f"{where}: reconstitution.months: expected distinct months 1 to 12, got {_show(months)}")
    if len(months) != MONTH_COUNTS[schedule]:
        raise ConfigError(f"{where}: reconstitution.months: {schedule} needs {MONTH_COUNTS[schedule]} months, got {_show(months)}")
    ordered = tuple(sorted(months))
    gaps = {(b - a) % 12 for a, b in zip(ordered, ordered[1:] + ordered[:1])}
    if gaps != {12 // MONTH_COUNTS[schedule]}:
        raise ConfigError(f"{where}: reconstitution.months: {schedule} months must be evenly spaced, got {_show(months)}")
    return Reconstitution(schedule, ordered)


# --- small validators ----------------------------------------------------------------------------

def _choice(value: Any, options: Iterable[str], where: str, field: str) -> str:
    if value not in options:
        raise ConfigError(f"{where}: {field}: expected one of {', '.join(options)}, got {_show(value)}")
    return value


def _table(value: Any, where: str, field: str) -> dict:
    if isinstance(value, dict):
        return value
    raise ConfigError(f"{where}: {field or 'definition'}: expected a table/object, got {_show(value)}")


def _known(body: Mapping, allowed: set[str], where: str, prefix: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ConfigError(f"{where}: {prefix}{unknown[0]}: unknown field (expected one of {', '.join(sorted(allowed))})")


def _int(value: Any, where: str, field: str, *, low: int, high: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    raise ConfigError(f"{where}: {field}: expected an integer from {low} to {high}, got {_show(value)}")


def _number(value: Any, where: str, field: str, *, low: float, high: float = math.inf, open_low: bool = False) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isfinite(number) and (number > low if open_low else number >= low) and number <= high:
            return number
    bound = f"above {low:g}" if open_low else f"at least {low:g}"
    upper = f" and at most {high:g}" if math.isfinite(high) else ""
    raise ConfigError(f"{where}: {field}: expected a finite number {bound}{upper}, got {_show(value)}")


def _text(value: Any, where: str, field: str, empty: bool = False) -> str:
    if isinstance(value, str) and (empty or value.strip()):
        return value.strip()
    raise ConfigError(f"{where}: {field}: expected a {'' if empty else 'non-empty '}string, got {_show(value)}")


def _codes(value: Any, where: str, field: str, empty: bool) -> tuple[str, ...]:
    if isinstance(value, list) and (empty or value) and all(
            isinstance(v, str) and v.strip() and len(v.strip()) <= 20 for v in value):
        return tuple(dict.fromkeys(v.strip().upper() for v in value))
    need = "an array" if empty else "a non-empty array"
    raise ConfigError(f"{where}: {field}: expected {need} of codes (1 to 20 characters), got {_show(value)}")
