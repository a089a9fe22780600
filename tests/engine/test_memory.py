"""The memory plan: parameter counts checked against the real configs, the `auto` choice per GPU class,
host RAM per mode, and `models list` printing it without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mutoscope.engine import memory  # noqa: E402
from mutoscope.engine.registry import load_registry  # noqa: E402
from tests.conftest import server_env  # noqa: E402

GiB = 2**30


def counted_on_meta() -> dict[str, dict[str, int]]:
    """Each shipped checkpoint built at full size on the meta device from tests/engine/fixtures."""
    import torch

    from mutoscope.engine.families import FAMILIES
    from tests.engine.test_checkpoints import FIXTURES

    counts = {}
    for entry in load_registry().entries():
        if entry.is_builtin:
            continue
        pipes = FAMILIES[entry.family].load(entry, FIXTURES / entry.weights, torch.bfloat16, device="meta")
        found: dict[str, int] = {}
        for pipe in pipes.all():
            for name, module in pipe.components.items():
                if isinstance(module, torch.nn.Module):
                    found.setdefault(name, sum(t.numel() for t in (*module.parameters(), *module.buffers())))
        counts[entry.weights] = found
    return counts


def test_stored_parameter_counts_are_the_meta_builds():
    counted = counted_on_meta()
    stored = {repo: {k: v for k, v in c.items()} for repo, c in memory.PARAMETERS.items()}
    # The table in engine/memory.py is this output; a changed fixture or diffusers prints the new one.
    assert counted == stored, json.dumps(counted, indent=1)


def test_sora_2_on_each_gpu_class():
    sora = load_registry().resolve("sora-2")
    plans = memory.plans_by_gpu(sora, host_bytes=128 * GiB)
    assert {gib: p.mode for gib, p in plans.items()} == {
        24: "group_offload", 48: "group_offload", 80: "text_encoder_offload", 141: "full"}
    h100 = plans[80]
    # On an H100 only the text encoder (Gemma 3 12B, ~23 GiB) lives in host RAM; the rest stays resident.
    encoder = memory.PARAMETERS[sora.weights]["text_encoder"] * 2
    assert h100.host_bytes == encoder and 22 * GiB < encoder < 24 * GiB
    assert h100.runs_here and h100.peak_vram_bytes < 80 * GiB
    assert h100.weights_bytes - encoder < 44 * GiB  # what stays resident: transformer, connectors, VAEs
    # Group offload holds the offloaded weights once in host RAM, not twice (no pinned copy beside them).
    sizes = memory.component_bytes(sora)
    assert memory.host_ram(sizes, "group_offload") * 2 == memory.host_ram(sizes, "group_offload",
                                                                           group_offload_pinned_copy=True)
    # A 24 GB card with 64 GiB of RAM: the offloaded weights do not fit the host.
    small = memory.plan(sora, memory.Machine(host_bytes=64 * GiB, gpu_bytes=24 * GiB))
    assert not small.runs_here and "RAM" in small.why
    # fp8 storage halves the transformer, and on a 48 GB card model offload then fits its largest module.
    from dataclasses import replace

    fp8 = memory.component_bytes(replace(sora, layerwise_fp8=True))
    assert fp8["transformer"] * 2 == sizes["transformer"] and fp8["text_encoder"] == sizes["text_encoder"]
    assert memory.choose(sizes, int(48 * GiB * 0.95)) == "group_offload"
    assert memory.choose(fp8, int(48 * GiB * 0.95)) == "model_cpu_offload"
    # No GPU: float32 on the CPU, twice the bf16 weights.
    cpu = memory.plan(sora, memory.Machine(host_bytes=512 * GiB, gpu_bytes=None))
    assert cpu.mode is None and cpu.host_bytes == 2 * h100.weights_bytes and cpu.runs_here


def test_models_list_prints_the_memory_plan_without_torch(tmp_path):
    probe = subprocess.run([sys.executable, "-c", "import sys, mutoscope.engine.memory as m; "
                            "m.machine(); print('torch' in sys.modules)"], capture_output=True, text=True,
                           env=server_env(tmp_path / "d"))
    assert probe.stdout.strip() == "False", probe.stderr
    env = server_env(tmp_path / "data", COLUMNS="220", MUTOSCOPE_ENGINE_HOST_RAM_BUDGET_BYTES=str(256 * GiB))
    r = subprocess.run([sys.executable, "-m", "mutoscope", "models", "list"], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Memory plan" in r.stdout
    line = next(ln for ln in r.stdout.splitlines() if "ltx-2.3-distilled" in ln and "GiB" in ln)
    assert "66.6 GiB (not pulled)" in line and "text enc. off" in line
    # 256 GiB of RAM and no GPU here: the CPU could hold it, in float32.
    assert "133.2 GiB" in line and "yes" in line
