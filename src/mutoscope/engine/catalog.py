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

    def resolve(self, name: str) -> ModelInfo:
        entry = self.registry.resolve(name)
        return entry.info(installed=self._installed(entry))

    def list_models(self) -> list[ModelInfo]:
        return [e.info(installed=self._installed(e)) for e in self.registry.entries()]
