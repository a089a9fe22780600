"""What every family module provides to `DiffusersEngine`.

PUT HERE: the small `Family` contract (size and frame rules, loading, the
pipeline call's keyword arguments, reading the pipeline's output).
DO NOT PUT HERE: anything specific to one family; that lives in its module.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch
    from PIL import Image

    from mutoscope.engine.registry import ModelEntry


@dataclass
class LoadedPipelines:
    """The pipelines of one model; they share every component (no second copy of the weights).

    condition: a pipeline that takes several leading frames as conditioning
        (LTX-2's `LTX2ConditionPipeline`), used to extend a clip; None when the
        family has none (extensions then condition on the last frame only).
    video_to_video: a pipeline that transforms a whole clip (Wan's
        `WanVideoToVideoPipeline`); None when the family edits another way.
    upsample: the two-stage recipe's latent upsampler pipeline (LTX-2's
        `LTX2LatentUpsamplePipeline`, sharing the VAE); None for single-pass models.
    refine, refine_image: the two-stage recipe's stage-2 pipelines (text- and
        image-to-video), the same modules with the refine schedule's scheduler.
    refine_adapter: the LoRA adapter switched on only while refining, if any.
    camera_adapters: camera move -> the name of its LoRA adapter, loaded (switched off) on the transformer.
    camera_errors: camera move -> why its LoRA could not be loaded (the model still runs every other job).
    as_given: pipeline id -> a twin of that pipeline (same modules) whose scheduler runs an explicit
        `sigmas` list exactly as given (no resolution shift, no terminal stretch); see `Family.with_schedule`.
    """

    text_to_video: Any
    image_to_video: Any
    condition: Any = None
    video_to_video: Any = None
    upsample: Any = None
    refine: Any = None
    refine_image: Any = None
    refine_adapter: str | None = None
    camera_adapters: dict[str, str] = field(default_factory=dict)
    camera_errors: dict[str, str] = field(default_factory=dict)
    as_given: dict[int, Any] = field(default_factory=dict)
    # What the engine applied at load (memory placement, VAE tiling, caches...): `resolved["modes"]`.
    modes: dict[str, Any] = field(default_factory=dict)

    def all(self) -> list[Any]:
        seen: dict[int, Any] = {}
        for p in (self.text_to_video, self.image_to_video, self.condition, self.video_to_video,
                  self.upsample, self.refine, self.refine_image, *self.as_given.values()):
            if p is not None:
                seen.setdefault(id(p), p)
        return list(seen.values())


@dataclass
class RawOutput:
    """A pipeline's output in a family-neutral shape, before fitting to the exact size and duration.

    video: float tensor (F, 3, H, W) in [0, 1].
    audio: float tensor (channels, samples) or None.
    """

    video: "torch.Tensor"
    audio: "torch.Tensor | None"
    sample_rate: int | None


class Family(abc.ABC):
    """One model family: how to build, call and read its diffusers pipelines.

    Args:
        name: the `family` value in models.toml.
        size_multiple: generation width and height must be multiples of this
            (VAE spatial compression times the transformer's patch size).
        temporal_ratio: frame counts must be `temporal_ratio * k + 1`.
        step_caches: the `cache` values (registry.CACHES, besides "none") this family's
            transformer supports with the installed diffusers.
        taylorseer_modules: regular expressions (full match) naming the transformer's modules
            whose outputs TaylorSeer predicts between full steps.
        supports_two_stage: the family implements the two-stage recipe (`recipe = "two_stage"`:
            `read_latents`, `upsample_latents`, `refine_call`).
        attention_masks: the transformer passes an attention mask to its attention calls (LTX-2 masks
            the prompt's padding in every cross-attention), so attention backends that refuse a mask
            (flash-attn, sage, ...) cannot run it.
    """

    name: str
    size_multiple: int
    temporal_ratio: int
    has_audio: bool
    step_caches: tuple[str, ...] = ()
    taylorseer_modules: tuple[str, ...] = ()
    supports_two_stage: bool = False
    # The strength the two-stage recipe's refine LoRA is applied at.
    refine_lora_scale: float = 1.0
    attention_masks: bool = False
    # The longest side and clip the checkpoint's positional embedding covers (None: no such limit).
    max_side: int | None = None
    max_seconds: float | None = None
    # The family can re-generate a source clip (`edit_call`): edits, and remixes of a completed video. Read
    # torch-free by the API (ModelInfo.can_edit) so a job that could only fail is refused at create.
    supports_edits: bool = True

    def generated_size(self, width: int, height: int, recipe: str = "single") -> tuple[int, int]:
        """The size a request is generated (then cropped) at: rounded up to the multiple; the
        two-stage recipe doubles a half size that is itself rounded up."""
        if recipe == "two_stage":
            w1, h1 = self.generation_size(math.ceil(width / 2), math.ceil(height / 2))
            return 2 * w1, 2 * h1
        return self.generation_size(width, height)

    def size_problem(self, width: int, height: int, recipe: str = "single") -> str | None:
        """Why this family cannot make a width x height video (None: it can)."""
        if width <= 0 or height <= 0:
            return "width and height must be positive"
        if width % 2 or height % 2:
            # H.264 with 4:2:0 chroma, what the MP4s are encoded as, needs even sides.
            return "width and height must be even (H.264 4:2:0)"
        gen_w, gen_h = self.generated_size(width, height, recipe)
        if self.max_side is not None and max(gen_w, gen_h) > self.max_side:
            return (f"it is generated at {gen_w}x{gen_h}, beyond the {self.max_side} px the model's "
                    "positional embedding covers")
        return None

    def seconds_problem(self, seconds: float, fps: float) -> str | None:
        """Why this family cannot make a clip of `seconds` at `fps` (None: it can)."""
        frames = round(seconds * fps)
        if frames < 1:
            return f"less than one frame at {fps:g} fps"
        if self.max_seconds is not None and frames / fps > self.max_seconds:
            return f"longer than the {self.max_seconds:g} s the model's temporal positional embedding covers"
        return None

    def generation_size(self, width: int, height: int) -> tuple[int, int]:
        """The smallest accepted size covering width x height (rounded up, so fitting back is a pure crop)."""
        m = self.size_multiple
        return max(m, math.ceil(width / m) * m), max(m, math.ceil(height / m) * m)

    def frames_covering(self, frames: int) -> int:
        """The smallest accepted frame count (`temporal_ratio * k + 1`) that is >= frames."""
        r = self.temporal_ratio
        return max(0, math.ceil((frames - 1) / r)) * r + 1

    @abc.abstractmethod
    def build_tiny(self, builtin: str) -> LoadedPipelines:
        """Build the random-weight test pipelines named by `builtin:<name>`, seeded and hub-free."""

    @abc.abstractmethod
    def load(self, entry: "ModelEntry", source: Path, dtype: "torch.dtype",
             device: str | None = None) -> LoadedPipelines:
        """Load real weights from a local diffusers folder (never touches the network).

        device="meta": build every component at full size from the folder's configs alone, with no
        weights (the checkpoint-shape tests and bench/floor.py); tokenizers are left out.
        """

    @abc.abstractmethod
    def pipeline_classes(self) -> tuple[type, ...]:
        """The diffusers pipeline classes a model of this family may be called through; a
        `pipeline_kwargs` key must be a `__call__` argument of at least one of them."""

    def with_schedule(self, pipes: LoadedPipelines, pipe: Any, kwargs: dict[str, Any]) -> Any:
        """The pipeline to run `kwargs` on: the chosen one, or (LTX-2) its twin that takes an explicit
        `sigmas` list as given rather than through the repo's shifting scheduler."""
        return pipe

    @abc.abstractmethod
    def call_kwargs(
        self,
        entry: "ModelEntry",
        *,
        prompt: str,
        negative_prompt: str | None,
        width: int,
        height: int,
        num_frames: int,
        fps: float,
        steps: int,
        guidance: float,
        generator: "torch.Generator",
        image: "Image.Image | None",
    ) -> dict[str, Any]:
        """Keyword arguments for the pipeline's `__call__` (without the step callback)."""

    def before_call(self, pipes: LoadedPipelines, pipe: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Last adjustment of the call's arguments once the pipeline is chosen (default: none)."""
        return kwargs

    def extend_overlap(self, pipes: LoadedPipelines, available: int) -> int:
        """How many of the source's last frames the continuation is conditioned on.

        The pipeline regenerates those frames first; the engine cuts them off.
        Default: one frame, through image-to-video (`extend_call`).
        """
        return 1

    def extend_call(
        self, pipes: LoadedPipelines, entry: "ModelEntry", kwargs: dict[str, Any], tail: "np.ndarray"
    ) -> tuple[Any, dict[str, Any]]:
        """(pipeline, call kwargs) that continue `tail` ((overlap, H, W, 3) uint8 at the generation size).

        Default: image-to-video from the last frame, with the same crop/pin rules as an input image.
        """
        from PIL import Image

        kwargs = dict(kwargs)
        kwargs["image"] = Image.fromarray(tail[-1])
        return pipes.image_to_video, kwargs

    @abc.abstractmethod
    def edit_call(
        self,
        pipes: LoadedPipelines,
        entry: "ModelEntry",
        kwargs: dict[str, Any],
        frames: "np.ndarray",
        strength: float,
    ) -> tuple[Any, dict[str, Any]]:
        """(pipeline, call kwargs) that re-generate `frames` ((num_frames, H, W, 3) uint8 at the
        generation size) guided by the prompt; `strength` in (0, 1] is how much noise replaces the source."""

    def read_latents(self, output: Any) -> tuple[Any, Any]:
        """(video latents, audio latents or None) from a call made with output_type='latent'."""
        raise NotImplementedError(f"family {self.name!r} has no two-stage recipe")

    def upsample_latents(self, pipes: LoadedPipelines, video_latents: Any) -> Any:
        """Stage-1 video latents doubled in height and width."""
        raise NotImplementedError(f"family {self.name!r} has no two-stage recipe")

    def refine_call(
        self,
        pipes: LoadedPipelines,
        entry: "ModelEntry",
        kwargs: dict[str, Any],
        video_latents: Any,
        audio_latents: Any,
    ) -> tuple[Any, dict[str, Any]]:
        """(pipeline, call kwargs) that re-noise the upsampled latents to the refine schedule's first sigma
        and denoise them along it; `kwargs` are `call_kwargs` at the full generation size."""
        raise NotImplementedError(f"family {self.name!r} has no two-stage recipe")

    def load_adapter(self, pipes: LoadedPipelines, name: str, file: Path) -> None:
        """Load a LoRA file as the named adapter on the pipelines' shared transformer, switched off.

        Called when the model is built, before its memory modes are applied, so offloading, fp8 storage and
        compile treat the adapter's layers like the rest of the model. (Loaded later, diffusers would take
        the model's offload hooks off and put its own per-pipeline ones back.)"""
        from diffusers.utils import USE_PEFT_BACKEND

        from mutoscope.engine.base import EngineError

        if not USE_PEFT_BACKEND:
            raise EngineError("LoRA adapters need the `peft` package (pip install peft), which is not installed")
        import warnings

        pipe = pipes.text_to_video
        with warnings.catch_warnings():
            # peft warns on every adapter after the first that the model now holds several: that is the point.
            warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
            pipe.load_lora_weights(str(file.parent), weight_name=file.name, adapter_name=name, local_files_only=True)
        pipe.disable_lora()

    def set_adapters(self, pipes: LoadedPipelines, active: "list[tuple[str, float]]") -> None:
        """Exactly these adapters on, at these scales; every other loaded adapter off (an empty list: all off)."""
        if not pipes.camera_adapters and pipes.refine_adapter is None:
            return
        pipe = pipes.text_to_video
        if active:
            pipe.set_adapters([name for name, _ in active], [scale for _, scale in active])
            pipe.enable_lora()
        else:
            pipe.disable_lora()

    def active_adapters(self, pipes: LoadedPipelines) -> list[str]:
        """The adapters the transformer's LoRA layers apply right now, read from the layers themselves
        (peft keeps an adapter listed as active while the layers are disabled, so both are checked)."""
        if not pipes.camera_adapters and pipes.refine_adapter is None:
            return []
        from peft.tuners.tuners_utils import BaseTunerLayer

        names: set[str] = set()
        for module in pipes.text_to_video.transformer.modules():
            if isinstance(module, BaseTunerLayer) and not module.disable_adapters and not module.merged:
                names.update(a for a in module.active_adapters if a in module.lora_A)
        return sorted(names)

    # The family conditions one generation on an ordered list of references (`reference_call`).
    supports_references: bool = False

    def reference_call(self, pipes: LoadedPipelines, entry: "ModelEntry", kwargs: dict[str, Any],
                       references: list[Any]) -> tuple[Any, dict[str, Any]]:
        """(pipeline, call kwargs) that condition on `references` (`engine.base.ReferenceMedia`, in order)."""
        from mutoscope.engine.base import EngineError

        raise EngineError(f"{entry.name}: this model takes no references")

    def audio_call(self, pipes: LoadedPipelines, pipe: Any, entry: "ModelEntry", kwargs: dict[str, Any],
                   audio: np.ndarray, sample_rate: int) -> tuple[Any, dict[str, Any], Any]:
        """(pipeline, call kwargs, a handle whose `remove()` undoes any hook) that generate the picture to
        `audio` ((channels, samples) float32 at `sample_rate`), the soundtrack kept as given."""
        from mutoscope.engine.base import EngineError

        raise EngineError(f"{entry.name}: this model cannot generate to a supplied soundtrack")

    def conditioning_record(self, pipe: Any) -> dict[str, Any]:
        """What the last call's pipeline received of its references, read from the call (`resolved`)."""
        return {}

    @abc.abstractmethod
    def read_output(self, pipe: Any, output: Any) -> RawOutput:
        """Turn the pipeline's return value (called with output_type='pt') into a `RawOutput`."""


# Config keys real checkpoints carry that diffusers reads no more, knowingly: Wan 2.2's VAE was
# converted with `clip_output` (false), an option diffusers dropped days later (huggingface/diffusers
# "[wan2.2] fix vae patches") when it made the decoder always clamp its output to [-1, 1].
KNOWN_IGNORED_KEYS = frozenset({("AutoencoderKLWan", "clip_output")})


def component_class(library: str, name: str) -> type:
    """The class a model_index.json entry `[library, name]` names ("ltx2" is diffusers' pipeline module)."""
    import importlib

    if library in ("diffusers", "transformers"):
        return getattr(importlib.import_module(library), name)
    return getattr(importlib.import_module(f"diffusers.pipelines.{library}"), name)


def builds_from_config(cls: type) -> bool:
    """Whether `cls` is built from a config alone: diffusers models and schedulers, transformers models
    (not tokenizers, processors or feature extractors, which need their vocabulary or preprocessing files)."""
    return hasattr(cls, "extract_init_dict") or (hasattr(cls, "config_class") and hasattr(cls, "_from_config"))


def model_from_config(cls: type, folder: Path, dtype: "torch.dtype") -> Any:
    """One component built from its config alone: full size, on the meta device, no weights.

    A key of the config that the class does not take is an error, not diffusers' warning: it means
    the installed diffusers no longer reads the checkpoint the way it was written.
    """
    import json

    import torch

    if hasattr(cls, "extract_init_dict"):  # diffusers models and schedulers
        config = cls.load_config(str(folder))
        _, unused, _ = cls.extract_init_dict(dict(config))
        unused = sorted(k for k in unused if not k.startswith("_") and (cls.__name__, k) not in KNOWN_IGNORED_KEYS)
        if unused:
            raise ValueError(f"{folder}: {cls.__name__} does not take config key(s) {unused}")
        if not isinstance(cls, type) or not issubclass(cls, torch.nn.Module):
            return cls.from_config(config)
        with torch.device("meta"):
            return cls.from_config(config).to(dtype)
    # transformers: the config class reads config.json; _from_config builds without weights.
    config = cls.config_class.from_dict(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    with torch.device("meta"):
        return cls._from_config(config).to(dtype)


def components_from_configs(source: Path, dtype: "torch.dtype") -> dict[str, Any]:
    """Every component model_index.json lists, built by `model_from_config`; tokenizers and processors
    (vocabulary and preprocessing files, not model configs) and empty entries are None."""
    import json

    index = json.loads((Path(source) / "model_index.json").read_text(encoding="utf-8"))
    components: dict[str, Any] = {}
    for name, value in index.items():
        if name.startswith("_") or not isinstance(value, list) or len(value) != 2:
            continue
        library, class_name = value
        cls = component_class(library, class_name) if library is not None else None
        if cls is None or not builds_from_config(cls):
            components[name] = None
            continue
        components[name] = model_from_config(cls, Path(source) / name, dtype)
    return components
