"""Reconstitution days over the real NYSE calendar (exchange_calendars through market/calendar.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from tickstockpl.market.calendar import sessions_between
from tickstockpl.universes.rules.definition import Reconstitution
from tickstockpl.universes.rules.schedule import SessionCalendar

D = dt.date
SESSIONS = sessions_between(D(2021, 12, 1), D(2027, 2, 26))
CAL = SessionCalendar.from_sessions(SESSIONS)


@pytest.mark.parametrize("month_start, first_session, why", [
    (D(2022, 1, 1), D(2022, 1, 3), "January 1 a Saturday"),
    (D(2023, 7, 1), D(2023, 7, 3), "July 1 a Saturday"),
    (D(2024, 9, 1), D(2024, 9, 3), "Sunday, then Labor Day"),
    (D(2025, 9, 1), D(2025, 9, 2), "Labor Day on the 1st"),
    (D(2026, 1, 1), D(2026, 1, 2), "New Year's Day on a Thursday"),
    (D(2026, 2, 1), D(2026, 2, 2), "a Sunday"),
    (D(2026, 12, 1), D(2026, 12, 1), "a Tuesday"),
    (D(2027, 1, 1), D(2027, 1, 4), "New Year's Day on a Friday, then the weekend"),
])
def test_first_session_of_the_month_across_holidays(month_start, first_session, why):
    monthly = Reconstitution("monthly", tuple(range(1, 13)))
    end = D(month_start.year + (month_start.month == 12), month_start.month % 12 + 1, 1) - dt.timedelta(days=1)
    assert CAL.reconstitution_days(month_start, end, monthly) == [first_session], why
    assert CAL.is_first_of_month(first_session)


@pytest.mark.parametrize("months, year, expected", [
    ((3, 6, 9, 12), 2026, [D(2026, 3, 2), D(2026, 6, 1), D(2026, 9, 1), D(2026, 12, 1)]),
    # 2026-11-01: clocks go back; the sessions' UTC open moves from 13:30 to 14:30, the day stays the day
    ((2, 5, 8, 11), 2026, [D(2026, 2, 2), D(2026, 5, 1), D(2026, 8, 3), D(2026, 11, 2)]),
    # 2022-03-13: clocks go forward; March's first session lies before it, April's after
    ((1, 4, 7, 10), 2022, [D(2022, 1, 3), D(2022, 4, 1), D(2022, 7, 1), D(2022, 10, 3)]),
])
def test_quarterly_across_daylight_saving_changes(months, year, expected):
    rule = Reconstitution("quarterly", months)
    assert CAL.reconstitution_days(D(year, 1, 1), D(year, 12, 31), rule) == expected


def test_the_dst_change_is_really_in_the_sessions():
    by_day = {s.day: s for s in SESSIONS}
    assert by_day[D(2026, 10, 30)].open_utc.hour == 13 and by_day[D(2026, 11, 2)].open_utc.hour == 14
    assert by_day[D(2022, 3, 11)].open_utc.hour == 14 and by_day[D(2022, 3, 14)].open_utc.hour == 13


def test_semi_annual_and_every_session():
    semi = Reconstitution("semi_annual", (6, 12))
    assert CAL.reconstitution_days(D(2025, 1, 1), D(2026, 12, 31), semi) == [
        D(2025, 6, 2), D(2025, 12, 1), D(2026, 6, 1), D(2026, 12, 1)]
    every = Reconstitution("every_session", ())
    week = CAL.reconstitution_days(D(2026, 11, 23), D(2026, 11, 29), every)
    assert week == [D(2026, 11, 23), D(2026, 11, 24), D(2026, 11, 25), D(2026, 11, 27)]  # Thanksgiving out


def test_counting_and_refusals():
    assert CAL.sessions_since(D(2026, 11, 23), D(2026, 11, 27)) == 4
    assert CAL.sessions_since(D(2026, 11, 26), D(2026, 11, 27)) == 1  # from a holiday: the next session
    assert CAL.sessions_since(D(2026, 11, 28), D(2026, 11, 27)) == 0
    assert CAL.previous(D(2026, 11, 27)) == D(2026, 11, 25)
    with pytest.raises(LookupError, match="2026-11-26 is not a session"):
        CAL.is_reconstitution(D(2026, 11, 26), Reconstitution("every_session", ()))
    mid = SessionCalendar(d for d in CAL.days if d >= D(2026, 11, 16))
    assert not mid.is_reconstitution(D(2026, 11, 16), Reconstitution("monthly", tuple(range(1, 13))))
