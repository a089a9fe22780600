"""The two-stage recipe (`recipe = "two_stage"`, behind `sora-2-pro`) through DiffusersEngine with tiny-ltx2-pro.

tiny-ltx2-pro is the tiny LTX-2 pipeline plus a random `LTX2LatentUpsamplerModel`: real diffusers
pipelines on the CPU, no hub. One engine per module, as in the server: the pipelines stay warm.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mutoscope.engine import weights  # noqa: E402
from mutoscope.engine.base import EngineError, GenerationCancelled, GenerationSpec  # noqa: E402
from mutoscope.engine.families.ltx2 import truncated_grid  # noqa: E402
from mutoscope.engine.diffusers_engine import DiffusersEngine  # noqa: E402
from mutoscope.engine.registry import DEFAULT_REGISTRY_PATH, RegistryError, load_registry  # noqa: E402
from tests.engine.support import RecordingHooks  # noqa: E402

MODEL = "tiny-ltx2-pro"


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> DiffusersEngine:
    registry = load_registry(extra_aliases={"sora-2-pro": MODEL})
    return DiffusersEngine(registry, tmp_path_factory.mktemp("weights"), device="cpu")


@pytest.fixture
def upsampler_shapes(engine):
    """(input, output) latent shapes of every latent-upsampler call during the test."""
    shapes: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    upsampler = engine.load(MODEL).upsample.latent_upsampler
    handle = upsampler.register_forward_hook(
        lambda module, args, out: shapes.append((tuple(args[0].shape), tuple(out.shape)))
    )
    yield shapes
    handle.remove()


def spec(**overrides) -> GenerationSpec:
    # 80x112 is not a multiple of 64: stage 1 rounds each half up to 32 (64x64), the output is cropped.
    values = dict(prompt="a paper boat on a rainy street", width=80, height=112, seconds=0.5, seed=3)
    values.update(overrides)
    return GenerationSpec(**values)


def assert_audio_matches(out) -> None:
    assert out.sample_rate == 24000 and out.audio.dtype == np.float32 and out.audio.shape[0] == 2
    # Exactly T / fps seconds of sound, to the sample.
    assert out.audio.shape[1] == round(out.frames.shape[0] / out.fps * out.sample_rate)
    assert np.abs(out.audio).max() > 0


def test_two_stage_small(engine, upsampler_shapes):
    hooks = RecordingHooks()
    out = engine.generate("sora-2-pro", spec(), hooks)

    assert out.frames.shape == (12, 112, 80, 3)  # round(0.5 * 24) frames, exactly the requested size
    assert out.fps == 24.0
    assert_audio_matches(out)

    r = out.resolved
    assert r["model"] == MODEL and r["recipe"] == "two_stage"
    generate, upsample, refine = r["stages"]
    # Stage 1 at half the generation size (each side a multiple of 32), refined at the full one.
    assert (generate["width"], generate["height"]) == (64, 64)
    assert (r["generation_width"], r["generation_height"]) == (128, 128)
    assert (upsample["width"], upsample["height"]) == (refine["width"], refine["height"]) == (128, 128)
    assert generate["steps"] == r["steps"] == 2
    assert refine["steps"] == len(refine["sigmas"]) == 2 and refine["noise_scale"] == refine["sigmas"][0]
    # The upsampler really ran once, on stage 1's latents (32x compression: 64 px -> 2), doubling them.
    assert [(i[-2:], o[-2:]) for i, o in upsampler_shapes] == [((2, 2), (4, 4))]

    # Both stages' steps in order in the denoise phase: monotonic, reaching 1.0.
    fractions = [f for f, _ in hooks.events]
    assert fractions == sorted(fractions)
    assert [f for f, phase in hooks.events if phase == "denoise"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert hooks.events[-1] == (1.0, "decode")


def test_two_stage_is_deterministic_per_seed(engine):
    a = engine.generate(MODEL, spec(seconds=0.25), RecordingHooks())
    b = engine.generate(MODEL, spec(seconds=0.25), RecordingHooks())
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio)


def test_two_stage_image_to_video_pins_the_image(engine):
    yy, xx = np.mgrid[0:112, 0:80]
    image = Image.fromarray(np.stack([xx * 3, yy * 2, np.full_like(xx, 90)], axis=-1).astype(np.uint8))
    out = engine.generate(MODEL, spec(image=image), RecordingHooks())
    assert out.frames.shape == (12, 112, 80, 3)
    assert out.resolved["task"] == "image-to-video" and out.resolved["recipe"] == "two_stage"
    assert np.array_equal(out.frames[0], np.asarray(image))
    assert_audio_matches(out)


def test_cancel_during_refine(engine):
    # Stage 1 has 2 steps; cancel once the first refine step has run.
    hooks = RecordingHooks(cancel_after=3)
    with pytest.raises(GenerationCancelled, match="after step 1"):
        engine.generate(MODEL, spec(), hooks)
    assert [f for f, _ in hooks.events] == [0.0, 0.25, 0.5, 0.75]  # no decode, no 1.0
    # The engine stays usable.
    assert engine.generate(MODEL, spec(seconds=0.25), RecordingHooks()).frames.shape == (6, 112, 80, 3)


def test_cancel_during_stage_one(engine):
    hooks = RecordingHooks(cancel_after=1)
    with pytest.raises(GenerationCancelled):
        engine.generate(MODEL, spec(), hooks)
    assert [f for f, _ in hooks.events] == [0.0, 0.25]


@pytest.mark.slow  # a two-stage render at full size on the CPU: about 30 s
def test_two_stage_at_real_size(engine):
    """The one large test: 4 s of 1024x1792 (width x height), stage 1 at 512x896."""
    out = engine.generate("sora-2-pro", GenerationSpec(prompt="a tall waterfall", width=1024, height=1792,
                                                       seconds=4, seed=1), RecordingHooks())
    assert out.frames.shape == (96, 1792, 1024, 3)
    assert_audio_matches(out)
    generate, _, refine = out.resolved["stages"]
    assert (generate["width"], generate["height"]) == (512, 896)
    assert (refine["width"], refine["height"]) == (1024, 1792)
    assert out.resolved["generation_frames"] == 97


ENTRY = """[[models]]
name = "pro"
family = "{family}"
weights = "{weights}"
{extra}
"""


@pytest.mark.parametrize(
    ("family", "weights", "extra", "words"),
    [
        ("ltx2", "builtin:tiny-ltx2-pro", 'recipe = "three_stage"', "'recipe' must be one of"),
        ("wan", "builtin:tiny-wan", 'recipe = "two_stage"', "not supported by family 'wan'"),
        ("ltx2", "org/repo", 'recipe = "two_stage"', "needs 'upsampler'"),
        ("ltx2", "org/repo", 'refine_steps = 3', "only apply with recipe"),
        ("ltx2", "builtin:tiny-ltx2-pro", 'recipe = "two_stage"\nrefine_sigmas = [0.5, 0.7]', "strictly decreasing"),
        ("ltx2", "builtin:tiny-ltx2-pro", 'recipe = "two_stage"\nrefine_steps = 2\nrefine_sigmas = [0.9, 0.7, 0.4]',
         "must equal"),
        ("ltx2", "org/repo", 'recipe = "two_stage"\nupsampler = "../up"', "'upsampler' must be"),
    ],
)
def test_registry_refuses_bad_two_stage_settings(tmp_path: Path, family, weights, extra, words):
    path = tmp_path / "models.toml"
    path.write_text("# operator models\n" + ENTRY.format(family=family, weights=weights, extra=extra))
    with pytest.raises(RegistryError) as err:
        load_registry(path)
    # The message names the file and the entry's line.
    assert f"{path}:3: model 'pro'" in str(err.value)
    assert words in str(err.value)


def test_shipped_sora_2_pro_is_two_stage():
    entry = load_registry().resolve("sora-2-pro")
    assert entry.name == "ltx-2.5" and entry.recipe == "two_stage"
    assert entry.upsampler == "latent_upsampler" and entry.refine_steps == 3
    # The distilled transformer refines without a LoRA, and both stages run unguided.
    assert entry.refine_lora is None and entry.guidance == entry.refine_guidance == 1.0
    assert entry.steps == len(entry.pipeline_kwargs["sigmas"]) == 8
    assert {"1024x1792", "1792x1024"} <= set(entry.sizes)
    assert load_registry(DEFAULT_REGISTRY_PATH).resolve(MODEL).refine_sigmas == (0.909375, 0.4546875)


def test_pull_fetches_the_upsampler_and_refine_lora():
    entry = load_registry().resolve("ltx-2")
    # Lightricks/LTX-2's model_index.json lists the pipeline's components, not the upsampler.
    index = {"_class_name": "LTX2Pipeline", "transformer": ["diffusers", "LTX2VideoTransformer3DModel"],
             "vae": ["diffusers", "AutoencoderKLLTX2Video"]}
    patterns = weights.allow_patterns(index, *weights._recipe_files(entry))
    assert "latent_upsampler/*.safetensors" in patterns and "latent_upsampler/*.json" in patterns
    assert "ltx-2-19b-distilled-lora-384.safetensors" in patterns
    assert "transformer/*.safetensors" in patterns
    distilled = load_registry().resolve("sora-2")
    assert weights._recipe_files(distilled) == (("latent_upsampler",), ())



@pytest.fixture
def vae_encodes(engine):
    """(height, width) of every image or clip the tiny model's video VAE encodes during the test."""
    sizes: list[tuple[int, int]] = []
    encoder = engine.load(MODEL).text_to_video.vae.encoder
    handle = encoder.register_forward_hook(lambda module, args, out: sizes.append(tuple(args[0].shape[-2:])))
    yield sizes
    handle.remove()


def test_refine_encodes_the_image_again_at_full_size(engine, vae_encodes):
    """Stage 1 conditions on the image at half size; the refine pass on the image at the full size, as
    Lightricks' two-stage pipelines do, not on the upsampler's copy of the half-size encoding."""
    yy, xx = np.mgrid[0:112, 0:80]
    image = Image.fromarray(np.stack([xx * 3, yy * 2, np.full_like(xx, 90)], axis=-1).astype(np.uint8))
    out = engine.generate(MODEL, spec(image=image), RecordingHooks())
    assert vae_encodes == [(64, 64), (128, 128)]
    assert out.resolved["stages"][2]["image_encoded"] == "128x128"


def test_text_to_video_two_stage_encodes_nothing(engine, vae_encodes):
    engine.generate(MODEL, spec(seconds=0.25), RecordingHooks())
    assert vae_encodes == []


def test_guided_requests_get_the_default_negative_prompt(engine):
    from diffusers.pipelines.ltx2.utils import DEFAULT_NEGATIVE_PROMPT

    guided = engine.generate(MODEL, spec(seconds=0.25, guidance_scale=2.0), RecordingHooks()).resolved
    assert guided["negative_prompt"] == DEFAULT_NEGATIVE_PROMPT and guided["negative_prompt_default"] is True
    own = engine.generate(MODEL, spec(seconds=0.25, guidance_scale=2.0, negative_prompt="rain"),
                          RecordingHooks()).resolved
    assert own["negative_prompt"] == "rain" and "negative_prompt_default" not in own
    # Unguided (the distilled models): no unconditional pass, so nothing is sent.
    assert engine.generate(MODEL, spec(seconds=0.25), RecordingHooks()).resolved["negative_prompt"] is None


DISTILLED = """[[models]]
name = "tiny-distilled"
family = "ltx2"
weights = "builtin:tiny-ltx2-pro"
fps = 24
sizes = ["80x112"]
seconds = ["4"]
steps = {steps}
guidance = 1.0
has_audio = true
license = "Apache-2.0"
memory = "full"
dtype = "float32"
recipe = "two_stage"
refine_sigmas = {refine}
edit_strength = 0.7

[models.pipeline_kwargs]
sigmas = {sigmas}
stg_scale = 0.0
modality_scale = 1.0
audio_guidance_scale = 1.0
audio_stg_scale = 0.0
audio_modality_scale = 1.0
max_sequence_length = 64
image_crf = 0
"""


@pytest.fixture(scope="module")
def distilled(tmp_path_factory):
    """The tiny components run with the shipped `sora-2` entry's recipe: its sigmas, its refine sigmas."""
    real = load_registry().resolve("sora-2")
    path = tmp_path_factory.mktemp("distilled") / "models.toml"
    path.write_text(DISTILLED.format(steps=real.steps, sigmas=list(real.pipeline_kwargs["sigmas"]),
                                     refine=list(real.refine_sigmas)))
    return DiffusersEngine(load_registry(path), tmp_path_factory.mktemp("weights"), device="cpu")


@pytest.fixture
def transformer_calls(distilled):
    """(video tokens, timestep) of every transformer call during the test."""
    calls: list[tuple[int, float]] = []
    transformer = distilled.load("tiny-distilled").text_to_video.transformer

    def record(module, args, kwargs):
        calls.append((int(kwargs["hidden_states"].shape[1]), round(float(kwargs["timestep"].flatten()[0]) / 1000, 6)))

    handle = transformer.register_forward_pre_hook(record, with_kwargs=True)
    yield calls
    handle.remove()


def test_shipped_sora_2_is_the_authors_two_stage_distilled_recipe():
    from diffusers.pipelines.ltx2.utils import DISTILLED_SIGMA_VALUES, STAGE_2_DISTILLED_SIGMA_VALUES

    entry = load_registry().resolve("sora-2")
    assert entry.name == "ltx-2.3-distilled" and entry.recipe == "two_stage"
    assert list(entry.pipeline_kwargs["sigmas"]) == DISTILLED_SIGMA_VALUES and entry.steps == 8
    assert list(entry.refine_sigmas) == STAGE_2_DISTILLED_SIGMA_VALUES
    assert entry.refine_lora is None and entry.guidance == entry.refine_guidance == 1.0
    assert load_registry().resolve("ltx-2").steps == 40
    # What the API (torch-free) refuses other step counts by: the catalog's fixed schedule length.
    assert entry.info(installed=None).fixed_steps == 8
    assert load_registry().resolve("ltx-2").info(installed=None).fixed_steps is None


def test_distilled_two_stage_runs_eight_steps_at_half_size_then_three_at_full(distilled, transformer_calls):
    from diffusers.pipelines.ltx2.utils import DISTILLED_SIGMA_VALUES, STAGE_2_DISTILLED_SIGMA_VALUES

    # num_inference_steps equal to the distilled schedule's length keeps it.
    out = distilled.generate("tiny-distilled", spec(num_inference_steps=8), RecordingHooks())
    # 17 frames are 3 latent frames; 64x64 is 2x2 latent pixels, 128x128 is 4x4.
    assert [tokens for tokens, _ in transformer_calls] == [3 * 2 * 2] * 8 + [3 * 4 * 4] * 3
    assert [t for _, t in transformer_calls] == pytest.approx(DISTILLED_SIGMA_VALUES + STAGE_2_DISTILLED_SIGMA_VALUES,
                                                               abs=1e-4)
    r = out.resolved
    assert r["sigmas"] == DISTILLED_SIGMA_VALUES and r["steps"] == 8
    generate, _, refine = r["stages"]
    assert (generate["width"], generate["height"], refine["width"], refine["height"]) == (64, 64, 128, 128)
    assert refine["sigmas"] == STAGE_2_DISTILLED_SIGMA_VALUES


def test_distilled_step_override_is_refused_with_the_reason(distilled, transformer_calls):
    with pytest.raises(EngineError, match="fixed 8-step schedule; num_inference_steps must be 8") as err:
        distilled.generate("tiny-distilled", spec(num_inference_steps=4), RecordingHooks())
    assert err.value.code == "unsupported_steps"
    assert transformer_calls == []


def test_truncated_grid_keeps_the_distilled_levels():
    from diffusers.pipelines.ltx2.utils import DISTILLED_SIGMA_VALUES

    assert truncated_grid(DISTILLED_SIGMA_VALUES, 0.7) == [0.725, 0.421875]
    assert truncated_grid(DISTILLED_SIGMA_VALUES, 1.0) == DISTILLED_SIGMA_VALUES
    assert truncated_grid(DISTILLED_SIGMA_VALUES, 0.1) == [0.421875]
    assert truncated_grid(DISTILLED_SIGMA_VALUES, 0.95) == [0.975, 0.909375, 0.725, 0.421875]


def test_edit_on_a_distilled_model_truncates_its_grid(distilled, transformer_calls):
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 255, (12, 112, 80, 3), dtype=np.uint8)
    out = distilled.generate("tiny-distilled", spec(condition_frames=clip, condition_mode="edit"), RecordingHooks())
    # Edits take the single pass at the generation size (96x128: 3x4 latent pixels), on the grid from 0.725 on.
    assert transformer_calls == [(3 * 3 * 4, 0.725), (3 * 3 * 4, 0.421875)]
    r = out.resolved
    assert r["sigmas"] == [0.725, 0.421875] and r["steps"] == 2
    assert r["edit_strength"] == 0.725 and r["edit_strength_requested"] == 0.7


def test_a_requested_edit_strength_moves_the_start_on_the_distilled_grid(distilled, transformer_calls):
    clip = np.random.default_rng(0).integers(0, 255, (12, 112, 80, 3), dtype=np.uint8)
    light = distilled.generate("tiny-distilled", spec(condition_frames=clip, condition_mode="edit", edit_strength=0.5),
                               RecordingHooks())
    # Lower than the model's 0.7: one step from the grid's level nearest 0.5, later than the default's two.
    assert [t for _, t in transformer_calls] == [0.421875]
    assert light.resolved["edit_strength"] == 0.421875 and light.resolved["edit_strength_requested"] == 0.5
    transformer_calls.clear()
    heavy = distilled.generate("tiny-distilled", spec(condition_frames=clip, condition_mode="edit", edit_strength=1.0),
                               RecordingHooks())
    assert len(transformer_calls) == 8 and transformer_calls[0][1] == 1.0  # the whole schedule
    assert heavy.resolved["edit_strength"] == 1.0 and "edit_strength_requested" not in heavy.resolved
