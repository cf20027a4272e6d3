"""The demo's data folders: one per run unless the user names one, never another run's deleted.

    run_folder(settings)     (folder, named): TICKSTOCKPL_DATA_DIR when the user set it, else a new
                             `<root>/demo-<YYYYmmdd-HHMMSS>-<pid>` under the default root
                             (~/.tickstockpl, or /var/tmp/tickstockpl as root)
    serve_folder(settings)   (folder, why) for demo-mode `serve`: the named folder, else the newest
                             folder `demo --keep` kept (`<root>/latest-demo` names it), else `<root>/serve`
    api_key(folder)          the demo key kept in `<folder>/api_key` (mode 600), made on first use

Layout of a folder: `postgres/` (the embedded PostgreSQL, `postgres/pgdata`), `redis/`, `flatfiles/`,
`api_key`. A folder is owned by one process at a time (db/embedded.py's folder lock).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path

from tickstockpl.errors import ConfigError
from tickstockpl.settings import Settings, default_data_dir

LATEST = "latest-demo"
PARTS = ("postgres", "redis", "flatfiles", "api_key")


def named(settings: Settings) -> bool:
    """Whether the user chose the data folder (TICKSTOCKPL_DATA_DIR) rather than the default root."""
    return Path(settings.data_dir).expanduser().absolute() != default_data_dir().absolute()


def _root(settings: Settings) -> Path:
    root = Path(settings.data_dir).expanduser().absolute()
    if not root.exists():
        root.mkdir(parents=True)
        os.chmod(root, 0o711 if os.geteuid() == 0 else 0o700)  # a new folder: nothing existing is widened
    return root


def holds_data(folder: Path) -> bool:
    return any((folder / part).exists() for part in PARTS)


def run_folder(settings: Settings) -> tuple[Path, bool]:
    """A folder for one demo run (see the module docstring); a named folder must not hold data yet."""
    if named(settings):
        folder = Path(settings.data_dir).expanduser().absolute()
        if holds_data(folder):
            raise ConfigError(
                f"the data folder {folder} already holds a demo's data (an earlier run's): it is left as it is;"
                f" browse it with `TICKSTOCKPL_DEMO=true TICKSTOCKPL_DATA_DIR={folder} tickstockpl serve`,"
                " or name a new or empty folder, or unset TICKSTOCKPL_DATA_DIR for a fresh folder of this run")
        folder.mkdir(parents=True, exist_ok=True)
        return folder, True
    root = _root(settings)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = root / f"demo-{stamp}-{os.getpid()}"
    folder.mkdir(mode=0o700)
    return folder, False


def remember_kept(settings: Settings, folder: Path) -> None:
    """Record `folder` as the newest kept demo (what demo-mode `serve` opens when no folder is named)."""
    if not named(settings):
        (_root(settings) / LATEST).write_text(str(folder) + "\n")


def serve_folder(settings: Settings) -> tuple[Path, str]:
    if named(settings):
        return Path(settings.data_dir).expanduser().absolute(), "TICKSTOCKPL_DATA_DIR"
    root = _root(settings)
    try:
        kept = Path((root / LATEST).read_text().strip())
    except OSError:
        kept = None
    if kept is not None and (kept / "postgres" / "pgdata" / "PG_VERSION").exists():
        return kept, "the newest demo kept with `tickstockpl demo --keep`"
    folder = root / "serve"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder, "no kept demo found (run `tickstockpl demo --keep` first for data): an empty database"


def api_key(folder: Path) -> str:
    path = folder / "api_key"
    try:
        key = path.read_text().strip()
        if len(key) >= 8:
            return key
    except OSError:
        pass
    key = "demo-" + secrets.token_urlsafe(18)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


def serve_command(folder: Path) -> str:
    return f"TICKSTOCKPL_DEMO=true TICKSTOCKPL_DATA_DIR={folder} tickstockpl serve"
