"""The user documentation names what the code really has."""

from __future__ import annotations

import re
from pathlib import Path

from tickstockpl.universes.config import default_config

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _settings_variables() -> set[str]:
    source = (ROOT / "src" / "tickstockpl" / "settings.py").read_text(encoding="utf-8")
    names = set()
    for call in re.findall(r"get\(((?:\"[A-Z_]+\"(?:,\s*)?)+)\)", source):
        names.update(re.findall(r"\"([A-Z_]+)\"", call))
    return names


def test_configuration_lists_every_environment_variable_the_settings_read():
    variables = _settings_variables()
    assert {"DATABASE_URL", "DATABASE_URI", "REDIS_URL", "TICKSTOCKPL_API_KEYS", "TICKSTOCKPL_PORT"} <= variables
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", (DOCS / "CONFIGURATION.md").read_text(encoding="utf-8")))
    assert variables - documented == set()


def test_configuration_shows_the_packaged_universe_defaults():
    text = (DOCS / "CONFIGURATION.md").read_text(encoding="utf-8")
    config = default_config()
    for theme in config.themes:
        assert theme in text
    for category in config.etf_categories:
        assert category.display_name.split()[0].lower() in text.lower()
    for key in config.leader_sizes:
        assert key in text
    assert f"{config.stocks_full_metadata_limit}" in text and f"{config.ipo_days}" in text


def test_every_doc_link_points_at_a_file():
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#]+\.md)\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).is_file(), f"{page.name} links to missing {target}"
