"""The suite's tiers keep themselves: a server started by a test outside the live tier fails that test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import tiers


def test_a_server_process_outside_the_live_tier_fails_the_test(monkeypatch):
    monkeypatch.setattr(tiers, "_current_is_live", False)  # as in a test tiers.py did not mark
    with pytest.raises(pytest.fail.Exception, match="mark it @pytest.mark.live"):
        subprocess.Popen([sys.executable, "-m", "mutoscope", "version"])
    with pytest.raises(pytest.fail.Exception):
        subprocess.run(["weed", "version"])
    # Other processes (espeak-ng, ffmpeg probes, a short python) are no servers and stay allowed.
    assert subprocess.run([sys.executable, "-c", "pass"]).returncode == 0


def test_reading_source_sees_a_server_through_a_helper_of_the_same_module():
    here = __file__

    def starts():
        return helper_that_starts()

    assert "helper_that_starts" in tiers._spawning_functions(here)
    assert tiers._starts_a_server(starts)

    def quiet():
        return 1

    assert not tiers._starts_a_server(quiet)


def helper_that_starts():
    from tests.conftest import LiveServer

    return LiveServer(Path("never-started"))  # built, not started: the shape is what the reading looks for
