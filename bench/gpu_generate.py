"""Plain diffusers call vs `DiffusersEngine.generate` with its speed modes, per family: seconds, peak VRAM, ratio.

    python bench/gpu_generate.py --tiny                      # CPU or GPU, the built-in tiny models, reduced size
    python bench/gpu_generate.py --configs ltx2=DIR wan=DIR   # real published sizes, random weights
    python bench/gpu_generate.py --tiny --modes none          # the engine with no speed mode: its own overhead
    python bench/gpu_generate.py --tiny --modes cache=taylorseer memory=auto

Real sizes: DIR is a diffusers model folder holding only the JSON configs (`model_index.json`,
`*/config.json`, tokenizer files), e.g. `hf download Lightricks/LTX-2 --include "*.json" "tokenizer/*"`.
Every component is built `from_config` with random weights, so nothing large is downloaded; the numbers
are the cost of the real architectures, not of the real models' output. Real sizes run under the shipped
entry of the family's `sora-2`-class model (`ltx-2.3-distilled`, `wan2.2-ti2v-5b`), tiny ones under
`tiny-ltx2` / `tiny-wan`.

"Ours" is the engine with the modes given by `--modes` (default: the speed preset below) applied by the
engine itself (`DiffusersEngine.install`, the same code as a load), after the plain runs, on the same
modules. Each side gets one warm-up call (for ours that includes torch.compile), then one timed run;
the modes the engine reports (`resolved["modes"]`) are printed. The job is a `sora-2` job: 4 s at
1280x720 (`--size`, `--seconds`, `--steps` to change it).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class _Hooks:
    def on_progress(self, fraction: float, phase: str) -> None:
        pass

    def should_cancel(self) -> bool:
        return False


def _random_components(family: str, folder: Path, dtype) -> dict:
    """Components of the pipeline in `folder`, each built from its config with random weights."""
    import importlib
    import json

    import diffusers
    import transformers

    index = json.loads((folder / "model_index.json").read_text())
    components = {}
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or spec[1] is None:
            continue
        library, cls_name = spec
        cls = getattr(importlib.import_module(library if library != "diffusers" else "diffusers"), cls_name, None)
        if cls is None:
            cls = getattr(diffusers, cls_name, None) or getattr(transformers, cls_name)
        sub = folder / name
        if name.startswith("tokenizer") or name.startswith("processor"):
            components[name] = cls.from_pretrained(str(sub))
        elif name.startswith("scheduler"):
            components[name] = cls.from_pretrained(str(sub))
        elif issubclass(cls, transformers.PreTrainedModel):
            config = transformers.AutoConfig.from_pretrained(str(sub))
            components[name] = cls._from_config(config, torch_dtype=dtype).eval()
        else:
            components[name] = cls.from_config(cls.load_config(str(sub))).to(dtype).eval()
    return components


# The speed preset: every opt-in speed mode that suits the family. The caches trade a little fidelity for
# time (first-block: Wan only in diffusers 0.42); compile is CUDA only. Memory stays "auto".
SPEED_MODES = {"ltx2": {"cache": "taylorseer"}, "wan": {"cache": "first_block"}}
CUDA_SPEED_MODES = {"compile": "true"}
ENTRIES = {"ltx2": ("tiny-ltx2", "ltx-2.3-distilled"), "wan": ("tiny-wan", "wan2.2-ti2v-5b")}


def _modes_for(family: str, requested: list[str], device: str) -> dict[str, str]:
    if requested == ["none"]:
        return {}
    if requested:
        return dict(m.split("=", 1) for m in requested)
    modes = {"memory": "auto", "vae_tiling": "auto", **SPEED_MODES[family]}
    if device.startswith("cuda"):
        modes.update(CUDA_SPEED_MODES)
    return modes


def _engine_and_pipes(family: str, config_dir: Path | None, device: str, modes: dict[str, str]):
    """An engine whose model for `family` runs with `modes`, and that model's pipelines, unplaced and without
    any mode (the plain side runs them first; `engine.install` applies the modes afterwards)."""
    import torch

    from mutoscope.engine.diffusers_engine import DiffusersEngine
    from mutoscope.engine.families import FAMILIES
    from mutoscope.engine.registry import load_registry

    tiny, real = ENTRIES[family]
    name = tiny if config_dir is None else real
    registry = load_registry(mode_overrides={f"{name}.{k}": v for k, v in modes.items()})
    engine = DiffusersEngine(registry, Path(tempfile.mkdtemp()), device=device)
    fam = FAMILIES[family]
    if config_dir is None:
        pipes = fam.build_tiny(tiny)
    else:
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        pipes = fam._pipelines(_random_components(family, config_dir, dtype))
    return engine, name, pipes


def _measure(fn, device: str) -> tuple[float, float | None]:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        return time.perf_counter() - start, torch.cuda.max_memory_allocated() / 2**30
    return time.perf_counter() - start, None


def bench(family: str, config_dir: Path | None, width: int, height: int, seconds: float, steps: int,
          device: str, modes: dict[str, str]) -> dict:
    import torch

    from mutoscope.engine.base import GenerationSpec
    from mutoscope.engine.diffusers_engine import _accepted_kwargs
    from mutoscope.engine.families import FAMILIES

    engine, name, pipes = _engine_and_pipes(family, config_dir, device, modes)
    entry = engine.registry.resolve(name)
    fam = FAMILIES[family]
    gen_w, gen_h = fam.generation_size(width, height)
    frames = fam.frames_covering(round(seconds * entry.fps))
    prompt = "a lighthouse in a storm, waves crashing"
    spec = GenerationSpec(prompt=prompt, width=width, height=height, seconds=seconds, seed=0,
                          num_inference_steps=steps)

    def plain():
        kwargs = fam.call_kwargs(entry, prompt=prompt, negative_prompt=None, width=gen_w, height=gen_h,
                                 num_frames=frames, fps=entry.fps, steps=steps, guidance=entry.guidance,
                                 generator=torch.Generator("cpu").manual_seed(0), image=None)
        kwargs = _accepted_kwargs(pipes.text_to_video, fam.before_call(pipes, pipes.text_to_video, kwargs))
        with torch.no_grad():
            pipes.text_to_video(**kwargs)

    resolved: dict = {}

    def ours():
        resolved.update(engine.generate(name, spec, _Hooks()).resolved)

    # Plain: everything on the device, no mode.
    pipes.text_to_video.to(device)
    plain()  # warm-up: first-call allocations and kernel selection
    plain_s, plain_gb = _measure(plain, device)

    # Ours: back to the CPU, so that "auto" sees the free VRAM a fresh load would, then the engine places
    # the same modules and turns its modes on.
    pipes.text_to_video.to("cpu")
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    engine.install(name, pipes)
    warm_s, _ = _measure(ours, device)  # warm-up: includes torch.compile when it is on
    ours_s, ours_gb = _measure(ours, device)
    return {"family": family, "size": f"{width}x{height}", "frames": frames, "steps": steps,
            "plain_s": plain_s, "ours_s": ours_s, "plain_gb": plain_gb, "ours_gb": ours_gb, "warm_s": warm_s,
            "modes": resolved.get("modes", {})}


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="built-in tiny models at reduced size (CPU friendly)")
    ap.add_argument("--configs", nargs="*", default=[], help="family=DIR of JSON configs (real sizes)")
    ap.add_argument("--size", default=None, help="WxH (default 1280x720; 256x160 with --tiny)")
    ap.add_argument("--seconds", type=float, default=None, help="default 4 (1 with --tiny)")
    ap.add_argument("--steps", type=int, default=None, help="default 8 (2 with --tiny)")
    ap.add_argument("--families", default="ltx2,wan")
    ap.add_argument("--modes", nargs="*", default=[], metavar="FIELD=VALUE",
                    help="the engine's modes (models.toml fields, e.g. cache=taylorseer compile=true); "
                         "default: the speed preset; 'none': the model's own settings")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    configs = dict(c.split("=", 1) for c in args.configs)
    if not args.tiny and not configs:
        ap.error("pass --tiny, or --configs family=DIR for real sizes")
    size = args.size or ("256x160" if args.tiny else "1280x720")
    width, height = (int(x) for x in size.split("x"))
    seconds = args.seconds or (1.0 if args.tiny else 4.0)
    steps = args.steps or (2 if args.tiny else 8)

    print(f"device: {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}")
    print(f"{'family':8} {'size':>9} {'frames':>6} {'steps':>5} {'plain s':>8} {'ours s':>8} {'ratio':>6} "
          f"{'plain GB':>8} {'ours GB':>8} {'warm-up s':>9}  modes")
    for family in args.families.split(","):
        folder = Path(configs[family]) if family in configs else None
        if folder is None and not args.tiny:
            continue
        r = bench(family, folder, width, height, seconds, steps, device, _modes_for(family, args.modes, device))
        gb = lambda v: f"{v:8.2f}" if v is not None else f"{'-':>8}"  # noqa: E731
        applied = " ".join(f"{k}={v}" for k, v in r["modes"].items() if k not in ("device", "auto"))
        print(f"{r['family']:8} {r['size']:>9} {r['frames']:>6} {r['steps']:>5} {r['plain_s']:8.2f} "
              f"{r['ours_s']:8.2f} {r['ours_s'] / r['plain_s']:6.2f} {gb(r['plain_gb'])} {gb(r['ours_gb'])} "
              f"{r['warm_s']:9.2f}  {applied}")


if __name__ == "__main__":
    main()
