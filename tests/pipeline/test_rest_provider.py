"""The REST provider against a local HTTP server serving grouped-daily responses."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

from tickstockpl.errors import ProviderError
from tickstockpl.pipeline.imports.rest import RestProvider, parse_retry_after
from tests.pipeline.helpers import ScriptedServer, good_bars, grouped_body

SESSION = dt.date(2026, 11, 27)
KEY = "secret-test-key-123456"
HTML = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


def provider(url: str, sleeps: list[float], **options) -> RestProvider:
    return RestProvider(KEY, url, sleep=sleeps.append, jitter=lambda: 1.0, timeout=5.0, **options)


def test_success_returns_every_bar_and_sends_the_key_in_a_header_only():
    body = grouped_body(SESSION, good_bars(["AAPL", "MSFT"]))
    sleeps: list[float] = []
    with ScriptedServer([(200, {}, body)]) as server:
        p = provider(server.url, sleeps)
        data = p.fetch(SESSION)
        p.close()
    assert [r[0] for r in data.rows] == ["AAPL", "MSFT"]
    ticker, o, h, l, c, v, ts = data.rows[0]
    assert (o, h, l, c, v) == (10.0, 11.0, 9.0, 10.5, 1000.0)
    assert ts == body["results"][0]["t"] * 1_000_000
    request = server.requests[0]
    assert request["path"] == "/v2/aggs/grouped/locale/us/market/stocks/2026-11-27?adjusted=true"
    assert KEY not in request["path"]
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert sleeps == [] and KEY not in repr(p)


def test_429_honours_retry_after_then_succeeds():
    sleeps: list[float] = []
    with ScriptedServer([(429, {"Retry-After": "3"}, {"status": "ERROR", "error": "too many requests"}),
                         (200, {}, grouped_body(SESSION, good_bars(["AAPL"])))]) as server:
        p = provider(server.url, sleeps)
        data = p.fetch(SESSION)
    assert len(data.rows) == 1 and p.requests == 2
    assert sleeps == [3.0]


def test_429_without_retry_after_backs_off_and_retry_after_is_capped():
    sleeps: list[float] = []
    with ScriptedServer([(429, {}, "slow down"), (429, {"Retry-After": "86400"}, "slow down"),
                         (200, {}, grouped_body(SESSION, good_bars(["AAPL"])))]) as server:
        provider(server.url, sleeps, backoff_base=0.5, retry_after_cap=60.0).fetch(SESSION)
    assert sleeps == [0.5, 60.0]


def test_500_is_retried_with_exponential_backoff_then_succeeds():
    sleeps: list[float] = []
    with ScriptedServer([(500, {}, "oops"), (503, {}, "busy"),
                         (200, {}, grouped_body(SESSION, good_bars(["AAPL"])))]) as server:
        p = provider(server.url, sleeps, backoff_base=0.5)
        data = p.fetch(SESSION)
    assert len(data.rows) == 1 and p.requests == 3
    assert sleeps == [0.5, 1.0]


def test_backoff_has_jitter_and_a_cap():
    p = RestProvider(KEY, "http://127.0.0.1:9", jitter=lambda: 0.25, backoff_base=1.0, backoff_cap=4.0)
    assert [p._backoff(n) for n in (1, 2, 3, 4, 5)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    p.close()


def test_server_errors_exhaust_the_attempts_with_a_clear_message():
    sleeps: list[float] = []
    with ScriptedServer([(500, {}, "oops")] * 3) as server:
        with pytest.raises(ProviderError, match=r"after 3 attempt\(s\): server error \(HTTP 500\)"):
            provider(server.url, sleeps, max_attempts=3).fetch(SESSION)
    assert len(sleeps) == 2


def test_malformed_json_is_a_provider_error_and_not_retried():
    truncated = json.dumps(grouped_body(SESSION, good_bars(["AAPL", "MSFT"])))[:-40]
    sleeps: list[float] = []
    with ScriptedServer([(200, {"Content-Type": "application/json"}, truncated)]) as server:
        with pytest.raises(ProviderError, match="malformed or truncated JSON for session 2026-11-27"):
            provider(server.url, sleeps).fetch(SESSION)
    assert len(server.requests) == 1


def test_html_error_page_is_a_provider_error():
    with ScriptedServer([(200, {"Content-Type": "text/html"}, HTML)]) as server:
        with pytest.raises(ProviderError, match=r"HTML page instead of JSON .*\(502 Bad Gateway\)"):
            provider(server.url, []).fetch(SESSION)


def test_html_error_page_from_a_proxy_with_a_5xx_is_retried_then_reported():
    with ScriptedServer([(502, {"Content-Type": "text/html"}, HTML)] * 2) as server:
        with pytest.raises(ProviderError, match=r"HTTP 502"):
            provider(server.url, [], max_attempts=2).fetch(SESSION)


def test_empty_day_returns_no_rows():
    body = {"status": "OK", "adjusted": True, "queryCount": 0, "resultsCount": 0}
    with ScriptedServer([(200, {}, body)]) as server:
        data = provider(server.url, []).fetch(SESSION)
    assert data.rows == [] and data.rejected == []


def test_truncated_result_list_is_detected():
    body = grouped_body(SESSION, good_bars(["AAPL", "MSFT"]))
    body["resultsCount"] = 5
    with ScriptedServer([(200, {}, body)]) as server:
        with pytest.raises(ProviderError, match="truncated: resultsCount=5 but 2 results"):
            provider(server.url, []).fetch(SESSION)


def test_error_status_in_body_is_reported():
    with ScriptedServer([(200, {}, {"status": "ERROR", "error": "Unknown API Key"})]) as server:
        with pytest.raises(ProviderError, match="status 'ERROR' .*Unknown API Key"):
            provider(server.url, []).fetch(SESSION)


def test_rejected_key_is_not_retried_and_never_logged(caplog):
    caplog.set_level(logging.DEBUG)
    with ScriptedServer([(401, {}, {"status": "ERROR"}), (500, {}, "x")]) as server:
        with pytest.raises(ProviderError, match="rejected the API key \\(HTTP 401\\)") as info:
            provider(server.url, []).fetch(SESSION)
        with pytest.raises(ProviderError):
            provider(server.url, [], max_attempts=1).fetch(SESSION)
    assert len(server.requests) == 2
    assert KEY not in str(info.value) and KEY not in caplog.text


def test_unreadable_results_are_rejected_with_a_reason_not_dropped():
    body = grouped_body(SESSION, good_bars(["AAPL"]))
    body["results"] += [{"o": 1}, "junk", {"T": "BAD", "o": "x", "h": 1, "l": 1, "c": 1, "v": 1, "t": 1}]
    body["resultsCount"] = len(body["results"])
    with ScriptedServer([(200, {}, body)]) as server:
        data = provider(server.url, []).fetch(SESSION)
    assert [r[0] for r in data.rows] == ["AAPL", "BAD"]
    assert data.rows[1][1] is None  # the writer rejects it with "missing price"
    assert data.rejected == [("result 1", "missing ticker (T)"), ("result 2", "not a JSON object")]


def test_unreachable_server_is_a_provider_error():
    sleeps: list[float] = []
    from tests.servers import free_port

    with pytest.raises(ProviderError, match="network error"):
        provider(f"http://127.0.0.1:{free_port()}", sleeps, max_attempts=2).fetch(SESSION)
    assert len(sleeps) == 1


@pytest.mark.parametrize("header, expected", [
    ("7", 7.0), (" 12 ", 12.0), (None, None), ("", None), ("soon", None),
    ("Sat, 28 Nov 2026 12:00:30 GMT", 30.0), ("Sat, 28 Nov 2026 11:00:00 GMT", 0.0),
])
def test_parse_retry_after(header, expected):
    now = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.timezone.utc)
    assert parse_retry_after(header, now) == expected
