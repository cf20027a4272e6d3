"""Checks before a sync writes anything (contract §6.3). Pure; `force` skips them.

Refuse when the data is not ready or looks broken:
  1. `ohlcv_daily` has no bars for the most recent completed trading session (on or before as-of);
  2. fewer than half of the previously eligible stocks are eligible now
     (previously eligible = members of the stored `stock_universe:complete:all_stocks`);
  3. a universe that was non-empty would become empty, or a whole family that had rows would vanish
     (the IPO universe is exempt: a month without listings is normal);
  4. the expected session is only partly loaded (another loader, e.g. AppV2's, still writing it, or
     stopped half way): it has fewer than MIN_SESSION_COVERAGE (90 %) of the bars of the session
     before it, or fewer than 90 % of the eligible stocks have a bar on it. Building then would mix
     prices of two dates. (PL's own importer refuses such a day when it writes it.)
One rule holds even with `force`: a sync never leaves the owned part of `cache_entries` empty.
And one more unless the caller asks for empty universes explicitly (`allow_empty`; `force` does not
skip it): data without a single eligible stock (empty or unloaded `symbols`, no active CS with a
market cap) is refused, so that an empty market never reports `success` with empty universes.
"""

from __future__ import annotations

from typing import Iterable

from tickstockpl.errors import ValidationFailed
from tickstockpl.market.snapshot import Snapshot
from tickstockpl.universes.model import (ALL_STOCKS_KEY, COMPLETE_NAME, IPOS, STOCK_UNIVERSE, Entry, member_count,
                                        universe_id)

ALL_STOCKS = universe_id(STOCK_UNIVERSE, COMPLETE_NAME, ALL_STOCKS_KEY)
# Rule 4. A complete day measured at 98.9-99.2 % of the previous day's bars and 98.9-99 % of the eligible
# stocks with a bar (the sample and realistic markets of market/, 30-60 sessions); 95 % or 99.9 % of the
# bars missing is far below.
MIN_SESSION_COVERAGE = 0.9


def coverage_problems(snapshot: Snapshot) -> list[str]:
    """Rule 4 (the latest session with bars, once it is the expected one)."""
    day = snapshot.latest_session
    if day is None or (snapshot.expected_session is not None and day != snapshot.expected_session):
        return []  # no bars, or not the expected session: rule 1 says so
    found = []
    bars, before = snapshot.bars_on_latest_session, snapshot.bars_on_previous_session
    if before and bars < MIN_SESSION_COVERAGE * before:
        found.append(f"the session {day.isoformat()} looks partly loaded: {bars} bars against {before} on"
                     f" {snapshot.previous_session.isoformat()} ({_percent(bars, before)} %; at least"
                     f" {_percent(MIN_SESSION_COVERAGE, 1)} % needed); finish loading it or pass force")
    eligible = snapshot.eligible_stocks
    with_bar = sum(1 for s in eligible if s.last_bar_date == day)
    if eligible and with_bar < MIN_SESSION_COVERAGE * len(eligible):
        found.append(f"the session {day.isoformat()} looks partly loaded: only {with_bar} of the {len(eligible)}"
                     f" eligible stocks have a bar on it ({_percent(with_bar, len(eligible))} %; at least"
                     f" {_percent(MIN_SESSION_COVERAGE, 1)} % needed); finish loading it or pass force")
    return found


def _percent(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.1f}".rstrip("0").rstrip(".")


def problems(
    snapshot: Snapshot,
    stored: Iterable[Entry],
    built: Iterable[Entry],
    eligible_now: int,
) -> list[str]:
    """Every reason to refuse the sync; empty when the data looks sound. `eligible_now`: the
    eligible stocks of the snapshot (counted once by the caller, which reports it too)."""
    found: list[str] = []
    expected_session = snapshot.expected_session
    if expected_session is not None and snapshot.latest_session != expected_session:
        newest = snapshot.latest_session.isoformat() if snapshot.latest_session else "none"
        found.append(
            f"ohlcv_daily has no bars for the most recent completed session {expected_session.isoformat()}"
            f" (newest bars: {newest}); run the data import first or pass force"
        )
    elif snapshot.bars_on_latest_session == 0 and snapshot.latest_session is None:
        found.append("ohlcv_daily has no bars on or before the as-of date")
    found += coverage_problems(snapshot)

    stored_by_id = {row.universe: row for row in stored}
    built_by_id = {entry.universe: entry for entry in built}

    previous = stored_by_id.get(ALL_STOCKS)
    if previous is not None:
        before = member_count(previous.value)
        now = eligible_now
        if before > 0 and now * 2 < before:
            found.append(f"only {now} stocks are eligible now against {before} before (fewer than half)")

    emptied = []
    for universe, old in stored_by_id.items():
        if old.family == IPOS:
            continue
        new = built_by_id.get(universe)
        if new is not None and member_count(old.value) and not member_count(new.value):
            emptied.append(universe)
    if emptied:
        shown = ", ".join(sorted(emptied)[:5]) + (" …" if len(emptied) > 5 else "")
        found.append(f"{len(emptied)} non-empty universe(s) would become empty: {shown}")

    stored_families = {row.family for row in stored_by_id.values()}
    built_families = {entry.family for entry in built_by_id.values()}
    vanished = sorted(f for f in stored_families - built_families if f != IPOS)
    if vanished:
        found.append(f"every universe of these families would be deleted: {', '.join(vanished)}")
    return found


def empty_data(eligible_now: int) -> str | None:
    """The reason to refuse data without any eligible stock (None when there is one)."""
    if eligible_now > 0:
        return None
    return ("no eligible stock: symbols holds no active common stock (type CS) with a market cap, so every stock"
            " universe would be empty; load the symbols table (and its bars) first (to write empty universes on"
            " purpose: tickstockpl cache-sync --allow-empty)")


def check(snapshot, stored, built, *, eligible_now: int, force: bool, allow_empty: bool = False) -> None:
    """Raise ValidationFailed with every problem, unless `force`; the emptiness rule always holds, and the
    empty-data rule unless `allow_empty`."""
    stored = list(stored)
    built = list(built)
    if stored and not built:
        raise ValidationFailed(["the sync would leave cache_entries without any universe (refused even with force)"])
    if not allow_empty and (reason := empty_data(eligible_now)) is not None:
        raise ValidationFailed([reason])
    if force:
        return
    found = problems(snapshot, stored, built, eligible_now)
    if found:
        raise ValidationFailed(found)
