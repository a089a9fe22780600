"""DiffusersEngine end to end with the tiny random-weight models (real diffusers pipelines, CPU, no hub).

One engine per module: building the tiny pipelines takes a few seconds and the
engine keeps them warm, as it does in the server.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mutoscope.engine import weights  # noqa: E402
from mutoscope.engine.base import GenerationCancelled, GenerationSpec, ModelNotAvailable  # noqa: E402
from mutoscope.engine.diffusers_engine import DiffusersEngine, fit_audio, fit_image  # noqa: E402
from mutoscope.engine.families import FAMILIES  # noqa: E402
from mutoscope.engine.registry import RegistryError, load_registry  # noqa: E402
from tests.engine.support import RecordingHooks  # noqa: E402

TEST_ALIASES = {"sora-2": "tiny-ltx2", "sora-2-pro": "tiny-ltx2"}


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> DiffusersEngine:
    registry = load_registry(extra_aliases=TEST_ALIASES)
    return DiffusersEngine(registry, tmp_path_factory.mktemp("weights"), device="cpu")


def small_spec(**overrides) -> GenerationSpec:
    values = dict(prompt="a red kite over the sea", width=64, height=96, seconds=0.5, seed=7)
    values.update(overrides)
    return GenerationSpec(**values)


def gradient_image(width: int, height: int) -> Image.Image:
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([xx * 255 // max(1, width - 1), yy * 255 // max(1, height - 1), np.full_like(xx, 90)], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8))



@pytest.mark.slow  # a 720p render on the CPU: about 40 s
def test_ltx2_text_to_video_at_real_size(engine):
    """The one full-size test: 4 s of 720x1280 (width x height) at 24 fps, with sound."""
    spec = GenerationSpec(prompt="a lighthouse at dusk", width=720, height=1280, seconds=4, seed=1)
    out = engine.generate("sora-2", spec, RecordingHooks())

    assert out.frames.shape == (96, 1280, 720, 3)  # T == round(4 * 24), exactly the requested size
    assert out.frames.dtype == np.uint8
    assert out.fps == 24.0
    assert out.sample_rate == 24000
    assert out.audio.dtype == np.float32 and out.audio.shape[0] == 2
    frame_samples = out.sample_rate / out.fps
    assert abs(out.audio.shape[1] - out.frames.shape[0] * frame_samples) <= frame_samples
    assert np.abs(out.audio).max() <= 1.0 and np.abs(out.audio).max() > 0
    # Generated at the next multiple of 32 (736 wide), 8k+1 frames, then cropped and cut.
    assert out.resolved["generation_width"] == 736 and out.resolved["generation_height"] == 1280
    assert out.resolved["generation_frames"] == 97
    assert out.resolved["model"] == "tiny-ltx2" and out.resolved["requested_model"] == "sora-2"


@pytest.mark.parametrize("model", ["tiny-ltx2", "tiny-wan"])
def test_text_to_video_shapes_and_resolved(engine, model):
    out = engine.generate(model, small_spec(seconds=1), RecordingHooks())

    assert out.frames.shape == (24, 96, 64, 3)
    assert out.fps == 24.0
    if model == "tiny-wan":
        assert out.audio is None and out.sample_rate is None
    else:
        assert out.audio.shape == (2, 24000)
    resolved = out.resolved
    assert resolved["steps"] == 2 and resolved["guidance_scale"] == 1.0 and resolved["seed"] == 7
    assert resolved["family"] == FAMILIES[resolved["family"]].name
    assert resolved["weights"] == f"builtin:{model}"
    assert resolved["task"] == "text-to-video"
    rule = 8 if model == "tiny-ltx2" else 4
    assert (resolved["generation_frames"] - 1) % rule == 0 and resolved["generation_frames"] >= 24


@pytest.mark.parametrize("model", ["tiny-ltx2", "tiny-wan"])
def test_image_to_video_starts_on_the_image(engine, model):
    image = gradient_image(64, 96)
    out = engine.generate(model, small_spec(image=image), RecordingHooks())
    plain = engine.generate(model, small_spec(), RecordingHooks())

    target = np.asarray(image, dtype=np.float64)
    noise = np.random.default_rng(0).integers(0, 256, target.shape)
    first_error = np.abs(out.frames[0] - target).mean()
    assert first_error < 0.1 * np.abs(noise - target).mean()
    # Random weights cannot reconstruct the image through the VAE, so the test
    # models pin it as frame 0 (pin_first_frame); the rest of the video must
    # still come from the image-to-video pipeline, i.e. differ from text-to-video.
    assert out.resolved["task"] == "image-to-video" and out.resolved["first_frame_pinned"] is True
    assert np.abs(out.frames[1:].astype(int) - plain.frames[1:]).mean() > 1.0


@pytest.mark.parametrize("model", ["tiny-ltx2", "tiny-wan"])
def test_same_seed_same_video(engine, model):
    a = engine.generate(model, small_spec(), RecordingHooks())
    b = engine.generate(model, small_spec(), RecordingHooks())
    c = engine.generate(model, small_spec(seed=8), RecordingHooks())

    np.testing.assert_array_equal(a.frames, b.frames)
    if a.audio is not None:
        np.testing.assert_array_equal(a.audio, b.audio)
    assert not np.array_equal(a.frames, c.frames)


def test_progress_is_monotonic_and_reaches_one(engine):
    hooks = RecordingHooks()
    engine.generate("tiny-ltx2", small_spec(num_inference_steps=3), hooks)

    fractions = [f for f, _ in hooks.events]
    assert fractions == sorted(fractions)
    assert [f for f, phase in hooks.events if phase == "denoise"] == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    assert hooks.events[-1] == (1.0, "decode")


@pytest.mark.parametrize("model", ["tiny-ltx2", "tiny-wan"])
def test_cancel_after_first_step(engine, model):
    hooks = RecordingHooks(cancel_after=1)
    with pytest.raises(GenerationCancelled):
        engine.generate(model, small_spec(num_inference_steps=4), hooks)

    denoise_steps = [f for f, phase in hooks.events if phase == "denoise" and f > 0]
    assert denoise_steps == [0.25]
    assert all(phase != "decode" for _, phase in hooks.events)
    # The warm pipeline is still usable after a cancelled job.
    assert engine.generate(model, small_spec(), RecordingHooks()).frames.shape[0] == 12


def test_explicit_steps_guidance_and_negative_prompt_are_resolved(engine):
    out = engine.generate(
        "tiny-wan",
        small_spec(num_inference_steps=3, guidance_scale=2.0, negative_prompt="blurry"),
        RecordingHooks(),
    )
    assert out.resolved["steps"] == 3
    assert out.resolved["guidance_scale"] == 2.0
    assert out.resolved["negative_prompt"] == "blurry"



def test_unknown_model(engine):
    with pytest.raises(ModelNotAvailable, match="no-such-model"):
        engine.generate("no-such-model", small_spec(), RecordingHooks())
    with pytest.raises(ModelNotAvailable):
        engine.resolve("no-such-model")


def test_missing_real_weights_names_the_pull_command(engine):
    info = engine.resolve("wan2.2-ti2v-5b")
    assert info.installed is False
    with pytest.raises(ModelNotAvailable, match="mutoscope models pull wan2.2-ti2v-5b"):
        engine.generate("wan2.2-ti2v-5b", small_spec(), RecordingHooks())


def test_list_and_resolve(engine):
    names = {m.name: m for m in engine.list_models()}
    assert {"ltx-2.3-distilled", "ltx-2", "wan2.2-ti2v-5b", "tiny-ltx2", "tiny-wan"} <= set(names)
    assert names["tiny-ltx2"].installed and names["tiny-ltx2"].test_model and names["tiny-ltx2"].has_audio
    # Admission refuses a model that is not installed; the builtin test models always are.
    assert all(names[n].installed for n in ("tiny-ltx2", "tiny-ltx2-pro", "tiny-wan"))
    assert not names["ltx-2"].installed
    assert not names["tiny-wan"].has_audio
    assert "random" in names["tiny-wan"].description
    assert engine.resolve("sora-2-pro").name == "tiny-ltx2"
    assert {"sora-2", "sora-2-pro"} <= set(names["tiny-ltx2"].aliases)



def test_shipped_registry_aliases():
    registry = load_registry()
    for alias in ("sora-2", "sora-2-2025-10-06", "sora-2-2025-12-08"):
        assert registry.resolve(alias).name == "ltx-2.3-distilled"
    for alias in ("sora-2-pro", "sora-2-pro-2025-10-06"):
        assert registry.resolve(alias).name == "ltx-2.5"
    assert registry.resolve("wan2.2-ti2v-5b").family == "wan"


def test_alias_override_moves_alias():
    registry = load_registry(extra_aliases=TEST_ALIASES)
    assert registry.resolve("sora-2").name == "tiny-ltx2"
    assert "sora-2" not in registry.resolve("ltx-2.3-distilled").aliases
    # Dated aliases that were not overridden keep their model.
    assert registry.resolve("sora-2-2025-10-06").name == "ltx-2.3-distilled"


def test_bad_toml_names_file_and_line(tmp_path):
    bad = tmp_path / "models.toml"
    bad.write_text('[[models]]\nname = "m"\nfamily = "ltx2"\nweights = oops\n', encoding="utf-8")
    with pytest.raises(RegistryError, match=rf"{bad}:4: invalid TOML"):
        load_registry(bad)
    assert issubclass(RegistryError, ValueError)


def test_alias_to_unknown_model_is_refused(tmp_path):
    with pytest.raises(RegistryError, match="unknown model 'nope'"):
        load_registry(extra_aliases={"sora-2": "nope"})
    path = tmp_path / "models.toml"
    path.write_text(
        '[[models]]\nname = "m"\nfamily = "ltx2"\nweights = "builtin:tiny-ltx2"\n\n[aliases]\nsora-2 = "gone"\n',
        encoding="utf-8",
    )
    with pytest.raises(RegistryError, match="gone"):
        load_registry(path)


def test_unknown_family_and_field_name_the_entry_line(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text('# header\n[[models]]\nname = "m"\nfamily = "sdxl"\nweights = "x/y"\n', encoding="utf-8")
    with pytest.raises(RegistryError, match=rf"{path}:3: model 'm': unknown family 'sdxl'"):
        load_registry(path)
    path.write_text('[[models]]\nname = "m"\nfamily = "wan"\nweights = "x/y"\nsteps = "many"\n', encoding="utf-8")
    with pytest.raises(RegistryError, match="'steps' must be a positive integer"):
        load_registry(path)



def test_family_size_and_frame_rules():
    ltx2, wan = FAMILIES["ltx2"], FAMILIES["wan"]
    assert ltx2.generation_size(720, 1280) == (736, 1280)
    assert ltx2.frames_covering(96) == 97 and ltx2.frames_covering(97) == 97 and ltx2.frames_covering(98) == 105
    assert wan.frames_covering(96) == 97 and wan.frames_covering(12) == 13
    assert wan.generation_size(1280, 720) == (1280, 736)


def test_fit_audio_cuts_and_pads():
    audio = np.ones((2, 100), dtype=np.float32) * 2
    assert fit_audio(audio, 0.5, 100).shape == (2, 50)
    padded = fit_audio(audio, 1.5, 100)
    assert padded.shape == (2, 150) and padded.max() == 1.0 and padded[:, 100:].max() == 0.0


def test_fit_image_pads_without_resampling():
    image = gradient_image(64, 96)
    canvas = fit_image(image, 96, 96)
    assert canvas.size == (96, 96)
    np.testing.assert_array_equal(np.asarray(canvas)[:, 16:80], np.asarray(image))


def test_weights_rules(tmp_path):
    registry = load_registry()
    tiny, real = registry.resolve("tiny-ltx2"), registry.resolve("ltx-2")
    assert weights.is_installed(tiny, tmp_path)
    assert not weights.is_installed(real, tmp_path)
    assert weights.remove(tiny, tmp_path) is False
    local = dataclasses.replace(real, weights=str(tmp_path / "ltx"))
    with pytest.raises(ModelNotAvailable, match="model_index.json"):
        weights.require_installed(local, tmp_path)
    patterns = weights.allow_patterns(
        {"_class_name": "LTX2Pipeline", "vae": ["diffusers", "AutoencoderKLLTX2Video"], "processor": [None, None]}
    )
    assert "model_index.json" in patterns and "vae/*.safetensors" in patterns
    assert not any(p.startswith("processor/") for p in patterns)
    assert not any(p.endswith(".bin") or "/" not in p and p.endswith(".safetensors") for p in patterns)


def test_is_local_path():
    assert weights.is_local_path("/models/ltx")
    assert not weights.is_local_path("Lightricks/LTX-2")
    assert Path(weights.model_dir(load_registry().resolve("ltx-2"), Path("/w"))) == Path("/w/ltx-2")



def test_real_loading_path_round_trips_a_saved_pipeline(tmp_path):
    """A diffusers folder (here: the tiny pipeline saved to disk) loads through from_pretrained
    exactly as pulled weights would, and generates the same video as the builtin."""
    registry = load_registry()
    builtin = registry.resolve("tiny-ltx2")
    FAMILIES["ltx2"].build_tiny("tiny-ltx2").text_to_video.save_pretrained(tmp_path / "ltx")
    local = dataclasses.replace(builtin, name="ltx-local", weights=str(tmp_path / "ltx"), aliases=())
    engine = DiffusersEngine(type(registry)([local, builtin]), tmp_path / "weights", device="cpu")

    assert engine.resolve("ltx-local").installed
    a = engine.generate("ltx-local", small_spec(), RecordingHooks())
    b = engine.generate("tiny-ltx2", small_spec(), RecordingHooks())
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.audio, b.audio)


def test_incomplete_download_asks_for_a_pull(tmp_path):
    registry = load_registry()
    entry = registry.resolve("wan2.2-ti2v-5b")
    folder = weights.model_dir(entry, tmp_path)
    FAMILIES["wan"].build_tiny("tiny-wan").text_to_video.save_pretrained(folder)
    (folder / weights.COMPLETE_MARKER).write_text('{"revision": "abc123"}', encoding="utf-8")
    engine = DiffusersEngine(registry, tmp_path, device="cpu")

    # Complete: real Wan code path, tiny weights, recorded revision.
    out = engine.generate("wan2.2-ti2v-5b", small_spec(num_inference_steps=2, guidance_scale=1.0), RecordingHooks())
    assert out.frames.shape == (12, 96, 64, 3) and out.resolved["revision"] == "abc123"

    engine.unload("wan2.2-ti2v-5b")
    shutil.rmtree(folder / "transformer")
    with pytest.raises(ModelNotAvailable, match="mutoscope models pull wan2.2-ti2v-5b"):
        engine.generate("wan2.2-ti2v-5b", small_spec(), RecordingHooks())
