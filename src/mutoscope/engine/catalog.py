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
    def __init__(self, registry: Registry, weights_dir: Path):
        self.registry = registry
        self.weights_dir = Path(weights_dir)

    def resolve(self, name: str) -> ModelInfo:
        entry = self.registry.resolve(name)
        return entry.info(installed=weights_mod.is_installed(entry, self.weights_dir))

    def list_models(self) -> list[ModelInfo]:
        return [e.info(installed=weights_mod.is_installed(e, self.weights_dir)) for e in self.registry.entries()]
