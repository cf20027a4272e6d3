"""Connections that never finish a request, against a live `tickstockpl serve` (api/limits.py).

More idle connections than the cap never keep a real request out (the oldest idle one is closed for
it); a client that never finishes its headers, or sends them a byte at a time, is closed after the
header timeout; past the cap with every connection busy, a new one is refused at once with a 503;
the cap is kept below the open-file limit; the log does not grow with the number of connections.
"""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.support.markets import load_market
from tests.live_server import LiveServer
from tests.support.waiting import wait_until
from tickstockpl.api import limits

CAP = 64


def _open_idle(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]


def _closed_by_server(sock: socket.socket) -> bool:
    """The server closed (or reset) this connection; what it sent first is ignored."""
    sock.setblocking(False)
    try:
        while True:
            data = sock.recv(4096)
            if data == b"":
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def _raw_answer(sock: socket.socket, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            data = sock.recv(4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


@pytest.fixture
def market_db(db_url):
    load_market(db_url)
    return db_url


def test_more_idle_connections_than_the_cap_never_keep_health_out(market_db):
    env = {"TICKSTOCKPL_MAX_CONNECTIONS": str(CAP), "TICKSTOCKPL_HEADER_TIMEOUT_S": "300"}
    with LiveServer(market_db, env=env) as server:
        started = time.monotonic()
        idle = _open_idle(server.port, 5 * CAP)
        try:
            answers = []
            for _ in range(20):  # a fresh connection each time: each one needs a place past the cap
                answers.append(httpx.get(server.url + "/health", headers={"Connection": "close"}, timeout=10).status_code)
            with server.client() as c:
                assert c.get("/api/universes").status_code == 200
                assert c.get("/api/processing/cache-sync/history").status_code == 200
            assert answers == [200] * 20
            # the oldest idle connections were closed to make room; the newest ones are still open
            closed = wait_until(lambda: (lambda n: n if n >= 4 * CAP else None)(
                sum(_closed_by_server(s) for s in idle)), 30, "idle connections closed past the cap")
            assert closed < len(idle)
            assert not _closed_by_server(idle[-1])
        finally:
            for s in idle:
                s.close()
        elapsed_minutes = (time.monotonic() - started) / 60
        evictions = server.logs().count("closed the oldest idle connection")
        # 256+ evictions, at most 5 lines a minute about them (the RepeatFilter)
        assert 1 <= evictions <= 5 * (1 + int(elapsed_minutes)), server.logs()[-3000:]
        assert "out of system resource" not in server.logs()


def test_a_client_that_never_finishes_its_headers_is_closed(market_db):
    with LiveServer(market_db, env={"TICKSTOCKPL_HEADER_TIMEOUT_S": "2"}) as server:
        silent = _open_idle(server.port, 10)
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        keep_alive = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        keep_alive.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = keep_alive.recv(65536)
        assert first.startswith(b"HTTP/1.1 200"), first
        keep_alive.sendall(b"GET /health HTTP/1.1\r\n")  # the next request on it, never finished
        try:
            def slow_closed() -> bool:  # a header line every 0.2 s never resets the deadline
                try:
                    slow.sendall(b"X-Slow: y\r\n")
                except OSError:
                    return True
                time.sleep(0.2)
                return False

            wait_until(slow_closed, 60, "the slow client closed")
            wait_until(lambda: all(_closed_by_server(s) for s in silent), 60, "the silent connections closed")
            wait_until(lambda: _closed_by_server(keep_alive), 60, "the stalled keep-alive connection closed")
            assert httpx.get(server.url + "/health", timeout=10).status_code == 200
        finally:
            for s in [*silent, slow, keep_alive]:
                s.close()
    late = LiveServer(market_db, env={"TICKSTOCKPL_HEADER_TIMEOUT_S": "2"})
    with late:  # a partial request is answered 408 before the close
        sock = socket.create_connection(("127.0.0.1", late.port), timeout=5)
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\n")
            answer = _raw_answer(sock, timeout=30)
        finally:
            sock.close()
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b'"success": false' in answer


def test_past_the_cap_with_every_connection_busy_a_new_one_is_refused_at_once(market_db):
    cap = limits.MIN_CONNECTIONS
    with LiveServer(market_db, env={"TICKSTOCKPL_MAX_CONNECTIONS": str(cap), "TICKSTOCKPL_HEADER_TIMEOUT_S": "20"}) as server:
        busy = []
        try:
            for _ in range(cap):  # headers complete, the promised body never comes: a request in progress
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
                sock.sendall(b"POST /api/processing/cache-sync/trigger HTTP/1.1\r\nHost: x\r\nX-API-Key: "
                             + server.api_keys[0].encode() + b"\r\nContent-Type: application/json\r\n"
                             b"Expect: 100-continue\r\nContent-Length: 100\r\n\r\n")
                busy.append(sock)
                # the app asks for the body: the server answers 100 Continue, so this request is in progress
                assert sock.recv(4096).startswith(b"HTTP/1.1 100"), "no 100 Continue"
                sock.sendall(b"{")
            extra = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            try:
                answer = _raw_answer(extra, timeout=10)
            finally:
                extra.close()
            assert answer.startswith(b"HTTP/1.1 503"), answer
            assert b"every connection has a request in progress" in answer
            assert not any(_closed_by_server(s) for s in busy)  # busy requests are never evicted
        finally:
            for s in busy:
                s.close()
        # once they are gone, the server answers again
        wait_until(lambda: httpx.get(server.url + "/health", timeout=10).status_code == 200, 30, "/health again")


def test_the_cap_stays_below_the_open_file_limit():
    assert limits.connection_cap(1000, 20000) == 1000
    assert limits.connection_cap(1000, 1024) == 1024 - limits.RESERVED_FDS
    assert limits.connection_cap(1000, 100) == limits.MIN_CONNECTIONS
    assert limits.raise_open_file_limit() >= 1024 or limits.raise_open_file_limit() > 0


def test_repeated_log_lines_are_rate_limited():
    import logging

    flt = limits.RepeatFilter(per_window=3, window_s=3600, max_keys=10)

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("x", logging.ERROR, __file__, 1, msg, (), None)

    passed = [flt.filter(record("socket.accept() out of system resource")) for _ in range(1000)]
    assert passed.count(True) == 3
    assert flt.filter(record("another message"))
    for i in range(100):  # templates are remembered in bounded memory
        flt.filter(record(f"line {i}"))
    assert len(flt._seen) == 10
