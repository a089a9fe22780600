"""Memory and speed modes on the CPU with the tiny real pipelines.

Every mode that runs on a CPU runs here end to end and is checked for an effect that does not
depend on timing: VAE tiling calls the VAE's tiled decode, fp8 layerwise casting stores float8
weights, a step cache skips module calls (counted with forward hooks), the attention backend is
set on every processor. CUDA-only modes must be refused with a clear EngineError, and the "auto"
policy is checked as a function of free VRAM. Sizes are small (64x96 or one row of 576 pixels,
0.5 s) so the file stays well under a minute on two cores.
"""

from __future__ import annotations

import os

from types import SimpleNamespace

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mutoscope.engine import modes  # noqa: E402
from mutoscope.engine.base import EngineError, GenerationSpec  # noqa: E402
from mutoscope.engine.diffusers_engine import DiffusersEngine  # noqa: E402
from mutoscope.engine.registry import RegistryError, load_registry  # noqa: E402

MODELS = ["tiny-ltx2", "tiny-wan"]


class Hooks:
    def on_progress(self, fraction: float, phase: str) -> None:
        pass

    def should_cancel(self) -> bool:
        return False


def engine_with(tmp_path, model: str, **overrides) -> DiffusersEngine:
    """A CPU engine whose `model` runs with `overrides` (the operator's per-model override keys)."""
    registry = load_registry(mode_overrides={f"{model}.{k}": v for k, v in overrides.items()})
    return DiffusersEngine(registry, tmp_path / "weights", device="cpu")


def spec(width: int = 64, height: int = 96, steps: int = 2) -> GenerationSpec:
    return GenerationSpec(prompt="a red kite over the sea", width=width, height=height, seconds=0.5, seed=3,
                          num_inference_steps=steps, guidance_scale=1.0)


def count_calls(module) -> list[int]:
    """A one-element counter of `module`'s forward calls; a skipped or predicted module is never called."""
    calls = [0]
    module.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def blocks(transformer):
    return getattr(transformer, "blocks", None) or transformer.transformer_blocks



def test_cpu_auto_picks_the_cpu_path_and_reports_it(tmp_path):
    engine = engine_with(tmp_path, "tiny-wan", memory="auto", vae_tiling="auto")
    out = engine.generate("tiny-wan", spec(), Hooks())

    assert out.frames.shape == (12, 96, 64, 3)
    assert out.resolved["modes"] == {
        "device": "cpu", "dtype": "float32", "memory": "full", "vae_tiling": False, "layerwise_fp8": False,
        "attention_backend": "native", "compile": False, "cache": "none", "auto": ["memory", "vae_tiling"],
    }


@pytest.mark.parametrize("model", MODELS)
def test_vae_tiling_decodes_in_tiles(tmp_path, model):
    engine = engine_with(tmp_path, model, vae_tiling="true")  # the string form an env var gives
    vae = engine.load(model).text_to_video.vae
    tiled = count_calls_of_method(vae, "tiled_decode")

    # 576 wide is over both VAEs' default tile (512 for LTX-2, 256 for Wan), so the decode is tiled.
    out = engine.generate(model, spec(width=576, height=64), Hooks())

    assert out.frames.shape == (12, 64, 576, 3)
    assert tiled[0] >= 1
    assert out.resolved["modes"]["vae_tiling"] is True and "auto" not in out.resolved["modes"]


def count_calls_of_method(obj, name: str) -> list[int]:
    calls = [0]
    original = getattr(obj, name)

    def counted(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    setattr(obj, name, counted)
    return calls


@pytest.mark.parametrize("model", MODELS)
def test_layerwise_fp8_stores_float8_and_still_generates(tmp_path, model):
    import torch

    engine = engine_with(tmp_path, model, layerwise_fp8=True, attention_backend="native")
    transformer = engine.load(model).text_to_video.transformer
    dtypes = {p.dtype for p in transformer.parameters()}
    out = engine.generate(model, spec(), Hooks())

    # Linear weights in float8; norms and embeddings stay float32 (diffusers' skip patterns).
    assert torch.float8_e4m3fn in dtypes and torch.float32 in dtypes
    assert out.frames.shape == (12, 96, 64, 3) and out.frames.std() > 0
    assert out.resolved["modes"]["layerwise_fp8"] is True
    assert out.resolved["modes"]["dtype"] == "float32"  # the compute dtype


def test_native_attention_backend_is_set_on_every_processor(tmp_path):
    from diffusers.models.attention_dispatch import AttentionBackendName

    engine = engine_with(tmp_path, "tiny-ltx2", attention_backend="NATIVE")  # case-insensitive, like diffusers
    transformer = engine.load("tiny-ltx2").text_to_video.transformer
    processors = [m.processor for m in transformer.modules() if hasattr(getattr(m, "processor", None),
                                                                        "_attention_backend")]
    out = engine.generate("tiny-ltx2", spec(), Hooks())

    assert processors and all(p._attention_backend == AttentionBackendName.NATIVE for p in processors)
    assert out.frames.shape == (12, 96, 64, 3) and out.audio is not None
    assert out.resolved["modes"]["attention_backend"] == "native"


def test_first_block_cache_skips_the_remaining_blocks_on_wan(tmp_path):
    # A huge threshold: every step after the first reuses the cached residual of blocks 2..n.
    engine = engine_with(tmp_path, "tiny-wan", cache="first_block", cache_threshold="1e9")
    transformer = engine.load("tiny-wan").text_to_video.transformer
    first, last = count_calls(blocks(transformer)[0].attn1), count_calls(blocks(transformer)[-1].attn1)

    out = engine.generate("tiny-wan", spec(steps=3), Hooks())
    assert transformer.is_cache_enabled
    assert (first[0], last[0]) == (3, 1)  # the first block runs every step, the last only once
    assert out.frames.shape == (12, 96, 64, 3)
    assert out.resolved["modes"]["cache"] == "first_block" and out.resolved["modes"]["cache_threshold"] == 1e9

    # State is reset between videos: the next one computes its first step in full again.
    engine.generate("tiny-wan", spec(steps=3), Hooks())
    assert (first[0], last[0]) == (6, 2)


@pytest.mark.parametrize("model", MODELS)
def test_taylorseer_predicts_attention_between_full_steps(tmp_path, model):
    engine = engine_with(tmp_path, model, cache="taylorseer")
    transformer = engine.load(model).text_to_video.transformer
    # The attention module itself is always entered (its hook decides); its projection runs only when computed.
    attn = count_calls(blocks(transformer)[0].attn1.to_q)

    out = engine.generate(model, spec(steps=5), Hooks())

    # diffusers' defaults: steps 0-2 in full (warm-up), step 3 predicted, step 4 in full.
    assert attn[0] == 4
    assert out.frames.shape == (12, 96, 64, 3) and np.isfinite(out.frames).all()
    assert out.resolved["modes"]["cache"] == "taylorseer"



@pytest.mark.parametrize(
    ("override", "words"),
    [
        ({"memory": "model_cpu_offload"}, "memory = 'model_cpu_offload' offloads from a CUDA GPU"),
        ({"memory": "group_offload"}, "memory = 'group_offload' offloads from a CUDA GPU"),
        ({"memory": "sequential_cpu_offload"}, "offloads from a CUDA GPU"),
        ({"compile": True}, "compile = true is only supported on a CUDA GPU"),
        ({"attention_backend": "flash"}, "attention_backend = 'flash' is a CUDA kernel"),
    ],
)
def test_cuda_only_modes_are_a_clear_engine_error_on_the_cpu(tmp_path, override, words):
    engine = engine_with(tmp_path, "tiny-wan", **override)
    with pytest.raises(EngineError, match=words) as info:
        engine.generate("tiny-wan", spec(), Hooks())
    assert "tiny-wan" in str(info.value) and "'cpu'" in str(info.value)
    assert info.value.code == "generation_failed"


def test_auto_memory_policy():
    from mutoscope.engine import memory

    gib = 2**30
    wan = {"transformer": 10 * gib, "text_encoder": 11 * gib, "vae": 1 * gib}
    ltx = {"transformer": 38 * gib, "text_encoder": 24 * gib, "connectors": 3 * gib, "vae": 2 * gib}
    assert memory.choose(wan, free_bytes=78 * gib) == "full"  # Wan 5B on an H100
    # LTX-2 on an H100: all but the text encoder stays resident (43 GiB), not a whole-model offload.
    assert memory.choose(ltx, free_bytes=78 * gib) == "text_encoder_offload"
    assert memory.choose(ltx, free_bytes=70 * gib) == "model_cpu_offload"  # the encoder's moment would not fit
    assert memory.choose(ltx, free_bytes=23 * gib) == "group_offload"  # LTX-2 on 24 GB
    assert memory.choose(ltx, free_bytes=140 * gib) == "full"  # H200
    assert [memory.lower(m) for m in memory.LADDER] == [*memory.LADDER[1:], None]


def test_vae_tiling_is_chosen_per_clip_from_its_size_and_free_memory():
    gib = 2**30
    # LTX-2's video VAE: 256 channels at a quarter of the size before the final unpatchify, in bfloat16.
    vae = SimpleNamespace(config={"decoder_block_out_channels": [256, 512, 1024], "patch_size": 4},
                          dtype=SimpleNamespace(itemsize=2))
    short, long = (modes.decode_bytes(vae, 1280, 736, frames) for frames in (25, 481))
    assert long == short * 481 // 25
    assert modes.choose_vae_tiling("cpu", long, None) is False  # tiling only costs time on the CPU
    assert modes.choose_vae_tiling("cuda", short, 40 * gib) is False
    assert modes.choose_vae_tiling("cuda", long, 40 * gib) is True  # the same model, a 20 s clip
    assert modes.choose_vae_tiling("cuda:0", short, 2 * gib) is True  # little left free


def test_layerwise_fp8_keeps_the_sensitive_ltx_modules_in_the_compute_dtype(tmp_path):
    import torch

    engine = engine_with(tmp_path, "tiny-ltx2", layerwise_fp8=True)
    transformer = engine.load("tiny-ltx2").text_to_video.transformer
    stored = {name: m.weight.dtype for name, m in transformer.named_modules()
              if isinstance(m, torch.nn.Linear)}
    kept = [n for n in stored if any(k in n for k in ("time_embed", "scale_shift", "adaln", "to_gate_logits",
                                                      "caption_projection", "audio_proj_in", "audio_proj_out"))]
    assert any("av_cross_attn" in n for n in kept) and any("audio_time_embed" in n for n in kept)
    assert any("audio_proj_in" in n for n in kept)
    assert all(stored[n] == torch.float32 for n in kept), {n: stored[n] for n in kept if stored[n] != torch.float32}
    # The blocks' attention and feed-forward matrices are what is stored in float8.
    assert stored["transformer_blocks.0.attn1.to_q"] == torch.float8_e4m3fn
    assert any(dtype == torch.float8_e4m3fn for n, dtype in stored.items() if ".ff." in n)



@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('memory = "gpu"', "'memory' must be one of"),
        ('vae_tiling = "sometimes"', "'vae_tiling' must be true, false or \"auto\""),
        ('layerwise_fp8 = "yes"', "'layerwise_fp8' must be true or false"),
        ("compile = 1", "'compile' must be true or false"),
        ('attention_backend = "warp"', "'attention_backend' must be one of"),
        ('attention_backend = "flash_hub"', "downloads its kernel from the Hub"),
        ('cache = "magic"', "'cache' must be one of"),
        ('cache = "first_block"', "cache 'first_block' is not supported by family 'ltx2'"),
        ("cache_threshold = -1", "'cache_threshold' must be a positive number"),
    ],
)
def test_bad_mode_values_are_refused_naming_the_line(tmp_path, line, words):
    path = tmp_path / "models.toml"
    path.write_text(f'# operator file\n[[models]]\nname = "m"\nfamily = "ltx2"\nweights = "builtin:tiny-ltx2"\n{line}\n')
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    assert str(info.value).startswith(f"{path}:3: model 'm': ")
    assert words in str(info.value)


def test_operator_overrides_from_settings(monkeypatch):
    from mutoscope.config import Settings

    monkeypatch.setenv("MUTOSCOPE_ENGINE_OVERRIDES",
                       '{"vae_tiling": true, "tiny-wan.cache": "first_block", "tiny-wan.cache_threshold": "0.1"}')
    overrides = Settings(_env_file=None).engine_overrides
    registry = load_registry(mode_overrides=overrides)

    wan, ltx = registry.resolve("tiny-wan"), registry.resolve("tiny-ltx2")
    assert (wan.vae_tiling, wan.cache, wan.cache_threshold) == (True, "first_block", 0.1)
    assert (ltx.vae_tiling, ltx.cache) == (True, "none")  # the global key reaches every model
    assert registry.resolve("wan2.2-ti2v-5b").cache == "none"


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"steps": 3}, "engine override 'steps': only memory, dtype"),
        ({"nope.cache": "taylorseer"}, "unknown model 'nope'"),
        ({"memory": "gpu"}, "engine override for model 'ltx-2.3-distilled': 'memory' must be one of"),
        ({"cache": "first_block"}, "cache 'first_block' is not supported by family 'ltx2'"),
    ],
)
def test_bad_overrides_are_refused(overrides, words):
    with pytest.raises(RegistryError, match=words.replace("(", r"\(")):
        load_registry(mode_overrides=overrides)
