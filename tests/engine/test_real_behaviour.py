"""Behaviour the real checkpoints have and the tiny test models, as built, hide.

The tiny components are configured to reproduce it: a tiny LTX-2 with the scheduler of
Lightricks/LTX-2 (dynamic shifting, terminal 0.1, from tests/engine/fixtures), the prompt mask
LTX-2 passes to every cross-attention, and model offload across the two-stage recipe's pipelines.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mutoscope.engine import modes  # noqa: E402
from mutoscope.engine.base import EngineError, GenerationSpec  # noqa: E402
from mutoscope.engine.diffusers_engine import DiffusersEngine  # noqa: E402
from mutoscope.engine.families import FAMILIES  # noqa: E402
from mutoscope.engine.families.ltx2 import LTX2Family  # noqa: E402
from mutoscope.engine.testkit.ltx2 import build_tiny_components  # noqa: E402
from mutoscope.engine.registry import Registry, RegistryError, load_registry, mask_free_backends  # noqa: E402

FIXTURES = Path(__file__).with_name("fixtures")
DISTILLED_SIGMAS = [1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875]


class Hooks:
    def on_progress(self, fraction: float, phase: str) -> None:
        pass

    def should_cancel(self) -> bool:
        return False


def spec(**kw) -> GenerationSpec:
    values = dict(prompt="a kite over the sea", width=64, height=96, seconds=0.5, seed=5)
    values.update(kw)
    return GenerationSpec(**values)


def models_file(tmp_path: Path, family: str, weights: str, extra: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(f'[[models]]\nname = "m"\nfamily = "{family}"\nweights = "{weights}"\n{extra}\n')
    return path


def real_scheduler(repo: str):
    from diffusers import FlowMatchEulerDiscreteScheduler

    config = json.loads((FIXTURES / repo / "scheduler" / "scheduler_config.json").read_text())
    return FlowMatchEulerDiscreteScheduler.from_config(config)


def engine_with_scheduler(tmp_path: Path, scheduler, entry_changes: dict | None = None) -> DiffusersEngine:
    """An engine whose tiny-ltx2 runs on `scheduler` (a real repo's) instead of the tiny default."""
    registry = load_registry()
    entry = registry.resolve("tiny-ltx2")
    if entry_changes:
        entry = dataclasses.replace(entry, **entry_changes)
    engine = DiffusersEngine(Registry([entry]), tmp_path, device="cpu")
    engine.install("tiny-ltx2", LTX2Family._pipelines({**build_tiny_components(), "scheduler": scheduler}))
    return engine


@pytest.fixture
def sigmas_seen(monkeypatch):
    """The noise level of every transformer call (LTX-2's timestep is sigma x 1000), in call order."""
    from diffusers import LTX2VideoTransformer3DModel

    seen: list[float] = []
    original = LTX2VideoTransformer3DModel.forward

    def forward(self, *args, **kwargs):
        seen.append(float(kwargs["timestep"].float().max()) / 1000.0)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LTX2VideoTransformer3DModel, "forward", forward)
    return seen


# Attention backends and masks.


def test_ltx2_passes_a_float_mask_to_attention(monkeypatch, tmp_path):
    """Why mask-less backends cannot run LTX-2: its pipelines mask the prompt padding in every
    cross-attention with an additive float mask (varlen kernels only take boolean ones)."""
    import diffusers.models.transformers.transformer_ltx2 as ltx2_module

    masks = []
    original = ltx2_module.dispatch_attention_fn

    def dispatch(*args, **kwargs):
        mask = kwargs.get("attn_mask")
        masks.append(None if mask is None else mask.dtype)
        return original(*args, **kwargs)

    monkeypatch.setattr(ltx2_module, "dispatch_attention_fn", dispatch)
    engine = DiffusersEngine(load_registry(), tmp_path, device="cpu")
    engine.generate("tiny-ltx2", spec(), Hooks())
    floats = [m for m in masks if m is not None]
    assert floats and all(m.is_floating_point for m in floats)


def test_mask_free_backends_are_read_from_diffusers():
    backends = mask_free_backends()
    assert {"flash", "_flash_3", "sage", "_native_flash", "flash_varlen", "sage_varlen"} <= backends
    assert not backends & {"native", "_native_cudnn", "_native_efficient", "_native_math", "flex", "xformers"}


@pytest.mark.parametrize("backend", ["flash", "_flash_3", "sage", "_native_flash", "flash_varlen"])
def test_ltx2_refuses_a_backend_that_cannot_take_its_mask(tmp_path, backend):
    path = models_file(tmp_path, "ltx2", "builtin:tiny-ltx2", f'attention_backend = "{backend}"')
    with pytest.raises(RegistryError) as err:
        load_registry(path)
    message = str(err.value)
    assert "\n" not in message
    assert "models.toml:2: model 'm'" in message and f"attention_backend {backend!r}" in message


def test_wan_may_use_flash(tmp_path):
    """Wan's attention calls carry no mask: flash-attn is fine there."""
    path = models_file(tmp_path, "wan", "builtin:tiny-wan", 'attention_backend = "flash"')
    assert load_registry(path).resolve("m").attention_backend == "flash"


def test_shipped_models_file_uses_no_mask_free_backend_on_ltx2():
    for entry in load_registry().entries():
        if FAMILIES[entry.family].attention_masks:
            assert entry.attention_backend not in mask_free_backends()


# Schedules.


def test_edit_denoises_from_the_level_it_noised_to_on_the_dev_scheduler(tmp_path, sigmas_seen):
    """Lightricks/LTX-2's scheduler shifts dynamically and stretches to 0.1: a scaled schedule sent
    through it would start well above the 0.7 the source was noised to."""
    engine = engine_with_scheduler(tmp_path, real_scheduler("Lightricks/LTX-2"))
    clip = np.full((12, 96, 64, 3), 120, dtype=np.uint8)
    engine.generate("tiny-ltx2", spec(condition_frames=clip, condition_mode="edit", num_inference_steps=3), Hooks())

    assert len(sigmas_seen) == 3
    assert sigmas_seen[0] == pytest.approx(0.7, abs=1e-3)
    assert sigmas_seen == sorted(sigmas_seen, reverse=True) and sigmas_seen[-1] > 0


def test_edit_follows_the_shifted_schedule_it_scales():
    """The edit's schedule is the one the model would run at that size (shifted, stretched), scaled."""
    from mutoscope.engine.families.ltx2 import model_schedule

    scheduler = real_scheduler("Lightricks/LTX-2")
    sigmas = model_schedule(scheduler, 30, 97, 736, 1280)
    assert sigmas[0] == pytest.approx(1.0) and sigmas[-1] == pytest.approx(0.1, abs=1e-6)
    # 13 x 23 x 40 video tokens: a strong shift keeps most steps at high noise.
    assert sigmas[len(sigmas) // 2] > 0.9


def test_fixed_sigmas_run_as_given_on_a_shifting_scheduler(tmp_path, sigmas_seen):
    """The distilled schedule is 8 literal sigmas; a repo whose scheduler shifts must not change them."""
    engine = engine_with_scheduler(
        tmp_path, real_scheduler("Lightricks/LTX-2"),
        {"steps": 8, "pipeline_kwargs": {**load_registry().resolve("tiny-ltx2").pipeline_kwargs,
                                         "sigmas": DISTILLED_SIGMAS}},
    )
    engine.generate("tiny-ltx2", spec(seconds=0.1), Hooks())
    assert sigmas_seen == pytest.approx(DISTILLED_SIGMAS, abs=1e-6)


def test_default_schedule_still_shifts_on_the_dev_scheduler(tmp_path, sigmas_seen):
    """Without explicit sigmas the repo's own shifting applies, as diffusers intends for the dev model."""
    engine = engine_with_scheduler(tmp_path, real_scheduler("Lightricks/LTX-2"))
    engine.generate("tiny-ltx2", spec(seconds=0.1, num_inference_steps=3), Hooks())
    # linspace(1, 1/3) would end at 0.333; the repo's scheduler stretches it to its terminal.
    assert sigmas_seen[0] == pytest.approx(1.0) and sigmas_seen[-1] == pytest.approx(0.1, abs=1e-4)


# Model offload across shared pipelines.


def test_model_offload_sends_the_transformer_back_before_the_refine_decode(tmp_path):
    """One module on the accelerator at a time across all of a model's pipelines.

    There is no GPU here, so the "accelerator" is `cpu:0`: a module moved there is on it, one moved
    to plain "cpu" is offloaded; the `.to` calls on the transformer say where it is when the VAE
    decoder runs (only the refine pass decodes in the two-stage recipe).
    """
    import torch

    pipes = FAMILIES["ltx2"].build_tiny("tiny-ltx2-pro")
    modes._place(pipes, "model_cpu_offload", "cpu:0")
    transformer = pipes.text_to_video.transformer
    vae = pipes.text_to_video.vae
    where: list[str] = []
    original_to = transformer.to

    def to(*args, **kwargs):
        target = args[0] if args else kwargs.get("device")
        if isinstance(target, (str, torch.device)):
            where.append(str(torch.device(target)))
        return original_to(*args, **kwargs)

    transformer.to = to
    at_decode: list[str] = []
    decoder_forward = vae.decoder.forward

    def decoder(*args, **kwargs):
        at_decode.append(where[-1] if where else "cpu")
        return decoder_forward(*args, **kwargs)

    vae.decoder.forward = decoder
    pipes.modes = {"memory": "model_cpu_offload"}
    engine = DiffusersEngine(load_registry(), tmp_path, device="cpu")
    engine._pipelines["tiny-ltx2-pro"] = pipes

    out = engine.generate("tiny-ltx2-pro", spec(width=80, height=112), Hooks())

    assert out.frames.shape == (12, 112, 80, 3)
    assert "cpu:0" in where  # the transformer did run on the accelerator
    assert at_decode and set(at_decode) == {"cpu"}


# pipeline_kwargs.


@pytest.mark.parametrize("key", ["stg_scal", "audio_guidance"])
def test_unknown_pipeline_kwargs_are_refused_at_start(tmp_path, key):
    entry = load_registry().resolve("tiny-ltx2")
    entry = dataclasses.replace(entry, pipeline_kwargs={**entry.pipeline_kwargs, key: 0.0})
    with pytest.raises(RegistryError) as err:
        DiffusersEngine(Registry([entry]), tmp_path, device="cpu")
    assert "model tiny-ltx2" in str(err.value) and repr(key) in str(err.value) and "\n" not in str(err.value)


def test_unknown_pipeline_kwargs_are_refused_at_load_too(tmp_path):
    """An engine whose registry changed after it started checks again before loading weights."""
    engine = DiffusersEngine(load_registry(), tmp_path, device="cpu")
    entry = engine.registry.resolve("tiny-ltx2")
    engine.registry = Registry([dataclasses.replace(entry, pipeline_kwargs={"max_sequence_lenght": 64})])
    with pytest.raises(EngineError, match="'max_sequence_lenght'"):
        engine.load("tiny-ltx2")


def test_pipeline_kwargs_of_one_pipeline_only_are_accepted(tmp_path):
    """`image_crf` exists on the image-to-video pipeline only; one table serves both."""
    entry = load_registry().resolve("tiny-ltx2")
    assert "image_crf" in entry.pipeline_kwargs
    DiffusersEngine(Registry([entry]), tmp_path, device="cpu").load("tiny-ltx2")


def test_shipped_pipeline_kwargs_are_all_known():
    from mutoscope.engine.diffusers_engine import check_pipeline_kwargs

    for entry in load_registry().entries():
        check_pipeline_kwargs(entry, FAMILIES[entry.family])
