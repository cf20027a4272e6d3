"""Schedule maths (pure, table-tested) and the stored schedule."""

from __future__ import annotations

import datetime as dt
import json

import psycopg
import pytest

from tickstockpl.errors import ConfigError
from tickstockpl.events import catalog
from tickstockpl.pipeline import schedule as sched
from tickstockpl.pipeline import schedule_store

UTC = dt.timezone.utc


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


NEXT_RUN_TABLE = [
    # now (UTC), trigger, zone, market_check, expected (UTC), why
    (utc(2026, 11, 25, 12, 0), "16:10", "America/New_York", True, utc(2026, 11, 25, 21, 10), "same day, EST"),
    (utc(2026, 11, 25, 21, 10), "16:10", "America/New_York", True, utc(2026, 11, 27, 21, 10),
     "strictly after now; Thanksgiving 2026-11-26 skipped; the 11-27 half day runs at 16:10 local"),
    (utc(2026, 11, 26, 3, 0), "16:10", "America/New_York", True, utc(2026, 11, 27, 21, 10), "from the holiday itself"),
    (utc(2026, 11, 27, 21, 11), "16:10", "America/New_York", True, utc(2026, 11, 30, 21, 10), "across the weekend"),
    (utc(2026, 11, 28, 12, 0), "16:10", "America/New_York", True, utc(2026, 11, 30, 21, 10), "from a Saturday"),
    (utc(2026, 3, 6, 21, 11), "16:10", "America/New_York", True, utc(2026, 3, 9, 20, 10),
     "DST starts 2026-03-08: Monday fires at 16:10 EDT = 20:10 UTC"),
    (utc(2026, 3, 6, 20, 0), "16:10", "America/New_York", True, utc(2026, 3, 6, 21, 10), "Friday before, still EST"),
    (utc(2026, 10, 30, 20, 11), "16:10", "America/New_York", True, utc(2026, 11, 2, 21, 10),
     "DST ends 2026-11-01: Monday fires at 16:10 EST = 21:10 UTC"),
    (utc(2026, 10, 30, 19, 0), "16:10", "America/New_York", True, utc(2026, 10, 30, 20, 10), "Friday before, still EDT"),
    (utc(2026, 3, 7, 22, 0), "16:10", "America/New_York", False, utc(2026, 3, 8, 20, 10),
     "market_check off: fires on the DST Sunday itself at 16:10 EDT"),
    (utc(2026, 10, 31, 22, 0), "16:10", "America/New_York", False, utc(2026, 11, 1, 21, 10),
     "market_check off: fires on the fall-back Sunday at 16:10 EST"),
    (utc(2026, 11, 25, 21, 10), "16:10", "America/New_York", False, utc(2026, 11, 26, 21, 10),
     "market_check off: Thanksgiving runs"),
    (utc(2026, 11, 28, 12, 0), "16:10", "America/New_York", False, utc(2026, 11, 28, 21, 10), "market_check off: Saturday runs"),
    (utc(2026, 12, 24, 21, 10), "16:10", "America/New_York", True, utc(2026, 12, 28, 21, 10),
     "Christmas (Friday) and the weekend skipped"),
    (utc(2026, 11, 25, 12, 0), "09:30", "America/New_York", True, utc(2026, 11, 25, 14, 30), "another trigger time"),
    (utc(2026, 11, 25, 12, 0), "21:10", "Europe/London", True, utc(2026, 11, 25, 21, 10), "another zone"),
    (utc(2026, 11, 25, 22, 0), "07:00", "Asia/Tokyo", True, utc(2026, 11, 27, 22, 0),
     "the NY date of the instant is checked: Tokyo 11-27 07:00 is NY 11-26 (a holiday) -> skipped"),
]


@pytest.mark.parametrize("now, trigger, tz, market_check, expected, why", NEXT_RUN_TABLE,
                         ids=[row[-1] for row in NEXT_RUN_TABLE])
def test_next_run(now, trigger, tz, market_check, expected, why):
    got = sched.next_run(now, trigger, tz, market_check)
    assert got == expected, why
    assert got.tzinfo is not None and got.utcoffset() == dt.timedelta(0)


def test_next_run_with_an_injected_calendar():
    only_mondays = lambda day: day.weekday() == 0  # noqa: E731
    assert sched.next_run(utc(2026, 11, 25, 12), "16:10", "America/New_York", True, only_mondays) == utc(2026, 11, 30, 21, 10)


PREVIOUS_RUN_TABLE = [
    (utc(2026, 11, 27, 21, 10), True, utc(2026, 11, 27, 21, 10), "at the firing itself"),
    (utc(2026, 11, 27, 21, 9), True, utc(2026, 11, 25, 21, 10), "before the half day's firing: Wednesday's"),
    (utc(2026, 11, 30, 12, 0), True, utc(2026, 11, 27, 21, 10), "Monday morning: Friday's"),
    (utc(2026, 3, 9, 21, 0), True, utc(2026, 3, 9, 20, 10), "after DST started"),
    (utc(2026, 11, 29, 12, 0), False, utc(2026, 11, 28, 21, 10), "market_check off: Saturday's"),
]


@pytest.mark.parametrize("now, market_check, expected, why", PREVIOUS_RUN_TABLE, ids=[r[-1] for r in PREVIOUS_RUN_TABLE])
def test_previous_run(now, market_check, expected, why):
    assert sched.previous_run(now, "16:10", "America/New_York", market_check) == expected, why


@pytest.mark.parametrize("fire, market_check, expected", [
    (utc(2026, 11, 27, 21, 10), True, dt.date(2026, 11, 27)),   # the half day
    (utc(2026, 11, 25, 21, 10), True, dt.date(2026, 11, 25)),
    (utc(2026, 11, 25, 14, 30), True, dt.date(2026, 11, 24)),   # before the close: the previous session
    (utc(2026, 11, 28, 21, 10), False, dt.date(2026, 11, 28)),  # market_check off: the NY date itself
    (utc(2026, 11, 25, 14, 30), False, dt.date(2026, 11, 24)),  # off, before the close: never an open session
    (utc(2026, 11, 25, 21, 10), False, dt.date(2026, 11, 25)),  # off, after the close: the day itself
    (utc(2026, 11, 2, 2, 0), False, dt.date(2026, 11, 1)),      # 21:00 EST on Sunday
])
def test_session_for_fire(fire, market_check, expected):
    assert sched.session_for_fire(fire, market_check) == expected


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        sched.next_run(dt.datetime(2026, 11, 25, 12, 0))


@pytest.mark.parametrize("changes, field", [
    ({"trigger_time": "25:00"}, "trigger_time"),
    ({"trigger_time": "4:10"}, "trigger_time"),
    ({"trigger_time": "16:1"}, "trigger_time"),
    ({"trigger_time": 1610}, "trigger_time"),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"timezone": ""}, "timezone"),
    ({"timezone": "../../etc/passwd"}, "timezone"),
    ({"timezone": True}, "timezone"),
    ({"enabled": "yes"}, "enabled"),
    ({"market_check": 1}, "market_check"),
    ({"universes": "sp500"}, "universes"),
    ({"universes": [""]}, "universes"),
    ({"universes": [1]}, "universes"),
    ({"next_run": "2026-01-01T00:00:00Z"}, "next_run"),
    ([], "JSON object"),
])
def test_bad_schedule_values_raise_config_error_naming_the_field(changes, field):
    with pytest.raises(ConfigError, match=field):
        sched.validate_changes(changes)


def test_default_schedule_is_16_10_new_york_on_trading_days(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        current = schedule_store.get_schedule(conn)
    assert current == sched.Schedule(True, "16:10", "America/New_York", True, ())
    body = current.to_public(utc(2026, 11, 25, 21, 10))
    assert body == {"enabled": True, "trigger_time": "16:10", "timezone": "America/New_York",
                    "next_run": "2026-11-27T21:10:00.000Z", "universes": [], "market_check": True}


def test_update_schedule_persists_and_publishes_the_whole_schedule(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        updated = schedule_store.update_schedule(conn, {"trigger_time": "17:05", "universes": ["sp500", "nasdaq100"]},
                                        now_utc=utc(2026, 11, 25, 12))
        assert schedule_store.get_schedule(conn) == updated
        assert updated.trigger_time == "17:05" and updated.universes == ("sp500", "nasdaq100")
        assert updated.enabled and updated.market_check and updated.timezone == "America/New_York"
        rows = conn.execute("SELECT channel, event, message FROM pl_event_outbox ORDER BY id").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("tickstock:processing:schedule", "schedule_updated")]
    assert catalog.PROCESSING_SCHEDULE == "tickstock:processing:schedule"
    payload = json.loads(rows[0][2])["payload"]
    assert payload["trigger_time"] == "17:05" and payload["next_run"] == "2026-11-25T22:05:00.000Z"
    assert sorted(payload["changed"]) == ["trigger_time", "universes"]


def test_a_rejected_update_changes_nothing(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        with pytest.raises(ConfigError):
            schedule_store.update_schedule(conn, {"trigger_time": "17:05", "timezone": "Nowhere/Land"})
        assert schedule_store.get_schedule(conn).trigger_time == "16:10"
        assert conn.execute("SELECT count(*) FROM pl_event_outbox").fetchone()[0] == 0


def test_disabled_schedule_has_no_next_run(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        updated = schedule_store.update_schedule(conn, {"enabled": False})
    assert updated.to_public()["next_run"] is None
