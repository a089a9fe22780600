"""Extensions and edits at the engine seam: the tiny real pipelines, small clips, CPU."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mutoscope.engine.base import EngineError, GenerationSpec  # noqa: E402
from mutoscope.engine.diffusers_engine import fit_frames  # noqa: E402
from mutoscope.engine.registry import RegistryError, load_registry  # noqa: E402


class Hooks:
    def on_progress(self, fraction: float, phase: str) -> None:
        pass

    def should_cancel(self) -> bool:
        return False


def source_clip(frames: int = 30, width: int = 64, height: int = 96) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([np.stack([(xx * 4 + i * 8) % 256, yy * 2 % 256, np.full_like(xx, 60)], -1)
                     for i in range(frames)]).astype(np.uint8)


def spec(**kw) -> GenerationSpec:
    values = dict(prompt="a kite over the sea", width=64, height=96, seconds=0.5, seed=5, num_inference_steps=2)
    values.update(kw)
    return GenerationSpec(**values)


@pytest.mark.parametrize(("model", "pipeline", "overlap"),
                         [("tiny-ltx2", "LTX2ConditionPipeline", 17), ("tiny-wan", "WanImageToVideoPipeline", 1)])
def test_extend_returns_only_the_new_frames(engine, model, pipeline, overlap):
    out = engine.generate(model, spec(condition_frames=source_clip(), condition_mode="extend"), Hooks())
    assert out.frames.shape == (12, 96, 64, 3)  # round(0.5 s * 24 fps): the overlap is cut
    assert out.resolved["task"] == "extend" and out.resolved["conditioning_pipeline"] == pipeline
    assert out.resolved["condition_frames"] == overlap
    if model == "tiny-ltx2":
        assert out.audio.shape == (2, 12000)  # the continuation's own 0.5 s of sound
    else:
        assert out.audio is None


@pytest.mark.parametrize(("model", "pipeline"), [("tiny-ltx2", "LTX2Pipeline"), ("tiny-wan", "WanVideoToVideoPipeline")])
def test_edit_replaces_the_clip_frame_for_frame(engine, model, pipeline):
    src = source_clip()
    out = engine.generate(model, spec(condition_frames=src, condition_mode="edit"), Hooks())
    assert out.frames.shape == (12, 96, 64, 3)
    assert out.resolved["task"] == "video-to-video" and out.resolved["conditioning_pipeline"] == pipeline
    again = engine.generate(model, spec(condition_frames=src, condition_mode="edit"), Hooks())
    np.testing.assert_array_equal(out.frames, again.frames)  # same seed, same source, same video
    other = engine.generate(model, spec(condition_frames=src[::-1].copy(), condition_mode="edit"), Hooks())
    assert not np.array_equal(out.frames, other.frames)  # the source matters


def test_edit_needs_enough_frames_and_a_mode(engine):
    with pytest.raises(EngineError, match="12 needed"):
        engine.generate("tiny-wan", spec(condition_frames=source_clip(5), condition_mode="edit"), Hooks())
    with pytest.raises(ValueError):
        GenerationSpec(prompt="x", width=64, height=64, seconds=1, seed=0, condition_frames=source_clip())


def test_fit_frames_pads_small_clips_and_crops_large_ones():
    clip = source_clip(2, 60, 90)
    padded = fit_frames(clip, 64, 96)
    assert padded.shape == (2, 96, 64, 3)
    np.testing.assert_array_equal(padded[:, 3:93, 2:62], clip)  # centered, untouched
    assert fit_frames(source_clip(2, 320, 180), 64, 96).shape == (2, 96, 64, 3)


def test_edit_strength_is_validated(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text('[[models]]\nname = "m"\nfamily = "wan"\nweights = "builtin:tiny-wan"\nedit_strength = 1.5\n')
    with pytest.raises(RegistryError, match=r"models.toml:2: .*'edit_strength' must be a number in \(0, 1\]"):
        load_registry(path)
