"""The likeness room's pure rules: challenges, digit parsing, head-turn ordering. No models needed."""

from __future__ import annotations

import pytest

from mutoscope.likeness.challenge import Challenge, new_challenge
from mutoscope.likeness.digits import digits_in, similarity
from mutoscope.likeness.verify import _ordered_turns


def test_new_challenge_shape():
    seen = set()
    for _ in range(50):
        c = new_challenge()
        assert len(c.digits) == 3 and c.digits.isdigit()
        assert c.turns in (("left", "right"), ("right", "left"))
        seen.add(c.turns)
        assert "then your" in c.instructions
    assert len(seen) == 2


def test_challenge_validates():
    with pytest.raises(ValueError):
        Challenge(digits="12a")
    with pytest.raises(ValueError):
        Challenge(digits="123", turns=("up",))


@pytest.mark.parametrize("text,digits", [
    ("3, 7, 1.", "371"), ("Three. Seven. One.", "371"), ("371", "371"), ("seven-one-four", "714"),
    ("My code is oh, two, nine", "029"), ("to for ate", "248"), ("Thank you.", ""), ("", ""),
])
def test_digits_in(text, digits):
    assert digits_in(text) == digits


def test_similarity():
    assert similarity("371", "371") == 1.0
    assert similarity("371", "372") == pytest.approx(2 / 3)
    assert similarity("371", "") == 0.0
    assert similarity("371", "0123456789") == 0.0


def test_turn_order_is_exact_and_relative_to_the_resting_pose():
    rest = [0.03] * 6
    assert _ordered_turns(rest + [0.2, 0.25, 0.03, -0.12, -0.15] + rest, 0.08)[0] == ["left", "right"]
    # A head that rests a little turned still reads its turns from that pose.
    assert _ordered_turns([0.1] * 8 + [-0.05, -0.06, 0.1, 0.25] + [0.1] * 4, 0.08)[0] == ["right", "left"]
    # Missing frames (profile views the detector misses) do not split one turn into two.
    assert _ordered_turns(rest + [0.2, 0.2] + rest, 0.08)[0] == ["left"]
    assert _ordered_turns(rest, 0.08)[0] == []


def test_character_refs_and_mentions():
    from mutoscope.http.body import form_fields
    from mutoscope.likeness.consent import character_refs, mentions

    # what the openai SDK sends for characters=[{"id": a}, {"id": b}]
    fields = form_fields([("characters[][id]", "cameo_a"), ("characters[][id]", "cameo_b")])
    assert character_refs(fields["characters"]) == ["cameo_a", "cameo_b"]
    assert character_refs([{"id": "x"}]) == ["x"] and character_refs(None) == []
    assert character_refs({"0": {"id": "x"}}) == ["x"]
    with pytest.raises(Exception):
        character_refs([{"name": "x"}])
    assert mentions("@Eileen meets @bob_2 and @eileen; mail me@example.com, @@x") == ["eileen", "bob_2"]


def test_missing_speech_model_is_a_clear_501(monkeypatch, tmp_path):
    from mutoscope.likeness.runtime import LikenessUnavailable, require
    from mutoscope.likeness.voice import WHISPER_ENV, whisper_model_path

    monkeypatch.delenv(WHISPER_ENV, raising=False)
    with pytest.raises(LikenessUnavailable) as e:
        whisper_model_path(None, tmp_path)
    assert e.value.status_code == 501 and e.value.code == "likeness_not_installed"
    with pytest.raises(LikenessUnavailable, match=r"pip install .*faster-whisper"):
        require("no_such_module_here", "no-such-package")
