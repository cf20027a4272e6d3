"""`tickstockpl demo` end to end, as a newcomer runs it: the story at 80 columns (what it started, what it
built with real members, what changed and why, how long, what next), the kept data opened by demo-mode
`serve`, one data folder per run, and as root: said before done, nothing outside the data folder widened."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import MARKET_NOW
from tests.demo.support import ROOT, cli_env, new_data_root, remove, run_cli
from tests.live_server import LiveServer

SMALL = ["--stocks", "1200", "--etfs", "300", "--sessions", "12"]


@pytest.fixture
def data_root(tmp_path):
    folder = new_data_root(tmp_path)
    yield folder
    remove(folder)


def test_the_demo_tells_its_story_at_80_columns_and_serve_opens_what_it_kept(data_root):
    folder = data_root / "kept"
    done = run_cli(["demo", *SMALL, "--keep"], env=cli_env(TICKSTOCKPL_DATA_DIR=str(folder),
                                                           TICKSTOCKPL_NOW=MARKET_NOW))
    assert done.returncode == 0, done.stderr + done.stdout
    out = done.stdout
    def fits(line: str) -> bool:  # at 80 columns, except a command to copy or a word longer than a line
        return len(line) <= 80 or line.lstrip().startswith(("TICKSTOCKPL_DEMO=", "curl ")) or " " not in line.strip()

    assert all(fits(line) for line in out.splitlines()), [line for line in out.splitlines() if not fits(line)]
    flat = " ".join(out.split())  # the story's facts, whatever the wrapping
    # what it started
    assert "1. Servers" in out and re.search(r"PostgreSQL \(pid \d+\) and Redis \(pid \d+\) started", flat)
    # the market: real names, a generated tail
    assert "428 real US companies and 110 real ETFs" in flat and "generated long tail of 772 stocks and 190 ETFs" in flat
    # what it built: families, counts, real leaders, every theme with members, plain names
    assert "3. The daily pipeline for the session of 2026-11-25: success in" in flat
    assert re.search(r"top 10 10 \(NVDA AAPL MSFT AMZN", flat), flat
    themes = re.search(r"- themes \(8\): (.*?)\.(?: |$)", flat).group(1)
    for label in ("AI", "Biotech", "Cloud", "Crypto", "Cybersecurity", "EV", "Fintech", "Semiconductors"):
        assert re.search(rf"\b{label} [1-9]\d* \(", themes), (label, themes)
    assert "empty" not in themes and " Ai " not in flat and " Ev " not in flat
    assert "stocks + ETFs combo (stored as stock_etf_combo/stock_etf_test, the name AppV2 reads)" in flat
    assert "summary statistics:" in flat and not re.search(r"\b0 members", flat)
    # what changed on the next session, and why
    assert "4. The next session, 2026-11-27: success in" in flat
    assert re.search(r"- \S+ Brightpath Cloud Systems, Inc\. \(a fictional listing\) went public at \$\d+\.\d\d, a"
                     r" \$\d+\.\d bn Software - Application company: added to all stocks, .*recent IPOs", flat), flat
    assert re.search(r"was delisted \(symbols\.active = false\): removed from all stocks", flat)
    assert "prices moved:" in flat
    # per-run event counts only, plain words, timings, what next
    assert "events:" in flat and "published to Redis by this run" in flat and "so far" not in flat
    assert "cancelled=" not in flat and "failed_session" not in flat and "session session" not in flat
    assert re.search(r"5\. Done in \d+\.\d s \(pipeline runs \w{8} and \w{8}\) servers \d+\.\d s, market \d+\.\d s,"
                     r" pipeline \d+\.\d s, next session \d+\.\d s", flat), flat
    assert re.search(r"market-cap bands \(5\): mega caps \d+ \(NVDA .*; large caps .*; mid caps .*; small caps .*; micro"
                     r" caps", flat)
    assert f"TICKSTOCKPL_DEMO=true TICKSTOCKPL_DATA_DIR={folder} tickstockpl serve" in flat
    key = re.search(r"curl -s -H 'X-API-Key: (demo-[\w-]+)'", flat).group(1)
    assert "\u2601" not in out  # no emoji made of ":cloud:" or the like

    server = LiveServer("postgresql://unused@/unused", api_keys=(), env={
        "DATABASE_URL": "", "TICKSTOCKPL_DEMO": "true", "TICKSTOCKPL_DATA_DIR": str(folder),
        "TICKSTOCKPL_NOW": MARKET_NOW})
    with server:
        answer = httpx.get(server.url + "/api/universes", headers={"X-API-Key": key}, timeout=20).json()
        assert answer["total"] > 50, answer
        top = httpx.get(server.url + "/api/universes/stock_universe/market_leaders/top_10_stocks",
                        headers={"X-API-Key": key}, timeout=20).json()
        assert "NVDA" in str(top)
        assert f"demo mode: data folder {folder} (TICKSTOCKPL_DATA_DIR)" in server.logs()


def test_each_run_gets_its_own_folder_and_another_run_keeps_its_data(tmp_path):
    env = cli_env(HOME=str(tmp_path), TICKSTOCKPL_NOW=MARKET_NOW)  # the default root: ~/.tickstockpl (root: /var/tmp)
    root = Path("/var/tmp/tickstockpl") if ROOT else tmp_path / ".tickstockpl"
    other = root / "demo-another-run"
    other.mkdir(parents=True, exist_ok=True)
    (other / "marker").write_text("another run's data")
    try:
        procs = [subprocess.Popen([sys.executable, "-m", "tickstockpl.cli", "demo", "--stocks", "600", "--etfs", "150",
                                   "--sessions", "8"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env, cwd="/") for _ in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        folders = [re.search(r"Data folder: (\S+) \(this run", " ".join(o.split())).group(1) for o, _e in outs]
        assert folders[0] != folders[1] and all(Path(f).parent == root for f in folders)
        assert not any(Path(f).exists() for f in folders)  # each removed its own data, and only its own
        assert (other / "marker").read_text() == "another run's data"
    finally:
        remove(other)


def test_a_named_folder_that_holds_data_is_left_alone(data_root):
    folder = data_root / "used"
    (folder / "postgres").mkdir(parents=True)
    (folder / "postgres" / "keep-me").write_text("x")
    done = run_cli(["demo", *SMALL], env=cli_env(TICKSTOCKPL_DATA_DIR=str(folder)))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: the data folder {folder} already holds a demo's data")
    assert (folder / "postgres" / "keep-me").read_text() == "x"


def _modes(path: Path) -> dict[str, int]:
    return {str(p): stat.S_IMODE(p.stat().st_mode) for p in [path, *path.parents]}


def test_in_a_private_folder_it_says_what_it_will_do_first_and_widens_nothing_outside_the_data_folder():
    """A data folder under a private (700) folder, like a checkout under /root. As root the embedded
    PostgreSQL runs as a system user: the demo says so before doing anything, refuses a folder that user
    cannot reach (naming the blocking folder) and changes no mode above the data folder. As a normal user
    the server runs as that user: not a word about system users, the demo runs, and no mode changes either."""
    parent = Path(tempfile.mkdtemp(prefix="tspl-private-test-", dir="/var/tmp"))
    try:
        os.chmod(parent, 0o700)
        folder = parent / "data"
        before = _modes(parent)
        first = run_cli(["demo", *SMALL], env=cli_env(TICKSTOCKPL_DATA_DIR=str(folder), TICKSTOCKPL_NOW=MARKET_NOW))
        assert _modes(parent) == before
        if not ROOT:
            assert first.returncode == 0, first.stderr
            assert "running as root" not in first.stderr and "system user" not in first.stderr
            assert "running as root" not in first.stdout
            return
        assert first.returncode == 2, first.stderr
        lines = first.stderr.strip().splitlines()
        assert lines[0].startswith("running as root: PostgreSQL will not run as root, so the embedded one runs as the"
                                   " system user tickstockpl")
        assert lines[-1].startswith(f"error: the data folder {folder}/postgres cannot be reached by the system user"
                                    f" tickstockpl ({parent} is mode 700)")

        os.chmod(parent, 0o711)
        before = _modes(parent)
        done = run_cli(["demo", *SMALL], env=cli_env(TICKSTOCKPL_DATA_DIR=str(folder), TICKSTOCKPL_NOW=MARKET_NOW))
        assert done.returncode == 0, done.stderr
        said = done.stderr.strip().splitlines()[0]
        assert said.startswith("running as root:") and f"give it {folder}/postgres (owner tickstockpl, mode 700)" in said
        assert "no other permission is changed" in said
        assert _modes(parent) == before  # every folder above the data folder: unchanged
    finally:
        remove(parent)
