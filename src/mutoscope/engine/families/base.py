"""What every family module provides to `DiffusersEngine`.

PUT HERE: the small `Family` contract (size and frame rules, loading, the
pipeline call's keyword arguments, reading the pipeline's output).
DO NOT PUT HERE: anything specific to one family; that lives in its module.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from PIL import Image

    from mutoscope.engine.registry import ModelEntry


@dataclass
class LoadedPipelines:
    """The two pipelines of one model; they share every component (no second copy of the weights)."""

    text_to_video: Any
    image_to_video: Any


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
    """

    name: str
    size_multiple: int
    temporal_ratio: int
    has_audio: bool

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
    def load(self, entry: "ModelEntry", source: Path, dtype: "torch.dtype") -> LoadedPipelines:
        """Load real weights from a local diffusers folder (never touches the network)."""

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

    @abc.abstractmethod
    def read_output(self, pipe: Any, output: Any) -> RawOutput:
        """Turn the pipeline's return value (called with output_type='pt') into a `RawOutput`."""
