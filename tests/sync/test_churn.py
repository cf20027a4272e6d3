"""Churn from the membership history (sync/history.churn): the one statement against a direct count of
the same intervals, day by day, on random histories; the range's defaults and limits."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tickstockpl.errors import ConfigError
from tickstockpl.sync import history

BASE = dt.date(2026, 6, 1)
ENV = "DEFAULT"


@st.composite
def histories(draw):
    """(universe, symbol, valid_from, valid_to) rows: per pair disjoint intervals, valid_from < valid_to."""
    rows = []
    for universe in ("stock_universe:rules:a", "stock_universe:rules:b"):
        for symbol in draw(st.lists(st.sampled_from("ABCDEFGH"), unique=True, max_size=6)):
            cuts = sorted(draw(st.lists(st.integers(0, 40), unique=True, min_size=1, max_size=6)))
            open_end = draw(st.booleans())
            bounds = cuts + ([None] if open_end or len(cuts) % 2 else [])
            for start, end in zip(bounds[::2], bounds[1::2]):
                rows.append((universe, symbol, BASE + dt.timedelta(start),
                             None if end is None else BASE + dt.timedelta(end)))
    return rows


def direct(rows, first, last):
    """The same answer counted from the intervals themselves."""
    out = {}
    for universe in sorted({r[0] for r in rows}):
        mine = [r for r in rows if r[0] == universe]
        days = sorted({d for r in mine for d in (r[2], r[3]) if d is not None and first <= d <= last})
        if not days:
            continue

        def member_after(d, r):
            return r[2] <= d and (r[3] is None or r[3] > d)

        out[universe] = [(d, sum(r[2] == d for r in mine), sum(r[3] == d for r in mine),
                          sum(member_after(d, r) for r in mine)) for d in days]
    return out


@pytest.fixture
def conn(db_url):
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=histories(), first=st.integers(0, 40), span=st.integers(0, 40))
def test_churn_counts_what_the_intervals_say(conn, rows, first, span):
    conn.execute("DELETE FROM pl_universe_membership")
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO pl_universe_membership (environment, universe, symbol, valid_from, valid_to)"
                        " VALUES (%s, %s, %s, %s, %s)", [(ENV, *r) for r in rows])
        cur.execute("INSERT INTO pl_universe_membership (environment, universe, symbol, valid_from) VALUES"
                    " ('OTHER', 'stock_universe:rules:a', 'Z', %s)", (BASE + dt.timedelta(first),))
    day_from, day_to = BASE + dt.timedelta(first), BASE + dt.timedelta(first + span)
    found = history.churn(conn, ENV, day_from, day_to)
    assert {u.universe: [(d.day, d.entered, d.left, d.after) for d in u.days] for u in found} == \
        direct(rows, day_from, day_to)
    for u in found:
        assert all(d.before >= 0 and 0 <= d.turnover <= 1 for d in u.days)
        assert u.members_start == u.days[0].before and u.members_end == u.days[-1].after
        for a, b in zip(u.days, u.days[1:]):
            assert a.after == b.before  # nothing changes between two days of change
    only = history.churn(conn, ENV, day_from, day_to, "stock_universe:rules:b")
    assert [u.universe for u in only] == [u.universe for u in found if u.universe.endswith(":b")]


def test_turnover_over_a_range(conn):
    rows = [("u:n:k", "A", BASE, None), ("u:n:k", "B", BASE, BASE + dt.timedelta(2)),
            ("u:n:k", "C", BASE + dt.timedelta(2), None)]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO pl_universe_membership (environment, universe, symbol, valid_from, valid_to)"
                        " VALUES ('DEFAULT', %s, %s, %s, %s)", rows)
    [u] = history.churn(conn, ENV, BASE, BASE + dt.timedelta(5))
    assert [(d.before, d.after, d.entered, d.left) for d in u.days] == [(0, 2, 2, 0), (2, 2, 1, 1)]
    assert u.days[0].turnover == 1.0 and u.days[1].turnover == 0.5  # built from nothing; one of two replaced
    assert (u.members_start, u.members_end, u.entered, u.left) == (0, 2, 3, 1)
    assert u.turnover == 2.0  # (3 + 1) / (0 + 2)
    [later] = history.churn(conn, ENV, BASE + dt.timedelta(1), BASE + dt.timedelta(5))
    assert (later.members_start, later.members_end, later.turnover) == (2, 2, 0.5)
    assert history.churn(conn, ENV, BASE + dt.timedelta(3), BASE + dt.timedelta(9)) == []
    doc = history.churn_document(BASE, BASE + dt.timedelta(5), [u])
    assert doc["from"] == "2026-06-01" and doc["count"] == 1
    assert doc["universes"][0]["days"][1] == {"day": "2026-06-03", "before": 2, "after": 2, "entered": 1, "left": 1,
                                              "turnover": 0.5}


def test_churn_range_defaults_and_limits(market_clock):
    assert history.churn_range(None, dt.date(2026, 11, 27)) == (dt.date(2026, 10, 28), dt.date(2026, 11, 27))
    assert history.churn_range(None, None)[1] == dt.date(2026, 11, 28)  # the market clock's New York date
    with pytest.raises(ConfigError, match="after to"):
        history.churn_range(dt.date(2026, 2, 2), dt.date(2026, 2, 1))
    with pytest.raises(ConfigError, match="at most 3660"):
        history.churn_range(dt.date(2000, 1, 1), dt.date(2026, 1, 1))
