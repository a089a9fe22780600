"""The engine room: turns a generation spec into frames and sound.

PUT HERE: the narrow `VideoEngine` interface, one module per model family
(built on the real diffusers pipeline classes), the model registry (TOML),
weights resolution and download.
DO NOT PUT HERE: HTTP, database rows, job state, wire types (protocol/),
MP4 encoding (media/). Nothing here imports fastapi, sqlalchemy, protocol or jobs.

Importing this package does not import torch or diffusers; `DiffusersEngine`
loads them when it is constructed.
"""

from mutoscope.engine.base import (
    EngineError,
    GenerationCancelled,
    GenerationOutput,
    GenerationSpec,
    ReferenceMedia,
    ModelInfo,
    ModelNotAvailable,
    StepHooks,
    VideoEngine,
)
from mutoscope.engine.registry import DEFAULT_REGISTRY_PATH, ModelEntry, Registry, RegistryError, load_registry

__all__ = [
    "DEFAULT_REGISTRY_PATH",
    "EngineError",
    "GenerationCancelled",
    "GenerationOutput",
    "GenerationSpec",
    "ReferenceMedia",
    "ModelEntry",
    "ModelInfo",
    "ModelNotAvailable",
    "Registry",
    "RegistryError",
    "StepHooks",
    "VideoEngine",
    "load_registry",
]
