"""Cameo verification on real clips: packaged face photos turned by warping, digits spoken by espeak-ng.

One passing clip and one clip per way of failing; each failing clip must fail the check that
names its fault (and, where the clip is otherwise right, only that check).
"""

from __future__ import annotations

import pytest

from mutoscope.likeness.challenge import Challenge
from mutoscope.likeness.report import CHECKS
from mutoscope.likeness.verify import verify_clip
from tests.likeness.clips import build_clip

CHALLENGE = Challenge(digits="371", turns=("left", "right"))

# case -> (clip recipe, the checks that must fail; None = exactly these and no others)
CASES = {
    "two_faces": (dict(digits="371", faces=("astronaut", "hopper")), {"one_face"}),
    "swapped_face": (dict(digits="371", swap_to="hopper"), {"same_identity"}),
    "wrong_digits": (dict(digits="582"), {"spoken_digits"}),
    "no_speech": (dict(digits=None), {"speech_present", "spoken_digits", "voice_consistent"}),
    "wrong_turn_order": (dict(digits="371", turns=("right", "left")), {"head_turns"}),
    "still_photo": (dict(digits="371", still=True), {"face_motion", "head_turns"}),
}
# With two faces in every frame there is no single face to follow, so the face checks after it fail too.
ALSO_MAY_FAIL = {"two_faces": {"same_identity", "face_motion", "head_turns"}}


def _verify(analyzers, path):
    faces, speech = analyzers
    return verify_clip(path, CHALLENGE, faces=faces, speech=speech)


def test_genuine_clip_passes_every_check_and_keeps_references(analyzers, clip_dir):
    report = _verify(analyzers, build_clip(clip_dir / "pass.mp4", digits="371"))
    assert [c.name for c in report.checks] == list(CHECKS)
    assert report.passed, report.as_dict()
    assert report.summary() == "All checks passed."
    assert len(report.face_embedding) == 128 and len(report.voice_embedding) == 256
    assert 1 <= len(report.reference_frames) <= 3 and report.reference_frames[0].ndim == 3
    assert report.check("head_turns").detail.startswith("asked: left, right; seen: left, right")
    # The wire form carries names and scores, never the embeddings.
    assert "embedding" not in str(report.as_dict())


def test_other_person_passes_too(analyzers, clip_dir):
    report = _verify(analyzers, build_clip(clip_dir / "hopper.mp4", digits="371", faces=("hopper",)))
    assert report.passed, report.as_dict()


@pytest.mark.parametrize("case", list(CASES))
def test_each_fault_fails_its_named_check(analyzers, clip_dir, case):
    recipe, must_fail = CASES[case]
    report = _verify(analyzers, build_clip(clip_dir / f"{case}.mp4", **recipe))
    failed = set(report.failed)
    assert not report.passed
    assert must_fail <= failed, report.as_dict()
    assert failed - must_fail <= ALSO_MAY_FAIL.get(case, set()), report.as_dict()
    for name in must_fail:  # every failure says what to redo
        assert report.check(name).redo
    assert report.face_embedding is None and report.voice_embedding is None and not report.reference_frames


def test_unreadable_upload_fails_cleanly(analyzers, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    report = _verify(analyzers, bad)
    assert not report.passed and report.checks[0].redo
