"""LTX-2.5 through the engine: tiny-ltx25, LTX-2.5's component classes at toy width with random weights.

tiny-ltx25 is what `ltx-2.5` is, shrunk: `LTX2Pipeline` with a Gemma 4 text encoder
(`Gemma4UnifiedForConditionalGeneration`), the keyframe-embedding transformer without video
feed-forward biases, per-modality connectors, a duration head, and a latent upsampler for the
two-stage recipe. One engine per module (the pipelines stay warm), then one job through a live
server and the openai SDK.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mutoscope.engine.base import GenerationCancelled, GenerationSpec  # noqa: E402
from mutoscope.engine.registry import load_registry  # noqa: E402
from tests.engine.support import RecordingHooks  # noqa: E402

MODEL = "tiny-ltx25"


def spec(**overrides) -> GenerationSpec:
    values = dict(prompt="a red fox in fresh snow", width=80, height=112, seconds=0.5, seed=5)
    values.update(overrides)
    return GenerationSpec(**values)


def test_tiny_ltx25_has_the_ltx25_classes(engine):
    pipes = engine.load(MODEL)
    pipe = pipes.text_to_video
    assert type(pipe).__name__ == "LTX2Pipeline"
    assert type(pipe.text_encoder).__name__ == "Gemma4UnifiedForConditionalGeneration"
    assert type(pipe.duration_head).__name__ == "LTX2DurationHead"
    config = pipe.transformer.config
    assert config.use_keyframes_abs_pos_embedding and not config.ff_bias and config.gated_attn
    assert pipe.connectors.config.per_modality_projections
    # Every pipeline of the model shares the same modules, the duration head included.
    assert pipes.image_to_video.duration_head is pipe.duration_head
    assert pipes.refine.transformer is pipe.transformer


def test_text_to_video_two_stage_with_sound(engine):
    head_calls = []
    handle = engine.load(MODEL).text_to_video.duration_head.register_forward_hook(
        lambda *args: head_calls.append(1))
    hooks = RecordingHooks()
    try:
        out = engine.generate(MODEL, spec(), hooks)
    finally:
        handle.remove()
    assert out.frames.shape == (12, 112, 80, 3) and out.fps == 24.0
    assert out.sample_rate == 24000 and out.audio.shape == (2, 12000) and np.abs(out.audio).max() > 0
    assert out.resolved["recipe"] == "two_stage"
    assert [s["stage"] for s in out.resolved["stages"]] == ["generate", "upsample", "refine"]
    # 2 stage-1 steps then 2 refine steps, one callback each, in order.
    assert [f for f, phase in hooks.events if phase == "denoise"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    # The job's own length always wins: the duration head is never asked.
    assert head_calls == []


def test_same_seed_same_video_other_seed_another(engine):
    a = engine.generate(MODEL, spec(seconds=0.25), RecordingHooks())
    b = engine.generate(MODEL, spec(seconds=0.25), RecordingHooks())
    c = engine.generate(MODEL, spec(seconds=0.25, seed=6), RecordingHooks())
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio)
    assert not np.array_equal(a.frames, c.frames)


def test_image_to_video(engine):
    yy, xx = np.mgrid[0:112, 0:80]
    image = Image.fromarray(np.stack([xx * 3, yy * 2, np.full_like(xx, 90)], axis=-1).astype(np.uint8))
    out = engine.generate(MODEL, spec(image=image), RecordingHooks())
    assert out.resolved["task"] == "image-to-video"
    assert np.array_equal(out.frames[0], np.asarray(image))


def test_cancel_after_the_first_step(engine):
    hooks = RecordingHooks(cancel_after=1)
    with pytest.raises(GenerationCancelled, match="after step 1"):
        engine.generate(MODEL, spec(), hooks)
    assert [f for f, _ in hooks.events] == [0.0, 0.25]  # no further step, no decode


def test_one_job_through_the_server(server, client):
    """The openai SDK against a live server, at the model's smallest size and duration."""
    import av

    video = client.videos.create_and_poll(prompt="a lighthouse at dusk", model=MODEL, size="256x144", seconds="4")
    assert video.status == "completed" and video.model == MODEL and video.size == "256x144"
    with av.open(io.BytesIO(client.videos.download_content(video.id).read())) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (256, 144) and len(container.streams.audio) == 1
        assert sum(1 for _ in container.decode(stream)) == 96


def test_pull_of_ltx25_fetches_what_the_recipe_runs_and_nothing_else():
    import json
    from pathlib import Path

    from mutoscope.engine import weights

    entry = load_registry().resolve("ltx-2.5")
    index = json.loads((Path(__file__).with_name("fixtures") / entry.weights / "model_index.json").read_text())
    patterns = weights.allow_patterns(index, *weights._recipe_files(entry))
    for folder in ("transformer", "text_encoder", "tokenizer", "connectors", "duration_head", "latent_upsampler"):
        assert f"{folder}/*.json" in patterns, folder
    # The full (SFT) DiT and the diffusion decoder are in the repo but not in this recipe: tens of GB not pulled.
    assert not [p for p in patterns if p.startswith(("transformer_full/", "diffusion_decoder/"))]
    assert not [p for p in patterns if p.endswith(".safetensors") and "/" not in p]  # no refine LoRA
