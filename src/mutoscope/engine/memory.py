"""How much memory a model needs, where, in which memory mode: the plan behind `memory = "auto"`,
the out-of-memory ladder and the memory columns of `mutoscope models list`.

PUT HERE: the torch-free arithmetic (parameter counts of the real checkpoints, bytes per dtype, the
`auto` choice, host RAM and peak VRAM per mode, what this machine has).
DO NOT PUT HERE: anything that imports torch (modes.py applies the choice; residency.py evicts).

The parameter counts are the checkpoints' own, counted once on the meta device from the configs in
tests/engine/fixtures (the engine's loader with `device="meta"`); tests/engine/test_memory.py rebuilds
them and fails when a config or diffusers changes them, printing the new table. Kept as numbers so
`models list` answers without importing torch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from mutoscope.engine.registry import ModelEntry

GiB = 2**30

# Parameters and buffers per component, as `FAMILIES[family].load(entry, fixture, bfloat16, device="meta")`
# builds them (the latent upsampler only for the two-stage recipe, which loads it).
PARAMETERS: dict[str, dict[str, int]] = {
    "diffusers/LTX-2.3-Distilled-Diffusers": {
        "transformer": 18_988_838_144, "text_encoder": 12_187_329_649, "connectors": 3_172_227_584,
        "vae": 726_106_225, "audio_vae": 53_248_402, "vocoder": 129_085_075, "latent_upsampler": 497_867_904,
    },
    "Lightricks/LTX-2": {
        "transformer": 18_876_174_592, "text_encoder": 12_187_329_649, "connectors": 1_431_475_200,
        "vae": 1_222_479_857, "audio_vae": 53_248_402, "vocoder": 55_592_802, "latent_upsampler": 497_867_929,
    },
    "Lightricks/LTX-2.5-Diffusers": {
        "transformer": 18_987_859_200, "text_encoder": 11_907_351_089, "connectors": 3_172_227_584,
        "vae": 726_106_225, "audio_vae": 53_248_402, "vocoder": 129_085_075, "duration_head": 1_903_361,
        "latent_upsampler": 497_867_904,
    },
    # Both transformer partitions are loaded: text- and image-to-video run on one, references on the other.
    "MiniMaxAI/MiniMax-H3": {
        "transformer": 33_122_992_912, "transformer_ref": 33_122_992_912, "text_encoder": 33_357_390_228,
        "vae": 2_603_868_992, "audio_vae": 151_326_585,
    },
    "Wan-AI/Wan2.2-TI2V-5B-Diffusers": {
        "transformer": 5_000_049_856, "text_encoder": 5_680_910_336, "vae": 704_688_668,
    },
}

DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}

# The memory modes from most to least resident: `auto` picks the first that fits, and a job that runs out
# of GPU memory is retried once in the next one (engine/diffusers_engine.py).
LADDER = ("full", "text_encoder_offload", "model_cpu_offload", "group_offload", "sequential_cpu_offload")

# "auto" placement: resident weights may take this share of free VRAM; the rest is the working memory
# (activations, the VAE decode: several GB at 720p) ...
FULL_SHARE = 0.7
# ... whole-model offload needs the largest component within this share (one module on the GPU at a time) ...
MODEL_OFFLOAD_SHARE = 0.6
# ... else group offload (leaf level, CUDA streams), about one layer on the GPU at a time.
# The working memory the peak VRAM column adds to the weights resident at the peak: activations of a
# 720p clip and a tiled VAE decode (an estimate, not a measurement; docs/performance.md).
WORKING_BYTES = 8 * GiB
# The part of a GPU's memory the CUDA context and allocator leave free for the model.
USABLE_SHARE = 0.95
# The GPU classes `models list` plans for (GiB of memory): consumer, workstation, H100, H200.
GPU_CLASSES = (24, 48, 80, 141)


def is_text_encoder(name: str) -> bool:
    return name.startswith("text_encoder")


def choose(sizes: Mapping[str, int], free_bytes: int) -> str:
    """The `memory = "auto"` choice for components of `sizes` (bytes) on a GPU with `free_bytes` free.

    All resident when the weights take under FULL_SHARE of it; else everything but the text encoder,
    which runs only to encode (one to three forward passes a job) and is moved in for each (resident
    weights plus the encoder must fit then, before any activation exists); else one module at a time;
    else group offload."""
    total = sum(sizes.values())
    text = sum(v for k, v in sizes.items() if is_text_encoder(k))
    if total < free_bytes * FULL_SHARE:
        return "full"
    if text and total - text < free_bytes * FULL_SHARE and total < free_bytes * 0.9:
        return "text_encoder_offload"
    if max(sizes.values(), default=0) < free_bytes * MODEL_OFFLOAD_SHARE:
        return "model_cpu_offload"
    return "group_offload"


def lower(mode: str) -> str | None:
    """The next memory mode down the ladder, or None at its foot."""
    try:
        index = LADDER.index(mode)
    except ValueError:
        return None
    return LADDER[index + 1] if index + 1 < len(LADDER) else None


def resident_small(sizes: Mapping[str, int]) -> int:
    """The components group offload keeps on the GPU (VAEs, vocoder, latent upsampler)."""
    return sum(v for k, v in sizes.items() if "vae" in k or k in ("vocoder", "latent_upsampler"))


def peak_vram(sizes: Mapping[str, int], mode: str) -> int:
    """Weights on the GPU at the peak of a job in `mode`, plus WORKING_BYTES."""
    total = sum(sizes.values())
    if mode == "full":
        weights = total
    elif mode == "text_encoder_offload":
        weights = total  # while the prompt is encoded; the encoder goes back before denoising
    elif mode == "model_cpu_offload":
        weights = max(sizes.values(), default=0)
    else:  # group or sequential offload: the resident small modules and about one layer
        weights = resident_small(sizes)
    return weights + WORKING_BYTES


def host_ram(sizes: Mapping[str, int], mode: str | None, group_offload_pinned_copy: bool = False) -> int:
    """Host RAM the weights hold between jobs in `mode` (None: the engine runs on the CPU, all of them).

    `group_offload_pinned_copy`: diffusers' group offload with streams and `low_cpu_mem_usage=False`
    keeps a pinned copy of every parameter beside the original (what the engine did before it passed
    `low_cpu_mem_usage=True`)."""
    total = sum(sizes.values())
    if mode is None:
        return total
    if mode == "full":
        return 0
    if mode == "text_encoder_offload":
        return sum(v for k, v in sizes.items() if is_text_encoder(k))
    if mode == "group_offload":
        offloaded = total - resident_small(sizes)
        return offloaded * (2 if group_offload_pinned_copy else 1)
    return total


def component_bytes(entry: "ModelEntry", on_gpu: bool = True) -> dict[str, int] | None:
    """Bytes per component of `entry`'s weights in the dtype the engine loads them in (None: unknown checkpoint)."""
    counts = PARAMETERS.get(entry.weights)
    if counts is None:
        return None
    dtype = entry.dtype or ("bfloat16" if on_gpu else "float32")
    per = DTYPE_BYTES[dtype]
    sizes = {k: v * per for k, v in counts.items() if k != "latent_upsampler" or entry.recipe == "two_stage"}
    if entry.layerwise_fp8:
        # float8 storage: one byte per transformer weight (the kept modules are a fraction of a percent).
        sizes = {k: (counts[k] if k.startswith("transformer") else v) for k, v in sizes.items()}
    return sizes


@dataclass(frozen=True)
class Machine:
    """What this machine offers the engine: host RAM and the memory of its first GPU (None: no GPU)."""

    host_bytes: int
    gpu_bytes: int | None


def machine(host_budget: int | None = None, gpu_budget: int | None = None) -> Machine:
    """This machine's memory, read without torch; a budget given by the operator wins."""
    host = host_budget or host_total()
    gpu = gpu_budget or _gpu_total()
    return Machine(host_bytes=host, gpu_bytes=gpu)


def host_total() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX
        return 0


def _gpu_total() -> int | None:
    """The first GPU's memory from `nvidia-smi` (torch-free); None without one."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=5, check=True).stdout
        return int(out.split()[0]) * 2**20
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def disk_bytes(folder: Path) -> int:
    """Bytes of the weight files under `folder` (0 when it is absent)."""
    if not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*.safetensors") if p.is_file())


@dataclass(frozen=True)
class Plan:
    """One model on one machine. Sizes in bytes; `mode` None when it runs on the CPU."""

    model: str
    weights_bytes: int
    mode: str | None
    host_bytes: int
    peak_vram_bytes: int | None
    runs_here: bool
    why: str


def plan(entry: "ModelEntry", here: Machine) -> Plan | None:
    """`entry` on `here`: the `auto` memory mode, host RAM, peak VRAM and whether it fits (None: an
    unknown checkpoint, e.g. a builtin test model or an operator's own weights)."""
    if here.gpu_bytes is None:
        sizes = component_bytes(entry, on_gpu=False)
        if sizes is None:
            return None
        host = host_ram(sizes, None)
        fits = host < here.host_bytes * FULL_SHARE
        why = "on the CPU (slow)" if fits else f"needs {fmt(host)} of RAM on the CPU"
        return Plan(entry.name, sum(sizes.values()), None, host, None, fits, why)
    sizes = component_bytes(entry, on_gpu=True)
    if sizes is None:
        return None
    free = int(here.gpu_bytes * USABLE_SHARE)
    mode = choose(sizes, free) if entry.memory == "auto" else entry.memory
    host, peak = host_ram(sizes, mode), peak_vram(sizes, mode)
    problems = []
    if peak > here.gpu_bytes:
        problems.append(f"needs {fmt(peak)} of GPU memory")
    if host > here.host_bytes * FULL_SHARE:
        problems.append(f"needs {fmt(host)} of RAM")
    return Plan(entry.name, sum(sizes.values()), mode, host, peak, not problems,
                "; ".join(problems) or f"memory = {mode}")


def plans_by_gpu(entry: "ModelEntry", host_bytes: int, classes: Iterable[int] = GPU_CLASSES) -> dict[int, Plan | None]:
    """The plan of `entry` on a GPU of each class (GiB), with `host_bytes` of RAM."""
    return {gib: plan(entry, Machine(host_bytes, gib * GiB)) for gib in classes}


def fmt(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / GiB:.1f} GiB"


COLUMNS = ("model", "weights", "memory here", "host RAM", "peak VRAM", "runs here",
           "auto on " + " / ".join(f"{g}" for g in GPU_CLASSES) + " GiB GPUs")
SHORT = {"full": "full", "text_encoder_offload": "text enc. off", "model_cpu_offload": "model off",
         "group_offload": "group off", "sequential_cpu_offload": "sequential"}


def rows(entries: Iterable["ModelEntry"], weights_dir: Path, here: Machine) -> list[tuple[str, ...]]:
    """One row per configured model for `models list`: the weights (on disk when pulled, else their bf16
    size), the plan on this machine and the `auto` mode on each GPU class. Unknown checkpoints (test
    models, an operator's own) show what is measurable: their files."""
    from mutoscope.engine import weights as weights_mod

    out = []
    for entry in entries:
        on_disk = 0 if entry.is_builtin else disk_bytes(weights_mod.model_dir(entry, weights_dir))
        known = component_bytes(entry, on_gpu=True)
        if on_disk:
            weights = fmt(on_disk)
        elif known is not None:
            weights = f"{fmt(sum(known.values()))} (not pulled)"
        else:
            weights = "-"
        mine = plan(entry, here)
        if mine is None:
            out.append((entry.name, weights, "-", "-", "-", "test model" if entry.test_model else "?", "-"))
            continue
        by_gpu = plans_by_gpu(entry, here.host_bytes)
        classes = " / ".join(SHORT.get(p.mode, p.mode or "-") if p is not None else "-" for p in by_gpu.values())
        out.append((entry.name, weights, mine.mode or "cpu", fmt(mine.host_bytes), fmt(mine.peak_vram_bytes),
                    "yes" if mine.runs_here else f"no: {mine.why}", classes))
    return out
