"""Helpers of the demo and embedded-server tests: data folders the embedded PostgreSQL can use (as
root it runs as the system user `tickstockpl`, which cannot pass through pytest's tmp_path under
/tmp/pytest-of-root, mode 700), the pids a demo-mode server's children write, the CLI as a process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tickstockpl.db.embedded import process_alive

ROOT = os.geteuid() == 0


def new_data_root(tmp_path: Path) -> Path:
    """A folder to put data folders in: tmp_path, or as root a new folder under /var/tmp (mode 711)."""
    if not ROOT:
        return tmp_path
    folder = Path(tempfile.mkdtemp(prefix="tspl-demo-test-", dir="/var/tmp"))
    os.chmod(folder, 0o711)
    return folder


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def postgres_pid(folder: Path) -> int | None:
    try:
        return int((folder / "postgres" / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def redis_pid(folder: Path) -> int | None:
    try:
        return int((folder / "redis" / "redis.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def alive(pid: int | None) -> bool:
    return process_alive(pid)


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKSTOCKPL_", "DATABASE_", "REDIS_", "MASSIVE_"))
           or k == "TICKSTOCKPL_NOW"}
    env.update({"PYTHONUNBUFFERED": "1", "COLUMNS": "80"})
    env.update(extra)
    return env


def run_cli(args: list[str], *, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tickstockpl.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd="/")
