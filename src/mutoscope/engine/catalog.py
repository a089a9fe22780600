"""The models this server offers, as the API sees them: names, sizes, durations, licences, installed or not.

Kept apart from `DiffusersEngine` so a process that only serves the API (`serve --no-worker`, or the API
of the Celery mode) answers from the registry and the weights folder without importing torch.
"""

from __future__ import annotations

from pathlib import Path

from mutoscope.engine import weights as weights_mod
from mutoscope.engine.base import ModelInfo
from mutoscope.engine.registry import Registry


class Catalog:
    """`weights_here=False`: an API process whose jobs run on other machines; whether a model's weights are
    installed is then unknown here (`installed=None`), so admission leaves it to the worker."""

    def __init__(self, registry: Registry, weights_dir: Path, weights_here: bool = True):
        self.registry = registry
        self.weights_dir = Path(weights_dir)
        self.weights_here = weights_here

    def _installed(self, entry) -> bool | None:
        if entry.test_model or self.weights_here:
            return weights_mod.is_installed(entry, self.weights_dir)
        return None

    def _camera_installed(self, entry) -> dict[str, bool | None]:
        """Per adapter move: its LoRA is here (None where this process cannot see the workers' files)."""
        here = entry.test_model or self.weights_here
        return {move: weights_mod.adapter_installed(m, self.weights_dir) if here else None
                for move, m in entry.camera.items() if m.applied == "adapter"}

    def _info(self, entry) -> ModelInfo:
        return entry.info(installed=self._installed(entry), camera_installed=self._camera_installed(entry))

    def resolve(self, name: str) -> ModelInfo:
        return self._info(self.registry.resolve(name))

    def list_models(self) -> list[ModelInfo]:
        return [self._info(e) for e in self.registry.entries()]
