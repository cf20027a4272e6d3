"""Build every requested family of universes from a snapshot: the pure heart of a sync.

    build(snapshot, config, families) -> BuildResult(entries, warnings, stock_rows)

1. check the family ids (an unknown id is a programming error: ValueError);
2. prepare the snapshot once (`families.prepare`: deduplicate, classify, sort);
3. run each requested family's builder (`families.BUILDERS`) in `model.ALL_FAMILIES` order;
4. keep the first entry of each (type, name, key) and warn about any later one;
5. sort the entries by (type, name, key).

No I/O here. Warnings (merged spellings, over-long or empty keys, collisions) are returned, not
raised, so that one odd row never aborts a run. The same snapshot and configuration always give
the same result, whatever the order of `snapshot.securities`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Iterable, Mapping

from tickstockpl.market.snapshot import Snapshot
from tickstockpl.universes.config import UniverseConfig
from tickstockpl.universes.families import BUILDERS, prepare
from tickstockpl.universes.model import ALL_FAMILIES, Entry


@dataclass(frozen=True)
class BuildResult:
    entries: tuple[Entry, ...]
    warnings: tuple[str, ...] = ()
    # symbol -> (its security, its StockObj row: shapes.stock_fields) for every eligible stock whose row a
    # builder made; the rule universes reuse them (rules.publish: the same security gives the same row)
    stock_rows: Mapping[str, tuple] = field(default_factory=lambda: MappingProxyType({}))


def build(snapshot: Snapshot, config: UniverseConfig, families: Iterable[str]) -> BuildResult:
    """Entries of the requested families, sorted by (type, name, key) and unique on it, plus warnings.

    `families` holds family ids from `model` (e.g. `FAMILIES_BY_MODE["full"]`); a single id
    string is accepted too. Raises ValueError naming any unknown id.
    """
    wanted = {families} if isinstance(families, str) else set(families)
    unknown = sorted(str(family) for family in wanted - set(ALL_FAMILIES))
    if unknown:
        raise ValueError(f"unknown universe families: {', '.join(unknown)} (known: {', '.join(ALL_FAMILIES)})")
    warnings: list[str] = []
    market = prepare(snapshot, warnings)
    kept: dict[tuple[str, str, str], Entry] = {}
    for family in ALL_FAMILIES:
        if family not in wanted:
            continue
        for entry in BUILDERS[family](market, config, warnings):
            ident = (entry.type, entry.name, entry.key)
            if ident in kept:
                warnings.append(
                    f"skipped a {family} universe: {entry.universe} is already built by {kept[ident].family}"
                )
            else:
                kept[ident] = entry
    rows = market.__dict__.get("rows")  # made by a builder (a cached_property), never just for this
    stock_rows = {} if rows is None else {s.symbol: (s, row) for s, row in zip(market.eligible, rows)}
    return BuildResult(entries=tuple(kept[ident] for ident in sorted(kept)), warnings=tuple(warnings),
                       stock_rows=MappingProxyType(stock_rows))
