"""Context parallelism: the models file's `context_parallel`, and one job run by two ranks.

The two-rank test runs two real processes in one torch.distributed group over gloo on the CPU, with the
engine's own leader and follower (engine/parallel.py) and diffusers' `enable_parallelism` on the tiny Wan
transformer. diffusers 0.42 places rank r on accelerator `r % torch.accelerator.device_count()`, which
is 0 without one, so each test process reports one accelerator (and stays on the CPU): that stands in
for the GPU per rank a real worker has, and is the only thing patched. NCCL, CUDA attention kernels and
ring attention (which needs a kernel that returns its log-sum-exp, all CUDA) are not run here.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mutoscope.cli import gpus  # noqa: E402
from mutoscope.engine.base import GenerationCancelled, GenerationSpec  # noqa: E402
from mutoscope.engine.parallel import _receive, _send, degree_problem  # noqa: E402
from mutoscope.engine.registry import RegistryError, load_registry  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
SPEC = dict(prompt="a red kite over the sea", width=64, height=64, seconds=0.5, seed=3, num_inference_steps=2,
            guidance_scale=1.0)


class Hooks:
    def __init__(self, cancel_after: int | None = None):
        self.steps, self.cancel_after = 0, cancel_after

    def on_progress(self, fraction: float, phase: str) -> None:
        pass

    def should_cancel(self) -> bool:
        self.steps += 1
        return self.cancel_after is not None and self.steps > self.cancel_after


def test_context_parallel_values_and_backends_are_checked_at_start():
    assert load_registry(mode_overrides={"tiny-wan.context_parallel": "ulysses"}).resolve(
        "tiny-wan").context_parallel == "ulysses"
    assert load_registry().resolve("ltx-2").context_parallel == "none"
    with pytest.raises(RegistryError, match="'context_parallel' must be one of"):
        load_registry(mode_overrides={"tiny-wan.context_parallel": "tensor"})
    # Ring attention merges partial results by their log-sum-exp, which native SDPA does not return.
    with pytest.raises(RegistryError, match="cannot run on attention_backend 'native'") as e:
        load_registry(mode_overrides={"tiny-wan.context_parallel": "ring"})
    assert "_native_cudnn" in str(e.value) and "flash" in str(e.value)
    # LTX-2 is refused whatever the backend, with the reason: split RoPE and the unsharded audio stream.
    for overrides in ({"ltx-2.context_parallel": "ring", "ltx-2.attention_backend": "_native_cudnn"},
                      {"tiny-ltx2.context_parallel": "ulysses"}, {"ltx-2.3-distilled.context_parallel": "ulysses"}):
        with pytest.raises(RegistryError, match="split RoPE") as e:
            load_registry(mode_overrides=overrides)
        assert "context_parallel = \"none\"" in str(e.value) and "audio" in str(e.value)


def test_ltx_is_refused_at_enable_too():
    """A registry built by hand (not through the models file) still cannot split LTX-2."""
    from dataclasses import replace

    from mutoscope.engine.base import EngineError
    from mutoscope.engine.parallel import ParallelGroup, enable

    entry = replace(load_registry().resolve("tiny-ltx2"), context_parallel="ulysses")
    with pytest.raises(EngineError, match="split RoPE"):
        enable(SimpleNamespace(), entry, ParallelGroup(rank=0, world_size=2))


@pytest.mark.parametrize("repo,degrees_ok,degrees_bad", [
    ("Lightricks/LTX-2", [2, 4, 8], [3, 5, 6]),  # 32 video and 32 audio heads
    ("Wan-AI/Wan2.2-TI2V-5B-Diffusers", [2, 3, 4, 6, 8], [5, 7]),  # 24 heads
])
def test_ulysses_degree_must_divide_the_real_head_counts(repo, degrees_ok, degrees_bad):
    config = json.loads((FIXTURES / repo / "transformer" / "config.json").read_text())
    transformer = SimpleNamespace(config=config)
    ulysses, ring = (SimpleNamespace(context_parallel=m) for m in ("ulysses", "ring"))
    for n in degrees_ok:
        assert degree_problem(ulysses, transformer, n) is None
    for n in degrees_bad:
        assert "divides" in degree_problem(ulysses, transformer, n)
        assert degree_problem(ring, transformer, n) is None  # ring splits the sequence, not the heads


def test_gpu_lists():
    assert gpus.parse("0,1") == ["0", "1"] and gpus.parse(" 3 ") == ["3"]
    for bad in ("", "0,0", "cuda:0", "0;1"):
        with pytest.raises(ValueError):
            gpus.parse(bad)


def _rank(rank: int, world: int, port: int, out: str) -> None:
    import torch
    import torch.distributed as dist

    from mutoscope.engine.diffusers_engine import DiffusersEngine
    from mutoscope.engine.parallel import LeaderEngine, ParallelGroup, follow

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    group = ParallelGroup(rank=rank, world_size=world, control=dist.new_group(backend="gloo"))
    registry = load_registry(mode_overrides={"tiny-wan.context_parallel": "ulysses"})
    engine = DiffusersEngine(registry, Path(out) / "weights", device="cpu", parallel=group)
    result: dict = {}
    try:
        if rank == 0:
            leader = LeaderEngine(engine, group)
            try:  # as this machine is: no accelerator
                leader.generate("tiny-wan", GenerationSpec(**SPEC), Hooks())
            except Exception as exc:
                result["no_accelerator"] = f"{type(exc).__name__}: {exc}"
            leader.stop_followers()
            _send(group, "one accelerator each")
            torch.accelerator.device_count = lambda: 1
            try:
                got = leader.generate("tiny-wan", GenerationSpec(**SPEC), Hooks())
                np.save(Path(out) / "parallel.npy", got.frames)
                result["modes"] = got.resolved["modes"]
                try:  # rank 0 cancels after the first step: both ranks must stop there
                    leader.generate("tiny-wan", GenerationSpec(**SPEC), Hooks(cancel_after=1))
                except GenerationCancelled:
                    result["cancelled"] = True
            except Exception as exc:
                result["error"] = f"{type(exc).__name__}: {exc}"
            leader.stop_followers()
            if "error" not in result:  # the same job on this rank alone, without the group: the reference
                alone = DiffusersEngine(load_registry(), Path(out) / "weights", device="cpu")
                np.save(Path(out) / "alone.npy", alone.generate("tiny-wan", GenerationSpec(**SPEC), Hooks()).frames)
        else:
            follow(engine, group)  # until rank 0 changes the machine
            torch.accelerator.device_count = lambda: 1
            result["followed_without"] = _receive(group)
            follow(engine, group)
            result["followed"] = True
    finally:
        (Path(out) / f"rank{rank}.json").write_text(json.dumps(result))
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_ranks(tmp_path) -> tuple[dict, dict]:
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=_rank, args=(r, 2, port, str(tmp_path))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0, p.exitcode
    return tuple(json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))


@pytest.mark.slow  # two ranks in two processes: about 20 s
def test_one_job_on_two_ranks_matches_one_rank_and_cancels_together(tmp_path):
    leader, follower = _run_ranks(tmp_path)
    # Without an accelerator diffusers cannot place the ranks: the job fails, naming why, and both go on.
    assert "needs a GPU per rank" in leader["no_accelerator"], leader
    assert follower["followed_without"] == "one accelerator each"
    assert "error" not in leader, leader
    assert leader["modes"]["context_parallel"] == {"mode": "ulysses", "degree": 2}
    assert leader["cancelled"] and follower["followed"]
    parallel, alone = np.load(tmp_path / "parallel.npy"), np.load(tmp_path / "alone.npy")
    assert parallel.shape == alone.shape == (12, 64, 64, 3)
    # The same arithmetic, split by heads: equal up to float reassociation, here to the uint8 value.
    assert np.abs(parallel.astype(int) - alone.astype(int)).max() <= 1

