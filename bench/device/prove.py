"""The GPU proof: real-size `sora-2` and `sora-2-pro` on one GPU with no network, plain diffusers against
the engine, with seconds, peak VRAM and the ratio to the compute floor.

    python bench/device/prove.py pack                 # here, in the project's virtualenv: bench/device/vendor/
    python bench/device/prove.py                      # on the GPU machine, from the repository root
    python bench/device/prove.py --tiny --device cpu  # the CPU dry run (tests/engine/test_device_proof.py)

What the GPU machine is assumed to have: torch with CUDA, transformers, accelerate and peft; no diffusers,
no network, no weights. `pack` copies from this virtualenv what it lacks into bench/device/vendor/ (not
committed; carry it with the tree): diffusers and its pure-Python needs, and Pillow, which diffusers
imports (a compiled wheel: it works when the device's Python has this one's version; an installed
Pillow wins, the vendor folder is searched last). The engine itself comes from src/.

What runs, per model (its alias resolved by the shipped models file, built from the configs in
tests/engine/fixtures at full size, bf16, random weights, directly on the GPU; tokenized by the tiny
Gemma tokenizer of testkit/tiny_text.py, whose ids all lie inside the real vocabularies):
- plain: diffusers' LTX2Pipeline as its documentation runs LTX-2 on one GPU: `enable_model_cpu_offload()`,
  tiled VAE, one call at the generation size with the model's own steps, sigmas and guidance;
- ours (default): `DiffusersEngine.generate` with the model's shipped modes (`memory = "auto"`: the plan of
  engine/memory.py for this GPU) and its recipe (two-stage where the models file says so);
- ours (best): the same with the speed modes given by --best (default: TaylorSeer step cache).
Each run gets freshly built components (offload hooks never stack), one untimed warm-up call at a small
size, then one timed call of a 4 s 1280x720 job. Then host RAM of group offload with and without
`low_cpu_mem_usage` (the pinned copy) on the sora-2 transformer.
The floor is bench/floor.py's: the transformer's FLOPs for that job on the meta device over the GPU's
dense bf16 peak. The random weights make noise: the numbers are the cost of the real architectures.

Then the conditioned paths (`--no-conditioned` leaves them out), each one timed call through the engine:
- MiniMax-H3 `ref2va`: one picture and one voice (`<Picture 1>`, `<Audio 1>`) on the `transformer_ref`
  partition, with the Qwen3-VL conditioner and both VAEs at full size, bf16, built on the GPU (the text-only
  `transformer` partition is not built: ref2va never runs it). That is about 129 GiB of weights: it runs on an
  H200-class GPU and prints a skip line with the sizes on a smaller one (offload and `layerwise_fp8` both start
  from the bf16 weights, which the 128 GiB host cannot hold either). `--h3-steps` steps (default 8 of its 40) at the minimum 5 s;
- LTX-2 audio-to-video (`sora-2` with a supplied 4 s soundtrack): clean audio latents at audio timestep 0 on
  every step (`audio_conditioned_call`), the model's own steps.
Each prints seconds, peak VRAM and what the pipeline received (labels; steps that saw the audio clean).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENDOR = Path(__file__).resolve().with_name("vendor")
FIXTURES = ROOT / "tests" / "engine" / "fixtures"
GiB = 2**30

# What `pack` copies (top-level import names): diffusers and what it imports that a torch + transformers +
# accelerate + peft machine may lack.
PACKED = ("diffusers", "importlib_metadata", "zipp", "PIL", "pillow.libs")
# The names diffusers' LTX-2 pipelines import from transformers (pipelines/ltx2/pipeline_ltx2*.py), and
# those the engine's families import; checked first, so a transformers without them says so in one line.
# transformers 5.17 has them all (GemmaTokenizerFast resolves to GemmaTokenizer in v5).
TRANSFORMERS_NAMES = ("Gemma3ForConditionalGeneration", "Gemma4ForConditionalGeneration",
                      "Gemma4UnifiedForConditionalGeneration", "GemmaTokenizer", "GemmaTokenizerFast",
                      "ProcessorMixin", "Gemma3Config", "Gemma4UnifiedConfig", "PreTrainedTokenizerFast")
MODELS = {"sora-2": "tiny-ltx2", "sora-2-pro": "tiny-ltx25"}  # real alias -> its tiny stand-in for --tiny
# The conditioned paths: real model -> its tiny stand-in.
H3_MODEL = ("minimax-h3", "tiny-minimax-h3")
AUDIO_MODEL = ("sora-2", "tiny-ltx2")
# The components ref2va runs, and what an H3 run needs beyond their weights (activations, the allocator).
H3_REF2VA_PARTS = ("transformer_ref", "text_encoder", "vae", "audio_vae")
H3_HEADROOM_GiB = 6.0


def pack(vendor: Path = VENDOR) -> None:
    import importlib.util

    if vendor.exists():
        shutil.rmtree(vendor)
    vendor.mkdir(parents=True)
    for name in PACKED:
        spec = importlib.util.find_spec(name) if "." not in name else None
        if spec is not None and spec.submodule_search_locations:
            source = Path(next(iter(spec.submodule_search_locations)))
        elif spec is not None and spec.origin:
            source = Path(spec.origin)
        else:
            site = Path(importlib.util.find_spec("diffusers").submodule_search_locations[0]).parent
            source = site / name
            if not source.exists():
                continue
        target = vendor / source.name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, target)
    # diffusers reads its own version through importlib.metadata.
    import diffusers

    site = Path(diffusers.__file__).parents[1]
    for dist in site.glob("diffusers-*.dist-info"):
        shutil.copytree(dist, vendor / dist.name)
    size = sum(p.stat().st_size for p in vendor.rglob("*") if p.is_file())
    print(f"packed {', '.join(p.name for p in sorted(vendor.iterdir()))} into {vendor} ({size / 2**20:.0f} MiB)")


def setup_paths() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(1, str(ROOT / "bench"))
    if VENDOR.is_dir():
        sys.path.append(str(VENDOR))  # last: whatever the machine has installed wins
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def check_imports() -> dict[str, str]:
    import torch
    import transformers

    missing = [n for n in TRANSFORMERS_NAMES if not hasattr(transformers, n)]
    if missing:
        raise SystemExit(f"transformers {transformers.__version__} lacks {', '.join(missing)}, which diffusers' "
                         "LTX-2 pipelines import")
    versions = {"torch": torch.__version__, "transformers": transformers.__version__}
    for name in ("diffusers", "accelerate", "peft"):
        try:
            versions[name] = importlib.import_module(name).__version__
        except ImportError:
            if name == "diffusers":
                raise SystemExit("no diffusers: run `python bench/device/prove.py pack` where the project's "
                                 "virtualenv is, and bring bench/device/vendor/ along") from None
            versions[name] = "absent"
    return versions


def built_in_bf16(cls, folder: Path):
    """One component from its config folder with random weights, in bf16: diffusers' classes build from
    `load_config`, transformers' from their config class (under the caller's device and default dtype)."""
    import torch

    if hasattr(cls, "extract_init_dict"):
        built = cls.from_config(cls.load_config(str(folder)))
    else:
        config = cls.config_class.from_dict(json.loads((folder / "config.json").read_text()))
        built = cls._from_config(config, dtype=torch.bfloat16)
    return built.to(torch.bfloat16).eval() if isinstance(built, torch.nn.Module) else built


@contextlib.contextmanager
def in_bf16_on(device: str):
    """Build under `device` with bf16 as the default dtype, so a full-size model never exists in float32 (a 19B
    transformer would be 76 GB)."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def components_in_bf16(folder: Path, index: dict, device: str, skip: tuple[str, ...] = ()) -> dict:
    """Each component a (modular) model index names, built from its config folder in bf16 on `device`; None for
    those that do not build from a config (tokenizers, processors), which the caller supplies."""
    from mutoscope.engine.families.base import builds_from_config, component_class

    components = {}
    with in_bf16_on(device):
        for name, value in index.items():
            if name.startswith("_") or name in skip or not isinstance(value, list) or value[0] is None:
                continue
            cls = component_class(value[0], value[1])
            buildable = cls is not None and builds_from_config(cls) and (folder / name).is_dir()
            components[name] = built_in_bf16(cls, folder / name) if buildable else None
    return components


def build_real(entry, device: str):
    """`entry`'s components from its fixture's configs, full size, bf16, random weights, built on `device`."""
    import torch
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

    from mutoscope.engine.families import FAMILIES
    from mutoscope.engine.testkit.tiny_text import tiny_gemma_tokenizer

    folder = FIXTURES / entry.weights
    index = json.loads((folder / "model_index.json").read_text())
    components = components_in_bf16(folder, index, device)
    upsampler = None
    if entry.recipe == "two_stage":
        with in_bf16_on(device):
            config = LTX2LatentUpsamplerModel.load_config(str(folder / entry.upsampler))
            upsampler = LTX2LatentUpsamplerModel.from_config(config).to(torch.bfloat16)
    components["tokenizer"] = tiny_gemma_tokenizer()
    return FAMILIES[entry.family]._pipelines(components, upsampler=upsampler)


def build_tiny(entry):
    from mutoscope.engine.families import FAMILIES

    return FAMILIES[entry.family].build_tiny(entry.builtin_name)


class Hooks:
    def on_progress(self, fraction: float, phase: str) -> None:
        pass

    def should_cancel(self) -> bool:
        return False


def floor_seconds(entry, width: int, height: int, seconds: float) -> float:
    """bench/floor.py's floor of the job on the real checkpoint's shapes (meta device, H100 SXM bf16)."""
    import floor

    real = entry if not entry.is_builtin else None
    if real is None:
        from mutoscope.engine.registry import load_registry

        real = load_registry().resolve(next(k for k, v in MODELS.items() if v == entry.name))
    phases, _, _ = floor.job(real, floor.build(real), width, height, seconds, with_decode=False)
    return sum(f * steps for _, f, steps in phases) / floor.GPUS["H100 SXM"]


def measure(device: str, run) -> tuple[float, float | None]:
    import torch

    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    run()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return seconds, (torch.cuda.max_memory_allocated() / GiB if cuda else None)


def release() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


PROMPT = "a lighthouse on a cliff at dusk, waves below"


def plain_job(entry, pipes, device: str):
    """diffusers alone: LTX2Pipeline with model offload and a tiled VAE, one call at the generation size.
    Returns job(width, height, seconds, steps)."""
    import torch

    from mutoscope.engine.diffusers_engine import _accepted_kwargs
    from mutoscope.engine.families import FAMILIES

    family = FAMILIES[entry.family]
    pipe = pipes.text_to_video
    if device.startswith("cuda"):
        pipe.enable_model_cpu_offload(device=device)
    pipe.vae.enable_tiling()

    def job(width: int, height: int, seconds: float, steps: int | None) -> dict:
        gen_w, gen_h = family.generation_size(width, height)
        frames = family.frames_covering(round(seconds * entry.fps))
        kwargs = dict(entry.pipeline_kwargs)
        if steps is not None:
            kwargs.pop("sigmas", None)
        kwargs.update(prompt=PROMPT, width=gen_w, height=gen_h, num_frames=frames, frame_rate=entry.fps,
                      num_inference_steps=steps or entry.steps, guidance_scale=entry.guidance,
                      generator=torch.Generator("cpu").manual_seed(0), output_type="np")
        pipe(**_accepted_kwargs(pipe, kwargs))  # the models file's table also holds image-to-video arguments
        return {}

    return job


def build_h3(entry, device: str):
    """MiniMax-H3's ref2va components from the fixture's configs, full size, bf16, random weights, built on
    `device` (no `transformer`: only text- and image-to-video run it). Its tokenizer is the tiny byte-fallback
    one with Qwen's vision tokens, and the conditioner is told their ids, all inside the real vocabulary."""
    from mutoscope.engine.families import FAMILIES
    from mutoscope.engine.testkit.minimax_h3 import (
        VISION_TOKENS,
        tiny_processor,
        tiny_qwen_tokenizer,
    )

    folder = FIXTURES / entry.weights
    index = json.loads((folder / "modular_model_index.json").read_text())
    components = {name: c for name, c in components_in_bf16(folder, index, device, skip=("transformer",)).items()
                  if c is not None}
    tokenizer = tiny_qwen_tokenizer()
    config = components["text_encoder"].config
    for token, key in zip(VISION_TOKENS, ("vision_start_token_id", "vision_end_token_id", "image_token_id",
                                          "video_token_id")):
        setattr(config, key, tokenizer.convert_tokens_to_ids(token))
    components.update(tokenizer=tokenizer, processor=tiny_processor(tokenizer))
    canvas = {k: v for k, v in index.items() if not k.startswith("_") and not isinstance(v, list)}
    return FAMILIES[entry.family]._pipelines(components, canvas)


def h3_needs_gib(entry) -> float:
    from mutoscope.engine import memory

    counts = memory.PARAMETERS[entry.weights]
    return sum(counts[name] for name in H3_REF2VA_PARTS) * 2 / GiB + H3_HEADROOM_GiB


def picture_and_voice():
    """One reference picture (a gradient) and one voice-like clip (a vowel's harmonics, 3 s at 16 kHz)."""
    import numpy as np

    from mutoscope.engine.base import ReferenceMedia

    yy, xx = np.mgrid[0:512, 0:384]
    image = np.stack([xx * 255 // 383, yy * 255 // 511, np.full_like(xx, 120)], -1).astype(np.uint8)
    t = np.arange(3 * 16000) / 16000
    voice = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 6)).astype(np.float32)[None] * 0.2
    return (ReferenceMedia(kind="image", image=image, source="proof:picture"),
            ReferenceMedia(kind="audio", audio=voice, sample_rate=16000, source="proof:voice"))


def conditioned_rows(args, registry, weights: Path) -> list[str]:
    """The H3 ref2va and the LTX-2 audio-conditioned rows (or a skip line with its reason)."""
    import numpy as np
    import torch

    width, height = (int(x) for x in args.size.split("x"))
    rows = []
    picture, voice = picture_and_voice()
    cuda = args.device.startswith("cuda")
    h3 = registry.resolve(H3_MODEL[1] if args.tiny else H3_MODEL[0])
    need = h3_needs_gib(registry.resolve(H3_MODEL[0]))
    have = torch.cuda.get_device_properties(0).total_memory / GiB if cuda else None
    if not args.tiny and have is not None and have < need:
        rows.append(f"| {H3_MODEL[0]} | ref2va: picture + voice | skipped: ref2va needs about {need:.0f} GiB "
                    f"(transformer_ref, Qwen3-VL conditioner and VAEs in bf16, plus {H3_HEADROOM_GiB:g} GiB) and "
                    f"this GPU has {have:.0f} GiB: run it on an H200 | - | - | - |")
    else:
        pipes = job = None
        try:
            pipes = build_tiny(h3) if args.tiny else build_h3(h3, args.device)
            job = ours_job(h3, h3.name, pipes, args.device, {"memory": "full"}, weights,
                           references=(picture, voice),
                           prompt="<Picture 1> says hello in the voice of <Audio 1>, a lighthouse behind")
            pipes = None
            steps = args.steps or args.h3_steps
            out: dict = {}
            secs, peak = measure(args.device, lambda: out.update(job(width, height, args.seconds, steps)))
            labels = [label for ref in out.get("references", []) for label in ref["labels"]]
            rows.append(f"| {H3_MODEL[0]} ({h3.name}) | ref2va: picture + voice | {steps} steps, received "
                        f"{' '.join(labels)} | {secs:.3g} | {'-' if peak is None else f'{peak:.1f}'} |")
        except Exception as exc:  # a failed path still leaves the other's numbers
            rows.append(f"| {H3_MODEL[0]} ({h3.name}) | ref2va: picture + voice | failed: {type(exc).__name__}: "
                        f"{str(exc)[:200]} | - | - |")
        pipes = job = None
        release()
    print(rows[-1], flush=True)
    ltx = registry.resolve(AUDIO_MODEL[1] if args.tiny else AUDIO_MODEL[0])
    pipes = job = None
    try:
        pipes = build_tiny(ltx) if args.tiny else build_real(ltx, args.device)
        soundtrack = np.tile(voice.audio, (1, 2))[:, : round(args.seconds * 16000)]
        job = ours_job(ltx, AUDIO_MODEL[0], pipes, args.device, {}, weights, audio=(soundtrack, 16000))
        pipes = None
        out = {}
        secs, peak = measure(args.device, lambda: out.update(job(width, height, args.seconds, args.steps)))
        held = out.get("audio_reference", {})
        rows.append(f"| {AUDIO_MODEL[0]} ({ltx.name}) | audio-to-video: supplied soundtrack | {held.get('steps')} "
                    f"steps saw it clean ({held.get('conditioning')}) | {secs:.3g} | "
                    f"{'-' if peak is None else f'{peak:.1f}'} |")
    except Exception as exc:  # reported in its row, like the table's runs
        rows.append(f"| {AUDIO_MODEL[0]} ({ltx.name}) | audio-to-video: supplied soundtrack | failed: "
                    f"{type(exc).__name__}: {str(exc)[:200]} | - | - |")
    pipes = job = None
    release()
    print(rows[-1], flush=True)
    return rows


def ours_job(entry, alias, pipes, device: str, overrides: dict, weights: Path, *, references=(), audio=None,
             prompt: str = PROMPT):
    """`DiffusersEngine` with the model's shipped modes and `overrides`, on these pipelines (adopted as a
    load would: `install`). Returns job(width, height, seconds, steps) -> resolved."""
    from dataclasses import replace

    from mutoscope.engine.base import GenerationSpec
    from mutoscope.engine.diffusers_engine import DiffusersEngine
    from mutoscope.engine.registry import apply_mode_overrides, load_registry

    registry = load_registry(extra_aliases={alias: entry.name} if entry.is_builtin and alias != entry.name else None)
    entries = registry.entries()
    if entry.is_builtin:  # the tiny stand-ins ship memory = "full"; the real models "auto"
        entries = [replace(e, memory="auto") if e.name == entry.name else e for e in entries]
    if overrides:
        entries = apply_mode_overrides(entries, {f"{entry.name}.{k}": v for k, v in overrides.items()})
    engine = DiffusersEngine(type(registry)(entries, source=registry.source), weights, device=device)
    engine.install(entry.name, pipes)

    def job(width: int, height: int, seconds: float, steps: int | None) -> dict:
        spec = GenerationSpec(prompt=prompt, width=width, height=height, seconds=seconds, seed=0,
                              num_inference_steps=steps, references=tuple(references),
                              audio=None if audio is None else audio[0],
                              audio_sample_rate=None if audio is None else audio[1])
        return engine.generate(alias, spec, Hooks()).resolved

    return job


def group_offload_ram(entry, device: str) -> list[str]:
    """Host RSS added by group offload of the transformer, with and without the pinned copy."""
    import torch
    from diffusers.hooks import apply_group_offloading

    from mutoscope.engine import residency

    rows = []
    for low in (False, True):
        pipes = build_real(entry, device)
        transformer = pipes.text_to_video.transformer
        weights = sum(p.numel() * p.element_size() for p in transformer.parameters())
        pipes = None
        release()
        before = residency.rss_bytes()
        apply_group_offloading(transformer, onload_device=torch.device(device), offload_device=torch.device("cpu"),
                               offload_type="leaf_level", use_stream=True, low_cpu_mem_usage=low)
        added = residency.rss_bytes() - before
        rows.append(f"| {entry.name} transformer | low_cpu_mem_usage={low} | {weights / GiB:.1f} GiB | "
                    f"{added / GiB:.1f} GiB | {added / weights:.2f} |")
        transformer = None
        release()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=("run", "pack"), default="run")
    parser.add_argument("--tiny", action="store_true", help="the tiny builtin stand-ins (the CPU dry run)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--steps", type=int, default=None, help="override the models' steps (dry run)")
    parser.add_argument("--best", default='{"cache": "taylorseer"}', help="JSON: the modes of 'ours (best)'")
    parser.add_argument("--no-plain", action="store_true")
    parser.add_argument("--no-offload-ram", action="store_true")
    parser.add_argument("--no-conditioned", action="store_true", help="leave out H3 ref2va and LTX-2 audio-to-video")
    parser.add_argument("--h3-steps", type=int, default=8, help="MiniMax-H3 ref2va steps (of its 40)")
    parser.add_argument("--vendor", type=Path, default=VENDOR, help="where `pack` writes (default: bench/device/vendor)")
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.vendor)
        return
    setup_paths()
    versions = check_imports()
    import torch

    from mutoscope.engine.registry import load_registry

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device; for the dry run use --tiny --device cpu")
    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    print(f"device: {gpu}; " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    width, height = (int(x) for x in args.size.split("x"))
    registry = load_registry()
    best = json.loads(args.best)
    rows = []
    weights = Path(tempfile.mkdtemp(prefix="mutoscope-proof-"))
    started = time.perf_counter()
    for alias in args.models:
        entry = registry.resolve(MODELS[alias] if args.tiny else alias)
        floor = floor_seconds(entry, width, height, args.seconds)
        runs = [] if args.no_plain else [("plain diffusers", None)]
        runs += [("ours (default)", {}), ("ours (best)", best)]
        for label, overrides in runs:
            pipes = build_tiny(entry) if args.tiny else build_real(entry, args.device)
            job = None
            try:
                if overrides is None:
                    job = plain_job(entry, pipes, args.device)
                else:
                    job = ours_job(entry, alias, pipes, args.device, overrides, weights)
                pipes = None
                job(256, 160, 0.5, args.steps or 1)  # warm-up: kernels, allocator, first-call work
                out: dict = {}
                secs, peak = measure(args.device, lambda: out.update(job(width, height, args.seconds, args.steps)))
                if overrides is None:
                    modes = f"{'model_cpu_offload' if args.device.startswith('cuda') else 'cpu'}, vae tiled, single"
                else:
                    m = out["modes"]
                    modes = (f"{m['memory']}, vae {'tiled' if m['vae_tiling'] else 'whole'}, cache {m['cache']}, "
                             f"{out['recipe']}")
                rows.append(f"| {alias} ({entry.name}) | {label} | {modes} | {secs:.3g} | "
                            f"{'-' if peak is None else f'{peak:.1f}'} | {floor:.2f} | {secs / floor:.2g} |")
            except Exception as exc:  # one failed configuration still leaves the others' numbers
                rows.append(f"| {alias} ({entry.name}) | {label} | failed: {type(exc).__name__}: "
                            f"{str(exc)[:160]} | - | - | {floor:.2f} | - |")
            pipes = job = None
            release()
            print(rows[-1], flush=True)
    print()
    print(f"job: {args.size}, {args.seconds:g} s; floor: bench/floor.py on H100 SXM bf16 dense")
    print("| model | run | modes | seconds | peak VRAM (GiB) | floor (s) | x floor |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if not args.no_conditioned:
        print()
        conditioned = conditioned_rows(args, registry, weights)
        print("| model | path | what the pipeline received | seconds | peak VRAM (GiB) |")
        print("|---|---|---|---|---|")
        print("\n".join(conditioned))
    if not args.tiny and not args.no_offload_ram:
        print()
        print("| group offload of | setting | weights | host RSS added | ratio |")
        print("|---|---|---|---|---|")
        print("\n".join(group_offload_ram(registry.resolve("sora-2"), args.device)))
    shutil.rmtree(weights, ignore_errors=True)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
