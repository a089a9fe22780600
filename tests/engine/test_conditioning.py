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


def test_a_requested_edit_strength_starts_the_edit_later_in_the_schedule(engine):
    """The request's strength replaces the model's own: the transformer's first noise level is the strength,
    and every later level is the model's schedule scaled by it."""
    timesteps: list[float] = []
    transformer = engine.load("tiny-ltx2").text_to_video.transformer
    handle = transformer.register_forward_pre_hook(
        lambda module, args, kwargs: timesteps.append(float(kwargs["timestep"].flatten()[0]) / 1000), with_kwargs=True)
    try:
        src = source_clip()
        default = engine.generate("tiny-ltx2", spec(condition_frames=src, condition_mode="edit"), Hooks())
        seen_default, timesteps[:] = list(timesteps), []
        light = engine.generate("tiny-ltx2", spec(condition_frames=src, condition_mode="edit", edit_strength=0.3),
                                Hooks())
        seen_light = list(timesteps)
    finally:
        handle.remove()
    model_strength = engine.resolve("tiny-ltx2").edit_strength
    assert model_strength != 0.3
    assert default.resolved["edit_strength"] == model_strength
    assert light.resolved["edit_strength"] == 0.3 and "edit_strength_requested" not in light.resolved
    assert len(seen_light) == len(seen_default) == 2
    assert seen_default[0] == pytest.approx(model_strength, abs=1e-4)
    assert seen_light[0] == pytest.approx(0.3, abs=1e-4)
    assert seen_light == pytest.approx([t * 0.3 / model_strength for t in seen_default], abs=1e-4)
    assert light.resolved["sigmas"] == pytest.approx(seen_light, abs=1e-4)
    assert not np.array_equal(light.frames, default.frames)
    with pytest.raises(ValueError, match="edit_strength"):
        spec(condition_frames=src, condition_mode="edit", edit_strength=1.5)


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


def test_carry_scheduler_lands_the_kept_tokens_on_the_clean_latents():
    """RePaint on the flow path: whatever the model predicts, the kept tokens follow (1 - sigma) * clean +
    sigma * noise at every step and end exactly on the clean latents; the others are left to the model."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler

    from mutoscope.engine.families.ltx2_audio import carry_scheduler, overlap_mask

    sigmas = [1.0, 0.75, 0.5, 0.25]
    clean = torch.randn(1, 10, 4, generator=torch.Generator().manual_seed(1))
    keep = overlap_mask(10, 3)
    sched = carry_scheduler(FlowMatchEulerDiscreteScheduler(), clean, keep, torch.Generator().manual_seed(2))
    sched.set_timesteps(sigmas=sigmas, device="cpu")
    sample = torch.randn(1, 10, 4)
    levels = []
    for t in sched.timesteps:
        sample = sched.step(torch.randn(1, 10, 4), t, sample, return_dict=False)[0]
        levels.append(sample[:, :3].clone())
    torch.testing.assert_close(levels[-1], clean[:, :3])
    # One step before the end the kept tokens sit at sigma 0.25 on the line from clean to a fixed noise.
    noise = (levels[-2] - 0.75 * clean[:, :3]) / 0.25
    torch.testing.assert_close(levels[-3], 0.5 * clean[:, :3] + 0.5 * noise, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(sample[:, 3:], clean[:, 3:], atol=0.1)


def source_sound(seconds: float, rate: int = 24_000) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return np.stack([0.3 * np.sin(2 * np.pi * 330 * t), 0.3 * np.sin(2 * np.pi * 440 * t)]).astype(np.float32)


def test_extension_carries_the_source_sound_over_its_overlap(engine):
    pipes = engine.load("tiny-ltx2")
    encodes: list[tuple[int, ...]] = []
    handle = pipes.condition.audio_vae.encoder.register_forward_hook(
        lambda module, args, out: encodes.append(tuple(args[0].shape)))
    try:
        clip = source_clip()
        out = engine.generate("tiny-ltx2", spec(condition_frames=clip, condition_mode="extend",
                                                condition_audio=source_sound(30 / 24), condition_audio_rate=24_000),
                              Hooks())
        plain = engine.generate("tiny-ltx2", spec(condition_frames=clip, condition_mode="extend"), Hooks())
    finally:
        handle.remove()
    # The source's last 17 frames (0.71 s) and 0.32 s of context before them, as 16 kHz log-mel frames (hop 160).
    assert encodes == [(1, 2, 103, 16)]
    # 0.71 s at 25 latent frames a second: 18 carried latent frames, 0.72 s.
    assert out.resolved["audio_carried_seconds"] == 0.72 and "audio_carried_seconds" not in plain.resolved
    assert out.audio.shape == (2, 12000)  # still only the continuation's own 0.5 s
    assert out.lead_audio.shape == plain.lead_audio.shape == (2, 17000)  # the overlap's 17 frames of sound
    assert not np.array_equal(out.lead_audio, plain.lead_audio)  # the carried latents changed what was made
    # A later call through the same pipeline carries nothing over from this one.
    assert pipes.condition.audio_scheduler is None


def test_a_continuous_storyboard_shot_continues_the_previous_sound(engine, tmp_path):
    from mutoscope.jobs.storyboard import Shot, render_storyboard

    base = spec(seconds=1.0)
    shots = [Shot(index=0, spec=base, transition=None),
             Shot(index=1, spec=GenerationSpec(**{**base.__dict__, "seed": 6}), transition="continuous")]
    out, files = render_storyboard(engine, "tiny-ltx2", shots, tmp_path, lambda *_: None, lambda: False)
    first, second = out.resolved["storyboard"]["shots"]
    assert "audio_carried_seconds" not in first and second["audio_carried_seconds"] == 0.72
    assert out.audio.shape == (2, 48_000) and files["video"].stat().st_size > 0
    # The join is at the first shot's level: no step in loudness across it.
    at, win = 24_000, 4_800
    level = lambda x: float(np.sqrt(np.mean(x ** 2)))  # noqa: E731
    assert abs(20 * np.log10(level(out.audio[:, at:at + win]) / level(out.audio[:, at - win:at]))) < 1.5
