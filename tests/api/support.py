"""A small market written straight into the test database, plus the changes tests make to it.

Sixty common stocks spread over the market-cap bands, four sectors and eight industries, a few
ETFs (including essential ones for the combo universe), one recent IPO, and one bar per symbol on
each of two fixed NYSE sessions, SESSIONS: the two newest closed at tests.conftest.MARKET_NOW, the
market clock a test on this market must set (fixture `market_clock`). Tests that need a big market
use the shared `market_db_url` fixture instead.
"""

from __future__ import annotations

import datetime as dt

import psycopg

SECTORS = {
    "Technology": ("Software - Application", "Semiconductors"),
    "Healthcare": ("Biotechnology", "Medical Devices"),
    "Financial Services": ("Banks - Regional", "Asset Management"),
    "Energy": ("Oil & Gas E&P", "Oil & Gas Midstream"),
}
ETFS = {
    "SPY": "SPDR S&P 500 ETF Trust",
    "QQQ": "Invesco QQQ Trust Growth",
    "AGG": "iShares Core US Aggregate Bond ETF",
    "XLK": "Technology Select Sector SPDR Fund",
    "EEM": "iShares MSCI Emerging Markets ETF",
}
STOCKS = 60
IPO_SYMBOL = "NEWCO"


SESSIONS = (dt.date(2026, 11, 27), dt.date(2026, 11, 25))  # newest first: Friday's half day, Wednesday


def stock_symbol(i: int) -> str:
    return f"S{i:03d}"


def load_market(db_url: str) -> list[dt.date]:
    """Write the market; returns the two sessions that have bars (SESSIONS), newest first."""
    days = list(SESSIONS)
    rows = []
    sector_names = list(SECTORS)
    for i in range(STOCKS):
        sector = sector_names[i % len(sector_names)]
        industry = SECTORS[sector][(i // len(sector_names)) % 2]
        cap = int(500e9 * (0.85 ** i))  # 500 bn down to ~30 m: every band
        rows.append((stock_symbol(i), f"Company {i}", "CS", True, cap, "stocks", "XNAS", sector, industry,
                     dt.date(2010, 1, 4)))
    rows.append((IPO_SYMBOL, "New Company", "CS", True, 5_000_000_000, "stocks", "XNYS", "Technology",
                 "Semiconductors", days[0] - dt.timedelta(days=3)))
    for symbol, name in ETFS.items():
        rows.append((symbol, name, "ETF", True, None, "stocks", "ARCX", None, None, dt.date(2000, 1, 3)))
    with psycopg.connect(db_url) as conn:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO symbols (symbol, name, type, active, market_cap, market, primary_exchange, sector,"
                " industry, list_date) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
            cur.execute("UPDATE symbols SET aum_millions = 1000 + length(name) WHERE type = 'ETF'")
            for day in days:
                cur.execute(
                    "INSERT INTO ohlcv_daily (symbol, date, open, high, low, close, volume)"
                    " SELECT symbol, %s, 10, 11, 9, 10, 1000 FROM symbols",
                    (day,),
                )
    return days


def hide_ipo_before(db_url: str, day: dt.date) -> None:
    """Make the IPO list after `day`, so a sync on `day` does not see it as listed yet."""
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE symbols SET active = false WHERE symbol = %s", (IPO_SYMBOL,))


def delist(db_url: str, *symbols: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE symbols SET active = false WHERE symbol = ANY(%s)", (list(symbols),))


def activate(db_url: str, *symbols: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE symbols SET active = true WHERE symbol = ANY(%s)", (list(symbols),))


class Subscriber:
    """A real Redis subscriber (plain SUBSCRIBE, as AppV2 does) collecting messages in a thread."""

    def __init__(self, redis_url: str, channels: tuple[str, ...]):
        import threading

        import redis

        self.messages: list[tuple[str, dict]] = []
        self._client = redis.Redis.from_url(redis_url)
        self._pubsub = self._client.pubsub()
        self._pubsub.subscribe(*channels)
        confirmed = 0
        while confirmed < len(channels):  # wait until every SUBSCRIBE is acknowledged
            message = self._pubsub.get_message(timeout=5)
            if message is None:
                raise RuntimeError("SUBSCRIBE was not acknowledged")
            confirmed += message["type"] == "subscribe"
        self._stop = threading.Event()
        self._hook = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def on_message(self, hook) -> None:
        """Call hook(channel, body) in the subscriber thread as each message arrives."""
        self._hook = hook

    def _run(self) -> None:
        import json

        import redis

        while not self._stop.is_set():
            try:
                message = self._pubsub.get_message(timeout=0.1)
            except redis.ConnectionError:
                return
            if message and message["type"] == "message":
                channel = message["channel"].decode()
                body = json.loads(message["data"])
                if self._hook is not None:
                    self._hook(channel, body)
                self.messages.append((channel, body))

    def events(self, name: str | None = None, channel: str | None = None) -> list[tuple[str, dict]]:
        return [(c, b) for c, b in list(self.messages)
                if (name is None or b.get("event") == name) and (channel is None or c == channel)]

    def wait_for(self, predicate, timeout: float = 30.0) -> list[tuple[str, dict]]:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(list(self.messages)):
                return list(self.messages)
            time.sleep(0.02)
        raise AssertionError(f"condition not met; received: {[(c, b.get('event')) for c, b in self.messages]}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._pubsub.close()
        self._client.close()


def completed(job_id: str):
    """Predicate: the cache_sync_completed event of `job_id` arrived on AppV2's channel."""
    from tickstockpl.events import catalog

    def check(messages) -> bool:
        return any(c == catalog.CACHE_SYNC_COMPLETE and b["payload"].get("job_id") == job_id for c, b in messages)

    return check


class SymbolsLocked:
    """Hold an ACCESS EXCLUSIVE lock on `symbols`: a sync started meanwhile stays `running` at its
    first step (loading the snapshot) until `release()`. Makes "while running" deterministic."""

    def __init__(self, db_url: str):
        self.conn = psycopg.connect(db_url)
        self.conn.execute("LOCK TABLE symbols IN ACCESS EXCLUSIVE MODE")

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()

    def __enter__(self) -> "SymbolsLocked":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def wait_status(client, job_id: str, statuses: tuple[str, ...], timeout: float = 60.0) -> dict:
    """Poll the status endpoint until the job reaches one of `statuses`; returns the body."""
    import time

    deadline = time.monotonic() + timeout
    body = None
    while time.monotonic() < deadline:
        response = client.get(f"/api/processing/cache-sync/status/{job_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] in statuses:
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not reach {statuses}; last: {body}")
