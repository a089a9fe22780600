"""What the videos room knows of the models: a name resolved to its sizes, durations and flags.

The engine (or, in an API-only process, the torch-free `engine/catalog.py`) satisfies these protocols;
the videos room never imports it, so it never loads a model to admit a request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class ModelEntry(Protocol):
    name: str
    sizes: Sequence[str]
    seconds: Sequence[str]
    fps: float
    default_size: str  # what a create without `size` gets
    fixed_steps: int | None  # a distilled model's only step count (None: any)
    installed: bool  # its weights are on this machine (the tiny builtin test models always are)


class ModelCatalog(Protocol):
    def resolve(self, name: str) -> ModelEntry:
        """Raises LookupError for an unknown name."""
