"""bench/device/prove.py cannot rot: its CPU dry run at tiny size, its real-size builder on the meta device,
and its pack step, run here."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import server_env

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "device" / "prove.py"


@pytest.fixture(scope="module")
def prove():
    spec = importlib.util.spec_from_file_location("prove", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.setup_paths()
    return module


def test_dry_run_on_the_cpu_prints_every_row(tmp_path):
    # sora-2-pro alone: its stand-in takes every path the GPU run takes (plain, ours, two-stage, a step cache).
    r = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--device", "cpu", "--steps", "1",
                        "--size", "256x160", "--seconds", "0.5", "--models", "sora-2-pro"],
                       capture_output=True, text=True, timeout=900, env=server_env(tmp_path / "data"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    table = r.stdout.split("| model | run |")[1].split("\n\n")[0]
    rows = [line for line in table.splitlines() if line.startswith("| sora-2")]
    assert len(rows) == 3 and not any("failed" in row for row in rows), table
    for row in rows:
        seconds, floor, ratio = (row.split("|")[i].strip() for i in (4, 6, 7))
        assert float(seconds) > 0 and float(floor) > 0 and float(ratio) > 0
    ours_pro = [row for row in rows if row.startswith("| sora-2-pro") and "ours" in row]
    assert all("two_stage" in row for row in ours_pro)
    assert any("taylorseer" in row for row in rows)
    # The conditioned paths, through the engine on the tiny stand-ins: H3 ref2va received one picture and one
    # voice, labelled; LTX-2 held the supplied soundtrack clean on every step.
    conditioned = r.stdout.split("| model | path |")[1]
    h3 = [line for line in conditioned.splitlines() if line.startswith("| minimax-h3 (tiny-minimax-h3)")]
    audio = [line for line in conditioned.splitlines() if line.startswith("| sora-2 (tiny-ltx2)")]
    assert len(h3) == 1 and len(audio) == 1, conditioned
    assert "received <Picture 1> <Audio 1>" in h3[0] and float(h3[0].split("|")[4]) > 0
    assert "1 steps saw it clean (clean audio latents, audio timestep 0)" in audio[0]
    assert float(audio[0].split("|")[4]) > 0


@pytest.mark.parametrize("alias", ["sora-2", "sora-2-pro"])
def test_the_real_size_builder_builds_every_component_of_the_checkpoint(prove, alias):
    """What the GPU run builds on CUDA, built on the meta device: every component at its real size, and a
    tokenizer whose ids fit the real text encoder's vocabulary."""
    import torch

    from mutoscope.engine import memory
    from mutoscope.engine.registry import load_registry

    entry = load_registry().resolve(alias)
    pipes = prove.build_real(entry, "meta")
    counts = {}
    for pipe in pipes.all():
        for name, module in pipe.components.items():
            if isinstance(module, torch.nn.Module):
                counts.setdefault(name, sum(t.numel() for t in (*module.parameters(), *module.buffers())))
                assert all(p.dtype == torch.bfloat16 for p in module.parameters()), name
    assert counts == memory.PARAMETERS[entry.weights]
    tokenizer, encoder = pipes.text_to_video.tokenizer, pipes.text_to_video.text_encoder
    vocabulary = encoder.config.get_text_config().vocab_size
    ids = tokenizer("a lighthouse on a cliff at dusk, waves below")["input_ids"]
    assert ids and max(ids) < vocabulary


def test_pack_copies_diffusers_and_its_needs(prove, tmp_path):
    prove.pack(tmp_path / "vendor")
    names = {p.name for p in (tmp_path / "vendor").iterdir()}
    assert {"diffusers", "PIL"} <= names
    assert any(re.fullmatch(r"diffusers-[\d.]+\.dist-info", n) for n in names)
    assert (tmp_path / "vendor" / "diffusers" / "pipelines" / "ltx2" / "pipeline_ltx2.py").is_file()


def test_the_h3_ref2va_builder_builds_its_partition_at_real_size(prove):
    """What the GPU run builds for ref2va, on the meta device: transformer_ref, the Qwen3-VL conditioner and
    both VAEs at their real sizes (the text-only partition left out), the vision tokens' ids told to the
    conditioner and inside its vocabulary; and the size check that decides between a run and a skip line."""
    import torch

    from mutoscope.engine import memory
    from mutoscope.engine.registry import load_registry

    entry = load_registry().resolve("minimax-h3")
    pipe = prove.build_h3(entry, "meta").text_to_video
    counts = {name: sum(t.numel() for t in (*m.parameters(), *m.buffers()))
              for name, m in pipe.components.items() if isinstance(m, torch.nn.Module)}
    real = memory.PARAMETERS[entry.weights]
    assert counts == {name: real[name] for name in prove.H3_REF2VA_PARTS}
    encoder, tokenizer = pipe.components["text_encoder"], pipe.components["tokenizer"]
    assert encoder.config.image_token_id == tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert max(tokenizer("<Picture 1> a lighthouse")["input_ids"]) < encoder.config.get_text_config().vocab_size
    need = prove.h3_needs_gib(entry)
    assert 80 < need < 139, need  # skipped on an H100, run on an H200
