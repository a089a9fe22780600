"""MiniMax-H3 behind the engine, and a supplied soundtrack on LTX-2 and MiniMax-H3.

- The real checkpoint's configs (tests/engine/fixtures/MiniMaxAI/MiniMax-H3) built at full size on the meta
  device through the family's own loader: classes, parameter counts (the figures a memory plan needs), and
  the size and frame rules the real VAE and transformer imply.
- The tiny random-weight model (`builtin:tiny-minimax-h3`: the real modular pipeline and classes) through
  `DiffusersEngine.generate`: what the pipeline received, recorded from the call itself, in order and
  labelled, and the conditioner's tokenized input.
- `audio`: a forward pre-hook the test puts on the transformer sees every denoising step get the clean
  audio latents at audio timestep 0, and the output's sound is the supplied clip resampled, sample for sample.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mutoscope.engine.audio import resample
from mutoscope.engine.base import EngineError, GenerationSpec, ReferenceMedia
from mutoscope.engine.diffusers_engine import DiffusersEngine
from mutoscope.engine.families import FAMILIES
from mutoscope.engine.families.minimax_h3 import reference_labels, references_problem
from mutoscope.engine.registry import load_registry
from tests.engine.support import RecordingHooks

FIXTURES = Path(__file__).with_name("fixtures")
H3 = FIXTURES / "MiniMaxAI" / "MiniMax-H3"

# Parameter counts of the real checkpoint (billions, ±1 %), for the memory plan: each transformer partition
# 33.12 B ("33B"; 61.7 GB in bf16 as the pipeline's docstring says: 2 bytes x 33.12 B = 66.2 GB = 61.7 GiB),
# the Qwen3-VL-32B conditioner 33.36 B, the video VAE 2.60 B, the audio VAE 0.151 B.
EXPECTED_BILLIONS = {"transformer": 33.12, "transformer_ref": 33.12, "text_encoder": 33.36, "vae": 2.604,
                     "audio_vae": 0.1513}


def billions(module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e9


@pytest.fixture(scope="module")
def meta_pipes():
    import torch

    entry = load_registry().resolve("minimax-h3")
    return FAMILIES["minimax_h3"].load(entry, FIXTURES / entry.weights, torch.bfloat16, device="meta")


def test_the_real_checkpoint_builds_at_full_size_on_meta(meta_pipes):
    index = json.loads((H3 / "modular_model_index.json").read_text())
    components = meta_pipes.text_to_video.components
    for name, (library, class_name, _spec) in ((k, v) for k, v in index.items() if isinstance(v, list)):
        if name in ("tokenizer", "processor"):
            continue  # vocabulary and preprocessing files, not configs
        assert type(components[name]).__name__ == class_name, name
    for name, expected in EXPECTED_BILLIONS.items():
        module = components[name]
        assert next(module.parameters()).device.type == "meta"
        assert billions(module) == pytest.approx(expected, rel=0.01), name


def test_size_and_frame_rules_match_the_real_vae(meta_pipes):
    modular = meta_pipes.text_to_video.modular
    family = FAMILIES["minimax_h3"]
    assert modular.canvas_multiple == family.size_multiple == 32
    assert (modular.vae_frames_per_chunk, modular.vae_latents_per_chunk) == (17, 5)
    assert modular.audio_sampling_rate == 32000 and modular.audio_channels == 2
    # 17n + 5 frames, at least the model's 5 s; at most its 15 s.
    assert [family.frames_covering(n) for n in (1, 96, 192, 193, 360)] == [124, 124, 192, 209, 362]
    assert family.seconds_problem(15, 24) is None and family.seconds_problem(16, 24) is not None
    assert family.size_problem(1344, 768) is None and family.size_problem(1600, 300) is not None


def test_labels_and_limits_follow_the_pipeline():
    kinds = [("image", False), ("image", False), ("audio", True), ("image", False), ("audio", True)]
    assert reference_labels(kinds) == [["<Picture 1>"], ["<Picture 2>"], ["<Audio 1>"], ["<Picture 3>"],
                                       ["<Audio 2>"]]
    assert references_problem(kinds) is None
    assert "audio" in references_problem([("audio", True)])
    assert "at most 9" in references_problem([("image", False)] * 10)


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> DiffusersEngine:
    return DiffusersEngine(load_registry(), tmp_path_factory.mktemp("weights"), device="cpu")


def face(seed: int, w: int = 80, h: int = 96) -> np.ndarray:
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def tone(hz: float, seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)[None, :]


def sha(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def test_h3_pipeline_receives_the_references_in_order_labelled(engine):
    a, b, voice = face(1), face(2), tone(220, 3, 16000)
    refs = (ReferenceMedia(kind="image", image=a, source="cameo_a:reference-0"),
            ReferenceMedia(kind="image", image=b, source="cameo_a:reference-1"),
            ReferenceMedia(kind="audio", audio=voice, sample_rate=16000, source="cameo_a:voice"))
    spec = GenerationSpec(prompt="<Picture 1> <Picture 2> (voice: <Audio 1>) says hello", width=256, height=128,
                          seconds=4, seed=3, references=refs)
    hooks = RecordingHooks()
    out = engine.generate("tiny-minimax-h3", spec, hooks)

    assert out.frames.shape == (96, 128, 256, 3) and out.sample_rate == 32000 and out.audio.shape[0] == 2
    got = out.resolved["references"]
    assert [r["source"] for r in got] == [r.source for r in refs]
    assert [r["labels"] for r in got] == [["<Picture 1>"], ["<Picture 2>"], ["<Audio 1>"]]
    assert got[0]["pixels_sha256"] == sha(a) and got[1]["pixels_sha256"] == sha(b)
    assert got[2]["audio_sha256"] == sha(voice) and got[2]["samples"] == voice.shape[1]
    # The conditioner read each label before its picture, then the prompt verbatim.
    text = out.resolved["presentation"]
    assert text.index("<Picture 1>: <|vision_start|>") < text.index("<Picture 2>: <|vision_start|>") \
        < text.index("<Audio 1>: ") < text.index(spec.prompt)
    assert text.endswith(spec.prompt)
    assert [p for p, phase in hooks.events if phase == "denoise"][-1] == 1.0


def test_h3_without_references_is_text_to_video(engine):
    out = engine.generate("tiny-minimax-h3", GenerationSpec(prompt="a kite", width=128, height=256, seconds=4, seed=1),
                          RecordingHooks())
    assert out.frames.shape == (96, 256, 128, 3)
    assert "references" not in out.resolved


def test_h3_refuses_audio_alone_and_too_many_pictures(engine):
    lone = GenerationSpec(prompt="x", width=256, height=128, seconds=4, seed=1,
                          references=(ReferenceMedia(kind="audio", audio=tone(200, 1, 16000), sample_rate=16000),))
    with pytest.raises(EngineError, match="picture"):
        engine.generate("tiny-minimax-h3", lone, RecordingHooks())
    many = GenerationSpec(prompt="x", width=256, height=128, seconds=4, seed=1,
                          references=tuple(ReferenceMedia(kind="image", image=face(i)) for i in range(10)))
    with pytest.raises(EngineError, match="at most 9"):
        engine.generate("tiny-minimax-h3", many, RecordingHooks())


def test_h3_takes_a_soundtrack_as_an_audio_reference_and_keeps_it(engine):
    from PIL import Image

    clip = tone(330, 5, 44100)
    spec = GenerationSpec(prompt="sing", width=256, height=128, seconds=4, seed=2,
                          image=Image.fromarray(face(5, 256, 128)), audio=clip, audio_sample_rate=44100)
    out = engine.generate("tiny-minimax-h3", spec, RecordingHooks())
    assert [r["source"] for r in out.resolved["references"]] == ["input_reference", "audio_reference"]
    want = resample(clip, 44100, 32000)[:, : 4 * 32000]
    assert np.array_equal(out.audio, np.repeat(want, 2, axis=0))


def test_ltx2_every_step_sees_the_soundtrack_clean_at_audio_timestep_zero(engine):
    import torch

    pipes = engine.load("tiny-ltx2")
    transformer = pipes.text_to_video.transformer
    seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def record(module, args, kwargs):
        audio_t = kwargs.get("audio_timestep")
        seen.append((None if audio_t is None else audio_t.clone(), kwargs["timestep"].clone(),
                     kwargs["audio_hidden_states"].clone()))

    clip = tone(440, 2, 22050)
    handle = transformer.register_forward_pre_hook(record, with_kwargs=True)
    try:
        spec = GenerationSpec(prompt="a singer", width=64, height=96, seconds=1, seed=4, num_inference_steps=3,
                              audio=clip, audio_sample_rate=22050)
        out = engine.generate("tiny-ltx2", spec, RecordingHooks())
    finally:
        handle.remove()

    assert len(seen) == 3  # one transformer call per step (no guidance pass on the tiny model)
    assert all(a is not None and a.shape == t.shape and torch.count_nonzero(a) == 0 for a, t, _ in seen)
    assert all(torch.count_nonzero(t) > 0 for _, t, _ in seen)  # the picture was denoising meanwhile
    assert all(torch.equal(h, seen[0][2]) for _, _, h in seen)  # the same clean latents every step
    assert out.resolved["audio_reference"]["steps"] == 3
    assert out.resolved["audio_reference"]["samples"] == clip.shape[1]
    want = resample(clip, 22050, out.sample_rate)[:, : out.sample_rate]
    assert np.array_equal(out.audio, np.repeat(want, 2, axis=0))
    # Without a soundtrack the hook is gone: the audio denoises with the picture (the pipeline's own timestep).
    seen.clear()
    handle = transformer.register_forward_pre_hook(record, with_kwargs=True)
    try:
        engine.generate("tiny-ltx2", GenerationSpec(prompt="a singer", width=64, height=96, seconds=1, seed=4,
                                                    num_inference_steps=2), RecordingHooks())
    finally:
        handle.remove()
    assert len(seen) == 2 and all(a is None for a, _, _ in seen)
    assert not torch.equal(seen[0][2], seen[1][2])


def test_the_clean_audio_latents_come_from_the_clip(engine):
    """Two different clips give different conditioning latents; the same clip the same ones."""
    from mutoscope.engine.families.ltx2 import waveform_to_audio_latents

    pipe = engine.load("tiny-ltx2").text_to_video
    a = waveform_to_audio_latents(pipe, tone(440, 2, 16000), 16000, 25, 24.0)
    b = waveform_to_audio_latents(pipe, tone(880, 2, 16000), 16000, 25, 24.0)
    again = waveform_to_audio_latents(pipe, tone(440, 2, 16000), 16000, 25, 24.0)
    assert a.shape == b.shape and a.shape[2] == round(25 / 24 * 25)  # 25 audio latents a second
    assert not np.allclose(a.numpy(), b.numpy()) and np.array_equal(a.numpy(), again.numpy())
