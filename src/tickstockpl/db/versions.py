"""The packaged migrations: numbered `.sql` files in `db/migrations/` (`NNNN_name.sql`), listed and read.

`available()` lists them in version order, `packaged_versions()` their numbers; `latest_version()` is the newest (the version a sync needs).
Both the upgrade (db/migrate.py) and the schema check (db/check.py) read them from here, so neither
imports the other for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_CONCURRENT_INDEX = re.compile(
    r"^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?([a-z_][a-z0-9_]*)\s+ON\s",
    re.IGNORECASE)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def transactional(self) -> bool:
        return not self.sql.lstrip().startswith("-- no-transaction")

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"

    def concurrent_indexes(self) -> list[tuple[str, str]]:
        """(index name, statement) of every CREATE INDEX CONCURRENTLY of a no-transaction migration."""
        if self.transactional:
            return []
        found = []
        for statement in _statements(self.sql):
            match = _CONCURRENT_INDEX.match(statement)
            if match:
                found.append((match.group(1).lower(), statement))
        return found


def available() -> list[Migration]:
    folder = resources.files("tickstockpl.db") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version number: {versions}")
    return found


def _statements(sql: str) -> list[str]:
    body = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


@lru_cache(maxsize=1)
def packaged_versions() -> tuple[int, ...]:
    """The versions of the packaged migrations, ascending (gaps possible while branches merge)."""
    return tuple(m.version for m in available())


def latest_version() -> int:
    """The newest packaged migration (the version a sync needs)."""
    return packaged_versions()[-1]
