"""Reading the settings loads no pipeline module (issue 16: the late-data settings' HH:MM check imported
pipeline.completeness, and with it statistics, the scheduler's module and the import session types,
into every process, a cache sync's included: about 7 ms of a 0.27 s rerun). The HH:MM rule lives in
clock.py; the pipeline uses the same one."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tickstockpl import clock
from tickstockpl.errors import ConfigError

PROBE = (
    "import sys; from tickstockpl.settings import Settings; Settings.from_env();"
    " print(sorted(m for m in sys.modules if m.startswith('tickstockpl.pipeline') or m == 'statistics'))")


def test_reading_the_settings_loads_no_pipeline_module():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_settings_still_refuse_a_time_that_is_not_hhmm(monkeypatch):
    from tickstockpl.settings import Settings

    monkeypatch.setenv("TICKSTOCKPL_IMPORT_DEADLINE", "8pm")
    with pytest.raises(ConfigError, match=r"^TICKSTOCKPL_IMPORT_DEADLINE must be HH:MM \(24-hour, New York\), got '8pm'$"):
        Settings.from_env()
    assert clock.hhmm("20:00") == clock.parse_hhmm("20:00", "X")
    assert [clock.hhmm(t) for t in ("24:00", "7:00", 800, None)] == [None] * 4
