"""The narrow engine interface every model family implements.

The job code (jobs/) only ever talks to a `VideoEngine`; it never sees a
diffusers pipeline. Progress and cancellation flow through `StepHooks`, which
the family adapters wire to diffusers' `callback_on_step_end`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    from PIL import Image


class EngineError(Exception):
    """Base class for engine failures; `code` becomes the job's error code."""

    code = "generation_failed"


class ModelNotAvailable(EngineError, LookupError):
    """The model's weights are not on this machine (or the name is unknown).

    Also a LookupError, so callers outside the engine (api/) can catch it without importing engine/.
    """

    code = "model_not_available"


class OutOfMemory(EngineError):
    """The job ran out of memory, also in the lower memory mode it was retried in; the message names the
    model and the mode."""

    code = "out_of_memory"


class GenerationCancelled(EngineError):
    """Raised by an adapter when `StepHooks.should_cancel()` turned true."""

    code = "cancelled"


class StepHooks(Protocol):
    def on_progress(self, fraction: float, phase: str) -> None:
        """Report progress in [0, 1] of the engine's own work; phase is 'denoise' or 'decode'."""

    def should_cancel(self) -> bool:
        """Checked after every denoising step; True stops the job."""


@dataclass(frozen=True)
class ReferenceMedia:
    """One reference a generation is conditioned on (a cameo's face or voice, a character, a supplied clip).

    kind: "image" (`image`, uint8 (H, W, 3)), "video" (`frames`, uint8 (T, H, W, 3) at `fps`, with its
        sound in `audio` or not) or "audio" (`audio` alone).
    audio: float32 (channels, samples) at `sample_rate`.
    source: where it came from ("cameo_...:reference-0", "cameo_...:voice", "char_..."), for the record.
    """

    kind: Literal["image", "video", "audio"]
    image: "np.ndarray | None" = None
    frames: "np.ndarray | None" = None
    fps: float | None = None
    audio: "np.ndarray | None" = None
    sample_rate: int | None = None
    source: str = ""


@dataclass(frozen=True)
class GenerationSpec:
    """What to generate. Sizes are the exact output size the caller wants.

    Args:
        prompt: text prompt.
        width, height: exact output size in pixels (the adapter generates at the
            nearest size the model accepts, then scales/crops to this).
        seconds: exact output duration.
        image: optional first frame, already fitted to width x height (RGB).
        seed: random seed; the adapter must be deterministic for a given seed.
        num_inference_steps, guidance_scale, negative_prompt: None means the
            model's default; the resolved values come back in `GenerationOutput.resolved`.
        condition_frames: optional source clip, uint8 (T, H, W, 3) at the model's frame
            rate (any H x W; the adapter scales/crops it like `image`). What it means
            depends on `condition_mode`.
        condition_mode: "extend": `condition_frames` is the tail of a clip to continue
            (the last frame is the newest); the output holds only the *new* frames,
            round(seconds * fps) of them, that follow it. "edit": `condition_frames`
            is the clip to transform (at least round(seconds * fps) frames); the output
            replaces it frame for frame, guided by `prompt`.
        condition_audio, condition_audio_rate: "extend" only: the sound of the clip being continued
            ((channels, samples) float, ending where `condition_frames` end) and its sample rate. A family
            with sound carries it over the overlap, so the new sound continues the old; None: the new clip's
            sound starts afresh.
        camera: a camera move (engine/camera.py MOVES) the model offers, or None (a storyboard calls generate
            per shot, each with its own). An adapter move's LoRA is on only while this call denoises; a prompt
            move's phrase is folded into `prompt`.
        references: `ReferenceMedia` in order; the prompt already names them by the model's labels.
        audio, audio_sample_rate: a supplied soundtrack (see the fields).
        edit_strength: "edit" only: how much of the source is replaced by noise, in (0, 1]; None: the
            model's own (`ModelEntry.edit_strength`). The value used comes back in `resolved`.
    """

    prompt: str
    width: int
    height: int
    seconds: float
    seed: int
    image: "Image.Image | None" = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    negative_prompt: str | None = None
    condition_frames: "np.ndarray | None" = None
    condition_mode: "Literal['extend', 'edit'] | None" = None
    condition_audio: "np.ndarray | None" = None
    condition_audio_rate: int | None = None
    camera: str | None = None
    # Conditioning on references, in the order the prompt names them (a reference-capable family only).
    references: "tuple[ReferenceMedia, ...]" = ()
    # A soundtrack the picture is generated to: float32 (channels, samples) at `audio_sample_rate`; the
    # output's sound is exactly it, resampled to the model's rate.
    audio: "np.ndarray | None" = None
    audio_sample_rate: int | None = None
    edit_strength: float | None = None

    def __post_init__(self) -> None:
        if (self.condition_frames is None) != (self.condition_mode is None):
            raise ValueError("condition_frames and condition_mode go together")
        if self.condition_mode not in (None, "extend", "edit"):
            raise ValueError(f"condition_mode must be 'extend' or 'edit', got {self.condition_mode!r}")
        if self.edit_strength is not None and not 0 < self.edit_strength <= 1:
            raise ValueError(f"edit_strength must be in (0, 1], got {self.edit_strength!r}")


@dataclass
class GenerationOutput:
    """Frames and sound, ready for media/ to encode.

    frames: uint8 array (T, H, W, 3), H x W equal to the spec's size and
        T == round(seconds * fps).
    fps: frame rate of `frames`.
    audio: float32 array (channels, samples) in [-1, 1], or None when the
        family makes no sound; its duration equals T / fps.
    sample_rate: audio sample rate, or None.
    resolved: the values actually used (steps, guidance, seed, weights, ...)
        so any video can be reproduced.
    lead_audio: an extension's sound over the frames it was conditioned on (the source's last frames,
        regenerated and cut from `frames`), at `sample_rate`: the join crossfades the source's end into it.
    """

    frames: "np.ndarray"
    fps: float
    audio: "np.ndarray | None" = None
    sample_rate: int | None = None
    resolved: dict[str, Any] = field(default_factory=dict)
    lead_audio: "np.ndarray | None" = None


@dataclass(frozen=True)
class ModelInfo:
    """What `models list` and `GET /v1/models` show about one public model name."""

    name: str
    family: str
    weights: str
    aliases: tuple[str, ...] = ()
    has_audio: bool = False
    fps: float = 24.0
    sizes: tuple[str, ...] = ()
    seconds: tuple[str, ...] = ()
    # What a create without `size` gets (OpenAI's default is 720x1280; a model may not offer it).
    default_size: str = "720x1280"
    license: str = ""
    # None: this process cannot see the weights (an API machine; the GPU workers hold them).
    installed: bool | None = False
    test_model: bool = False
    description: str = ""
    # A distilled model's schedule is fixed (its `sigmas`): the only step count it runs; None: any count.
    fixed_steps: int | None = None
    # It can re-generate a source clip (edits, remixes); False: those are refused at create.
    can_edit: bool = True
    # move -> how this model makes it (engine/camera.py CameraMove).
    camera: Mapping[str, Any] = field(default_factory=dict)
    # adapter move -> its LoRA is on this machine (None: this process cannot see the workers' files).
    camera_installed: Mapping[str, bool | None] = field(default_factory=dict)
    # Roughly what a pull fetches (the models file's `download_gb`; None: not recorded).
    download_gb: float | None = None
    # What an edit without `edit_strength` gets (the models file's; the web edit form starts at it).
    edit_strength: float = 0.7


class VideoEngine(abc.ABC):
    """Everything the rest of Mutoscope may ask of the engine."""

    @abc.abstractmethod
    def resolve(self, name: str) -> ModelInfo:
        """Resolve a public name or alias to its model; raise ModelNotAvailable if unknown."""

    @abc.abstractmethod
    def list_models(self) -> list[ModelInfo]:
        """Every configured model (aliases folded into their target)."""

    @abc.abstractmethod
    def generate(self, model: str, spec: GenerationSpec, hooks: StepHooks) -> GenerationOutput:
        """Run one generation synchronously (called from a worker thread).

        Raises ModelNotAvailable when weights are missing, GenerationCancelled when
        hooks.should_cancel() became true, EngineError for anything else.
        Loaded pipelines stay warm between calls.
        """
