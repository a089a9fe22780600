from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """A CPU engine over the shipped registry; one per module, so its pipelines stay warm as in the server.
    Modules that need aliases or a models file of their own override it."""
    from mutoscope.engine.diffusers_engine import DiffusersEngine
    from mutoscope.engine.registry import load_registry

    return DiffusersEngine(load_registry(), tmp_path_factory.mktemp("weights"), device="cpu")
