"""One session-date rule for the CLI (--as-of, --date) and the API (trigger-manual `date`): market/dates.py.

For every kind of date (a closed session, a half day before and after its close, a holiday, a weekend, the
future, none at all) and with or without the flag that runs a non-session, the CLI's check and the
coordinator's resolve_session refuse the same dates and choose the same session; only the words naming the
date and the flag differ. Fixed instants, exchange_calendars' NYSE sessions (no database needed).
"""

from __future__ import annotations

import datetime as dt

import pytest

from tickstockpl.errors import ConfigError
from tickstockpl.market import dates
from tickstockpl.market.calendar import ExchangeCalendar
from tickstockpl.pipeline.coordinator import resolve_session

UTC = dt.timezone.utc
SATURDAY = dt.datetime(2026, 11, 28, 15, 0, tzinfo=UTC)  # Friday's half day (13:00 New York) has closed
FRIDAY_NOON = dt.datetime(2026, 11, 27, 17, 0, tzinfo=UTC)  # 12:00 New York: the half day is open
WED, THANKSGIVING, FRI, SUNDAY = dt.date(2026, 11, 25), dt.date(2026, 11, 26), dt.date(2026, 11, 27), dt.date(2026, 11, 22)

CASES = [  # (day, now, skip, chosen or the fragment of the refusal)
    (WED, SATURDAY, False, WED),
    (FRI, SATURDAY, False, FRI),
    (FRI, FRIDAY_NOON, False, "has not closed yet (it closes at 13:00 New York time); the last closed session is"
                              " 2026-11-25"),
    (FRI, FRIDAY_NOON, True, "has not closed yet"),  # the flag skips only the trading-day check
    (THANKSGIVING, SATURDAY, False, "is not an NYSE session (a market holiday); the session before it is 2026-11-25,"
                                    " the one after it 2026-11-27"),
    (THANKSGIVING, SATURDAY, True, THANKSGIVING),
    (SUNDAY, SATURDAY, False, "is not an NYSE session (a weekend)"),
    (SUNDAY, SATURDAY, True, SUNDAY),
    (dt.date(1, 1, 1), SATURDAY, False, "is before 2000-01-01, the first day of the NYSE calendar PL holds; the last"
                                        " closed NYSE session is 2026-11-27"),  # the fuzzer's date: no overflow
    (dt.date(1990, 1, 2), SATURDAY, True, "is before 2000-01-01, the first day of the NYSE calendar PL holds"),
    (dt.date(2000, 1, 1), SATURDAY, False, "is not an NYSE session (a weekend); the session after it is 2000-01-03"),
    (dt.date(2026, 12, 1), SATURDAY, True, "is in the future (today is 2026-11-28 in New York); the last closed"
                                           " NYSE session is 2026-11-27"),
]


@pytest.mark.parametrize("day, now, skip, expected", CASES)
def test_the_cli_and_the_api_follow_one_rule(day, now, skip, expected):
    calendar = ExchangeCalendar()
    if isinstance(expected, dt.date):
        assert dates.check(day, flag="--date", calendar=calendar, now_utc=now, skip=skip,
                           skip_flag="--skip-market-check") == expected
        assert resolve_session(day, skip, now, calendar) == dates.SessionChoice(expected)
        return
    with pytest.raises(ConfigError) as cli:
        dates.check(day, flag="--date", calendar=calendar, now_utc=now, skip=skip, skip_flag="--skip-market-check")
    with pytest.raises(ConfigError) as api:
        resolve_session(day, skip, now, calendar)
    assert expected in str(cli.value) and expected in str(api.value)
    assert str(cli.value).startswith(f"--date {day}") and "--date" not in str(api.value)
    if "not an NYSE session" in expected:  # each names its own way to run it anyway
        assert str(cli.value).endswith("; --skip-market-check runs it anyway")
        assert str(api.value).endswith("; skip_market_check runs it anyway")


def test_without_a_date_the_last_closed_session_is_chosen_and_the_choice_says_why():
    calendar = ExchangeCalendar()
    assert dates.choose_session(None, calendar=calendar, now_utc=SATURDAY) == dates.SessionChoice(FRI)
    assert dates.choose_session(None, calendar=calendar, now_utc=FRIDAY_NOON) == dates.SessionChoice(WED)
    noted = resolve_session(None, True, FRIDAY_NOON, calendar)
    assert noted.day == WED and noted.note == ("the 2026-11-27 session has not closed yet (it closes at 13:00 New York"
                                               " time); processing the last closed session, 2026-11-25")


def test_the_first_representable_date_is_refused_not_a_crash(db_url):
    """0001-01-01 (the API fuzzer's date) has no date ten days before it: refused, not an OverflowError."""
    import psycopg

    from tickstockpl.market.calendar import StoredCalendar

    now = dt.datetime(2026, 11, 28, 15, 0, tzinfo=dt.timezone.utc)
    with psycopg.connect(db_url, autocommit=True) as conn:
        with pytest.raises(ConfigError, match="0001-01-01 is before 2000-01-01"):
            dates.choose_session(dt.date(1, 1, 1), calendar=StoredCalendar(conn), now_utc=now)


def test_a_usable_date_costs_one_statement_on_the_stored_calendar(db_url):
    """The CLI checks --as-of before every sync: a closed session is answered by `on(day)` alone, one
    statement (it asked for the last closed session too, which only the refusals and no date need)."""
    import psycopg

    from tickstockpl.market.calendar import StoredCalendar

    sent: list[str] = []
    with psycopg.connect(db_url, autocommit=True) as conn:
        original = conn.execute

        def counted(query, *args, **kwargs):
            sent.append(query)
            return original(query, *args, **kwargs)

        conn.execute = counted
        calendar = StoredCalendar(conn)
        assert dates.check(WED, flag="--as-of", calendar=calendar, now_utc=SATURDAY) == WED
        assert len(sent) == 1
        sent.clear()
        with pytest.raises(ConfigError, match="the last closed session is 2026-11-25"):
            dates.check(FRI, flag="--as-of", calendar=calendar, now_utc=FRIDAY_NOON)
        assert len(sent) == 2  # the refusal names the last closed session: asked then
