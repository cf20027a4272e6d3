"""How a long command (`serve`, `demo`) ends: signals become ordinary exits, so cleanup always runs.

    exit_on_signals(code)    SIGTERM (and SIGINT) raise SystemExit(code) / KeyboardInterrupt in the
                             main thread, so `finally` blocks and atexit handlers run (Python's default
                             for SIGTERM ends the process at once: embedded servers were left running)
    signals_blocked()        a context in which SIGINT/SIGTERM wait (a second Ctrl-C cannot cut a cleanup short)
    listen_socket(host, port)  the server's listening socket, bound before anything else is served;
                             an address in use is one line and exit code 5, not uvicorn's exit 3

uvicorn handles SIGINT/SIGTERM itself while it serves; once it has shut down it restores the handlers
installed here and raises the signal again, which ends up as the SystemExit of `exit_on_signals`.
"""

from __future__ import annotations

import contextlib
import errno
import signal
import socket
import threading
from typing import Iterator

from tickstockpl.errors import AddressUnavailable

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_on_signals(code: int = 0, *, interrupt: bool = False) -> None:
    """SIGTERM raises SystemExit(code); SIGINT too, or KeyboardInterrupt when `interrupt` (exit 130)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def on_signal(signum, frame):
        if signum == signal.SIGINT and interrupt:
            raise KeyboardInterrupt
        raise SystemExit(code)

    for sig in _SIGNALS:
        signal.signal(sig, on_signal)


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def listen_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for uvicorn (`Server.run(sockets=[...])`), or AddressUnavailable."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on accepted sockets whose proto says TCP. With
    # proto 0 every keep-alive answer (headers, then body: two writes) waited ~40 ms for the client's
    # delayed ACK (Nagle): 44 ms per status request instead of ~2 (bench/api_load.py).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise AddressUnavailable(f"port {port} on {host} is already in use (another server listens there):"
                                     f" stop it, or choose another port (--port or TICKSTOCKPL_PORT)") from None
        raise AddressUnavailable(f"cannot listen on {host}:{port}: {err.strerror or err}"
                                 " (check --host / TICKSTOCKPL_HOST and --port / TICKSTOCKPL_PORT)") from None
    sock.set_inheritable(True)
    return sock
