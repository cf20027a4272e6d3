"""The market clock (tickstockpl.clock): TICKSTOCKPL_NOW freezes it, garbage is a one-line ConfigError,
and the snapshot's default as-of date and expected session follow it."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from tickstockpl import clock
from tickstockpl.errors import ConfigError
from tickstockpl.market.snapshot import load

UTC = dt.timezone.utc


@pytest.mark.parametrize("text, expected", [
    ("2026-11-27T21:30:00Z", dt.datetime(2026, 11, 27, 21, 30, tzinfo=UTC)),
    ("2026-11-27T16:30:00-05:00", dt.datetime(2026, 11, 27, 21, 30, tzinfo=UTC)),
    ("  2026-11-28T15:00:00.250+00:00 ", dt.datetime(2026, 11, 28, 15, 0, 0, 250000, tzinfo=UTC)),
])
def test_the_variable_freezes_the_clock(monkeypatch, text, expected):
    monkeypatch.setenv(clock.ENV, text)
    assert clock.now() == expected and clock.now().tzinfo == UTC
    assert clock.now() == clock.now()  # frozen


def test_the_new_york_date_is_the_market_today(monkeypatch):
    monkeypatch.setenv(clock.ENV, "2026-11-28T03:00:00Z")  # still Friday evening in New York
    assert clock.today_new_york() == dt.date(2026, 11, 27)


def test_unset_or_empty_is_the_real_time(monkeypatch):
    for setting in (None, "", "  "):
        if setting is None:
            monkeypatch.delenv(clock.ENV, raising=False)
        else:
            monkeypatch.setenv(clock.ENV, setting)
        before = dt.datetime.now(UTC)
        got = clock.now()
        assert before <= got <= dt.datetime.now(UTC) and got.tzinfo is not None


@pytest.mark.parametrize("text", ["garbage", "2026-11-27", "2026-11-27T21:30:00", "2026-13-01T00:00:00Z",
                                  "yesterday", "1732743000"])
def test_garbage_is_a_config_error_naming_the_variable(monkeypatch, text):
    monkeypatch.setenv(clock.ENV, text)
    with pytest.raises(ConfigError) as err:
        clock.now()
    message = str(err.value)
    assert "TICKSTOCKPL_NOW" in message and repr(text) in message and "\n" not in message


@pytest.mark.parametrize("now, as_of, expected, why", [
    ("2026-11-30T22:00:00Z", "2026-11-30", "2026-11-30", "a Monday after the close"),
    ("2026-11-30T20:00:00Z", "2026-11-27", "2026-11-27", "a Monday before the close: Friday's half day"),
    ("2026-11-28T15:00:00Z", "2026-11-27", "2026-11-27", "a Saturday"),
    ("2026-11-26T18:00:00Z", "2026-11-25", "2026-11-25", "Thanksgiving, an NYSE holiday"),
])
def test_the_snapshot_defaults_follow_the_clock(db_url, monkeypatch, now, as_of, expected, why):
    monkeypatch.setenv(clock.ENV, now)
    with psycopg.connect(db_url) as conn:
        snap = load(conn)
        assert (snap.as_of.isoformat(), snap.expected_session.isoformat()) == (as_of, expected), why
        # a given as-of date after "now": the expected session is still the newest closed one
        later = load(conn, dt.date(2026, 12, 31))
    assert later.as_of == dt.date(2026, 12, 31) and later.expected_session.isoformat() == expected, why
