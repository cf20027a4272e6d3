"""Small builders shared by the pipeline tests: flat files, symbols, a scripted HTTP server."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

import psycopg

from tickstockpl.pipeline.imports.flatfiles import HEADER, session_file

NY = ZoneInfo("America/New_York")


def ny_midnight_ns(session: dt.date) -> int:
    return int(dt.datetime.combine(session, dt.time(), tzinfo=NY).timestamp()) * 1_000_000_000


def csv_text(session: dt.date, bars: list[tuple]) -> str:
    """bars: (ticker, open, high, low, close, volume) or raw 8-field tuples/strings."""
    lines = [",".join(HEADER)]
    for bar in bars:
        if isinstance(bar, str):
            lines.append(bar)
            continue
        ticker, o, h, l, c, v = bar
        lines.append(f"{ticker},{v},{o},{c},{h},{l},{ny_midnight_ns(session)},100")
    return "\n".join(lines) + "\n"


def write_flat(folder: Path, session: dt.date, bars: list[tuple]) -> Path:
    path = session_file(folder, session)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(csv_text(session, bars).encode()))
    return path


def good_bars(tickers: list[str], base: float = 10.0) -> list[tuple]:
    return [(t, base + i, base + i + 1, base + i - 1, base + i + 0.5, 1000 * (i + 1)) for i, t in enumerate(tickers)]


def add_symbols(conn, tickers: list[str], *, shares: int = 1_000_000_000) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO symbols (symbol, name, type, active, market_cap, weighted_shares_outstanding, market,"
            " primary_exchange, sector, industry) VALUES (%s, %s, 'CS', true, %s, %s, 'stocks', 'XNAS', 'Technology',"
            " 'Software') ON CONFLICT (symbol) DO NOTHING",
            [(t, f"{t} Inc", 10_000_000_000 + i, shares) for i, t in enumerate(tickers)],
        )


def grouped_body(session: dt.date, bars: list[tuple]) -> dict:
    t_ms = int(dt.datetime.combine(session, dt.time(16), tzinfo=NY).timestamp() * 1000)
    results = [{"T": t, "o": o, "h": h, "l": l, "c": c, "v": v, "vw": c, "t": t_ms, "n": 10}
               for t, o, h, l, c, v in bars]
    return {"status": "OK", "adjusted": True, "queryCount": len(results), "resultsCount": len(results),
            "results": results}


class ProviderServer:
    """A local HTTP server standing in for the provider: each GET is answered by `answer(path)`, a
    (status, headers, body) triple (a dict body is sent as JSON); started by `with` or `start()`."""

    def __init__(self, answer: Callable[[str], tuple[int, dict, bytes | str | dict]]):
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.requests.append({"path": self.path, "headers": dict(self.headers)})
                status, headers, body = answer(self.path)
                if isinstance(body, dict):
                    body = json.dumps(body)
                    headers = {"Content-Type": "application/json", **headers}
                if isinstance(body, str):
                    body = body.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "ProviderServer":
        self.thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


class ScriptedServer(ProviderServer):
    """A ProviderServer answering each GET with the next scripted (status, headers, body) response."""

    def __init__(self, responses: list[tuple[int, dict, bytes | str | dict]]):
        self.responses = list(responses)
        super().__init__(lambda path: self.responses.pop(0) if self.responses else (404, {}, b"no more"))


def wait_session_ended(db_url: str, pid: int, timeout: float = 30.0) -> None:
    """Wait until the PostgreSQL backend `pid` has exited (bounded).

    Closing a connection only asks the server to end the session: the backend process releases the
    session's advisory locks as it exits, a moment after the client's close() returned (longer on a
    loaded machine). A run whose owner "went away" is abandoned once that has happened (pipeline/runs.py),
    so a test that closes the owner's connection waits for this event before it expects that."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(db_url, autocommit=True) as conn:
        while conn.execute("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)", (pid,)).fetchone()[0]:
            if time.monotonic() >= deadline:
                raise AssertionError(f"backend {pid} still running {timeout:.0f} s after its client closed")
            time.sleep(0.01)
