"""Every constant named once (issue 16): the places that used to restate one now read it from its module."""

from __future__ import annotations

import pathlib
import typing

import tickstockpl
from tickstockpl import cli, clock, settings
from tickstockpl.api import models
from tickstockpl.db import locks
from tickstockpl.pipeline import PHASES, schedule
from tickstockpl.sync import diff, validate
from tickstockpl.universes import model

SRC = pathlib.Path(tickstockpl.__file__).parent


def test_modes_zone_environment_and_universe_ids_come_from_one_place():
    assert typing.get_args(models.Mode) == model.MODES and cli.MODES is model.MODES
    assert cli.PHASE_NAMES is PHASES
    assert schedule.MARKET_TZ is clock.NEW_YORK and str(clock.NEW_YORK) == clock.NEW_YORK_TZ
    assert settings.Settings().environment == settings.DEFAULT_ENVIRONMENT
    assert locks.for_environment(locks.CACHE_SYNC, settings.DEFAULT_ENVIRONMENT) == locks.CACHE_SYNC
    assert diff.IPO_UNIVERSE == model.universe_id(model.STOCK_UNIVERSE, model.IPOS_NAME, model.RECENT_IPOS_KEY)
    assert validate.ALL_STOCKS == model.universe_id(model.STOCK_UNIVERSE, model.COMPLETE_NAME, model.ALL_STOCKS_KEY)


def test_the_literals_appear_once_in_the_code():
    """The zone name, the default environment and the mode list are written in one Python module each."""
    literals = {'"America/New_York"': "clock.py", '"DEFAULT"': "settings.py",
                '"full", "market_cap", "themes", "ipos"': "universes/model.py"}
    for literal, home in literals.items():
        found = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if literal in p.read_text(encoding="utf-8"))
        assert found == [home], (literal, found)
