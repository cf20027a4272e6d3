"""Build every requested family of universes from a snapshot: the pure heart of a sync.

    build(snapshot, config, families) -> BuildResult(entries, warnings)

No I/O here. Each family has one builder (see universes/families.py); warnings (slug
collisions, over-long keys) are returned, not raised, so that one odd row never aborts a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from tickstockpl.market.snapshot import Snapshot
from tickstockpl.universes.config import UniverseConfig
from tickstockpl.universes.model import Entry


@dataclass(frozen=True)
class BuildResult:
    entries: tuple[Entry, ...]
    warnings: tuple[str, ...] = ()


def build(snapshot: Snapshot, config: UniverseConfig, families: Iterable[str]) -> BuildResult:
    raise NotImplementedError("universe builders are being written (issue 2)")
