"""Measured likeness on known material: the packaged test photos and espeak-ng voices.

The face match uses the same dlib embeddings as verification: a clip of the astronaut scores as the
astronaut (best distance below 0.6, found in most sampled frames); a clip of Grace Hopper does not. The voice
match uses resemblyzer: another reading by the same espeak-ng voice (the voice every test cameo has) scores at
least `VOICE_MATCH`; a different espeak-ng voice (`en-us+f3`) does not.
"""

from __future__ import annotations

import numpy as np
import pytest

from mutoscope.likeness.conditioning import (
    VOICE_MATCH,
    speaker_of,
    speech_analyzer,
    voice_sample,
)
from mutoscope.likeness.measure import SAME_PERSON_DISTANCE, face_match, voice_match
from mutoscope.likeness.voice import to_mono_16k
from mutoscope.media import read_frames
from tests.likeness.clips import build_clip, photo, speech


@pytest.fixture(scope="module")
def astronaut_embedding(analyzers):
    faces, _ = analyzers
    found = faces.faces(np.ascontiguousarray(np.pad(photo("astronaut"), ((40, 40), (40, 40), (0, 0)), mode="edge")))
    assert len(found) == 1
    return found[0].embedding


def test_a_face_matches_its_own_person_and_not_another(analyzers, clip_dir, astronaut_embedding):
    own = read_frames(build_clip(clip_dir / "measure-astronaut.mp4", digits=None, turns=("left", "right")))
    other = read_frames(build_clip(clip_dir / "measure-hopper.mp4", digits=None, faces=("hopper",)))

    mine = face_match(own, astronaut_embedding)
    theirs = face_match(other, astronaut_embedding)
    assert mine["distance"] < SAME_PERSON_DISTANCE and mine["found"] >= 0.5 and mine["frames"] == 8
    assert theirs["found"] == 0.0
    assert theirs["distance"] is None or theirs["distance"] >= SAME_PERSON_DISTANCE


def test_a_voice_matches_its_own_speaker_and_not_another(analyzers):
    analyzer = speech_analyzer()
    assert analyzer is not None
    enrolled, rate = speech("three, one, four, one, five")
    reference = speaker_of(enrolled[None, :], rate, analyzer)
    same, rate_same = speech("nine, two, six, five, three, five")
    other, rate_other = speech("nine, two, six, five, three, five", "en-us+f3")

    assert voice_match(same[None, :], rate_same, reference)["similarity"] >= VOICE_MATCH
    assert voice_match(other[None, :], rate_other, reference)["similarity"] < VOICE_MATCH
    silence = np.zeros((1, 16000 * 2), np.float32)
    assert voice_match(silence, 16000, reference) == {"similarity": None}


def test_the_voice_sample_is_the_speech_of_the_recording(analyzers):
    _, speech_analyzer_ = analyzers
    spoken, rate = speech("seven, eight, nine")
    wav = to_mono_16k(np.concatenate([np.zeros(rate), spoken, np.zeros(rate)])[None, :], rate)
    segments = speech_analyzer_.speech_segments(wav)
    sample = voice_sample(wav, segments)
    assert sample is not None
    # The silence around the speech is left out; the speech is kept, in order, at most 8 s of it.
    assert len(sample) == sum(e - s for s, e in segments) <= 8 * 16000
    assert len(sample) < len(wav) - 16000
