"""Counting server processes: no test may leave a PostgreSQL or Redis server it started running.

`no_leaked_servers` wraps every test (autouse, registered by tests/conftest.py): it lists the
postgres postmasters and redis-server processes among this pytest process's descendants before the
test and after it; one that appeared during the test and is still running after it fails the test
(it is killed first, so one leak does not cascade). A server that outlives the process that started it
is re-parented to its nearest "subreaper": this pytest process makes itself one (Linux
PR_SET_CHILD_SUBREAPER), so orphans stay its descendants and are counted too, and servers started by
other people's processes on the same machine are never counted.

A server a test stops returns within the stop call (db/embedded.py waits for the exit); only a
server that reacts to its parent's death (the parent-death signal) exits asynchronously, so the
check waits up to LEAK_WAIT_S for those: a bound on a wait, not a timed assertion.

Server processes that died as adopted orphans are reaped here (only those: a Popen object's own child
is left to its wait), so they do not linger as zombies.

Long-lived servers of session fixtures that a test restarts (tests/reliability ControlledPostgres)
are declared with `keep_running(path)`: processes whose command line names that path are not counted.
"""

from __future__ import annotations

import ctypes
import os
import time

import psutil
import pytest

LEAK_WAIT_S = 20.0
SERVER_NAMES = ("postgres", "redis-server")
_PR_SET_CHILD_SUBREAPER = 36
_kept: set[str] = set()
_subreaper = False


def keep_running(path) -> None:
    """Servers whose command line contains `path` belong to a session fixture (not a leak)."""
    _kept.add(str(path))


def become_subreaper() -> bool:
    global _subreaper
    if not _subreaper:
        try:
            _subreaper = ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        except (OSError, AttributeError):
            _subreaper = False
    return _subreaper


def servers() -> dict[int, str]:
    """{pid: command line} of the live server processes below this one (postmasters, redis-server)."""
    found: dict[int, str] = {}
    try:
        children = psutil.Process(os.getpid()).children(recursive=True)
    except psutil.Error:
        return found
    for proc in children:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE or proc.name() not in SERVER_NAMES:
                continue
            if proc.name() == "postgres":
                parent = proc.parent()
                if parent is not None and parent.name() == "postgres":
                    continue  # a backend or auxiliary process of a postmaster: counted with it
            cmdline = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if any(path in cmdline for path in _kept):
            continue
        found[proc.pid] = cmdline
    return found


def leaked_since(before: dict[int, str], wait_s: float = LEAK_WAIT_S) -> dict[int, str]:
    deadline = time.monotonic() + wait_s
    while True:
        left = {pid: cmd for pid, cmd in servers().items() if pid not in before}
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def reap_adopted() -> None:
    """Collect the exit status of server processes that died as this process's adopted orphans (being a
    subreaper makes them our children): without it they stay zombies until pytest exits."""
    me = os.getpid()
    try:
        children = psutil.Process(me).children()
    except psutil.Error:
        return
    for proc in children:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE and proc.name() in SERVER_NAMES:
                os.waitpid(proc.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError, OSError):
            pass


def kill(pids) -> None:
    for pid in pids:
        try:
            psutil.Process(pid).kill()
        except psutil.Error:
            pass


@pytest.fixture(autouse=True)
def no_leaked_servers(request):
    become_subreaper()
    reap_adopted()
    before = servers()
    yield
    leaked = leaked_since(before)
    reap_adopted()
    if leaked:
        kill(leaked)
        pytest.fail("server process(es) started by this test outlived it: "
                    + "; ".join(f"pid {pid}: {cmd[:160]}" for pid, cmd in sorted(leaked.items())), pytrace=False)
