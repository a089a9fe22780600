"""One job on several GPUs: diffusers' context parallelism, and the processes that run it together.

PUT HERE: turning a model's `context_parallel` into `transformer.enable_parallelism(...)`, the leader
that hands each job's spec to the other ranks, the followers that run it with it, and the hooks that
keep their denoising loops in step.
DO NOT PUT HERE: claiming jobs or writing results (jobs/), starting the processes (cli/).

`mutoscope worker --gpus 0,1` starts one process per GPU in one torch.distributed group. Rank 0 is an
ordinary worker: it claims jobs from the database queue and renders them. When a job's model has
`context_parallel`, rank 0 first sends the model name and the `GenerationSpec` to every other rank, and
all ranks call `generate` with it: diffusers splits the transformer's tokens over them (each rank's
pipeline is a full copy; only the transformer's attention is shared) and every rank ends with the whole
result, which only rank 0 encodes and stores. Jobs of other models run on rank 0 alone.

Every collective of a job must be entered by every rank in the same order, so cancellation is decided
by rank 0 and broadcast at each step (`CollectiveHooks`): all ranks stop at the same step, or none do.
The control messages (specs, cancel flags) travel over a gloo group of their own, so they never queue
behind the NCCL traffic of the transformer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mutoscope.engine.base import EngineError, GenerationOutput, GenerationSpec, StepHooks, VideoEngine

if TYPE_CHECKING:  # pragma: no cover
    from mutoscope.engine.families import LoadedPipelines
    from mutoscope.engine.registry import ModelEntry

logger = logging.getLogger(__name__)


@dataclass
class ParallelGroup:
    """This process's place in a multi-GPU worker: its rank, the number of ranks, and the gloo group
    the control messages use (None for a single process)."""

    rank: int = 0
    world_size: int = 1
    control: Any = None

    @property
    def is_leader(self) -> bool:
        return self.rank == 0


# Families whose transformer diffusers' context parallelism cannot split correctly yet, and why; a model
# of one with `context_parallel` is refused when the models file is read, before any GPU is touched.
UNSUPPORTED: dict[str, str] = {
    "ltx2": (
        "LTX-2's transformer cannot be split over GPUs with this diffusers: its released checkpoints use split "
        "RoPE (rope_type \"split\", 4-D cos/sin per head) where the model's context-parallel plan shards 3-D "
        "ones, so the first attention fails on a shape mismatch; and the plan shards only the video tokens "
        "while the audio stream and the audio-video cross-attentions run through the same parallel attention "
        "unsharded. Run LTX-2 models on one GPU each (context_parallel = \"none\")"
    ),
}


def family_problem(entry: "ModelEntry") -> str | None:
    """Why `entry`'s family cannot run `context_parallel` at all (None: it can, or the model does not ask)."""
    if entry.context_parallel == "none":
        return None
    return UNSUPPORTED.get(entry.family)


def context_parallel_config(entry: "ModelEntry", degree: int) -> Any:
    """diffusers' ContextParallelConfig for `entry` over `degree` ranks."""
    from diffusers import ContextParallelConfig

    if entry.context_parallel == "ulysses":
        return ContextParallelConfig(ulysses_degree=degree)
    return ContextParallelConfig(ring_degree=degree)


def degree_problem(entry: "ModelEntry", transformer: Any, degree: int) -> str | None:
    """Why `transformer` cannot be split `degree` ways with `entry.context_parallel`, or None.

    Ulysses gives each rank whole attention heads (an all-to-all from sequence shards to head shards),
    so every attention's head count must be a multiple of the degree; LTX-2 has a video and an audio
    stream (32 heads each at full size), Wan one (24 in the 5B model)."""
    if entry.context_parallel != "ulysses":
        return None
    config = transformer.config
    heads = {key: config[key] for key in ("num_attention_heads", "audio_num_attention_heads") if key in config}
    bad = {key: n for key, n in heads.items() if n % degree}
    if bad:
        return (f"context_parallel = \"ulysses\" over {degree} GPUs needs a head count that {degree} divides; "
                f"{', '.join(f'{k} = {n}' for k, n in bad.items())} (use a GPU count that divides it, or \"ring\")")
    return None


def enable(pipes: "LoadedPipelines", entry: "ModelEntry", group: ParallelGroup) -> dict[str, Any] | None:
    """Split the model's transformer(s) over the group's ranks; returns what was applied (for
    `resolved["modes"]["context_parallel"]`), or None when the model runs on one GPU."""
    if entry.context_parallel == "none" or group.world_size < 2:
        return None
    from mutoscope.engine.modes import _transformers

    problem = family_problem(entry)
    if problem:
        raise EngineError(f"{entry.name}: {problem}")
    degree = group.world_size
    for transformer in _transformers(pipes):
        problem = degree_problem(entry, transformer, degree)
        if problem:
            raise EngineError(f"{entry.name}: {problem}")
        try:
            transformer.enable_parallelism(config=context_parallel_config(entry, degree))
        except ZeroDivisionError as exc:
            # diffusers 0.42 puts rank r on accelerator r % torch.accelerator.device_count(), which is 0
            # on a machine without one.
            raise EngineError(f"{entry.name}: context_parallel = {entry.context_parallel!r} needs a GPU per rank; "
                              "this worker has none") from exc
        except (ValueError, RuntimeError, NotImplementedError) as exc:
            raise EngineError(f"{entry.name}: cannot apply context_parallel = {entry.context_parallel!r}: {exc}") from exc
    return {"mode": entry.context_parallel, "degree": degree}


class CollectiveHooks:
    """Step hooks every rank calls in step: rank 0's answer to "cancel?" is everyone's.

    Args:
        group: the worker's ParallelGroup.
        hooks: rank 0's own hooks (progress and the job's cancellation); None on the other ranks.
    """

    def __init__(self, group: ParallelGroup, hooks: StepHooks | None = None):
        self.group, self.hooks = group, hooks

    def on_progress(self, fraction: float, phase: str) -> None:
        if self.hooks is not None:
            self.hooks.on_progress(fraction, phase)

    def should_cancel(self) -> bool:
        import torch
        import torch.distributed as dist

        flag = torch.tensor([int(self.hooks is not None and self.hooks.should_cancel())], dtype=torch.int32)
        dist.broadcast(flag, src=0, group=self.group.control)
        return bool(flag.item())


def _runs_parallel(engine: Any, model: str) -> bool:
    return engine.registry.resolve(model).context_parallel != "none"


class LeaderEngine(VideoEngine):
    """Rank 0's engine: the DiffusersEngine it wraps, with each context-parallel job shared with the
    other ranks before it starts. Everything else (catalog, loading) is the wrapped engine's."""

    def __init__(self, engine: VideoEngine, group: ParallelGroup):
        self.engine, self.group = engine, group

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def resolve(self, name: str):
        return self.engine.resolve(name)

    def list_models(self):
        return self.engine.list_models()

    def generate(self, model: str, spec: GenerationSpec, hooks: StepHooks) -> GenerationOutput:
        try:
            parallel = _runs_parallel(self.engine, model)
        except LookupError:
            parallel = False
        if not parallel:
            return self.engine.generate(model, spec, hooks)
        _send(self.group, (model, spec))
        return self.engine.generate(model, spec, CollectiveHooks(self.group, hooks))

    def stop_followers(self) -> None:
        """Tell the other ranks there is no more work (they return from `follow`)."""
        _send(self.group, None)


def follow(engine: VideoEngine, group: ParallelGroup) -> None:
    """A rank above 0: run every job rank 0 shares, until it says stop. A job's failure here is also
    rank 0's (the same spec on the same model), which reports it; this rank logs it and waits for the next."""
    while True:
        message = _receive(group)
        if message is None:
            return
        model, spec = message
        try:
            engine.generate(model, spec, CollectiveHooks(group))
        except Exception:
            logger.warning("rank %d: the shared job on %s failed", group.rank, model, exc_info=True)


def _send(group: ParallelGroup, message: Any) -> None:
    import torch.distributed as dist

    dist.broadcast_object_list([message], src=0, group=group.control)


def _receive(group: ParallelGroup) -> Any:
    import torch.distributed as dist

    box = [None]
    dist.broadcast_object_list(box, src=0, group=group.control)
    return box[0]
